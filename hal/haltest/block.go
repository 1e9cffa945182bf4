package haltest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/anykernel/anykernel/hal"
)

// TestBlockDevice checks the hal.BlockDevice contract. It writes all over
// the device: never point it at data you want to keep. makeDev is called
// once per subtest; the suite closes the device it gets. The device must be
// writable and at least 64 sectors long.
func TestBlockDevice(t *testing.T, makeDev func(t *testing.T) hal.BlockDevice) {
	t.Helper()
	run := func(name string, f func(t *testing.T, d hal.BlockDevice)) {
		t.Run(name, func(t *testing.T) {
			d := makeDev(t)
			defer d.Close()
			f(t, d)
		})
	}
	run("Geometry", testBlockGeometry)
	run("RoundTrip", testBlockRoundTrip)
	run("Misaligned", testBlockMisaligned)
	run("OutOfRange", testBlockOutOfRange)
	run("ZeroLength", testBlockZeroLength)
	run("ReaderKeepsNoBuffer", testBlockKeepsNoBuffer)
	run("Concurrent", testBlockConcurrent)
	run("Sync", testBlockSync)
	run("Discard", testBlockDiscard)
	run("FUA", testBlockFUA)
	run("UseAfterClose", testBlockUseAfterClose)
}

func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func testBlockGeometry(t *testing.T, d hal.BlockDevice) {
	ss := d.SectorSize()
	if ss < 512 || ss&(ss-1) != 0 {
		t.Fatalf("SectorSize() = %d, want a power of two >= 512", ss)
	}
	size := d.Size()
	if size <= 0 || size%int64(ss) != 0 {
		t.Fatalf("Size() = %d, want a positive multiple of the sector size %d", size, ss)
	}
	if size < 64*int64(ss) {
		t.Fatalf("Size() = %d: the suite needs at least 64 sectors", size)
	}
	if d.SectorSize() != ss || d.Size() != size {
		t.Fatalf("geometry not stable")
	}
	if hal.IsReadOnly(d) {
		t.Fatalf("device reports read-only; the suite needs a writable device")
	}
}

func testBlockRoundTrip(t *testing.T, d hal.BlockDevice) {
	ss := int64(d.SectorSize())
	sectors := d.Size() / ss
	cases := []struct {
		name   string
		sector int64
		count  int64
	}{
		{"first sector", 0, 1},
		{"second sector", 1, 1},
		{"run of 8", 3, 8},
		{"middle", sectors / 2, 5},
		{"last sector", sectors - 1, 1},
		{"ending at last", sectors - 16, 16},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := pattern(uint64(i+1), int(c.count*ss))
			off := c.sector * ss
			n, err := d.WriteAt(data, off)
			if err != nil || n != len(data) {
				t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", len(data), off, n, err)
			}
			got := make([]byte, len(data))
			n, err = d.ReadAt(got, off)
			if err != nil || n != len(got) {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", len(got), off, n, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read back differs from what was written at %d", off)
			}
			// A sub-range reads the same bytes.
			if c.count > 1 {
				one := make([]byte, ss)
				if _, err := d.ReadAt(one, off+ss); err != nil {
					t.Fatalf("ReadAt sub-range: %v", err)
				}
				if !bytes.Equal(one, data[ss:2*ss]) {
					t.Fatalf("sub-range read differs")
				}
			}
		})
	}
	// Overwrites replace, and neighbours are untouched.
	a, b := pattern(100, int(3*ss)), pattern(101, int(ss))
	if _, err := d.WriteAt(a, 20*ss); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(b, 21*ss); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 3*ss)
	if _, err := d.ReadAt(got, 20*ss); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(a)
	copy(want[ss:], b)
	if !bytes.Equal(got, want) {
		t.Fatalf("overwrite of the middle sector disturbed its neighbours")
	}
}

func testBlockMisaligned(t *testing.T, d hal.BlockDevice) {
	ss := int64(d.SectorSize())
	cases := []struct {
		name string
		off  int64
		n    int64
	}{
		{"offset +1", 1, ss},
		{"offset half sector", ss / 2, ss},
		{"length +1", 0, ss + 1},
		{"length half", 0, ss / 2},
		{"length 1", ss, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			buf := make([]byte, c.n)
			n, err := d.ReadAt(buf, c.off)
			if n != 0 || !errors.Is(err, hal.ErrMisaligned) {
				t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want 0 and hal.ErrMisaligned", c.n, c.off, n, err)
			}
			n, err = d.WriteAt(buf, c.off)
			if n != 0 || !errors.Is(err, hal.ErrMisaligned) {
				t.Errorf("WriteAt(%d bytes at %d) = %d, %v; want 0 and hal.ErrMisaligned", c.n, c.off, n, err)
			}
		})
	}
}

func testBlockOutOfRange(t *testing.T, d hal.BlockDevice) {
	ss := int64(d.SectorSize())
	size := d.Size()
	// Mark the last sector so a partial write past the end can be detected.
	mark := pattern(7, int(ss))
	if _, err := d.WriteAt(mark, size-ss); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		off  int64
		n    int64
	}{
		{"negative offset", -ss, ss},
		{"at end", size, ss},
		{"past end", size + 8*ss, ss},
		{"straddling end", size - ss, 2 * ss},
		{"huge offset", 1 << 62, ss},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			buf := pattern(8, int(c.n))
			n, err := d.ReadAt(buf, c.off)
			if n != 0 || !errors.Is(err, hal.ErrOutOfRange) {
				t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want 0 and hal.ErrOutOfRange", c.n, c.off, n, err)
			}
			n, err = d.WriteAt(buf, c.off)
			if n != 0 || !errors.Is(err, hal.ErrOutOfRange) {
				t.Errorf("WriteAt(%d bytes at %d) = %d, %v; want 0 and hal.ErrOutOfRange", c.n, c.off, n, err)
			}
		})
	}
	got := make([]byte, ss)
	if _, err := d.ReadAt(got, size-ss); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, mark) {
		t.Fatalf("a rejected out-of-range write modified the last sector")
	}
}

func testBlockZeroLength(t *testing.T, d hal.BlockDevice) {
	for _, off := range []int64{0, int64(d.SectorSize()), d.Size()} {
		if n, err := d.ReadAt(nil, off); n != 0 || err != nil {
			t.Errorf("ReadAt(nil, %d) = %d, %v; want 0, nil", off, n, err)
		}
		if n, err := d.WriteAt([]byte{}, off); n != 0 || err != nil {
			t.Errorf("WriteAt(empty, %d) = %d, %v; want 0, nil", off, n, err)
		}
	}
}

func testBlockKeepsNoBuffer(t *testing.T, d hal.BlockDevice) {
	ss := d.SectorSize()
	data := pattern(3, 4*ss)
	buf := bytes.Clone(data)
	if _, err := d.WriteAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 0xAA
	}
	got := make([]byte, len(data))
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("device contents changed when the caller reused its write buffer")
	}
	for i := range got {
		got[i] = 0x55
	}
	again := make([]byte, len(data))
	if _, err := d.ReadAt(again, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("device contents changed when the caller reused its read buffer")
	}
}

func testBlockConcurrent(t *testing.T, d hal.BlockDevice) {
	ss := int64(d.SectorSize())
	const workers = 8
	span := d.Size() / ss / workers // sectors per worker
	if span > 64 {
		span = 64
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := int64(w) * span * ss
			for i := range span {
				p := pattern(uint64(w*1000)+uint64(i), int(ss))
				if _, err := d.WriteAt(p, base+i*ss); err != nil {
					errs <- fmt.Errorf("worker %d write: %w", w, err)
					return
				}
				got := make([]byte, ss)
				if _, err := d.ReadAt(got, base+i*ss); err != nil {
					errs <- fmt.Errorf("worker %d read: %w", w, err)
					return
				}
				if !bytes.Equal(got, p) {
					errs <- fmt.Errorf("worker %d: sector %d read back wrong under concurrency", w, int64(w)*span+i)
					return
				}
			}
		}()
	}
	// A concurrent Sync must not disturb anything.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 4 {
			if err := d.Sync(); err != nil {
				errs <- fmt.Errorf("concurrent Sync: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range workers {
		for i := range span {
			got := make([]byte, ss)
			if _, err := d.ReadAt(got, (int64(w)*span+i)*ss); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pattern(uint64(w*1000)+uint64(i), int(ss))) {
				t.Fatalf("worker %d sector %d lost after all workers finished", w, i)
			}
		}
	}
}

func testBlockSync(t *testing.T, d hal.BlockDevice) {
	if err := d.Sync(); err != nil {
		t.Fatalf("Sync on idle device: %v", err)
	}
	ss := d.SectorSize()
	data := pattern(11, 2*ss)
	if _, err := d.WriteAt(data, int64(5*ss)); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	got := make([]byte, len(data))
	if _, err := d.ReadAt(got, int64(5*ss)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("data changed across Sync")
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("repeated Sync: %v", err)
	}
}

func testBlockDiscard(t *testing.T, d hal.BlockDevice) {
	dd, ok := d.(hal.Discarder)
	if !ok {
		t.Skip("not a hal.Discarder")
	}
	ss := int64(d.SectorSize())
	old := pattern(21, int(4*ss))
	if _, err := d.WriteAt(old, 8*ss); err != nil {
		t.Fatal(err)
	}
	if err := dd.Discard(9*ss, 2*ss); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skipf("Discard unsupported by this device: %v", err)
		}
		t.Fatalf("Discard: %v", err)
	}
	got := make([]byte, 4*ss)
	if _, err := d.ReadAt(got, 8*ss); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:ss], old[:ss]) || !bytes.Equal(got[3*ss:], old[3*ss:]) {
		t.Fatalf("Discard touched sectors outside its range")
	}
	zero := make([]byte, 2*ss)
	if mid := got[ss : 3*ss]; !bytes.Equal(mid, zero) && !bytes.Equal(mid, old[ss:3*ss]) {
		t.Fatalf("discarded range reads neither as zeros nor as its old contents")
	}
	if err := dd.Discard(1, ss); !errors.Is(err, hal.ErrMisaligned) {
		t.Fatalf("Discard misaligned = %v, want hal.ErrMisaligned", err)
	}
	if err := dd.Discard(d.Size(), ss); !errors.Is(err, hal.ErrOutOfRange) {
		t.Fatalf("Discard past end = %v, want hal.ErrOutOfRange", err)
	}
}

func testBlockFUA(t *testing.T, d hal.BlockDevice) {
	fd, ok := d.(hal.FUAWriter)
	if !ok {
		t.Skip("not a hal.FUAWriter")
	}
	ss := d.SectorSize()
	data := pattern(31, 2*ss)
	if n, err := fd.WriteAtFUA(data, int64(30*ss)); err != nil || n != len(data) {
		t.Fatalf("WriteAtFUA = %d, %v", n, err)
	}
	got := make([]byte, len(data))
	if _, err := d.ReadAt(got, int64(30*ss)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("FUA write not read back")
	}
	if _, err := fd.WriteAtFUA(data, 1); !errors.Is(err, hal.ErrMisaligned) {
		t.Fatalf("WriteAtFUA misaligned = %v, want hal.ErrMisaligned", err)
	}
}

func testBlockUseAfterClose(t *testing.T, d hal.BlockDevice) {
	ss := d.SectorSize()
	size := d.Size()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	buf := make([]byte, ss)
	if _, err := d.ReadAt(buf, 0); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("ReadAt after Close = %v, want hal.ErrClosed", err)
	}
	if _, err := d.WriteAt(buf, 0); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("WriteAt after Close = %v, want hal.ErrClosed", err)
	}
	if err := d.Sync(); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("Sync after Close = %v, want hal.ErrClosed", err)
	}
	if d.SectorSize() != ss || d.Size() != size {
		t.Errorf("geometry changed after Close")
	}
}
