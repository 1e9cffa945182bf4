package host_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/host"
	"github.com/anykernel/anykernel/internal/testenv"
)

const imageSize = 4 << 20

// loopDevice attaches a fresh image file of size bytes to a loop device
// and detaches it when t ends.
func loopDevice(t testing.TB, size int64) string {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedFile(t, "/dev/loop-control")
	testenv.NeedCommand(t, "losetup")
	img := filepath.Join(t.TempDir(), "loop.img")
	require.NoError(t, os.WriteFile(img, nil, 0o644))
	require.NoError(t, os.Truncate(img, size))
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	require.NoError(t, err, "losetup: %s", out)
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

func TestFileConformance(t *testing.T) {
	tests := []struct {
		name string
		opts host.FileOptions
		loop bool
	}{
		{name: "file", opts: host.FileOptions{}},
		{name: "file-direct", opts: host.FileOptions{Direct: true}},
		{name: "file-4k-sectors", opts: host.FileOptions{SectorSize: 4096}},
		{name: "loop", opts: host.FileOptions{}, loop: true},
		{name: "loop-direct", opts: host.FileOptions{Direct: true}, loop: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestBlockDevice(t, func(t *testing.T) hal.BlockDevice {
				var path string
				opts := tc.opts
				if tc.loop {
					path = loopDevice(t, imageSize)
				} else {
					path = filepath.Join(t.TempDir(), "disk.img")
					opts.Create = imageSize
				}
				d, err := host.OpenFile(path, opts)
				require.NoError(t, err)
				return d
			})
		})
	}
}

func TestOpenFileGeometry(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd.img")
	require.NoError(t, os.WriteFile(odd, make([]byte, 3000), 0o644))
	tests := []struct {
		name       string
		path       string
		opts       host.FileOptions
		wantSector int
		wantSize   int64
		wantErr    bool
	}{
		{name: "create", path: filepath.Join(dir, "new.img"), opts: host.FileOptions{Create: 1 << 20}, wantSector: 512, wantSize: 1 << 20},
		{name: "create-unaligned", path: filepath.Join(dir, "new2.img"), opts: host.FileOptions{Create: 5000}, wantSector: 512, wantSize: 4608},
		{name: "existing-rounds-down", path: odd, wantSector: 512, wantSize: 2560},
		{name: "existing-not-recreated", path: odd, opts: host.FileOptions{Create: 1 << 20}, wantSector: 512, wantSize: 2560},
		{name: "sector-1024", path: odd, opts: host.FileOptions{SectorSize: 1024}, wantSector: 1024, wantSize: 2048},
		{name: "read-only", path: odd, opts: host.FileOptions{ReadOnly: true}, wantSector: 512, wantSize: 2560},
		{name: "missing", path: filepath.Join(dir, "missing.img"), wantErr: true},
		{name: "bad-sector-size", path: odd, opts: host.FileOptions{SectorSize: 1000}, wantErr: true},
		{name: "small-sector-size", path: odd, opts: host.FileOptions{SectorSize: 256}, wantErr: true},
		{name: "create-read-only", path: filepath.Join(dir, "x.img"), opts: host.FileOptions{Create: 4096, ReadOnly: true}, wantErr: true},
		{name: "directory", path: dir, wantErr: true},
		{name: "char-device", path: "/dev/null", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := host.OpenFile(tc.path, tc.opts)
			if tc.wantErr {
				require.Error(t, err)
				var pe *fs.PathError
				assert.ErrorAs(t, err, &pe)
				return
			}
			require.NoError(t, err)
			defer d.Close()
			assert.Equal(t, tc.wantSector, d.SectorSize())
			assert.Equal(t, tc.wantSize, d.Size())
			assert.Equal(t, tc.opts.ReadOnly, d.ReadOnly())
			assert.Equal(t, tc.opts.ReadOnly, hal.IsReadOnly(d))
		})
	}
}

func TestFileReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.img")
	want := bytes.Repeat([]byte{0x5a}, 8192)
	require.NoError(t, os.WriteFile(path, want, 0o444))
	d, err := host.OpenFile(path, host.FileOptions{ReadOnly: true})
	require.NoError(t, err)
	defer d.Close()
	got := make([]byte, 8192)
	_, err = d.ReadAt(got, 0)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	_, err = d.WriteAt(make([]byte, 512), 0)
	assert.ErrorIs(t, err, hal.ErrReadOnly)
	_, err = d.WriteAtFUA(make([]byte, 512), 0)
	assert.ErrorIs(t, err, hal.ErrReadOnly)
	assert.ErrorIs(t, d.Discard(0, 512), hal.ErrReadOnly)
	require.NoError(t, d.Sync())
}

// TestFileWritesReachHost checks what the host sees: writes land at the
// right offsets, FUA writes too, and Discard punches a hole.
func TestFileWritesReachHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.img")
	d, err := host.OpenFile(path, host.FileOptions{Create: 1 << 20})
	require.NoError(t, err)
	defer d.Close()

	a := bytes.Repeat([]byte("A"), 4096)
	b := bytes.Repeat([]byte("B"), 1024)
	_, err = d.WriteAt(a, 8192)
	require.NoError(t, err)
	_, err = d.WriteAtFUA(b, 512)
	require.NoError(t, err)
	require.NoError(t, d.Sync())

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, a, raw[8192:8192+4096])
	assert.Equal(t, b, raw[512:512+1024])
	assert.Equal(t, make([]byte, 512), raw[:512])

	// Punch a hole over most of a's range: the host file reads zeros there
	// and has fewer allocated blocks.
	var before, after unix.Stat_t
	require.NoError(t, unix.Stat(path, &before))
	require.NoError(t, d.Discard(8192, 4096))
	require.NoError(t, unix.Stat(path, &after))
	raw, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 4096), raw[8192:8192+4096])
	assert.Less(t, after.Blocks, before.Blocks, "hole punched")
	assert.Equal(t, int64(1<<20), after.Size, "size kept")
}

// TestFileDirectUnaligned passes buffers that are not aligned in memory to
// an O_DIRECT device: they must go through the aligned bounce buffer.
func TestFileDirectUnaligned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "direct.img")
	d, err := host.OpenFile(path, host.FileOptions{Create: 4 << 20, Direct: true})
	require.NoError(t, err)
	defer d.Close()
	ss := d.SectorSize()

	tests := []struct {
		name  string
		shift int
		len   int
		off   int64
	}{
		{"aligned", 0, 4 * ss, 0},
		{"shift-1", 1, 2 * ss, int64(ss)},
		{"shift-511-big", 511, (1 << 20) + 3*ss, 8 * int64(ss)},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backing := make([]byte, tc.len+8192)
			base := 4096 - int(uintptr(unsafe.Pointer(&backing[0]))%4096)
			p := backing[base+tc.shift : base+tc.shift+tc.len]
			for j := range p {
				p[j] = byte(j*7 + i)
			}
			_, err := d.WriteAt(p, tc.off)
			require.NoError(t, err)
			_, err = d.WriteAtFUA(p[:ss], tc.off) // same bytes again, FUA
			require.NoError(t, err)
			q := backing[base+tc.shift+1 : base+tc.shift+1+tc.len] // another misalignment
			got := make([]byte, tc.len)
			_, err = d.ReadAt(q, tc.off)
			require.NoError(t, err)
			copy(got, q)
			for j := range got {
				if got[j] != byte(j*7+i) {
					t.Fatalf("byte %d: got %#x want %#x", j, got[j], byte(j*7+i))
				}
			}
		})
	}
}

func TestFileShrunkByHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.img")
	d, err := host.OpenFile(path, host.FileOptions{Create: 64 << 10})
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, os.Truncate(path, 4096))
	_, err = d.ReadAt(make([]byte, 8192), 0)
	require.Error(t, err, "a device cannot end early")
	assert.False(t, errors.Is(err, hal.ErrOutOfRange))
}

func BenchmarkFileSequential(b *testing.B) {
	const chunk = 1 << 20
	const span = 64 << 20
	path := filepath.Join(b.TempDir(), "bench.img")
	d, err := host.OpenFile(path, host.FileOptions{Create: span})
	require.NoError(b, err)
	defer d.Close()
	raw, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(b, err)
	defer raw.Close()
	buf := bytes.Repeat([]byte{0xc3}, chunk)
	// Fill once so reads come from the page cache.
	for off := int64(0); off < span; off += chunk {
		_, err := raw.WriteAt(buf, off)
		require.NoError(b, err)
	}
	type op func(p []byte, off int64) (int, error)
	cases := []struct {
		name string
		fn   op
	}{
		{"read/host-file", d.ReadAt},
		{"read/ref-raw-file", raw.ReadAt},
		{"write/host-file", d.WriteAt},
		{"write/ref-raw-file", raw.WriteAt},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(chunk)
			b.ReportAllocs()
			off := int64(0)
			for b.Loop() {
				if _, err := c.fn(buf, off); err != nil {
					b.Fatal(err)
				}
				off = (off + chunk) % span
			}
		})
	}
}

// TestFileDiscardReadsZeros checks what Linux does on Discard: a punched
// hole in a file, and BLKDISCARD on a loop device (which punches a hole in
// its backing file), both read back as zeros, and the sectors around the
// range keep their data.
func TestFileDiscardReadsZeros(t *testing.T) {
	tests := []struct {
		name string
		path func(t *testing.T) string
		opts host.FileOptions
	}{
		{"file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "d.img") }, host.FileOptions{Create: 1 << 20}},
		{"loop", func(t *testing.T) string { return loopDevice(t, 1<<20) }, host.FileOptions{}},
		{"loop-direct", func(t *testing.T) string { return loopDevice(t, 1<<20) }, host.FileOptions{Direct: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := host.OpenFile(tc.path(t), tc.opts)
			require.NoError(t, err)
			defer d.Close()
			const span = 64 << 10
			data := bytes.Repeat([]byte{0x77}, span)
			_, err = d.WriteAt(data, 0)
			require.NoError(t, err)
			require.NoError(t, d.Sync())
			require.NoError(t, d.Discard(16<<10, 32<<10))
			got := make([]byte, span)
			_, err = d.ReadAt(got, 0)
			require.NoError(t, err)
			assert.Equal(t, data[:16<<10], got[:16<<10], "before the range")
			assert.Equal(t, make([]byte, 32<<10), got[16<<10:48<<10], "discarded range")
			assert.Equal(t, data[48<<10:], got[48<<10:], "after the range")
		})
	}
}
