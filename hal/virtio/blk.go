package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// BlockOptions configures a virtio-blk driver. The zero value is the
// default.
type BlockOptions struct {
	// ReadOnly opens the device read-only even if it accepts writes. A
	// device without VIRTIO_BLK_F_FLUSH can only be opened read-only.
	ReadOnly bool
	// Clock times requests; nil means the Go runtime's clock.
	Clock hal.Clock
	// Timeout bounds each request; zero means DefaultTimeout.
	Timeout time.Duration
	// QueueSize caps the queue size; zero means DefaultQueueSize.
	QueueSize int
	// MaxTransfer caps the bytes of one request; zero means 128 KiB.
	MaxTransfer int
	// Slots is how many requests may be in flight at once; zero means 16.
	Slots int
	// Poll is how many times a request checks for its completion,
	// yielding the processor in between, before it waits for an
	// interrupt; zero means it waits at once.
	Poll int
}

// Block is a virtio-blk driver (virtio 1.2 §5.2). It implements
// hal.BlockDevice, hal.Discarder (if the device offers
// VIRTIO_BLK_F_DISCARD) and hal.ReadOnlyDevice.
type Block struct {
	d          *device
	q          *queue
	size       int64
	sectorSize int
	ro         bool
	discard    bool
	maxDiscard uint32 // sectors per discard request
	segMax     int
	sizeMax    int
	chunk      int
	poll       int

	// recovery holds requests (read side) out while the queue is reset
	// (write side). A request takes its slot before the read side, so
	// that one waiting for a slot never keeps out the reset that would
	// give the lost slots back.
	recovery sync.RWMutex
	slots    chan *blkSlot
	byHead   []*blkSlot
	lostMu   sync.Mutex
	lost     []*blkSlot    // slots whose chains the device may still hold
	lostSig  chan struct{} // wakes requests waiting for a slot when one is lost
}

// blkSlot is the memory and wait state of one request in flight.
type blkSlot struct {
	meta    []byte // header (16), discard segment (16), status (1)
	metaBus uint64
	data    []byte
	dataBus uint64
	segs    []Seg
	done    chan struct{}
	w       *waiter
}

const (
	blkMetaHdr    = 0
	blkMetaSeg    = VirtioBlkReqHdrLen
	blkMetaStatus = VirtioBlkReqHdrLen + VirtioBlkDiscardSegLen
	blkMetaLen    = blkMetaStatus + 1
	blkNoStatus   = 0xff
)

// ErrIO reports a block request the device completed with
// VIRTIO_BLK_S_IOERR.
var ErrIO = fmt.Errorf("virtio-blk: device reported an I/O error: %w", hal.ErrIO)

var (
	_ hal.BlockDevice    = (*Block)(nil)
	_ hal.Discarder      = (*Block)(nil)
	_ hal.ReadOnlyDevice = (*Block)(nil)
)

// blkWanted are the features the driver accepts.
const blkWanted = 1<<VIRTIO_BLK_F_SIZE_MAX | 1<<VIRTIO_BLK_F_SEG_MAX | 1<<VIRTIO_BLK_F_RO |
	1<<VIRTIO_BLK_F_BLK_SIZE | 1<<VIRTIO_BLK_F_FLUSH | 1<<VIRTIO_BLK_F_DISCARD |
	1<<VIRTIO_F_INDIRECT_DESC | 1<<VIRTIO_F_EVENT_IDX | 1<<VIRTIO_F_RING_RESET

// NewBlock initialises the virtio-blk device behind t.
func NewBlock(t Transport, o BlockOptions) (*Block, error) {
	d := newDevice(t, "virtio-blk", o.Clock, o.Timeout)
	f, err := negotiate(t, DeviceBlock, blkWanted, 0)
	if err != nil {
		return nil, err
	}
	d.features.Store(f)
	b := &Block{d: d, ro: o.ReadOnly || f&Bit(VIRTIO_BLK_F_RO) != 0, poll: o.Poll}
	if err := b.readConfig(); err != nil {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		return nil, err
	}
	if !b.ro && !d.has(VIRTIO_BLK_F_FLUSH) {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		return nil, fmt.Errorf("virtio-blk: device offers no VIRTIO_BLK_F_FLUSH, so writes cannot be made durable; open it read-only: %w", errors.ErrUnsupported)
	}
	maxTransfer := o.MaxTransfer
	if maxTransfer <= 0 {
		maxTransfer = 128 << 10
	}
	b.chunk = min(maxTransfer, b.segMax*b.sizeMax) / b.sectorSize * b.sectorSize
	if b.chunk < b.sectorSize {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		return nil, fmt.Errorf("virtio-blk: seg_max %d × size_max %d cannot carry a %d-byte sector: %w", b.segMax, b.sizeMax, b.sectorSize, ErrDevice)
	}
	segs := (b.chunk + b.sizeMax - 1) / b.sizeMax
	qsize := o.QueueSize
	if qsize <= 0 {
		qsize = DefaultQueueSize
	}
	b.q, err = newQueue(t, f, 0, qsize, segs+2, "virtio-blk")
	if err != nil {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		return nil, err
	}
	d.queues = []*queue{b.q}
	nslots := o.Slots
	if nslots <= 0 {
		nslots = 16
	}
	if b.q.maxInd == 0 {
		nslots = min(nslots, b.q.n/(segs+2))
	}
	nslots = max(1, min(nslots, b.q.n))
	b.slots = make(chan *blkSlot, nslots)
	b.lostSig = make(chan struct{}, 1)
	b.byHead = make([]*blkSlot, b.q.n)
	metas, metaBus, err := d.allocBufs(nslots, blkMetaLen, 16)
	if err != nil {
		d.close()
		return nil, err
	}
	datas, dataBus, err := d.allocBufs(nslots, b.chunk, 4096)
	if err != nil {
		d.close()
		return nil, err
	}
	for i := range nslots {
		b.slots <- &blkSlot{segs: make([]Seg, 0, segs+2), done: make(chan struct{}, 1), w: newWaiter(d.clock),
			meta: metas[i], metaBus: metaBus[i], data: datas[i], dataBus: dataBus[i]}
	}
	if err := d.start(); err != nil {
		d.close()
		return nil, err
	}
	return b, nil
}

func (b *Block) readConfig() error {
	var capacity uint64
	var blkSize, sizeMax, segMax, maxDiscard, maxDiscardSeg uint32
	err := readConfig(b.d.t, func(c Regs) {
		capacity = uint64(c.Read32(VirtioBlkCfgCapacity)) | uint64(c.Read32(VirtioBlkCfgCapacity+4))<<32
		blkSize = c.Read32(VirtioBlkCfgBlkSize)
		sizeMax = c.Read32(VirtioBlkCfgSizeMax)
		segMax = c.Read32(VirtioBlkCfgSegMax)
		maxDiscard = c.Read32(VirtioBlkCfgMaxDiscardSectors)
		maxDiscardSeg = c.Read32(VirtioBlkCfgMaxDiscardSeg)
	})
	if err != nil {
		return err
	}
	b.sectorSize = VirtioBlkSectorSize
	if b.d.has(VIRTIO_BLK_F_BLK_SIZE) {
		if blkSize < 512 || blkSize > 64<<10 || blkSize&(blkSize-1) != 0 {
			return fmt.Errorf("virtio-blk: block size %d is not a power of two in [512, 64 KiB]: %w", blkSize, ErrDevice)
		}
		b.sectorSize = int(blkSize)
	}
	if capacity > 1<<54 {
		return fmt.Errorf("virtio-blk: capacity of %d sectors: %w", capacity, ErrDevice)
	}
	b.size = int64(capacity*VirtioBlkSectorSize) / int64(b.sectorSize) * int64(b.sectorSize)
	b.segMax = 1
	if b.d.has(VIRTIO_BLK_F_SEG_MAX) && segMax > 0 {
		b.segMax = int(min(segMax, 128))
	}
	b.sizeMax = 1 << 30
	if b.d.has(VIRTIO_BLK_F_SIZE_MAX) && sizeMax > 0 {
		b.sizeMax = int(min(sizeMax, 1<<30))
	}
	if b.d.has(VIRTIO_BLK_F_DISCARD) && maxDiscard > 0 && maxDiscardSeg > 0 {
		b.discard = true
		b.maxDiscard = maxDiscard
	}
	return nil
}

// SectorSize returns the device's logical block size.
func (b *Block) SectorSize() int { return b.sectorSize }

// Size returns the capacity read at initialisation.
func (b *Block) Size() int64 { return b.size }

// ReadOnly reports whether writes are refused.
func (b *Block) ReadOnly() bool { return b.ro }

// Features returns the negotiated feature bits.
func (b *Block) Features() uint64 { return b.d.features.Load() }

// ReadAt reads len(p) bytes at off.
func (b *Block) ReadAt(p []byte, off int64) (int, error) {
	return b.transfer(p, off, false)
}

// WriteAt writes p at off.
func (b *Block) WriteAt(p []byte, off int64) (int, error) {
	return b.transfer(p, off, true)
}

func (b *Block) transfer(p []byte, off int64, write bool) (int, error) {
	op := "read"
	if write {
		op = "write"
	}
	if b.d.isClosed() {
		return 0, fmt.Errorf("virtio-blk: %s: %w", op, hal.ErrClosed)
	}
	if err := hal.CheckRange(b, op, off, int64(len(p))); err != nil {
		return 0, fmt.Errorf("virtio-blk: %w", err)
	}
	if write && b.ro {
		return 0, fmt.Errorf("virtio-blk: write at %d: %w", off, hal.ErrReadOnly)
	}
	done := 0
	for done < len(p) {
		n := min(b.chunk, len(p)-done)
		typ := uint32(VIRTIO_BLK_T_IN)
		if write {
			typ = VIRTIO_BLK_T_OUT
		}
		sector := uint64(off+int64(done)) / VirtioBlkSectorSize
		err := b.request(typ, sector, p[done:done+n], write)
		if err != nil {
			return done, fmt.Errorf("virtio-blk: %s %d bytes at %d: %w", op, n, off+int64(done), err)
		}
		done += n
	}
	return done, nil
}

// Sync flushes the device's volatile cache.
func (b *Block) Sync() error {
	if b.d.isClosed() {
		return fmt.Errorf("virtio-blk: sync: %w", hal.ErrClosed)
	}
	if b.ro {
		return nil
	}
	if err := b.request(VIRTIO_BLK_T_FLUSH, 0, nil, false); err != nil {
		return fmt.Errorf("virtio-blk: flush: %w", err)
	}
	return nil
}

// Discard tells the device a range no longer holds data. It returns an
// error wrapping errors.ErrUnsupported if the device did not offer
// VIRTIO_BLK_F_DISCARD.
func (b *Block) Discard(off, length int64) error {
	if b.d.isClosed() {
		return fmt.Errorf("virtio-blk: discard: %w", hal.ErrClosed)
	}
	if err := hal.CheckRange(b, "discard", off, length); err != nil {
		return fmt.Errorf("virtio-blk: %w", err)
	}
	if b.ro {
		return fmt.Errorf("virtio-blk: discard at %d: %w", off, hal.ErrReadOnly)
	}
	if !b.discard {
		return fmt.Errorf("virtio-blk: discard: %w", errors.ErrUnsupported)
	}
	sector := uint64(off) / VirtioBlkSectorSize
	left := uint64(length) / VirtioBlkSectorSize
	step := uint64(b.maxDiscard) / uint64(b.sectorSize/VirtioBlkSectorSize) * uint64(b.sectorSize/VirtioBlkSectorSize)
	if step == 0 {
		step = uint64(b.sectorSize / VirtioBlkSectorSize)
	}
	for left > 0 {
		n := min(left, step)
		if err := b.request(VIRTIO_BLK_T_DISCARD, sector, nil, false, uint32(n)); err != nil {
			return fmt.Errorf("virtio-blk: discard %d sectors at sector %d: %w", n, sector, err)
		}
		sector += n
		left -= n
	}
	return nil
}

// Close resets the device and releases it. It does not flush.
func (b *Block) Close() error {
	if b.d.shutdown() {
		b.recovery.Lock() // wait for the requests in flight to give up
		b.d.release()
		b.recovery.Unlock()
	}
	return nil
}

// request runs one request to completion. For reads p receives the data;
// for writes p is sent. discardSectors, if given, makes the request carry
// one discard segment.
func (b *Block) request(typ uint32, sector uint64, p []byte, write bool, discardSectors ...uint32) error {
	s, err := b.slot()
	if err != nil {
		return err
	}
	b.recovery.RLock()
	lost, err := b.run(s, typ, sector, p, write, discardSectors...)
	b.recovery.RUnlock()
	// A request that gives up while its chain is with the device leaves
	// its slot aside until the queue is reset: the device may still write
	// into the slot's memory.
	if lost {
		b.lostMu.Lock()
		b.lost = append(b.lost, s)
		b.lostMu.Unlock()
		select {
		case b.lostSig <- struct{}{}:
		default:
		}
		return err
	}
	b.slots <- s
	return err
}

// slot takes a free request slot, mending a broken queue first. It waits
// holding no lock: slots lost to a broken queue come back only when the
// queue is reset, so a request waiting for one resets the queue itself
// when a slot is lost.
func (b *Block) slot() (*blkSlot, error) {
	for {
		if err := b.recoverIfBroken(); err != nil {
			return nil, err
		}
		select {
		case s := <-b.slots:
			select {
			case <-s.done: // left by a completion after its request gave up
			default:
			}
			return s, nil
		case <-b.lostSig:
		case <-b.d.closed:
			return nil, hal.ErrClosed
		}
	}
}

// run runs one request in slot s; the caller holds b.recovery's read
// side. lost reports that the request gave up while the device may still
// hold its chain.
func (b *Block) run(s *blkSlot, typ uint32, sector uint64, p []byte, write bool, discardSectors ...uint32) (lost bool, err error) {
	binary.LittleEndian.PutUint32(s.meta[0:], typ)
	binary.LittleEndian.PutUint32(s.meta[4:], 0)
	binary.LittleEndian.PutUint64(s.meta[8:], sector)
	s.meta[blkMetaStatus] = blkNoStatus
	s.segs = append(s.segs[:0], Seg{Addr: s.metaBus, Len: VirtioBlkReqHdrLen})
	switch {
	case len(discardSectors) > 0:
		seg := s.meta[blkMetaSeg:blkMetaStatus]
		binary.LittleEndian.PutUint64(seg[0:], sector)
		binary.LittleEndian.PutUint32(seg[8:], discardSectors[0])
		binary.LittleEndian.PutUint32(seg[12:], 0)
		s.segs = append(s.segs, Seg{Addr: s.metaBus + blkMetaSeg, Len: VirtioBlkDiscardSegLen})
	case len(p) > 0:
		if write {
			copy(s.data, p)
		}
		for off := 0; off < len(p); off += b.sizeMax {
			n := min(b.sizeMax, len(p)-off)
			s.segs = append(s.segs, Seg{Addr: s.dataBus + uint64(off), Len: uint32(n), Write: !write})
		}
	}
	s.segs = append(s.segs, Seg{Addr: s.metaBus + blkMetaStatus, Len: 1, Write: true})

	s.w.arm(b.d.timeout)
	defer s.w.disarm()
	if err := b.submit(s); err != nil {
		return false, err
	}
	if err := b.wait(s); err != nil {
		return true, err
	}
	switch st := s.meta[blkMetaStatus]; st {
	case VIRTIO_BLK_S_OK:
	case VIRTIO_BLK_S_IOERR:
		return false, ErrIO
	case VIRTIO_BLK_S_UNSUPP:
		return false, fmt.Errorf("device does not support request type %d: %w", typ, errors.ErrUnsupported)
	case blkNoStatus:
		return false, fmt.Errorf("device completed the request without a status: %w", ErrDevice)
	default:
		return false, fmt.Errorf("device returned unknown status %d: %w", st, ErrDevice)
	}
	if !write && len(p) > 0 {
		copy(p, s.data[:len(p)])
	}
	return false, nil
}

// submit adds s's chain to the queue, waiting for descriptors if needed.
func (b *Block) submit(s *blkSlot) error {
	q := b.q
	for {
		q.mu.Lock()
		if err := b.reap(); err != nil {
			q.mu.Unlock()
			q.wake() // pass the news on to the other waiters
			return err
		}
		head, err := q.add(s.segs)
		if err == nil {
			b.byHead[head] = s
			kick := q.kick()
			q.mu.Unlock()
			if kick {
				q.notify()
			}
			return nil
		}
		if !errors.Is(err, errQueueFull) {
			q.mu.Unlock()
			return err
		}
		pending := q.arm()
		q.mu.Unlock()
		if !pending {
			if err := b.sleep(s); err != nil {
				return err
			}
		}
	}
}

// wait waits until s's request completes.
func (b *Block) wait(s *blkSlot) error {
	q := b.q
	for spin := 0; ; spin++ {
		select {
		case <-s.done:
			return nil
		default:
		}
		q.mu.Lock()
		err := b.reap()
		if err == nil && spin < b.poll {
			q.mu.Unlock()
			runtime.Gosched()
			continue
		}
		pending := err == nil && q.arm()
		q.mu.Unlock()
		if err != nil {
			q.wake() // pass the news on to the other waiters
			return err
		}
		if pending {
			continue
		}
		select {
		case <-s.done:
			return nil
		case <-q.signal:
		case <-s.w.expired:
			return b.timedOut()
		case <-b.d.closed:
			return hal.ErrClosed
		}
	}
}

// sleep waits for a queue interrupt, the timeout or Close.
func (b *Block) sleep(s *blkSlot) error {
	select {
	case <-b.q.signal:
		return nil
	case <-s.w.expired:
		return b.timedOut()
	case <-b.d.closed:
		return hal.ErrClosed
	}
}

func (b *Block) timedOut() error {
	err := fmt.Errorf("no completion within %v: %w", b.d.timeout, hal.ErrTimeout)
	b.q.breakWith(fmt.Errorf("%s: %w", b.q.name, err))
	return err
}

// reap takes every used entry and wakes its request. The caller holds
// b.q.mu.
func (b *Block) reap() error {
	for {
		head, _, ok, err := b.q.pop()
		if err != nil || !ok {
			return err
		}
		if s := b.byHead[head]; s != nil {
			b.byHead[head] = nil
			select {
			case s.done <- struct{}{}:
			default:
			}
		}
	}
}

// recoverIfBroken resets a queue that a device error or timeout broke, so
// the requests after the failed ones can succeed (virtio 1.2 §2.6.1 with
// VIRTIO_F_RING_RESET, otherwise a device reset and reinitialisation).
func (b *Block) recoverIfBroken() error {
	if b.q.broken() == nil {
		return nil
	}
	b.recovery.Lock()
	defer b.recovery.Unlock()
	if b.d.isClosed() {
		return hal.ErrClosed
	}
	if b.q.broken() == nil {
		return nil // another request recovered it
	}
	// Completion signals left in free slots are cleared as requests take
	// them (see slot): requests waiting for one may be taking them now.
	for i := range b.byHead {
		b.byHead[i] = nil
	}
	if errors.Is(b.q.broken(), ErrNeedsReset) || b.q.reset() != nil {
		if err := b.d.reinit(b.d.features.Load(), nil); err != nil {
			return err
		}
	}
	// The device has let go of every chain: the slots set aside are free.
	b.lostMu.Lock()
	for _, s := range b.lost {
		select {
		case <-s.done:
		default:
		}
		b.slots <- s
	}
	b.lost = b.lost[:0]
	b.lostMu.Unlock()
	return nil
}
