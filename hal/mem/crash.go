package mem

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/anykernel/anykernel/hal"
)

// CrashOpKind is the kind of an operation recorded by a [CrashRecorder].
type CrashOpKind uint8

// Kinds of recorded operations.
const (
	CrashWrite    CrashOpKind = iota + 1 // WriteAt
	CrashFUAWrite                        // WriteAtFUA: durable when recorded
	CrashDiscard                         // Discard: modelled as a write of zeros
	CrashSync                            // a Sync that succeeded
)

func (k CrashOpKind) String() string {
	switch k {
	case CrashWrite:
		return "write"
	case CrashFUAWrite:
		return "fua write"
	case CrashDiscard:
		return "discard"
	case CrashSync:
		return "sync"
	}
	return fmt.Sprintf("CrashOpKind(%d)", uint8(k))
}

// CrashOp describes one recorded operation.
type CrashOp struct {
	Kind CrashOpKind
	// Off and Len give the byte range written or discarded (zero for a sync).
	Off, Len int64
	// Covers, for a sync, is the number of operations it made durable: the
	// first Covers operations of the log are durable once it is recorded.
	Covers int
}

// crashOp is a log entry. data is nil for discards and syncs.
type crashOp struct {
	CrashOp
	data []byte
}

// Slab allocation of recorded write data: small writes share 4 MiB slabs,
// larger ones get their own buffer.
const (
	crashSlabSize  = 4 << 20
	crashSlabLimit = crashSlabSize / 4
)

// CrashRecorder wraps a hal.BlockDevice, passing every call through to it,
// and records an ordered log of the writes and syncs it sees so that it can
// produce the image the device could hold after a power cut at any point of
// that log. It models a device with a volatile write cache, which is what
// the hal.BlockDevice durability contract allows.
//
// # The log
//
// The base image is the inner device's contents when NewCrashRecorder is
// called (read then, kept sparsely: all-zero 64 KiB chunks cost nothing).
// The recorder must then be the only writer of the inner device.
//
// The log holds, in the order they complete, these operations (numbered 1
// to Ops()):
//   - CrashWrite: a WriteAt, with a copy of the sectors written. A WriteAt
//     that fails records the whole sectors of the count it returned (the
//     part the device reported written), or nothing if that is zero.
//   - CrashFUAWrite: a WriteAtFUA, recorded the same way; it is durable the
//     moment it is recorded. When the inner device has no FUA writes the
//     recorder issues WriteAt then Sync on it, but still logs only the FUA
//     write: the FUA contract does not make earlier writes durable, so
//     crash images do not assume it either.
//   - CrashDiscard: a Discard, modelled as a write of zeros (which the
//     hal.Discarder contract allows: a discarded range reads old or zero).
//   - CrashSync: a Sync that returned nil. It covers every operation
//     recorded before Sync was called (not those recorded while it ran). A
//     Sync that fails is not recorded: it guarantees nothing. Neither is a
//     Discard that fails.
//
// Reads and calls rejected before reaching the device are not recorded.
// Concurrent writes to the same sector are recorded in completion order,
// which need not be the order the inner device applied them in.
//
// # Crash images
//
// A power cut "at point p" (0 ≤ p ≤ Ops()) happens just after operation p
// completed and before operation p+1 did; p = 0 is the base image. Let D be
// the largest Covers of the syncs among operations 1..p (0 if none).
// Operations 1..D and every FUA write among 1..p are durable. Every other
// write or discard among D+1..p is, independently, kept whole, lost, or torn:
// each of its sectors independently new or old. The surviving operations
// are applied to the base image in log order, so every sector of a crash
// image holds the base contents or the contents of some recorded operation
// on it, and a later durable write always wins over an earlier one.
//
// In [CrashRecorder.CrashImage] the fate of operation i and of each of its
// sectors is a pure function of (seed, i): it does not depend on p, and the
// same seed always gives the same image. [CrashRecorder.KeepAll] applies
// everything up to p (the state a clean shutdown at p would leave);
// [CrashRecorder.DropUnsynced] applies only the durable operations.
// For exhaustive tests, [CrashRecorder.AtRisk] lists the operations whose
// fate is open at p and [CrashRecorder.CrashImageFunc] builds the image for
// any choice of surviving sectors; [CrashRecorder.CrashDevice] wraps an
// image in a RAM disk ready to mount.
//
// Memory: the recorder keeps a copy of every byte written, plus the
// non-zero part of the base image.
//
// CrashRecorder implements hal.Discarder (returning an error wrapping
// errors.ErrUnsupported when the inner device cannot discard),
// hal.FUAWriter and hal.ReadOnlyDevice. All its methods are safe for
// concurrent use. Close closes the inner device; the log and crash images
// remain available afterwards.
type CrashRecorder struct {
	inner     hal.BlockDevice
	ss        int64
	size      int64
	chunkSize int64
	base      [][]byte // base image in chunks of chunkSize; nil = zeros
	closed    atomic.Bool

	mu         sync.Mutex
	ops        []crashOp // append-only; entries never change once appended
	lastCovers int
	slab       []byte
}

var (
	_ hal.Discarder      = (*CrashRecorder)(nil)
	_ hal.FUAWriter      = (*CrashRecorder)(nil)
	_ hal.ReadOnlyDevice = (*CrashRecorder)(nil)
)

// NewCrashRecorder reads the contents of inner as the base image and
// returns a recorder wrapping it. It fails if inner cannot be read.
func NewCrashRecorder(inner hal.BlockDevice) (*CrashRecorder, error) {
	ss := int64(inner.SectorSize())
	size := inner.Size()
	if ss < 512 || ss&(ss-1) != 0 || size < 0 || size%ss != 0 {
		return nil, fmt.Errorf("mem crash recorder: inner device has sector size %d and size %d, breaking the hal.BlockDevice contract", ss, size)
	}
	r := &CrashRecorder{
		inner:     inner,
		ss:        ss,
		size:      size,
		chunkSize: max(blockChunkSize, ss),
	}
	nchunks := (size + r.chunkSize - 1) / r.chunkSize
	r.base = make([][]byte, nchunks)
	if b, ok := inner.(*Block); ok && b.chunkSize == r.chunkSize {
		if b.closed.Load() {
			return nil, fmt.Errorf("mem crash recorder: read base image: %w", hal.ErrClosed)
		}
		for ci := range nchunks {
			r.base[ci] = b.chunkCopy(ci)
		}
		return r, nil
	}
	buf := make([]byte, r.chunkSize)
	for ci := range nchunks {
		off := ci * r.chunkSize
		p := buf[:min(r.chunkSize, size-off)]
		if _, err := inner.ReadAt(p, off); err != nil {
			return nil, fmt.Errorf("mem crash recorder: read base image at %d: %w", off, err)
		}
		if !blockAllZero(p) {
			r.base[ci] = append([]byte(nil), p...)
		}
	}
	return r, nil
}

// SectorSize implements hal.BlockDevice.
func (r *CrashRecorder) SectorSize() int { return int(r.ss) }

// Size implements hal.BlockDevice.
func (r *CrashRecorder) Size() int64 { return r.size }

// ReadOnly implements hal.ReadOnlyDevice.
func (r *CrashRecorder) ReadOnly() bool { return hal.IsReadOnly(r.inner) }

func (r *CrashRecorder) errClosed(op string) error {
	return fmt.Errorf("mem crash recorder: %s: %w", op, hal.ErrClosed)
}

// ReadAt implements hal.BlockDevice.
func (r *CrashRecorder) ReadAt(p []byte, off int64) (int, error) {
	if r.closed.Load() {
		return 0, r.errClosed("read")
	}
	return r.inner.ReadAt(p, off)
}

// WriteAt implements hal.BlockDevice.
func (r *CrashRecorder) WriteAt(p []byte, off int64) (int, error) {
	return r.write(CrashWrite, p, off, r.inner.WriteAt)
}

// WriteAtFUA implements hal.FUAWriter.
func (r *CrashRecorder) WriteAtFUA(p []byte, off int64) (int, error) {
	if fw, ok := r.inner.(hal.FUAWriter); ok {
		return r.write(CrashFUAWrite, p, off, fw.WriteAtFUA)
	}
	return r.write(CrashFUAWrite, p, off, func(p []byte, off int64) (int, error) {
		n, err := r.inner.WriteAt(p, off)
		if err != nil {
			return n, err
		}
		if err := r.inner.Sync(); err != nil {
			return 0, err
		}
		return n, nil
	})
}

func (r *CrashRecorder) write(kind CrashOpKind, p []byte, off int64, w func([]byte, int64) (int, error)) (int, error) {
	if r.closed.Load() {
		return 0, r.errClosed(kind.String())
	}
	if err := hal.CheckRange(r, kind.String(), off, int64(len(p))); err != nil {
		return 0, fmt.Errorf("mem crash recorder: %w", err)
	}
	if len(p) == 0 {
		return w(p, off)
	}
	data := r.alloc(len(p))
	copy(data, p)
	n, err := w(p, off)
	if k := int64(min(max(n, 0), len(p))) / r.ss * r.ss; k > 0 {
		r.record(crashOp{CrashOp: CrashOp{Kind: kind, Off: off, Len: k}, data: data[:k]})
	}
	return n, err
}

// Discard implements hal.Discarder.
func (r *CrashRecorder) Discard(off, length int64) error {
	if r.closed.Load() {
		return r.errClosed("discard")
	}
	d, ok := r.inner.(hal.Discarder)
	if !ok {
		return fmt.Errorf("mem crash recorder: discard: %w", blockErrNoDiscard)
	}
	if err := d.Discard(off, length); err != nil {
		return err
	}
	if length > 0 {
		r.record(crashOp{CrashOp: CrashOp{Kind: CrashDiscard, Off: off, Len: length}})
	}
	return nil
}

// Sync implements hal.BlockDevice.
func (r *CrashRecorder) Sync() error {
	if r.closed.Load() {
		return r.errClosed("sync")
	}
	r.mu.Lock()
	covers := len(r.ops)
	r.mu.Unlock()
	if err := r.inner.Sync(); err != nil {
		return err
	}
	r.mu.Lock()
	r.lastCovers = max(r.lastCovers, covers)
	r.ops = append(r.ops, crashOp{CrashOp: CrashOp{Kind: CrashSync, Covers: r.lastCovers}})
	r.mu.Unlock()
	return nil
}

// Close implements hal.BlockDevice; it closes the inner device. The log
// stays available.
func (r *CrashRecorder) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	return r.inner.Close()
}

func (r *CrashRecorder) alloc(n int) []byte {
	if n >= crashSlabLimit {
		return make([]byte, n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cap(r.slab)-len(r.slab) < n {
		r.slab = make([]byte, 0, crashSlabSize)
	}
	l := len(r.slab)
	r.slab = r.slab[:l+n]
	return r.slab[l : l+n : l+n]
}

func (r *CrashRecorder) record(op crashOp) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Ops returns the number of operations recorded so far.
func (r *CrashRecorder) Ops() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Op describes operation i, numbered from 1 to Ops().
func (r *CrashRecorder) Op(i int) (CrashOp, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i < 1 || i > len(r.ops) {
		return CrashOp{}, fmt.Errorf("mem crash recorder: operation %d outside [1, %d]: %w", i, len(r.ops), hal.ErrOutOfRange)
	}
	return r.ops[i-1].CrashOp, nil
}

// Durable returns D for a power cut at point: the number of leading
// operations that a sync at or before point made durable (FUA writes after
// D are durable too).
func (r *CrashRecorder) Durable(point int) (int, error) {
	ops, err := r.prefix(point)
	if err != nil {
		return 0, err
	}
	return crashDurable(ops), nil
}

// CrashImage returns the device image after a power cut just after
// operation point, with the fate of each unsynced write drawn from seed
// (see the type's documentation).
func (r *CrashRecorder) CrashImage(point int, seed uint64) ([]byte, error) {
	return r.image(point, crashRandom, seed, nil)
}

// KeepAll returns the image with every operation up to point applied.
func (r *CrashRecorder) KeepAll(point int) ([]byte, error) {
	return r.image(point, crashKeepAll, 0, nil)
}

// DropUnsynced returns the image holding only what was durable at point:
// operations covered by a sync, and FUA writes.
func (r *CrashRecorder) DropUnsynced(point int) ([]byte, error) {
	return r.image(point, crashDropUnsynced, 0, nil)
}

// CrashDevice returns a writable RAM disk holding CrashImage(point, seed),
// with the inner device's sector size: the device a file system would find
// on the next boot.
func (r *CrashRecorder) CrashDevice(point int, seed uint64) (*Block, error) {
	img, err := r.image(point, crashRandom, seed, nil)
	if err != nil {
		return nil, err
	}
	if len(img) == 0 {
		return nil, fmt.Errorf("mem crash recorder: cannot make a device of size 0")
	}
	return newBlockOwning(img, int(r.ss)), nil
}

type crashMode int

const (
	crashRandom crashMode = iota
	crashKeepAll
	crashDropUnsynced
	crashChosen
)

func (r *CrashRecorder) prefix(point int) ([]crashOp, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if point < 0 || point > len(r.ops) {
		return nil, fmt.Errorf("mem crash recorder: crash point %d outside [0, %d]: %w", point, len(r.ops), hal.ErrOutOfRange)
	}
	// Entries below len(r.ops) are never modified, so the prefix can be
	// read after the lock is released even if the log grows.
	return r.ops[:point:point], nil
}

func crashDurable(ops []crashOp) int {
	for i := len(ops) - 1; i >= 0; i-- {
		if ops[i].Kind == CrashSync {
			return ops[i].Covers
		}
	}
	return 0
}

// crashAtRisk reports whether ops[i] may be lost in a power cut after ops.
func crashAtRisk(ops []crashOp, i, durable int) bool {
	return ops[i].Kind != CrashSync && ops[i].Kind != CrashFUAWrite && i >= durable
}

// AtRisk returns the numbers of the operations whose fate a power cut at
// point decides: the writes and discards among 1..point that are neither
// covered by a sync nor FUA writes, in log order.
func (r *CrashRecorder) AtRisk(point int) ([]int, error) {
	ops, err := r.prefix(point)
	if err != nil {
		return nil, err
	}
	var out []int
	durable := crashDurable(ops)
	for i := durable; i < len(ops); i++ {
		if crashAtRisk(ops, i, durable) {
			out = append(out, i+1)
		}
	}
	return out, nil
}

// CrashImageFunc returns the image after a power cut just after operation
// point, with the fates chosen by the caller: for every operation op
// listed by AtRisk(point) and every sector index s in [0, Len/SectorSize)
// of it, keep(op, s) reports whether that sector of the operation reached
// the medium. Durable operations are always applied. This is the building
// block of exhaustive tests: enumerate subsets of AtRisk(point).
func (r *CrashRecorder) CrashImageFunc(point int, keep func(op int, sector int64) bool) ([]byte, error) {
	return r.image(point, crashChosen, 0, keep)
}

func (r *CrashRecorder) image(point int, mode crashMode, seed uint64, keep func(int, int64) bool) ([]byte, error) {
	ops, err := r.prefix(point)
	if err != nil {
		return nil, err
	}
	img := make([]byte, r.size)
	for ci, c := range r.base {
		if c != nil {
			copy(img[int64(ci)*r.chunkSize:], c)
		}
	}
	durable := crashDurable(ops)
	for i := range ops {
		op := &ops[i]
		if op.Kind == CrashSync {
			continue
		}
		if mode == crashKeepAll || !crashAtRisk(ops, i, durable) {
			r.apply(img, op, nil)
			continue
		}
		switch mode {
		case crashDropUnsynced:
		case crashChosen:
			r.apply(img, op, func(s int64) bool { return keep(i+1, s) })
		case crashRandom:
			h := crashMix(seed ^ crashMix(uint64(i)+1))
			switch h % 3 {
			case 0: // kept whole
				r.apply(img, op, nil)
			case 1: // lost
			case 2: // torn: each sector by its own hash bit
				r.apply(img, op, func(s int64) bool {
					return crashMix(h+uint64(s+1)*0x9e3779b97f4a7c15)&1 == 1
				})
			}
		}
	}
	return img, nil
}

// apply writes op into img: every sector if sel is nil, else the sectors
// (indexed from 0 within op) for which sel is true.
func (r *CrashRecorder) apply(img []byte, op *crashOp, sel func(s int64) bool) {
	dst := img[op.Off : op.Off+op.Len]
	if sel == nil {
		if op.data == nil {
			clear(dst)
		} else {
			copy(dst, op.data)
		}
		return
	}
	for s := range op.Len / r.ss {
		if !sel(s) {
			continue
		}
		sec := dst[s*r.ss : (s+1)*r.ss]
		if op.data == nil {
			clear(sec)
		} else {
			copy(sec, op.data[s*r.ss:])
		}
	}
}

// crashMix is the splitmix64 finaliser: a fast, well-spread hash of x.
func crashMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
