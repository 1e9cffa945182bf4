package blockfs

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeekDataHoleAndAllocate(t *testing.T) {
	dev := newDev(t, mkfsImage(t, 16<<20, "-t", "ext4", "-b", "4096"))
	f, err := Mount(dev, Options{})
	require.NoError(t, err)
	fl, err := f.OpenFile("s", os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = fl.WriteAt([]byte("a"), 8192)
	require.NoError(t, err)
	_, err = fl.WriteAt([]byte("b"), 40960)
	require.NoError(t, err)
	require.NoError(t, fl.Allocate(16384, 8192, false)) // unwritten: still a hole
	cases := []struct {
		name   string
		off    int64
		whence int
		want   int64
		err    error
	}{
		{"data-from-0", 0, SeekData, 8192, nil},
		{"data-inside", 8200, SeekData, 8200, nil},
		{"data-skips-unwritten", 12288, SeekData, 40960, nil},
		{"hole-from-0", 0, SeekHole, 0, nil},
		{"hole-after-data", 8192, SeekHole, 12288, nil},
		{"hole-last-block-is-eof", 40960, SeekHole, 40961, nil},
		{"data-past-eof", 40961, SeekData, 0, syscall.ENXIO},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := fl.Seek(c.off, c.whence)
			if c.err != nil {
				assert.True(t, errors.Is(err, c.err), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
	// Allocate with KEEP_SIZE leaves the size; without, it grows.
	require.NoError(t, fl.Allocate(100000, 5000, true))
	st, _ := fl.Stat()
	assert.Equal(t, int64(40961), st.Size())
	require.NoError(t, fl.Allocate(100000, 5000, false))
	st, _ = fl.Stat()
	assert.Equal(t, int64(105000), st.Size())
	buf := make([]byte, 5000)
	_, err = fl.ReadAt(buf, 100000)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 5000), buf)
	require.NoError(t, fl.Close())
	require.NoError(t, f.Close())
	fsck(t, dev.Image())
}

// TestReadAheadSeesWrites reads a file in small sequential pieces while
// another handle rewrites parts ahead of the reader.
func TestReadAheadSeesWrites(t *testing.T) {
	dev := newDev(t, mkfsImage(t, 16<<20, "-t", "ext4"))
	f, err := Mount(dev, Options{})
	require.NoError(t, err)
	want := pattern(3<<20, 5)
	writeFile(t, f, "r", want)
	r, err := f.OpenFile("r", os.O_RDONLY, 0)
	require.NoError(t, err)
	w, err := f.OpenFile("r", os.O_RDWR, 0)
	require.NoError(t, err)
	buf := make([]byte, 4096)
	for off := 0; off < len(want); off += len(buf) {
		if off%(256<<10) == 0 {
			patch := pattern(5000, byte(off))
			_, err := w.WriteAt(patch, int64(off+8192))
			require.NoError(t, err)
			copy(want[off+8192:], patch)
		}
		n, err := r.Read(buf)
		require.NoError(t, err)
		require.Equal(t, want[off:off+n], buf[:n], "offset %d", off)
	}
	require.NoError(t, r.Close())
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
}
