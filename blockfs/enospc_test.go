package blockfs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFillUp runs the file system out of blocks and out of inodes; the
// failures must be ENOSPC and the image must stay consistent.
func TestFillUp(t *testing.T) {
	for _, k := range []imageKind{writableKinds[0], writableKinds[1], writableKinds[5]} {
		t.Run(k.name, func(t *testing.T) {
			dev := newDev(t, mkfsImage(t, 8<<20, append(k.args, "-N", "600")...))
			f, err := Mount(dev, Options{})
			require.NoError(t, err)
			// Out of blocks: one growing file, then many small ones.
			fl, err := f.OpenFile("big", os.O_RDWR|os.O_CREATE, 0o644)
			require.NoError(t, err)
			chunk := pattern(100000, 1)
			var werr error
			for i := 0; i < 1000 && werr == nil; i++ {
				_, werr = fl.Write(chunk)
			}
			assert.True(t, errors.Is(werr, syscall.ENOSPC), "%v", werr)
			require.NoError(t, fl.Close())
			require.NoError(t, f.Sync())
			fsck(t, dev.Image())
			// Free a little space, then run out of inodes and directory space.
			require.NoError(t, f.Truncate("big", 1<<20))
			require.NoError(t, f.Mkdir("d", 0o755))
			var cerr error
			for i := 0; i < 5000 && cerr == nil; i++ {
				name := fmt.Sprintf("d/file-with-a-rather-long-name-%05d", i)
				var c *File
				if c, cerr = f.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644); cerr == nil {
					_, cerr = c.Write(pattern(3000, byte(i)))
					c.Close()
				}
			}
			assert.True(t, errors.Is(cerr, syscall.ENOSPC), "%v", cerr)
			err = f.Mkdir("d/one-more-dir", 0o755)
			assert.Error(t, err)
			require.NoError(t, f.Sync())
			fsck(t, dev.Image())
			problems, err := f.Check()
			require.NoError(t, err)
			assert.Empty(t, problems)
			// Everything can be removed again.
			ents, err := f.ReadDir("d")
			require.NoError(t, err)
			for _, e := range ents {
				require.NoError(t, f.Remove("d/"+e.Name()))
			}
			require.NoError(t, f.Remove("d"))
			require.NoError(t, f.Remove("big"))
			require.NoError(t, f.Close())
			fsck(t, dev.Image())
		})
	}
}
