package blockfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var imageKinds = []struct {
	name string
	args []string
}{
	{"ext4-1k", []string{"-t", "ext4", "-b", "1024"}},
	{"ext4-4k", []string{"-t", "ext4", "-b", "4096"}},
	{"ext4-nocsum", []string{"-t", "ext4", "-O", "^metadata_csum,uninit_bg"}},
	{"ext4-32bit", []string{"-t", "ext4", "-O", "^64bit"}},
	{"ext3", []string{"-t", "ext3"}},
	{"ext2", []string{"-t", "ext2"}},
}

func TestReadImagesFSTest(t *testing.T) {
	src := t.TempDir()
	// fstest reads every file in many ways: keep the tree small.
	makeTreeSized(t, src, 120, 40*1024+17, 300<<10)
	for _, k := range imageKinds {
		t.Run(k.name, func(t *testing.T) {
			img := mkfsImage(t, 32<<20, append(k.args, "-d", src)...)
			f, err := Mount(newDev(t, img), Options{ReadOnly: true})
			require.NoError(t, err)
			defer f.Close()
			require.NoError(t, fstest.TestFS(f, "hello.txt", "dir/big.bin", "dir/sub/deep.txt", "many/file-119-"+repeatX(119%40), "sparse"))
			// Contents match the host tree.
			err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				require.NoError(t, err)
				rel, _ := filepath.Rel(src, p)
				if rel == "." {
					return nil
				}
				rel = filepath.ToSlash(rel)
				st, err := f.Lstat(rel)
				require.NoError(t, err, rel)
				hst, err := os.Lstat(p)
				require.NoError(t, err)
				assert.Equal(t, hst.Mode(), st.Mode(), rel)
				switch {
				case d.Type()&fs.ModeSymlink != 0:
					want, _ := os.Readlink(p)
					got, err := f.ReadLink(rel)
					require.NoError(t, err)
					assert.Equal(t, want, got)
				case d.Type().IsRegular():
					want, _ := os.ReadFile(p)
					got, err := f.ReadFile(rel)
					require.NoError(t, err)
					assert.Equal(t, want, got, rel)
				}
				return nil
			})
			require.NoError(t, err)
		})
	}
}

func repeatX(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}
