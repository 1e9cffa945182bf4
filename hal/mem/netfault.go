package mem

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// NICFaults says which faults a [FaultyNIC] applies to the frames written
// through it. Probabilities are per frame, from 0 (never) to 1 (always); the
// zero value applies no fault at all.
type NICFaults struct {
	// Seed seeds the random decisions. The same seed and the same sequence
	// of written frames give the same decisions.
	Seed uint64
	// Loss is the probability that a frame is silently discarded.
	Loss float64
	// Duplicate is the probability that a frame is sent twice.
	Duplicate float64
	// Reorder is the probability that a frame is held back and sent after
	// the next frame written.
	Reorder float64
	// Corrupt is the probability that one bit of the frame is flipped (in a
	// copy: the caller's buffer is never changed). The bit lies after the
	// Ethernet header when the frame has a payload.
	Corrupt float64
	// Delay is added to every frame's delivery; Jitter adds a further
	// uniformly random delay in [0, Jitter). Jitter may reorder frames.
	Delay, Jitter time.Duration
	// Bandwidth limits the link to this many bytes per second, queueing
	// frames behind one another; 0 means unlimited.
	Bandwidth int64
	// Clock times Delay, Jitter and Bandwidth; nil means real time.
	Clock hal.Clock
}

// NICFaultStats counts the faults a [FaultyNIC] applied.
type NICFaultStats struct {
	Frames     uint64 // frames written through the decorator
	Lost       uint64
	Duplicated uint64
	Reordered  uint64
	Corrupted  uint64
	Delayed    uint64 // frames that went through the timed queue (Delay, Jitter, Bandwidth)
}

// faultMaxPending bounds the timed queue; writers wait for room beyond it.
const faultMaxPending = 4096

// FaultyNIC decorates any [hal.NIC] with faults on the frames written
// through it (egress); reads pass straight through. It implements
// [hal.OffloadNIC], passing headers through when the inner NIC is one (and
// supporting no offload otherwise); faults apply to a GSO super-frame as a
// whole.
//
// Without Delay, Jitter and Bandwidth, frames are written to the inner NIC
// during WriteFrame. With any of them, frames are copied into a timed queue
// (at most 4096 frames; WriteFrame waits beyond that) and written by a
// goroutine of the decorator when their time on Clock comes; errors from the
// inner NIC are then counted as losses. Close closes the inner NIC and
// stops that goroutine.
type FaultyNIC struct {
	inner hal.NIC
	off   hal.OffloadNIC // inner as an OffloadNIC, or nil
	f     NICFaults
	timed bool

	closed  atomic.Bool
	enabled atomic.Uint32 // hal.Offload granted by the inner NIC

	mu      sync.Mutex // guards everything below and serialises untimed writes
	rng     *rand.Rand
	held    *faultFrame // frame held back for reordering
	pending faultHeap
	seq     uint64
	linkEnd time.Duration // when the link finishes sending what is queued (Bandwidth)
	timer   hal.Timer
	room    sync.Cond
	stats   NICFaultStats

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

type faultFrame struct {
	hdr  hal.NetHdr
	data []byte
	at   time.Duration
	seq  uint64
}

var _ hal.OffloadNIC = (*FaultyNIC)(nil)

// NewFaultyNIC returns inner decorated with the faults f.
func NewFaultyNIC(inner hal.NIC, f NICFaults) *FaultyNIC {
	n := &FaultyNIC{
		inner: inner,
		f:     f,
		timed: f.Delay > 0 || f.Jitter > 0 || f.Bandwidth > 0,
		rng:   rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15)),
	}
	n.off, _ = inner.(hal.OffloadNIC)
	n.room.L = &n.mu
	if n.timed {
		if n.f.Clock == nil {
			n.f.Clock = newNetWallClock()
		}
		n.kick = make(chan struct{}, 1)
		n.done = make(chan struct{})
		n.wg.Add(1)
		go n.run()
	}
	return n
}

// Stats returns a snapshot of the fault counters.
func (n *FaultyNIC) Stats() NICFaultStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// MTU implements [hal.NIC].
func (n *FaultyNIC) MTU() int { return n.inner.MTU() }

// MAC implements [hal.NIC].
func (n *FaultyNIC) MAC() hal.MAC { return n.inner.MAC() }

// ReadFrame implements [hal.NIC].
func (n *FaultyNIC) ReadFrame(p []byte) (int, error) { return n.inner.ReadFrame(p) }

// SupportedOffload implements [hal.OffloadNIC].
func (n *FaultyNIC) SupportedOffload() hal.Offload {
	if n.off == nil {
		return 0
	}
	return n.off.SupportedOffload()
}

// SetOffload implements [hal.OffloadNIC].
func (n *FaultyNIC) SetOffload(want hal.Offload) (hal.Offload, error) {
	if n.off == nil {
		return 0, nil
	}
	got, err := n.off.SetOffload(want)
	if err == nil {
		n.enabled.Store(uint32(got))
	}
	return got, err
}

// ReadFrameHdr implements [hal.OffloadNIC].
func (n *FaultyNIC) ReadFrameHdr(p []byte) (int, hal.NetHdr, error) {
	if n.off == nil {
		m, err := n.inner.ReadFrame(p)
		return m, hal.NetHdr{}, err
	}
	return n.off.ReadFrameHdr(p)
}

// WriteFrame implements [hal.NIC].
func (n *FaultyNIC) WriteFrame(p []byte) error { return n.WriteFrameHdr(nil, p) }

// WriteFrameHdr implements [hal.OffloadNIC].
func (n *FaultyNIC) WriteFrameHdr(hdr *hal.NetHdr, p []byte) error {
	if n.closed.Load() {
		return fmt.Errorf("mem: faulty nic: write: %w", hal.ErrClosed)
	}
	var h hal.NetHdr
	if hdr != nil {
		h = *hdr
	}
	maxLen := hal.MaxFrameLen(n.inner)
	if h != (hal.NetHdr{}) {
		if n.off == nil {
			return fmt.Errorf("mem: faulty nic: write with offload header: %w", errors.ErrUnsupported)
		}
		if err := h.Validate(len(p)); err != nil {
			return fmt.Errorf("mem: faulty nic: write: %w", err)
		}
		// Checked here because a timed write reaches the inner NIC too
		// late to report the error.
		if err := nicCheckTx(hal.Offload(n.enabled.Load()), &h); err != nil {
			return fmt.Errorf("mem: faulty nic: write: %w", err)
		}
		if h.GSOType != hal.GSONone {
			maxLen = hal.MaxOffloadFrame
		}
	}
	if len(p) < hal.EthernetHeaderLen || len(p) > maxLen {
		return fmt.Errorf("mem: faulty nic: write %d-byte frame (limit %d): %w", len(p), maxLen, hal.ErrFrameSize)
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	n.stats.Frames++
	// Always draw the same number of values per frame so that decisions
	// depend only on the seed and the number of frames before.
	uLoss, uCorrupt, uDup, uReorder, uJitter := n.rng.Float64(), n.rng.Float64(), n.rng.Float64(), n.rng.Float64(), n.rng.Float64()
	bit := n.rng.Uint64()
	if uLoss < n.f.Loss {
		n.stats.Lost++
		return nil
	}
	data := p
	if uCorrupt < n.f.Corrupt {
		data = append([]byte(nil), p...)
		span, base := len(data), 0
		if span > hal.EthernetHeaderLen {
			span, base = span-hal.EthernetHeaderLen, hal.EthernetHeaderLen
		}
		b := bit % uint64(span*8)
		data[base+int(b/8)] ^= 1 << (b % 8)
		n.stats.Corrupted++
	}
	copies := 1
	if uDup < n.f.Duplicate {
		copies = 2
		n.stats.Duplicated++
	}
	if uReorder < n.f.Reorder && n.held == nil {
		n.stats.Reordered++
		n.held = &faultFrame{hdr: h, data: append([]byte(nil), data...)}
		if copies == 2 {
			// The duplicate goes out now, the original later.
			return n.sendLocked(&h, data, uJitter)
		}
		return nil
	}
	for range copies {
		if err := n.sendLocked(&h, data, uJitter); err != nil {
			return err
		}
	}
	if held := n.held; held != nil {
		n.held = nil
		return n.sendLocked(&held.hdr, held.data, uJitter)
	}
	return nil
}

// sendLocked writes a frame to the inner NIC now, or queues it by time.
func (n *FaultyNIC) sendLocked(h *hal.NetHdr, data []byte, uJitter float64) error {
	if !n.timed {
		if n.off != nil && *h != (hal.NetHdr{}) {
			return n.off.WriteFrameHdr(h, data)
		}
		return n.inner.WriteFrame(data)
	}
	for len(n.pending) >= faultMaxPending && !n.closed.Load() {
		n.room.Wait()
	}
	if n.closed.Load() {
		return fmt.Errorf("mem: faulty nic: write: %w", hal.ErrClosed)
	}
	now := n.f.Clock.Monotonic()
	at := now
	if n.f.Bandwidth > 0 {
		start := max(now, n.linkEnd)
		n.linkEnd = start + time.Duration(int64(len(data))*int64(time.Second)/n.f.Bandwidth)
		at = n.linkEnd
	}
	at += n.f.Delay + time.Duration(uJitter*float64(n.f.Jitter))
	n.seq++
	fr := &faultFrame{hdr: *h, data: append([]byte(nil), data...), at: at, seq: n.seq}
	heap.Push(&n.pending, fr)
	n.stats.Delayed++
	if n.pending[0] == fr {
		n.armLocked(now)
	}
	return nil
}

// armLocked sets the timer for the earliest queued frame.
func (n *FaultyNIC) armLocked(now time.Duration) {
	if len(n.pending) == 0 {
		return
	}
	d := n.pending[0].at - now
	if d <= 0 {
		n.poke()
		return
	}
	if n.timer == nil {
		n.timer = n.f.Clock.AfterFunc(d, n.poke)
	} else {
		n.timer.Reset(d)
	}
}

func (n *FaultyNIC) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// run writes queued frames to the inner NIC when they are due.
func (n *FaultyNIC) run() {
	defer n.wg.Done()
	var due []*faultFrame
	for {
		select {
		case <-n.done:
			return
		case <-n.kick:
		}
		n.mu.Lock()
		now := n.f.Clock.Monotonic()
		due = due[:0]
		for len(n.pending) > 0 && n.pending[0].at <= now {
			due = append(due, heap.Pop(&n.pending).(*faultFrame))
		}
		n.armLocked(now)
		n.room.Broadcast()
		n.mu.Unlock()
		for i, fr := range due {
			var err error
			if n.off != nil && fr.hdr != (hal.NetHdr{}) {
				err = n.off.WriteFrameHdr(&fr.hdr, fr.data)
			} else {
				err = n.inner.WriteFrame(fr.data)
			}
			if err != nil {
				n.mu.Lock()
				n.stats.Lost++
				n.mu.Unlock()
			}
			due[i] = nil
		}
	}
}

// Close closes the inner NIC and stops the decorator. Frames still queued
// or held back are discarded.
func (n *FaultyNIC) Close() error {
	if n.closed.Swap(true) {
		return nil
	}
	err := n.inner.Close()
	if n.timed {
		close(n.done)
		n.mu.Lock()
		if n.timer != nil {
			n.timer.Stop()
		}
		n.room.Broadcast()
		n.mu.Unlock()
		n.wg.Wait()
	}
	n.mu.Lock()
	n.pending, n.held = nil, nil
	n.mu.Unlock()
	return err
}

// faultHeap orders frames by due time, then by write order.
type faultHeap []*faultFrame

func (h faultHeap) Len() int { return len(h) }
func (h faultHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h faultHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *faultHeap) Push(x any)   { *h = append(*h, x.(*faultFrame)) }
func (h *faultHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// netWallClock is a hal.Clock on real time, used when no clock is given.
type netWallClock struct{ start time.Time }

func newNetWallClock() *netWallClock { return &netWallClock{start: time.Now()} }

func (c *netWallClock) Now() time.Time           { return time.Now() }
func (c *netWallClock) Monotonic() time.Duration { return time.Since(c.start) }
func (c *netWallClock) AfterFunc(d time.Duration, f func()) hal.Timer {
	return netWallTimer{time.AfterFunc(d, f)}
}

type netWallTimer struct{ t *time.Timer }

func (t netWallTimer) Stop() bool                 { return t.t.Stop() }
func (t netWallTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
