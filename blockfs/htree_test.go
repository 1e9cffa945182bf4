package blockfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func longName(i int) string { return fmt.Sprintf("%05d-%s", i, strings.Repeat("long-name-", 8)) }

// dxLevels returns the indirect_levels of dir's htree root (-1 if the
// directory is not indexed).
func dxLevels(t *testing.T, f *FS, dir string) int {
	in, err := f.walk(dir, false)
	require.NoError(t, err)
	if in.flags()&EXT4_INDEX_FL == 0 {
		return -1
	}
	b, _, err := f.dirBlock(in, 0)
	require.NoError(t, err)
	return int(b[dxRootInfoOffset+6])
}

// TestTwoLevelHtree grows a directory past what one index block holds, in
// blockfs and in the kernel, and has each side read the other's.
func TestTwoLevelHtree(t *testing.T) {
	const n = 2500
	t.Run("ours", func(t *testing.T) {
		dev := newDev(t, mkfsImage(t, 32<<20, "-t", "ext4", "-b", "1024"))
		f, err := Mount(dev, Options{})
		require.NoError(t, err)
		require.NoError(t, f.Mkdir("d", 0o755))
		for i := 0; i < n; i++ {
			writeFile(t, f, "d/"+longName(i), nil)
		}
		for i := 0; i < n; i += 7 {
			require.NoError(t, f.Remove("d/"+longName(i)))
		}
		assert.Equal(t, 1, dxLevels(t, f, "d"))
		for i := 1; i < n; i += 7 {
			_, err := f.Stat("d/" + longName(i))
			require.NoError(t, err)
		}
		require.NoError(t, f.Close())
		fsck(t, dev.Image())
		if os.Geteuid() == 0 {
			needKernel(t)
			p := writeImageFile(t, dev.Image())
			dir := loopMount(t, p, "ro")
			ents, err := os.ReadDir(filepath.Join(dir, "d"))
			require.NoError(t, err)
			assert.Len(t, ents, n-(n+6)/7)
			_, err = os.Stat(filepath.Join(dir, "d", longName(8)))
			require.NoError(t, err)
			umount(t, dir)
		}
	})
	t.Run("kernel", func(t *testing.T) {
		needKernel(t)
		p := writeImageFile(t, mkfsImage(t, 32<<20, "-t", "ext4", "-b", "1024"))
		dir := loopMount(t, p, "rw")
		require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
		for i := 0; i < n; i++ {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "d", longName(i)), nil, 0o644))
		}
		umount(t, dir)
		img, err := os.ReadFile(p)
		require.NoError(t, err)
		dev := newDev(t, img)
		f, err := Mount(dev, Options{})
		require.NoError(t, err)
		assert.Equal(t, 1, dxLevels(t, f, "d"))
		for i := 0; i < n; i += 3 {
			_, err := f.Stat("d/" + longName(i))
			require.NoError(t, err, longName(i))
		}
		for i := 0; i < 600; i++ {
			writeFile(t, f, "d/new-"+longName(i), nil)
			require.NoError(t, f.Remove("d/"+longName(i)))
		}
		ents, err := f.ReadDir("d")
		require.NoError(t, err)
		assert.Len(t, ents, n)
		require.NoError(t, f.Close())
		fsck(t, dev.Image())
	})
}

// TestManyInodes touches more inodes and blocks than the caches keep, so
// eviction runs between operations, then checks the image.
func TestManyInodes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dev := newDev(t, mkfsImage(t, 96<<20, "-t", "ext4", "-b", "1024", "-N", "20000"))
	// A tiny block cache makes eviction and writeback run constantly.
	f, err := Mount(dev, Options{CacheBlocks: 64})
	require.NoError(t, err)
	for d := 0; d < 30; d++ {
		require.NoError(t, f.Mkdir(fmt.Sprintf("d%02d", d), 0o755))
		for i := 0; i < 300; i++ {
			writeFile(t, f, fmt.Sprintf("d%02d/f%03d", d, i), []byte{byte(i)})
		}
	}
	for d := 0; d < 30; d++ {
		for i := 0; i < 300; i += 10 {
			require.NoError(t, f.Link(fmt.Sprintf("d%02d/f%03d", d, i), fmt.Sprintf("d%02d/f%03d", (d+1)%30, i+1000)))
			require.NoError(t, f.Rename(fmt.Sprintf("d%02d/f%03d", d, i+1), fmt.Sprintf("d%02d/r%03d", (d+7)%30, i)))
		}
	}
	st, err := f.Stat("d03/f010")
	require.NoError(t, err)
	assert.Equal(t, uint16(2), st.Sys().(*Stat).Nlink)
	problems, err := f.Check()
	require.NoError(t, err)
	assert.Empty(t, problems)
	require.NoError(t, f.Close())
	fsck(t, dev.Image())
}
