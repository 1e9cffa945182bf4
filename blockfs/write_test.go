package blockfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type imageKind struct {
	name string
	args []string
}

var writableKinds = []imageKind{
	{"ext4-1k", []string{"-t", "ext4", "-b", "1024"}},
	{"ext4-4k", []string{"-t", "ext4", "-b", "4096"}},
	{"ext4-nocsum", []string{"-t", "ext4", "-O", "^metadata_csum,uninit_bg"}},
	{"ext4-32bit", []string{"-t", "ext4", "-O", "^64bit"}},
	{"ext3", []string{"-t", "ext3"}},
	{"ext2", []string{"-t", "ext2"}},
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/3) ^ seed
	}
	return b
}

func writeFile(t *testing.T, f *FS, name string, data []byte) {
	t.Helper()
	fl, err := f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	require.NoError(t, err)
	n, err := fl.Write(data)
	require.NoError(t, err)
	require.Equal(t, len(data), n)
	require.NoError(t, fl.Close())
}

func TestWriteOpsFsckClean(t *testing.T) {
	for _, k := range writableKinds {
		t.Run(k.name, func(t *testing.T) {
			dev := newDev(t, mkfsImage(t, 64<<20, k.args...))
			f, err := Mount(dev, Options{})
			require.NoError(t, err)
			require.False(t, f.ReadOnly())

			require.NoError(t, f.Mkdir("a", 0o755))
			require.NoError(t, f.Mkdir("a/b", 0o700))
			writeFile(t, f, "a/b/small", []byte("small file"))
			big := pattern(3<<20+123, 1)
			writeFile(t, f, "a/big", big)
			// Overwrite in the middle, unaligned.
			fl, err := f.OpenFile("a/big", os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = fl.WriteAt([]byte("PATCH"), 1000001)
			require.NoError(t, err)
			copy(big[1000001:], "PATCH")
			// Sparse writes, one beyond 4 GiB.
			_, err = fl.WriteAt([]byte("far"), 5<<30+7)
			require.NoError(t, err)
			st, err := fl.Stat()
			require.NoError(t, err)
			assert.Equal(t, int64(5<<30+10), st.Size())
			buf := make([]byte, 3)
			_, err = fl.ReadAt(buf, 5<<30+7)
			require.NoError(t, err)
			assert.Equal(t, "far", string(buf))
			_, err = fl.ReadAt(buf, 4<<30)
			require.NoError(t, err)
			assert.Equal(t, []byte{0, 0, 0}, buf)
			require.NoError(t, fl.Truncate(int64(len(big))))
			require.NoError(t, fl.Close())
			got, err := f.ReadFile("a/big")
			require.NoError(t, err)
			require.True(t, bytes.Equal(big, got))

			// Many files: linear directory turns into an htree and splits.
			require.NoError(t, f.Mkdir("many", 0o755))
			for i := 0; i < 1500; i++ {
				writeFile(t, f, fmt.Sprintf("many/f%05d-%s", i, repeatX(i%50)), []byte(fmt.Sprint(i)))
			}
			for i := 0; i < 1500; i += 3 {
				require.NoError(t, f.Remove(fmt.Sprintf("many/f%05d-%s", i, repeatX(i%50))))
			}
			for i := 1; i < 1500; i += 3 {
				name := fmt.Sprintf("many/f%05d-%s", i, repeatX(i%50))
				data, err := f.ReadFile(name)
				require.NoError(t, err, name)
				assert.Equal(t, fmt.Sprint(i), string(data))
			}
			ents, err := f.ReadDir("many")
			require.NoError(t, err)
			assert.Len(t, ents, 1000)

			// Links, symlinks, renames.
			require.NoError(t, f.Link("a/b/small", "a/hard"))
			require.NoError(t, f.Symlink("b/small", "a/fast"))
			long := "./" + string(bytes.Repeat([]byte("./"), 60)) + "b/small"
			require.NoError(t, f.Symlink(long, "a/slow"))
			d, err := f.ReadFile("a/slow")
			require.NoError(t, err)
			assert.Equal(t, "small file", string(d))
			tgt, err := f.Readlink("a/slow")
			require.NoError(t, err)
			assert.Equal(t, long, tgt)
			require.NoError(t, f.Rename("a/hard", "moved"))
			require.NoError(t, f.Rename("a/b", "b2"))
			writeFile(t, f, "victim", []byte("v"))
			require.NoError(t, f.Rename("moved", "victim"))
			require.NoError(t, f.Mkdir("emptydir", 0o755))
			require.NoError(t, f.Mkdir("b2/sub", 0o755))
			require.NoError(t, f.Rename("emptydir", "b2/sub"))
			st, err = f.Stat("victim")
			require.NoError(t, err)
			assert.Equal(t, uint16(2), st.Sys().(*Stat).Nlink)

			// Errors.
			err = f.Mkdir("a", 0o755)
			assert.True(t, errors.Is(err, fs.ErrExist), "%v", err)
			_, err = f.Stat("nope/x")
			assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
			err = f.Remove("b2")
			assert.True(t, errors.Is(err, syscall.ENOTEMPTY), "%v", err)
			err = f.Rename("b2", "b2/sub/x")
			assert.True(t, errors.Is(err, syscall.EINVAL), "%v", err)
			_, err = f.OpenFile("victim/x", os.O_RDONLY, 0)
			assert.True(t, errors.Is(err, syscall.ENOTDIR), "%v", err)
			_, err = f.OpenFile("a", os.O_RDWR, 0)
			assert.True(t, errors.Is(err, syscall.EISDIR), "%v", err)
			_, err = f.OpenFile("victim", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			assert.True(t, errors.Is(err, fs.ErrExist), "%v", err)

			// Attributes.
			require.NoError(t, f.Chmod("victim", 0o600))
			require.NoError(t, f.Chown("victim", 1000, 70000))
			mt := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
			require.NoError(t, f.Chtimes("victim", mt, mt))
			st, err = f.Stat("victim")
			require.NoError(t, err)
			assert.Equal(t, fs.FileMode(0o600), st.Mode())
			assert.True(t, mt.Equal(st.ModTime()), "%v", st.ModTime())
			assert.Equal(t, uint32(70000), st.Sys().(*Stat).Gid)
			require.NoError(t, f.Setxattr("victim", "user.small", []byte("value")))
			require.NoError(t, f.Setxattr("victim", "user.big", pattern(700, 3)))
			require.NoError(t, f.Setxattr("victim", "user.big2", pattern(200, 4)))
			v, err := f.Getxattr("victim", "user.big")
			require.NoError(t, err)
			assert.Equal(t, pattern(700, 3), v)
			names, err := f.Listxattr("victim")
			require.NoError(t, err)
			assert.Equal(t, []string{"user.big", "user.big2", "user.small"}, names)
			require.NoError(t, f.Removexattr("victim", "user.big2"))

			// Truncate grow and shrink.
			writeFile(t, f, "trunc", pattern(10000, 9))
			require.NoError(t, f.Truncate("trunc", 3000))
			require.NoError(t, f.Truncate("trunc", 20000))
			d, err = f.ReadFile("trunc")
			require.NoError(t, err)
			assert.Equal(t, pattern(10000, 9)[:3000], d[:3000])
			assert.Equal(t, make([]byte, 17000), d[3000:])

			// Removing an open file keeps it readable until close.
			fl, err = f.OpenFile("trunc", os.O_RDONLY, 0)
			require.NoError(t, err)
			require.NoError(t, f.Remove("trunc"))
			d, err = io.ReadAll(fl)
			require.NoError(t, err)
			assert.Len(t, d, 20000)
			require.NoError(t, fl.Close())

			sf, err := f.Statfs()
			require.NoError(t, err)
			assert.Less(t, sf.BlocksFree, sf.Blocks)

			require.NoError(t, f.Close())
			fsck(t, dev.Image())

			// Everything is still there after a remount.
			f2, err := Mount(newDev(t, dev.Image()), Options{ReadOnly: true})
			require.NoError(t, err)
			d, err = f2.ReadFile("a/big")
			require.NoError(t, err)
			assert.True(t, bytes.Equal(big, d))
			d, err = f2.ReadFile("victim")
			require.NoError(t, err)
			assert.Equal(t, "small file", string(d))
			ents, err = f2.ReadDir("many")
			require.NoError(t, err)
			assert.Len(t, ents, 1000)
			_, err = f2.Stat("b2/sub")
			require.NoError(t, err)
		})
	}
}
