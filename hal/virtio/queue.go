package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/anykernel/anykernel/hal/virtio/internal/ring"
)

// Seg is one buffer of a descriptor chain: Len bytes at bus address Addr,
// written by the device if Write is set, read by it otherwise.
type Seg struct {
	Addr  uint64
	Len   uint32
	Write bool
}

// errQueueFull is returned by add when too few descriptors are free.
var errQueueFull = errors.New("virtqueue full")

// queue is the driver side of a split virtqueue (virtio 1.2 §2.7).
//
// The device is untrusted: the driver keeps its own copy of every chain
// (length, links, writable bytes) and never reads back the descriptor table,
// so a device that scribbles on it cannot make the driver loop or free the
// wrong descriptors. Every used entry is checked: an index that moves by
// more than the buffers in flight, an id out of range or not in flight (a
// duplicate), or a length beyond the writable part of the chain breaks the
// queue with an error wrapping [ErrDevice].
//
// A packed virtqueue (§2.8) would be a second implementation of the same
// methods; the drivers use nothing else.
type queue struct {
	t     Transport
	index int
	n     int
	name  string

	region      []byte
	bus         uint64
	desc        []byte
	avail, used []byte
	availOff    int
	usedOff     int
	// eventIdx, maxInd and features are fixed when the queue is made:
	// reinitialising the device never changes the ring features (see
	// device.reinit), so the push, pop and notification paths read them
	// without a lock while another queue's goroutine resets the device.
	eventIdx  bool
	maxInd    int // descriptors per indirect table; 0 without VIRTIO_F_INDIRECT_DESC
	ind       []byte
	indBus    uint64
	features  uint64
	signal    chan struct{}
	mu        sync.Mutex
	next      []uint16 // driver's own chain links and free list
	chainLen  []uint16 // descriptors in the chain headed here; 0 if not in flight
	wlen      []uint32 // device-writable bytes of the chain headed here
	freeHead  uint16
	numFree   int
	inFlight  int
	availIdx  uint16
	kickedIdx uint16
	lastUsed  uint16
	err       error
}

// newQueue allocates and enables queue index with at most size entries.
// maxInd > 0 asks for indirect tables of that many descriptors per chain
// (used only if VIRTIO_F_INDIRECT_DESC was negotiated).
func newQueue(t Transport, features uint64, index, size, maxInd int, name string) (*queue, error) {
	max := t.QueueMax(index)
	if max <= 0 {
		return nil, fmt.Errorf("%s: queue %d: not offered by the device: %w", name, index, ErrDevice)
	}
	n := min(size, max, ring.MaxQueueSize)
	if n > 0 {
		n = 1 << (bits.Len(uint(n)) - 1) // a power of two, as split queues need
	}
	if n < 2 {
		return nil, fmt.Errorf("%s: queue %d: size %d too small (device max %d): %w", name, index, n, max, ErrDevice)
	}
	q := &queue{t: t, index: index, n: n, name: fmt.Sprintf("%s queue %d", name, index), features: features,
		eventIdx: features&Bit(VIRTIO_F_EVENT_IDX) != 0, signal: make(chan struct{}, 1)}
	var size0 int
	q.availOff, q.usedOff, size0 = ring.Layout(n)
	var err error
	q.region, q.bus, err = t.DMA().Alloc(size0, 4096)
	if err != nil {
		return nil, fmt.Errorf("%s: allocating rings: %w", q.name, err)
	}
	q.desc = q.region[:q.availOff]
	q.avail = q.region[q.availOff:q.usedOff]
	q.used = q.region[q.usedOff:]
	if maxInd > 1 && features&Bit(VIRTIO_F_INDIRECT_DESC) != 0 {
		q.maxInd = maxInd
		q.ind, q.indBus, err = t.DMA().Alloc(n*maxInd*ring.DescSize, 16)
		if err != nil {
			t.DMA().Free(q.region)
			return nil, fmt.Errorf("%s: allocating indirect tables: %w", q.name, err)
		}
	}
	q.next = make([]uint16, n)
	q.chainLen = make([]uint16, n)
	q.wlen = make([]uint32, n)
	q.initState()
	if err := t.SetupQueue(index, n, q.bus, q.bus+uint64(q.availOff), q.bus+uint64(q.usedOff)); err != nil {
		q.free()
		return nil, fmt.Errorf("%s: %w", q.name, err)
	}
	return q, nil
}

// usedPoison is the id the driver writes into every used element it has
// consumed (and into all of them at the start): no valid chain has it, so
// a device that moves the used index over elements it did not write is
// caught instead of replaying stale completions.
const usedPoison = 0xffffffff

// initState empties the rings and the driver's bookkeeping.
func (q *queue) initState() {
	clear(q.region)
	for i := range q.n {
		binary.LittleEndian.PutUint32(q.used[ring.UsedElemOff(i):], usedPoison)
	}
	for i := range q.next {
		q.next[i] = uint16(i + 1)
		q.chainLen[i] = 0
		q.wlen[i] = 0
	}
	q.freeHead, q.numFree, q.inFlight = 0, q.n, 0
	q.availIdx, q.kickedIdx, q.lastUsed = 0, 0, 0
	q.err = nil
}

// free releases the queue's memory; the device must be reset first.
func (q *queue) free() {
	q.t.DMA().Free(q.region)
	if q.ind != nil {
		q.t.DMA().Free(q.ind)
	}
}

// reset reinitialises the queue after an error: with VIRTIO_F_RING_RESET
// alone (§2.6.1), otherwise the caller must reset the whole device and call
// reenable. Chains in flight are forgotten.
func (q *queue) reset() error {
	if q.features&Bit(VIRTIO_F_RING_RESET) == 0 {
		return fmt.Errorf("%s: reset: %w", q.name, errors.ErrUnsupported)
	}
	if err := q.t.ResetQueue(q.index); err != nil {
		return fmt.Errorf("%s: reset: %w", q.name, err)
	}
	return q.reenable()
}

// reenable clears the queue and gives it to the device again.
func (q *queue) reenable() error {
	q.mu.Lock()
	q.initState()
	q.mu.Unlock()
	if err := q.t.SetupQueue(q.index, q.n, q.bus, q.bus+uint64(q.availOff), q.bus+uint64(q.usedOff)); err != nil {
		return fmt.Errorf("%s: %w", q.name, err)
	}
	return nil
}

// fail breaks the queue; the caller holds q.mu.
func (q *queue) fail(err error) error {
	if q.err == nil {
		q.err = err
	}
	return q.err
}

// failLocked is fail for a caller that does not hold q.mu.
func (q *queue) failLocked(err error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.fail(err)
}

// breakWith breaks the queue from outside (device needs reset, close) and
// wakes its waiters.
func (q *queue) breakWith(err error) {
	q.mu.Lock()
	q.fail(err)
	q.mu.Unlock()
	q.wake()
}

// wake signals the goroutines waiting for this queue.
func (q *queue) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// broken returns the queue's error, if any.
func (q *queue) broken() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// add places a chain on the available ring and returns its head. It
// returns errQueueFull if too few descriptors are free. The caller holds
// q.mu.
func (q *queue) add(segs []Seg) (uint16, error) {
	if q.err != nil {
		return 0, q.err
	}
	if len(segs) == 0 || len(segs) > q.n && (q.maxInd == 0 || len(segs) > q.maxInd) {
		return 0, fmt.Errorf("%s: chain of %d buffers", q.name, len(segs))
	}
	useInd := q.maxInd > 0 && len(segs) > 1 && len(segs) <= q.maxInd
	need := len(segs)
	if useInd {
		need = 1
	}
	if q.numFree < need {
		return 0, errQueueFull
	}
	head := q.freeHead
	var wlen uint32
	for _, s := range segs {
		if s.Write {
			wlen += s.Len
		}
	}
	if useInd {
		tbl := q.ind[int(head)*q.maxInd*ring.DescSize : (int(head)+1)*q.maxInd*ring.DescSize]
		for i, s := range segs {
			d := ring.Desc{Addr: s.Addr, Len: s.Len}
			if s.Write {
				d.Flags = ring.VIRTQ_DESC_F_WRITE
			}
			if i < len(segs)-1 {
				d.Flags |= ring.VIRTQ_DESC_F_NEXT
				d.Next = uint16(i + 1)
			}
			_ = ring.WriteDesc(tbl, i, d)
		}
		_ = ring.WriteDesc(q.desc, int(head), ring.Desc{
			Addr:  q.indBus + uint64(int(head)*q.maxInd*ring.DescSize),
			Len:   uint32(len(segs) * ring.DescSize),
			Flags: ring.VIRTQ_DESC_F_INDIRECT,
		})
		q.freeHead = q.next[head]
	} else {
		i := head
		for k, s := range segs {
			d := ring.Desc{Addr: s.Addr, Len: s.Len}
			if s.Write {
				d.Flags = ring.VIRTQ_DESC_F_WRITE
			}
			if k < len(segs)-1 {
				d.Flags |= ring.VIRTQ_DESC_F_NEXT
				d.Next = q.next[i]
			}
			_ = ring.WriteDesc(q.desc, int(i), d)
			i = q.next[i]
		}
		q.freeHead = i
	}
	q.numFree -= need
	q.inFlight++
	q.chainLen[head] = uint16(need)
	q.wlen[head] = wlen
	binary.LittleEndian.PutUint16(q.avail[ring.AvailRingOff(int(q.availIdx)%q.n):], head)
	q.availIdx++
	if err := ring.Store16(q.avail, ring.AvailIdxOff(), q.availIdx); err != nil {
		return 0, q.fail(fmt.Errorf("%s: %w", q.name, err))
	}
	return head, nil
}

// kick notifies the device of chains added since the last kick, unless the
// device asked not to be (§2.7.10, §2.7.13.4). The caller holds q.mu; the
// notification itself is sent after the caller unlocks, by the returned
// func (nil if none is needed).
func (q *queue) kick() bool {
	old, cur := q.kickedIdx, q.availIdx
	if old == cur || q.err != nil {
		return false
	}
	q.kickedIdx = cur
	if q.eventIdx {
		ev, err := ring.Load16(q.used, ring.AvailEventOff(q.n))
		return err != nil || ring.NeedEvent(ev, cur, old)
	}
	fl, err := ring.Load16(q.used, ring.UsedFlagsOff())
	return err != nil || fl&ring.VIRTQ_USED_F_NO_NOTIFY == 0
}

// notify sends the notification kick asked for.
func (q *queue) notify() { q.t.Notify(q.index) }

// pop takes the next used entry, checking it. ok is false if there is none.
// The caller holds q.mu.
func (q *queue) pop() (head uint16, length uint32, ok bool, err error) {
	if q.err != nil {
		return 0, 0, false, q.err
	}
	idx, err := ring.Load16(q.used, ring.UsedIdxOff())
	if err != nil {
		return 0, 0, false, q.fail(fmt.Errorf("%s: %w", q.name, err))
	}
	pending := idx - q.lastUsed
	if pending == 0 {
		return 0, 0, false, nil
	}
	if int(pending) > q.inFlight {
		return 0, 0, false, q.fail(fmt.Errorf("%s: used index moved by %d with %d chains in flight: %w", q.name, pending, q.inFlight, ErrDevice))
	}
	off := ring.UsedElemOff(int(q.lastUsed) % q.n)
	// Atomic accesses: a device that runs its index past the driver may be
	// writing this very element; the driver must not race with it.
	id, err1 := ring.Load32(q.used, off)
	length, err2 := ring.Load32(q.used, off+4)
	if err := errors.Join(err1, err2, ring.Store32(q.used, off, usedPoison)); err != nil {
		return 0, 0, false, q.fail(fmt.Errorf("%s: %w", q.name, err))
	}
	if id >= uint32(q.n) {
		return 0, 0, false, q.fail(fmt.Errorf("%s: used id %d out of range [0,%d): %w", q.name, id, q.n, ErrDevice))
	}
	if q.chainLen[id] == 0 {
		return 0, 0, false, q.fail(fmt.Errorf("%s: used id %d is not in flight (duplicate used entry): %w", q.name, id, ErrDevice))
	}
	if length > q.wlen[id] {
		return 0, 0, false, q.fail(fmt.Errorf("%s: used length %d beyond the %d writable bytes of chain %d: %w", q.name, length, q.wlen[id], id, ErrDevice))
	}
	tail := uint16(id)
	for i := 1; i < int(q.chainLen[id]); i++ {
		tail = q.next[tail]
	}
	q.next[tail] = q.freeHead
	q.freeHead = uint16(id)
	q.numFree += int(q.chainLen[id])
	q.chainLen[id] = 0
	q.inFlight--
	q.lastUsed++
	return uint16(id), length, true, nil
}

// arm asks for an interrupt when the next used entry arrives and reports
// whether one has already arrived (so the caller must not sleep). The
// caller holds q.mu.
func (q *queue) arm() bool {
	if q.err != nil {
		return true
	}
	var err error
	if q.eventIdx {
		err = ring.Store16(q.avail, ring.UsedEventOff(q.n), q.lastUsed)
	} else {
		err = ring.Store16(q.avail, ring.AvailFlagsOff(), 0)
	}
	if err != nil {
		q.fail(fmt.Errorf("%s: %w", q.name, err))
		return true
	}
	idx, err := ring.Load16(q.used, ring.UsedIdxOff())
	return err != nil || idx != q.lastUsed
}

// quiet asks the device not to interrupt for used entries (a hint: the
// device may still). The caller holds q.mu.
func (q *queue) quiet() {
	if q.eventIdx {
		// Leaving used_event behind lastUsed means the device's index
		// does not cross it again for another 2^16 entries.
		_ = ring.Store16(q.avail, ring.UsedEventOff(q.n), q.lastUsed-1)
		return
	}
	_ = ring.Store16(q.avail, ring.AvailFlagsOff(), ring.VIRTQ_AVAIL_F_NO_INTERRUPT)
}

// pending reports whether used entries are published and not yet taken.
// The caller holds q.mu.
func (q *queue) pending() bool {
	idx, err := ring.Load16(q.used, ring.UsedIdxOff())
	return err != nil || idx != q.lastUsed
}

// freeDescs returns the number of free descriptors. The caller holds q.mu.
func (q *queue) freeDescs() int { return q.numFree }
