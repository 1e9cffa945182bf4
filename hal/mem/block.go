package mem

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/anykernel/anykernel/hal"
)

// Block geometry. Storage is kept in chunks of blockChunkSize bytes (or one
// sector, if sectors are larger), allocated on first write, so a large
// mostly-empty disk costs only what has been written. Each chunk is guarded
// by one of blockStripes locks, chosen by chunk number: I/O on different
// chunks proceeds in parallel, and a sector never spans two chunks, which
// makes every sector write atomic with respect to other I/O.
const (
	blockChunkSize = 64 << 10
	blockStripes   = 64
)

// BlockOptions configures a RAM disk. The zero value is a writable disk with
// 512-byte sectors.
type BlockOptions struct {
	// SectorSize is the transfer unit in bytes: a power of two, at least
	// 512. Zero means 512.
	SectorSize int
	// ReadOnly makes WriteAt, WriteAtFUA and Discard fail with an error
	// wrapping hal.ErrReadOnly.
	ReadOnly bool
}

// BlockStats counts the operations a Block has served. Failed calls (bad
// range, closed, read-only) are not counted.
type BlockStats struct {
	Reads, Writes, Syncs, Discards uint64
	BytesRead, BytesWritten        uint64
}

// paddedRWMutex keeps stripe locks on separate cache lines.
type paddedRWMutex struct {
	sync.RWMutex
	_ [40]byte
}

// Block is a RAM disk. It implements hal.BlockDevice, hal.Discarder (a
// discarded range reads as zeros), hal.FUAWriter and hal.ReadOnlyDevice.
//
// Memory is volatile only in the sense that the Block is: its contents are
// "durable" as soon as a write returns, so Sync is a no-op that only checks
// the device is open. Use a [CrashRecorder] to model a volatile write cache
// and power cuts.
//
// All methods are safe for concurrent use. Contents survive Close: Image
// still works afterwards.
type Block struct {
	size       int64
	sectorSize int
	readOnly   bool
	chunkShift uint
	chunkSize  int64

	closed atomic.Bool
	locks  [blockStripes]paddedRWMutex
	// chunks[i] is guarded by locks[i%blockStripes]; nil reads as zeros.
	chunks [][]byte

	reads, writes, syncs, discards atomic.Uint64
	bytesRead, bytesWritten        atomic.Uint64
}

var (
	_ hal.Discarder      = (*Block)(nil)
	_ hal.FUAWriter      = (*Block)(nil)
	_ hal.ReadOnlyDevice = (*Block)(nil)
)

// NewBlock returns a zero-filled RAM disk of size bytes. size must be a
// positive multiple of the sector size.
func NewBlock(size int64, opts BlockOptions) (*Block, error) {
	ss, err := blockSectorSize(opts.SectorSize)
	if err != nil {
		return nil, err
	}
	if size <= 0 || size%int64(ss) != 0 {
		return nil, fmt.Errorf("mem block: size %d is not a positive multiple of the sector size %d", size, ss)
	}
	return newBlock(size, ss, opts.ReadOnly), nil
}

// NewBlockFromImage returns a RAM disk holding a copy of img. len(img) must
// be a positive multiple of the sector size.
func NewBlockFromImage(img []byte, opts BlockOptions) (*Block, error) {
	b, err := NewBlock(int64(len(img)), opts)
	if err != nil {
		return nil, err
	}
	for i := range b.chunks {
		src := img[int64(i)*b.chunkSize : min(int64(i+1)*b.chunkSize, b.size)]
		if !blockAllZero(src) {
			b.chunks[i] = append([]byte(nil), src...)
		}
	}
	return b, nil
}

// newBlockOwning returns a writable RAM disk whose storage is img itself
// (not copied); the caller must not use img afterwards.
func newBlockOwning(img []byte, ss int) *Block {
	b := newBlock(int64(len(img)), ss, false)
	for i := range b.chunks {
		src := img[int64(i)*b.chunkSize : min(int64(i+1)*b.chunkSize, b.size)]
		if !blockAllZero(src) {
			b.chunks[i] = src[:len(src):len(src)]
		}
	}
	return b
}

func newBlock(size int64, ss int, readOnly bool) *Block {
	cs := int64(max(blockChunkSize, ss))
	shift := uint(0)
	for int64(1)<<shift < cs {
		shift++
	}
	return &Block{
		size:       size,
		sectorSize: ss,
		readOnly:   readOnly,
		chunkShift: shift,
		chunkSize:  cs,
		chunks:     make([][]byte, (size+cs-1)/cs),
	}
}

func blockSectorSize(ss int) (int, error) {
	if ss == 0 {
		return 512, nil
	}
	if ss < 512 || ss&(ss-1) != 0 {
		return 0, fmt.Errorf("mem block: sector size %d is not a power of two of at least 512", ss)
	}
	return ss, nil
}

// SectorSize implements hal.BlockDevice.
func (b *Block) SectorSize() int { return b.sectorSize }

// Size implements hal.BlockDevice.
func (b *Block) Size() int64 { return b.size }

// ReadOnly implements hal.ReadOnlyDevice.
func (b *Block) ReadOnly() bool { return b.readOnly }

func (b *Block) lock(ci int64) *paddedRWMutex { return &b.locks[ci%blockStripes] }

// chunkLen is the length of chunk ci (the last one may be short).
func (b *Block) chunkLen(ci int64) int64 {
	return min(b.chunkSize, b.size-ci*b.chunkSize)
}

func (b *Block) check(op string, off int64, n int, write bool) error {
	if b.closed.Load() {
		return fmt.Errorf("mem block: %s: %w", op, hal.ErrClosed)
	}
	if write && b.readOnly {
		return fmt.Errorf("mem block: %s: %w", op, hal.ErrReadOnly)
	}
	if err := hal.CheckRange(b, op, off, int64(n)); err != nil {
		return fmt.Errorf("mem block: %w", err)
	}
	return nil
}

// ReadAt implements hal.BlockDevice.
func (b *Block) ReadAt(p []byte, off int64) (int, error) {
	if err := b.check("read", off, len(p), false); err != nil {
		return 0, err
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		ci := pos >> b.chunkShift
		in := pos & (b.chunkSize - 1)
		n := int(min(int64(len(p)-done), b.chunkLen(ci)-in))
		l := b.lock(ci)
		l.RLock()
		if c := b.chunks[ci]; c != nil {
			copy(p[done:done+n], c[in:])
		} else {
			clear(p[done : done+n])
		}
		l.RUnlock()
		done += n
	}
	b.reads.Add(1)
	b.bytesRead.Add(uint64(len(p)))
	return len(p), nil
}

// WriteAt implements hal.BlockDevice.
func (b *Block) WriteAt(p []byte, off int64) (int, error) {
	return b.write("write", p, off)
}

// WriteAtFUA implements hal.FUAWriter. Every write to a Block is durable at
// once, so it is the same as WriteAt.
func (b *Block) WriteAtFUA(p []byte, off int64) (int, error) {
	return b.write("fua write", p, off)
}

func (b *Block) write(op string, p []byte, off int64) (int, error) {
	if err := b.check(op, off, len(p), true); err != nil {
		return 0, err
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		ci := pos >> b.chunkShift
		in := pos & (b.chunkSize - 1)
		n := int(min(int64(len(p)-done), b.chunkLen(ci)-in))
		src := p[done : done+n]
		l := b.lock(ci)
		l.Lock()
		c := b.chunks[ci]
		if c == nil && !blockAllZero(src) {
			c = make([]byte, b.chunkLen(ci))
			b.chunks[ci] = c
		}
		if c != nil {
			copy(c[in:], src)
		}
		l.Unlock()
		done += n
	}
	b.writes.Add(1)
	b.bytesWritten.Add(uint64(len(p)))
	return len(p), nil
}

// Discard implements hal.Discarder: the range reads as zeros afterwards,
// and chunks discarded entirely give their memory back.
func (b *Block) Discard(off, length int64) error {
	if b.closed.Load() {
		return fmt.Errorf("mem block: discard: %w", hal.ErrClosed)
	}
	if b.readOnly {
		return fmt.Errorf("mem block: discard: %w", hal.ErrReadOnly)
	}
	if err := hal.CheckRange(b, "discard", off, length); err != nil {
		return fmt.Errorf("mem block: %w", err)
	}
	for done := int64(0); done < length; {
		pos := off + done
		ci := pos >> b.chunkShift
		in := pos & (b.chunkSize - 1)
		n := min(length-done, b.chunkLen(ci)-in)
		l := b.lock(ci)
		l.Lock()
		if n == b.chunkLen(ci) {
			b.chunks[ci] = nil
		} else if c := b.chunks[ci]; c != nil {
			clear(c[in : in+n])
		}
		l.Unlock()
		done += n
	}
	b.discards.Add(1)
	return nil
}

// Sync implements hal.BlockDevice. A Block has no volatile cache.
func (b *Block) Sync() error {
	if b.closed.Load() {
		return fmt.Errorf("mem block: sync: %w", hal.ErrClosed)
	}
	b.syncs.Add(1)
	return nil
}

// Close implements hal.BlockDevice. The contents stay readable with Image.
func (b *Block) Close() error {
	b.closed.Store(true)
	return nil
}

// Image returns a copy of the whole contents of the disk. It works after
// Close too.
func (b *Block) Image() []byte {
	img := make([]byte, b.size)
	for ci := range int64(len(b.chunks)) {
		l := b.lock(ci)
		l.RLock()
		if c := b.chunks[ci]; c != nil {
			copy(img[ci*b.chunkSize:], c)
		}
		l.RUnlock()
	}
	return img
}

// chunkCopy returns a copy of chunk ci, or nil if it holds only zeros.
func (b *Block) chunkCopy(ci int64) []byte {
	l := b.lock(ci)
	l.RLock()
	defer l.RUnlock()
	if c := b.chunks[ci]; c != nil && !blockAllZero(c) {
		return append([]byte(nil), c...)
	}
	return nil
}

// Stats returns the operation counters.
func (b *Block) Stats() BlockStats {
	return BlockStats{
		Reads:        b.reads.Load(),
		Writes:       b.writes.Load(),
		Syncs:        b.syncs.Load(),
		Discards:     b.discards.Load(),
		BytesRead:    b.bytesRead.Load(),
		BytesWritten: b.bytesWritten.Load(),
	}
}

// blockZeros is compared against to find all-zero data.
var blockZeros [4096]byte

// blockAllZero reports whether p holds only zero bytes.
func blockAllZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(blockZeros))
		if !bytes.Equal(p[:n], blockZeros[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}
