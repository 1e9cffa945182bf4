package mem

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
)

func TestCrashRecorderConformance(t *testing.T) {
	cases := []struct {
		name  string
		inner func(t *testing.T) hal.BlockDevice
	}{
		{"over Block", func(t *testing.T) hal.BlockDevice { return newTestBlock(t, 256) }},
		{"over 4KiB Block", func(t *testing.T) hal.BlockDevice {
			b, err := NewBlock(64*4096, BlockOptions{SectorSize: 4096})
			require.NoError(t, err)
			return b
		}},
		{"over a plain device", func(t *testing.T) hal.BlockDevice { return blockOnly{newTestBlock(t, 256)} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestBlockDevice(t, func(t *testing.T) hal.BlockDevice {
				r, err := NewCrashRecorder(tc.inner(t))
				require.NoError(t, err)
				return r
			})
		})
	}
}

// crashModelOp mirrors one recorded operation in the test's own model.
type crashModelOp struct {
	kind    CrashOpKind
	first   int64 // first sector
	sectors int64
	data    []byte // nil for discards (zeros) and syncs
}

// crashModel is an independent description of the recorder's log and of
// what may survive a power cut, sector by sector.
type crashModel struct {
	ss   int64
	base []byte
	ops  []crashModelOp
}

func (m *crashModel) sector(img []byte, s int64) []byte { return img[s*m.ss : (s+1)*m.ss] }

// value is what op leaves in sector s (which it must cover).
func (m *crashModel) value(op crashModelOp, s int64) []byte {
	if op.data == nil {
		return make([]byte, m.ss)
	}
	i := s - op.first
	return op.data[i*m.ss : (i+1)*m.ss]
}

// durable returns how many leading ops the syncs up to point made durable.
func (m *crashModel) durable(point int) int {
	d := 0
	for i, op := range m.ops[:point] {
		if op.kind == CrashSync {
			d = i // the ops recorded before this (sequential) sync
		}
	}
	return d
}

// candidates returns the contents sector s may hold after a power cut at
// point; the first one is the durable contents.
func (m *crashModel) candidates(point int, s int64) [][]byte {
	d := m.durable(point)
	out := [][]byte{m.sector(m.base, s)}
	for i, op := range m.ops[:point] {
		if op.kind == CrashSync || s < op.first || s >= op.first+op.sectors {
			continue
		}
		if i < d || op.kind == CrashFUAWrite {
			out = out[:0] // a durable write hides everything before it
		}
		out = append(out, m.value(op, s))
	}
	return out
}

// keepAll is the image with every op up to point applied.
func (m *crashModel) keepAll(point int) []byte {
	img := bytes.Clone(m.base)
	for _, op := range m.ops[:point] {
		for s := op.first; s < op.first+op.sectors; s++ {
			copy(m.sector(img, s), m.value(op, s))
		}
	}
	return img
}

// crashWorkload drives r with a seeded mix of writes, FUA writes, discards
// and syncs, and returns the model of what it did.
func crashWorkload(t *testing.T, r *CrashRecorder, base []byte, seed uint64, nops int) *crashModel {
	t.Helper()
	ss := int64(r.SectorSize())
	sectors := r.Size() / ss
	m := &crashModel{ss: ss, base: base}
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := range nops {
		first := rng.Int64N(sectors)
		n := 1 + rng.Int64N(min(8, sectors-first))
		op := crashModelOp{first: first, sectors: n}
		var err error
		switch k := rng.IntN(10); {
		case k < 6:
			op.kind, op.data = CrashWrite, blockTestPattern(seed<<20|uint64(i), int(n*ss))
			_, err = r.WriteAt(op.data, first*ss)
		case k < 7:
			op.kind, op.data = CrashFUAWrite, blockTestPattern(seed<<20|uint64(i), int(n*ss))
			_, err = r.WriteAtFUA(op.data, first*ss)
		case k < 8:
			op.kind = CrashDiscard
			err = r.Discard(first*ss, n*ss)
		default:
			op = crashModelOp{kind: CrashSync}
			err = r.Sync()
		}
		require.NoError(t, err)
		m.ops = append(m.ops, op)
	}
	require.Equal(t, len(m.ops), r.Ops())
	return m
}

func TestCrashRecorderImages(t *testing.T) {
	cases := []struct {
		name       string
		sectorSize int
		sectors    int64
		plain      bool // hide the inner Block's type and optional interfaces but discard
		workload   uint64
	}{
		{"512B sectors", 512, 64, false, 1},
		{"4KiB sectors", 4096, 32, false, 2},
		{"inner read through ReadAt", 512, 48, true, 3},
		{"crosses chunks", 512, 2*blockChunkSize/512 + 16, false, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := blockTestPattern(tc.workload+1000, int(tc.sectors)*tc.sectorSize)
			clear(base[:len(base)/3]) // partly zero, partly data
			inner, err := NewBlockFromImage(base, BlockOptions{SectorSize: tc.sectorSize})
			require.NoError(t, err)
			var dev hal.BlockDevice = inner
			if tc.plain {
				dev = blockDiscardOnly{inner}
			}
			r, err := NewCrashRecorder(dev)
			require.NoError(t, err)
			m := crashWorkload(t, r, base, tc.workload, 80)

			assert.Equal(t, inner.Image(), crashMust(r.KeepAll(r.Ops())), "KeepAll at the end is the device's contents")
			for p := 0; p <= r.Ops(); p++ {
				d, err := r.Durable(p)
				require.NoError(t, err)
				require.Equal(t, m.durable(p), d, "point %d", p)
				require.Equal(t, m.keepAll(p), crashMust(r.KeepAll(p)), "KeepAll(%d)", p)

				var wantRisk []int
				for i, op := range m.ops[:p] {
					if op.kind != CrashSync && op.kind != CrashFUAWrite && i >= m.durable(p) {
						wantRisk = append(wantRisk, i+1)
					}
				}
				require.Equal(t, wantRisk, crashMust(r.AtRisk(p)), "AtRisk(%d)", p)

				drop := crashMust(r.DropUnsynced(p))
				for s := range tc.sectors {
					require.Equal(t, m.candidates(p, s)[0], m.sector(drop, s), "DropUnsynced(%d) sector %d", p, s)
				}
				for seed := range uint64(6) {
					img := crashMust(r.CrashImage(p, seed))
					for s := range tc.sectors {
						require.True(t, crashOneOf(m.sector(img, s), m.candidates(p, s)),
							"CrashImage(%d, %d) sector %d holds contents never written there", p, seed, s)
					}
					require.Equal(t, img, crashMust(r.CrashImage(p, seed)), "same seed, same image")
				}
			}
		})
	}
}

// blockDiscardOnly hides the device's type and all optional interfaces but
// hal.Discarder, so the recorder reads the base image through ReadAt.
type blockDiscardOnly struct{ d *Block }

func (d blockDiscardOnly) ReadAt(p []byte, off int64) (int, error)  { return d.d.ReadAt(p, off) }
func (d blockDiscardOnly) WriteAt(p []byte, off int64) (int, error) { return d.d.WriteAt(p, off) }
func (d blockDiscardOnly) SectorSize() int                          { return d.d.SectorSize() }
func (d blockDiscardOnly) Size() int64                              { return d.d.Size() }
func (d blockDiscardOnly) Sync() error                              { return d.d.Sync() }
func (d blockDiscardOnly) Close() error                             { return d.d.Close() }
func (d blockDiscardOnly) Discard(off, n int64) error               { return d.d.Discard(off, n) }

func crashOneOf(got []byte, cands [][]byte) bool {
	for _, c := range cands {
		if bytes.Equal(got, c) {
			return true
		}
	}
	return false
}

func crashMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestCrashRecorderSyncedWritesSurvive(t *testing.T) {
	inner := newTestBlock(t, 64)
	r, err := NewCrashRecorder(inner)
	require.NoError(t, err)
	a := blockTestPattern(1, 4*512)
	_, err = r.WriteAt(a, 8*512)
	require.NoError(t, err)
	require.NoError(t, r.Sync())
	synced := r.Ops()
	for i := range 20 {
		_, err = r.WriteAt(blockTestPattern(uint64(i+2), 2*512), int64(20+2*(i%10))*512)
		require.NoError(t, err)
		if i%7 == 6 {
			require.NoError(t, r.Sync())
		}
	}
	for p := synced; p <= r.Ops(); p++ {
		for seed := range uint64(16) {
			img := crashMust(r.CrashImage(p, seed))
			require.Equal(t, a, img[8*512:12*512], "point %d seed %d", p, seed)
		}
	}
	// Before the sync completed the write may be lost.
	lost := false
	for seed := range uint64(32) {
		lost = lost || bytes.Equal(crashMust(r.CrashImage(1, seed))[8*512:12*512], make([]byte, 4*512))
	}
	assert.True(t, lost, "an unsynced write is lost for some seed")
}

func TestCrashRecorderFates(t *testing.T) {
	// One synced write, then a single unsynced 8-sector write over it: every
	// sector is old or new, and across seeds the write is kept, lost and torn.
	inner := newTestBlock(t, 16)
	r, err := NewCrashRecorder(inner)
	require.NoError(t, err)
	old := blockTestPattern(1, 8*512)
	_, err = r.WriteAt(old, 0)
	require.NoError(t, err)
	require.NoError(t, r.Sync())
	neu := blockTestPattern(2, 8*512)
	_, err = r.WriteAt(neu, 0)
	require.NoError(t, err)

	fates := map[string]int{}
	images := map[string]bool{}
	for seed := range uint64(64) {
		img := crashMust(r.CrashImage(r.Ops(), seed))
		images[string(img)] = true
		nNew := 0
		for s := range 8 {
			sec := img[s*512 : (s+1)*512]
			switch {
			case bytes.Equal(sec, neu[s*512:(s+1)*512]):
				nNew++
			case bytes.Equal(sec, old[s*512:(s+1)*512]):
			default:
				t.Fatalf("seed %d: sector %d is neither old nor new", seed, s)
			}
		}
		require.Equal(t, make([]byte, 8*512), img[8*512:], "untouched sectors stay zero")
		switch nNew {
		case 8:
			fates["kept"]++
		case 0:
			fates["lost"]++
		default:
			fates["torn"]++
		}
	}
	assert.Positive(t, fates["kept"], "%v", fates)
	assert.Positive(t, fates["lost"], "%v", fates)
	assert.Positive(t, fates["torn"], "%v", fates)
	assert.Greater(t, len(images), 3, "seeds give different images")
	assert.Equal(t, old, crashMust(r.DropUnsynced(r.Ops()))[:8*512])
	assert.Equal(t, neu, crashMust(r.KeepAll(r.Ops()))[:8*512])
}

func TestCrashRecorderFUAIsDurable(t *testing.T) {
	r, err := NewCrashRecorder(newTestBlock(t, 16))
	require.NoError(t, err)
	data := blockTestPattern(5, 1024)
	_, err = r.WriteAt(blockTestPattern(6, 1024), 0)
	require.NoError(t, err)
	_, err = r.WriteAtFUA(data, 1024)
	require.NoError(t, err)
	for seed := range uint64(16) {
		img := crashMust(r.CrashImage(r.Ops(), seed))
		require.Equal(t, data, img[1024:2048])
	}
	op, err := r.Op(2)
	require.NoError(t, err)
	assert.Equal(t, CrashOp{Kind: CrashFUAWrite, Off: 1024, Len: 1024}, op)
	assert.Zero(t, crashMust(r.Durable(2)), "FUA does not make other writes durable")
}

func TestCrashRecorderFailedWrites(t *testing.T) {
	inner := newTestBlock(t, 16)
	f := NewFaultyBlock(inner, BlockFaults{})
	r, err := NewCrashRecorder(f)
	require.NoError(t, err)
	f.FailSector(6)
	data := blockTestPattern(1, 4*512)
	n, err := r.WriteAt(data, 4*512)
	require.ErrorIs(t, err, ErrInjected)
	require.Equal(t, 2*512, n)
	require.Equal(t, 1, r.Ops(), "the written prefix is recorded")
	assert.Equal(t, CrashOp{Kind: CrashWrite, Off: 4 * 512, Len: 2 * 512}, crashMust(r.Op(1)))
	assert.Equal(t, inner.Image(), crashMust(r.KeepAll(1)))

	_, err = r.WriteAt(data, 6*512) // fails at its first sector
	require.ErrorIs(t, err, ErrInjected)
	f.FailAll()
	require.ErrorIs(t, r.Sync(), ErrInjected)
	assert.Equal(t, 1, r.Ops(), "nothing written and failed syncs are not recorded")
	_, err = r.WriteAt(data, 1) // rejected
	require.ErrorIs(t, err, hal.ErrMisaligned)
	assert.Equal(t, 1, r.Ops())
}

func TestCrashRecorderErrors(t *testing.T) {
	r, err := NewCrashRecorder(newTestBlock(t, 8))
	require.NoError(t, err)
	_, err = r.WriteAt(make([]byte, 512), 0)
	require.NoError(t, err)
	cases := []struct {
		name string
		do   func() error
	}{
		{"CrashImage negative", func() error { _, err := r.CrashImage(-1, 0); return err }},
		{"CrashImage past the end", func() error { _, err := r.CrashImage(2, 0); return err }},
		{"KeepAll past the end", func() error { _, err := r.KeepAll(2); return err }},
		{"DropUnsynced negative", func() error { _, err := r.DropUnsynced(-1); return err }},
		{"CrashDevice past the end", func() error { _, err := r.CrashDevice(5, 0); return err }},
		{"Op zero", func() error { _, err := r.Op(0); return err }},
		{"Op past the end", func() error { _, err := r.Op(2); return err }},
		{"Durable past the end", func() error { _, err := r.Durable(2); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.do(), hal.ErrOutOfRange)
		})
	}

	t.Run("no discard on the inner device", func(t *testing.T) {
		r, err := NewCrashRecorder(blockOnly{newTestBlock(t, 8)})
		require.NoError(t, err)
		require.ErrorIs(t, r.Discard(0, 512), errors.ErrUnsupported)
		assert.Zero(t, r.Ops())
	})
	t.Run("unreadable inner device", func(t *testing.T) {
		_, err := NewCrashRecorder(NewFaultyBlock(newTestBlock(t, 8), BlockFaults{BadSectors: []int64{3}}))
		require.ErrorIs(t, err, ErrInjected)
		closed := newTestBlock(t, 8)
		require.NoError(t, closed.Close())
		_, err = NewCrashRecorder(closed)
		require.ErrorIs(t, err, hal.ErrClosed)
	})
	t.Run("read-only inner device", func(t *testing.T) {
		ro, err := NewBlock(4096, BlockOptions{ReadOnly: true})
		require.NoError(t, err)
		r, err := NewCrashRecorder(ro)
		require.NoError(t, err)
		assert.True(t, r.ReadOnly())
		_, err = r.WriteAt(make([]byte, 512), 0)
		require.ErrorIs(t, err, hal.ErrReadOnly)
		assert.Zero(t, r.Ops())
	})
}

func TestCrashRecorderAfterClose(t *testing.T) {
	inner := newTestBlock(t, 8)
	r, err := NewCrashRecorder(inner)
	require.NoError(t, err)
	data := blockTestPattern(3, 512)
	_, err = r.WriteAt(data, 512)
	require.NoError(t, err)
	require.NoError(t, r.Sync())
	require.NoError(t, r.Close())
	assert.ErrorIs(t, inner.Sync(), hal.ErrClosed, "Close closes the inner device")
	_, err = r.WriteAt(data, 0)
	require.ErrorIs(t, err, hal.ErrClosed)
	require.ErrorIs(t, r.Discard(0, 512), hal.ErrClosed)

	dev, err := r.CrashDevice(r.Ops(), 7)
	require.NoError(t, err)
	assert.Equal(t, 512, dev.SectorSize())
	assert.Equal(t, crashMust(r.CrashImage(r.Ops(), 7)), dev.Image())
	got := make([]byte, 512)
	_, err = dev.ReadAt(got, 512)
	require.NoError(t, err)
	assert.Equal(t, data, got, "synced data is on the crash device")
	_, err = dev.WriteAt(make([]byte, 512), 0)
	assert.NoError(t, err, "a crash device is writable")
}

// TestCrashRecorderConcurrent runs writers and syncs in parallel, each
// writer on its own sectors, and checks the log against the device.
func TestCrashRecorderConcurrent(t *testing.T) {
	inner := newTestBlock(t, 256)
	r, err := NewCrashRecorder(inner)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				sec := int64(w*64 + i%64)
				if _, err := r.WriteAt(blockTestPattern(uint64(w*1000+i), 512), sec*512); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 9 {
					if err := r.Sync(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, inner.Image(), crashMust(r.KeepAll(r.Ops())))
	prev := 0
	for i := 1; i <= r.Ops(); i++ {
		op := crashMust(r.Op(i))
		if op.Kind == CrashSync {
			require.GreaterOrEqual(t, op.Covers, prev, "Covers never shrinks")
			require.Less(t, op.Covers, i, "a sync covers only earlier operations")
			prev = op.Covers
		}
	}
	require.Equal(t, 4*50+4*5, r.Ops())
}

func ExampleCrashRecorder() {
	disk, _ := NewBlock(64*512, BlockOptions{})
	rec, _ := NewCrashRecorder(disk)
	rec.WriteAt(bytes.Repeat([]byte{'A'}, 512), 0)
	rec.Sync()
	rec.WriteAt(bytes.Repeat([]byte{'B'}, 512), 0)
	for p := 0; p <= rec.Ops(); p++ {
		keep, _ := rec.KeepAll(p)
		drop, _ := rec.DropUnsynced(p)
		fmt.Printf("point %d: keep %q drop %q\n", p, keep[0], drop[0])
	}
	// Output:
	// point 0: keep '\x00' drop '\x00'
	// point 1: keep 'A' drop '\x00'
	// point 2: keep 'A' drop 'A'
	// point 3: keep 'B' drop 'A'
}

// blockSyncHook runs a function inside Sync, before syncing the device.
type blockSyncHook struct {
	*Block
	during func()
}

func (s blockSyncHook) Sync() error {
	if s.during != nil {
		s.during()
	}
	return s.Block.Sync()
}

func TestCrashRecorderSyncCoversOnlyEarlierWrites(t *testing.T) {
	inner := &blockSyncHook{Block: newTestBlock(t, 8)}
	r, err := NewCrashRecorder(inner)
	require.NoError(t, err)
	before, during := blockTestPattern(1, 512), blockTestPattern(2, 512)
	_, err = r.WriteAt(before, 0)
	require.NoError(t, err)
	inner.during = func() {
		// Completes while the Sync is in progress: not covered by it.
		_, err := r.WriteAt(during, 512)
		assert.NoError(t, err)
	}
	require.NoError(t, r.Sync())
	require.Equal(t, 3, r.Ops())
	assert.Equal(t, CrashOp{Kind: CrashSync, Covers: 1}, crashMust(r.Op(3)))
	assert.Equal(t, 1, crashMust(r.Durable(3)))
	drop := crashMust(r.DropUnsynced(3))
	assert.Equal(t, before, drop[:512])
	assert.Equal(t, make([]byte, 512), drop[512:1024], "the write made during the Sync is not durable")
}

func TestCrashRecorderExhaustive(t *testing.T) {
	// Three unsynced single-sector writes after a synced one: enumerating
	// every subset with CrashImageFunc gives exactly the images the seeded
	// CrashImage can produce.
	r, err := NewCrashRecorder(newTestBlock(t, 4))
	require.NoError(t, err)
	secs := make([][]byte, 5)
	for i := range secs {
		secs[i] = blockTestPattern(uint64(i+10), 512)
	}
	write := func(i int, sector int64) {
		_, err := r.WriteAt(secs[i], sector*512)
		require.NoError(t, err)
	}
	write(0, 0)
	require.NoError(t, r.Sync())
	write(1, 0) // op 3
	write(2, 1) // op 4
	write(3, 0) // op 5
	risk := crashMust(r.AtRisk(r.Ops()))
	require.Equal(t, []int{3, 4, 5}, risk)

	all := map[string]bool{}
	for mask := range 1 << len(risk) {
		kept := func(op int) bool {
			for j, o := range risk {
				if o == op {
					return mask&(1<<j) != 0
				}
			}
			t.Fatalf("keep asked about operation %d, not at risk", op)
			return false
		}
		img := crashMust(r.CrashImageFunc(r.Ops(), func(op int, s int64) bool {
			require.Zero(t, s, "single-sector writes")
			return kept(op)
		}))
		want := make([]byte, 4*512)
		copy(want, secs[0])
		for j, v := range []struct {
			data   []byte
			sector int
		}{{secs[1], 0}, {secs[2], 1}, {secs[3], 0}} {
			if mask&(1<<j) != 0 {
				copy(want[v.sector*512:], v.data)
			}
		}
		require.Equal(t, want, img, "mask %03b", mask)
		all[string(img)] = true
	}
	assert.Len(t, all, 6, "sector 0 has three outcomes, sector 1 two")
	for seed := range uint64(64) {
		assert.True(t, all[string(crashMust(r.CrashImage(r.Ops(), seed)))], "seed %d gives an image outside the enumeration", seed)
	}
	_, err = r.CrashImageFunc(r.Ops()+1, nil)
	require.ErrorIs(t, err, hal.ErrOutOfRange)
}
