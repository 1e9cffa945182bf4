package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/anykernel/anykernel/hal/virtio/internal/ring"
)

// ErrDriver reports a driver that broke the virtqueue protocol: the device
// sets DEVICE_NEEDS_RESET and stops using the queue.
var ErrDriver = errors.New("model: driver misbehaved")

// maxChainBytes bounds the total length of one chain.
const maxChainBytes = 1 << 30

// VQ is the device side of a split virtqueue (virtio 1.2 §2.7). The driver
// is untrusted: every index, address, length and link is checked before
// use, and a bad chain is an error, never a panic or a loop.
type VQ struct {
	mem      *Memory
	index    int
	features uint64

	mu        sync.Mutex
	n         int
	desc      []byte
	avail     []byte
	used      []byte
	eventIdx  bool
	indirect  bool
	lastAvail uint16
	usedIdx   uint16 // shadow of used.idx, entries put
	published uint16 // used.idx as last stored
	epoch     uint64 // bumped by reset; chains from an older epoch are dropped
	enabled   bool
	err       error

	kick    chan struct{}
	onUsed  func(q int)     // raise the queue's interrupt
	onError func(err error) // device-level error report
	faults  func() *Faults  // the faults in force, may return nil
	stats   *queueStats
}

type queueStats struct {
	completions int
	notifies    atomic.Uint64 // driver notifications
	interrupts  atomic.Uint64 // used-buffer interrupts raised
}

// Chain is one descriptor chain popped from the available ring. Readable
// are the buffers the driver filled, Writable those the device fills, in
// order.
type Chain struct {
	Head     uint16
	Readable [][]byte
	Writable [][]byte
	ReadLen  int
	WriteLen int
	epoch    uint64
	vq       *VQ
}

func (c *Chain) reset() {
	c.Readable = c.Readable[:0]
	c.Writable = c.Writable[:0]
	c.ReadLen, c.WriteLen = 0, 0
}

// NewVQ maps a queue of n entries whose areas the driver placed at the
// given bus addresses.
func NewVQ(mem *Memory, index, n int, features uint64, desc, driver, device uint64) (*VQ, error) {
	q := &VQ{mem: mem, index: index, features: features, kick: make(chan struct{}, 1), stats: &queueStats{}}
	if err := q.enable(n, desc, driver, device); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *VQ) enable(n int, desc, driver, device uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n < 1 || n > ring.MaxQueueSize || n&(n-1) != 0 {
		return fmt.Errorf("queue %d: size %d: %w", q.index, n, ErrDriver)
	}
	var err error
	if q.desc, err = q.mem.Translate(desc, uint64(ring.DescBytes(n))); err != nil {
		return fmt.Errorf("queue %d: descriptor table: %w: %w", q.index, err, ErrDriver)
	}
	if q.avail, err = q.mem.Translate(driver, uint64(ring.AvailBytes(n))); err != nil {
		return fmt.Errorf("queue %d: driver area: %w: %w", q.index, err, ErrDriver)
	}
	if q.used, err = q.mem.Translate(device, uint64(ring.UsedBytes(n))); err != nil {
		return fmt.Errorf("queue %d: device area: %w: %w", q.index, err, ErrDriver)
	}
	// Widen to the region so the event fields' words can be reached.
	q.avail = q.avail[:cap(q.avail)]
	q.used = q.used[:cap(q.used)]
	q.n = n
	q.eventIdx = q.features&(1<<29) != 0
	q.indirect = q.features&(1<<28) != 0
	q.lastAvail, q.usedIdx, q.published = 0, 0, 0
	q.epoch++
	q.enabled = true
	q.err = nil
	return nil
}

// disable stops the queue (a queue reset): chains in flight are dropped.
func (q *VQ) disable() {
	q.mu.Lock()
	q.enabled = false
	q.epoch++
	q.mu.Unlock()
	q.Kick()
}

// Size returns the queue size.
func (q *VQ) Size() int { q.mu.Lock(); defer q.mu.Unlock(); return q.n }

// Kick wakes the queue's worker (a driver notification).
func (q *VQ) Kick() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Wait blocks until the driver notifies the queue or stop is closed.
func (q *VQ) Wait(stop <-chan struct{}) bool {
	select {
	case <-q.kick:
		return true
	case <-stop:
		return false
	}
}

// Err returns the error that stopped the queue, if any.
func (q *VQ) Err() error { q.mu.Lock(); defer q.mu.Unlock(); return q.err }

func (q *VQ) fail(err error) error {
	if q.err == nil {
		q.err = fmt.Errorf("queue %d: %w", q.index, err)
		if q.onError != nil {
			go q.onError(q.err) // outside q.mu: the handler takes device locks
		}
	}
	return q.err
}

// Pop takes the next available chain into c. ok is false if the ring is
// empty. With VIRTIO_F_EVENT_IDX an empty ring asks the driver for a
// notification at the next chain.
func (q *VQ) Pop(c *Chain) (ok bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return false, q.err
	}
	if !q.enabled {
		return false, nil
	}
	idx, err := ring.Load16(q.avail, ring.AvailIdxOff())
	if err != nil {
		return false, q.fail(fmt.Errorf("%w: %w", err, ErrDriver))
	}
	if idx == q.lastAvail {
		if !q.eventIdx {
			return false, nil
		}
		if err := ring.Store16(q.used, ring.AvailEventOff(q.n), q.lastAvail); err != nil {
			return false, q.fail(fmt.Errorf("%w: %w", err, ErrDriver))
		}
		if idx, err = ring.Load16(q.avail, ring.AvailIdxOff()); err != nil || idx == q.lastAvail {
			return false, nil
		}
	}
	if int(idx-q.lastAvail) > q.n {
		return false, q.fail(fmt.Errorf("available index moved from %d to %d on a queue of %d: %w", q.lastAvail, idx, q.n, ErrDriver))
	}
	head := binary.LittleEndian.Uint16(q.avail[ring.AvailRingOff(int(q.lastAvail)%q.n):])
	q.lastAvail++
	if err := q.walk(head, c); err != nil {
		return false, q.fail(err)
	}
	c.epoch = q.epoch
	c.vq = q
	return true, nil
}

// walk follows the chain at head (§2.7.5, §2.7.5.3), checking it.
func (q *VQ) walk(head uint16, c *Chain) error {
	c.reset()
	c.Head = head
	if int(head) >= q.n {
		return fmt.Errorf("chain head %d out of range [0,%d): %w", head, q.n, ErrDriver)
	}
	table, size := q.desc, q.n
	i, count, indirect := int(head), 0, false
	for {
		d, err := ring.ReadDesc(table, i)
		if err != nil {
			return fmt.Errorf("%w: %w", err, ErrDriver)
		}
		count++
		if count > size {
			return fmt.Errorf("descriptor chain at %d loops (more than %d descriptors): %w", head, size, ErrDriver)
		}
		if d.Flags&ring.VIRTQ_DESC_F_INDIRECT != 0 {
			switch {
			case !q.indirect:
				return fmt.Errorf("indirect descriptor without VIRTIO_F_INDIRECT_DESC: %w", ErrDriver)
			case indirect:
				return fmt.Errorf("indirect descriptor inside an indirect table: %w", ErrDriver)
			case d.Flags&ring.VIRTQ_DESC_F_NEXT != 0:
				return fmt.Errorf("indirect descriptor with VIRTQ_DESC_F_NEXT: %w", ErrDriver)
			case d.Len == 0 || d.Len%ring.DescSize != 0 || d.Len/ring.DescSize > ring.MaxQueueSize:
				return fmt.Errorf("indirect table of %d bytes: %w", d.Len, ErrDriver)
			case count > 1:
				return fmt.Errorf("indirect descriptor in the middle of a chain: %w", ErrDriver)
			}
			t, err := q.mem.Translate(d.Addr, uint64(d.Len))
			if err != nil {
				return fmt.Errorf("indirect table: %w: %w", err, ErrDriver)
			}
			table, size, i, count, indirect = t, int(d.Len/ring.DescSize), 0, 0, true
			continue
		}
		buf, err := q.mem.Translate(d.Addr, uint64(d.Len))
		if err != nil {
			return fmt.Errorf("descriptor %d: %w: %w", i, err, ErrDriver)
		}
		if d.Flags&ring.VIRTQ_DESC_F_WRITE != 0 {
			c.Writable = append(c.Writable, buf)
			c.WriteLen += len(buf)
		} else {
			if len(c.Writable) > 0 {
				return fmt.Errorf("device-readable descriptor %d after a writable one: %w", i, ErrDriver)
			}
			c.Readable = append(c.Readable, buf)
			c.ReadLen += len(buf)
		}
		if c.ReadLen+c.WriteLen > maxChainBytes {
			return fmt.Errorf("chain at %d longer than %d bytes: %w", head, maxChainBytes, ErrDriver)
		}
		if d.Flags&ring.VIRTQ_DESC_F_NEXT == 0 {
			return nil
		}
		i = int(d.Next)
		if i >= size {
			return fmt.Errorf("descriptor link %d out of range [0,%d): %w", i, size, ErrDriver)
		}
	}
}

// Put places a used entry for c (written bytes) without publishing it.
func (q *VQ) Put(c *Chain, written int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.putLocked(c, written)
}

func (q *VQ) putLocked(c *Chain, written int) {
	if !q.enabled || c.epoch != q.epoch || q.err != nil {
		return
	}
	f := q.faultsFor()
	id, length := uint32(c.Head), uint32(written)
	q.stats.completions++
	if f != nil {
		if f.Stall || (f.StallAfter > 0 && q.stats.completions > f.StallAfter) {
			return
		}
		length += f.UsedLenExtra
		if f.BadUsedID {
			id = uint32(q.n) + 7
		}
		if f.CorruptDescriptors {
			// A device scribbling a self-loop over the chain's head.
			off := int(c.Head) * ring.DescSize
			binary.LittleEndian.PutUint16(q.desc[off+12:], ring.VIRTQ_DESC_F_NEXT)
			binary.LittleEndian.PutUint16(q.desc[off+14:], c.Head)
		}
	}
	q.putElem(id, length)
	if f != nil && f.DuplicateUsed {
		q.putElem(id, length)
	}
}

func (q *VQ) putElem(id, length uint32) {
	off := ring.UsedElemOff(int(q.usedIdx) % q.n)
	// Atomic: the driver reads (and clears) elements it has consumed, and
	// a misbehaving device may be running ahead of it.
	_ = ring.Store32(q.used, off, id)
	_ = ring.Store32(q.used, off+4, length)
	q.usedIdx++
}

// Publish makes the entries put so far visible to the driver and raises
// the queue's interrupt unless the driver suppressed it (§2.7.10).
func (q *VQ) Publish() {
	q.mu.Lock()
	if !q.enabled || q.usedIdx == q.published {
		q.mu.Unlock()
		return
	}
	if f := q.faultsFor(); f != nil && f.UsedIdxJump != 0 {
		q.usedIdx += f.UsedIdxJump
	}
	old, cur := q.published, q.usedIdx
	q.published = cur
	_ = ring.Store16(q.used, ring.UsedIdxOff(), cur)
	notify := true
	if q.eventIdx {
		ev, err := ring.Load16(q.avail, ring.UsedEventOff(q.n))
		notify = err != nil || ring.NeedEvent(ev, cur, old)
	} else {
		fl, err := ring.Load16(q.avail, ring.AvailFlagsOff())
		notify = err != nil || fl&ring.VIRTQ_AVAIL_F_NO_INTERRUPT == 0
	}
	cb := q.onUsed
	q.mu.Unlock()
	if notify && cb != nil {
		q.stats.interrupts.Add(1)
		cb(q.index)
	}
}

// Push is Put and Publish.
func (q *VQ) Push(c *Chain, written int) {
	q.Put(c, written)
	q.Publish()
}

func (q *VQ) faultsFor() *Faults {
	if q.faults == nil {
		return nil
	}
	f := q.faults()
	if f == nil || (f.Queues != 0 && f.Queues&(1<<q.index) == 0) {
		return nil
	}
	return f
}

// live locks the chain's queue and reports whether the chain still
// belongs to it: after a queue or device reset the device must not touch
// the driver's buffers again (§2.6.1). The caller unlocks c.vq.mu.
func (c *Chain) live() bool {
	if c.vq == nil {
		return false
	}
	c.vq.mu.Lock()
	return c.vq.enabled && c.vq.epoch == c.epoch
}

// CopyTo copies src into the chain's writable buffers from offset off and
// returns how many bytes it copied (none once the queue was reset).
func (c *Chain) CopyTo(off int, src []byte) int {
	ok := c.live()
	if c.vq != nil {
		defer c.vq.mu.Unlock()
	}
	if !ok {
		return 0
	}
	n := 0
	for _, b := range c.Writable {
		if off >= len(b) {
			off -= len(b)
			continue
		}
		k := copy(b[off:], src[n:])
		n += k
		off = 0
		if n == len(src) {
			break
		}
	}
	return n
}

// CopyFrom copies the chain's readable bytes from offset off into dst and
// returns how many it copied (none once the queue was reset).
func (c *Chain) CopyFrom(off int, dst []byte) int {
	ok := c.live()
	if c.vq != nil {
		defer c.vq.mu.Unlock()
	}
	if !ok {
		return 0
	}
	n := 0
	for _, b := range c.Readable {
		if off >= len(b) {
			off -= len(b)
			continue
		}
		k := copy(dst[n:], b[off:])
		n += k
		off = 0
		if n == len(dst) {
			break
		}
	}
	return n
}
