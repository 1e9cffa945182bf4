package blockfs

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOrphanAtSync syncs while an unlinked file is still open: the image
// must be consistent then (the inode sits on the orphan list) and after
// the last close.
func TestOrphanAtSync(t *testing.T) {
	for _, k := range []imageKind{writableKinds[0], writableKinds[5]} {
		t.Run(k.name, func(t *testing.T) {
			dev := newDev(t, mkfsImage(t, 16<<20, k.args...))
			f, err := Mount(dev, Options{})
			require.NoError(t, err)
			writeFile(t, f, "keep", []byte("k"))
			var open []*File
			for _, n := range []string{"a", "b", "c"} {
				writeFile(t, f, n, pattern(20000, 1))
				fl, err := f.OpenFile(n, os.O_RDWR, 0)
				require.NoError(t, err)
				require.NoError(t, f.Remove(n))
				open = append(open, fl)
			}
			require.NoError(t, f.Sync())
			// Like a kernel image with open unlinked files, the synced
			// image carries an orphan list: e2fsck -n reports it (it may
			// not release orphans read-only), preening releases it.
			preen(t, dev.Image())
			// Mounting the synced image releases the orphans too.
			gdev := newDev(t, dev.Image())
			g, err := Mount(gdev, Options{})
			require.NoError(t, err)
			problems, err := g.Check()
			require.NoError(t, err)
			assert.Empty(t, problems)
			require.NoError(t, g.Close())
			fsck(t, gdev.Image())
			require.NoError(t, open[1].Close())
			require.NoError(t, f.Sync())
			preen(t, dev.Image())
			require.NoError(t, open[0].Close())
			require.NoError(t, open[2].Close())
			require.NoError(t, f.Close())
			fsck(t, dev.Image())
			problems, err = mustMount(t, dev.Image()).Check()
			require.NoError(t, err)
			assert.Empty(t, problems)
		})
	}
}

func mustMount(t *testing.T, img []byte) *FS {
	f, err := Mount(newDev(t, img), Options{ReadOnly: true})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// preen runs e2fsck -fp on a copy of img, which must succeed (exit 0, or
// 1 for orphans released), and then e2fsck -fn on the result.
func preen(t *testing.T, img []byte) {
	t.Helper()
	p := writeImageFile(t, img)
	out, err := exec.Command("e2fsck", "-fp", p).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		err = nil
	}
	require.NoError(t, err, "e2fsck -fp: %s", out)
	fixed, err := os.ReadFile(p)
	require.NoError(t, err)
	fsck(t, fixed)
}
