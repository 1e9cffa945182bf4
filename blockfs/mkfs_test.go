package blockfs

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMkfs(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src)
	cases := []struct {
		name string
		size int64
		opts MkfsOptions
	}{
		{"1k-default", 48 << 20, MkfsOptions{Label: "small"}},
		{"4k", 96 << 20, MkfsOptions{BlockSize: 4096, Label: "four"}},
		{"2k-nojournal", 20 << 20, MkfsOptions{BlockSize: 2048, JournalBlocks: -1}},
		{"1k-many-groups-populated", 40 << 20, MkfsOptions{InodeCount: 3000, Root: os.DirFS(src)}},
		{"4k-populated", 64 << 20, MkfsOptions{BlockSize: 4096, Root: os.DirFS(src)}},
		{"tiny", 1 << 20, MkfsOptions{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dev := newDev(t, make([]byte, c.size))
			require.NoError(t, Mkfs(dev, c.opts))
			img := dev.Image()
			fsck(t, img)
			f, err := Mount(newDev(t, img), Options{ReadOnly: true})
			require.NoError(t, err)
			st, err := f.Statfs()
			require.NoError(t, err)
			assert.Equal(t, c.opts.Label, st.Label)
			if c.opts.Root != nil {
				assertSameTree(t, withoutRootLinks(snapshotHost(t, src)), withoutRootLinks(snapshotFS(t, f)))
			}
			_, err = f.Stat("lost+found")
			require.NoError(t, err)
			require.NoError(t, f.Close())
		})
	}
}

func TestKernelMountsMkfs(t *testing.T) {
	needKernel(t)
	src := t.TempDir()
	makeTree(t, src)
	for _, bs := range []int{1024, 4096} {
		dev := newDev(t, make([]byte, 64<<20))
		require.NoError(t, Mkfs(dev, MkfsOptions{BlockSize: bs, Root: os.DirFS(src)}))
		p := writeImageFile(t, dev.Image())
		dir := loopMount(t, p, "rw")
		assertSameTree(t, withoutRootLinks(snapshotHost(t, src)), withoutRootLinks(snapshotHost(t, dir)))
		require.NoError(t, os.WriteFile(dir+"/kernel-was-here", []byte("k"), 0o644))
		umount(t, dir)
		img, err := os.ReadFile(p)
		require.NoError(t, err)
		fsck(t, img)
		f, err := Mount(newDev(t, img), Options{})
		require.NoError(t, err)
		b, err := f.ReadFile("kernel-was-here")
		require.NoError(t, err)
		assert.Equal(t, "k", string(b))
		require.NoError(t, f.Close())
	}
}

// withoutRootLinks drops the root's link count (lost+found adds one).
func withoutRootLinks(m map[string]node) map[string]node {
	n := m["."]
	n.Nlink = 0
	m["."] = n
	return m
}
