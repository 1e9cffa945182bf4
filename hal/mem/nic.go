package mem

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/anykernel/anykernel/hal"
)

// Defaults of [NICOptions].
const (
	// DefaultNICQueueLen is the receive queue length of a NIC of a pair.
	DefaultNICQueueLen = 1024
	// DefaultSwitchQueueLen is the receive queue length of a switch port.
	DefaultSwitchQueueLen = 4096
)

// errUnsupportedGSO marks GSO types no in-memory NIC can carry.
var errUnsupportedGSO = fmt.Errorf("mem: %w", errors.ErrUnsupported)

// NICOptions configures an in-memory NIC. The zero value is a 1500-byte MTU
// NIC with a fresh locally administered MAC address and the default queue
// length.
type NICOptions struct {
	// MTU is the largest IP packet carried; 0 means [hal.DefaultMTU]. Values
	// below [hal.MinMTU] are raised to it, values above 65535 lowered to it.
	MTU int
	// MAC is the NIC's address; the zero MAC means a fresh, unique, locally
	// administered unicast address. For a pair, MAC is the address of the
	// first NIC and the second gets MAC with the low bit of its last octet
	// flipped.
	MAC hal.MAC
	// QueueLen is the length of the receive queue in frames; 0 means
	// [DefaultNICQueueLen] for a pair and [DefaultSwitchQueueLen] for a
	// switch port.
	QueueLen int
}

// NICStats are the counters of a NIC. A GSO super-frame counts once when
// written and once per segment when the receiver had it segmented.
type NICStats struct {
	FramesOut, BytesOut uint64 // frames accepted by WriteFrame and friends
	FramesIn, BytesIn   uint64 // frames returned by ReadFrame and friends
	TxDrops             uint64 // frames written but discarded: the peer was closed
	RxDrops             uint64 // frames discarded for this NIC: queue full (switch) or buffer too short
}

// nicMACCounter hands out unique addresses for NICs created without one.
var nicMACCounter atomic.Uint32

func nicFreshMAC() hal.MAC {
	v := nicMACCounter.Add(1)
	return hal.MAC{0x02, 0x00, byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// NIC is an in-memory network interface: one end of a pair made by
// [NewNICPair] or a port of a [Switch]. It implements [hal.NIC],
// [hal.BatchNIC], [hal.OffloadNIC] and [hal.LinkStateNIC].
//
// Frames are copied into the receiver's queue when written, so the writer
// may reuse its buffer at once. On a pair, a full receive queue makes
// WriteFrame wait (backpressure: nothing is lost on a pair while both ends
// are open); on a switch a full port queue drops the frame.
//
// Closing a NIC makes its own reads and writes fail with [hal.ErrClosed] and
// discards its queued frames. Its peer stays usable: the peer reads the
// frames already queued for it, then blocks until its own Close, and the
// peer's writes succeed but are discarded and counted as TxDrops, as on a
// cable whose far end was unplugged; LinkUp reports false on both ends.
type NIC struct {
	mtu  int
	mac  hal.MAC
	rx   nicQueue
	peer *NIC    // the other end of a pair, or nil
	sw   *Switch // the switch of a port, or nil

	offload atomic.Uint32 // enabled hal.Offload
	closed  atomic.Bool

	framesOut, bytesOut atomic.Uint64
	framesIn, bytesIn   atomic.Uint64
	txDrops, rxDrops    atomic.Uint64
}

var (
	_ hal.NIC          = (*NIC)(nil)
	_ hal.BatchNIC     = (*NIC)(nil)
	_ hal.OffloadNIC   = (*NIC)(nil)
	_ hal.LinkStateNIC = (*NIC)(nil)
)

func newNIC(opts NICOptions, mac hal.MAC, defQueue int) *NIC {
	n := &NIC{mtu: opts.MTU, mac: mac}
	switch {
	case n.mtu == 0:
		n.mtu = hal.DefaultMTU
	case n.mtu < hal.MinMTU:
		n.mtu = hal.MinMTU
	case n.mtu > 65535:
		n.mtu = 65535
	}
	ql := opts.QueueLen
	if ql <= 0 {
		ql = defQueue
	}
	n.rx.init(ql)
	return n
}

// NewNICPair returns two NICs connected back to back: what one writes the
// other reads.
func NewNICPair(opts NICOptions) (a, b *NIC) {
	macA, macB := opts.MAC, opts.MAC
	if macA == (hal.MAC{}) {
		macA, macB = nicFreshMAC(), nicFreshMAC()
	} else {
		macB[5] ^= 1
	}
	a = newNIC(opts, macA, DefaultNICQueueLen)
	b = newNIC(opts, macB, DefaultNICQueueLen)
	a.peer, b.peer = b, a
	return a, b
}

// MTU implements [hal.NIC].
func (n *NIC) MTU() int { return n.mtu }

// MAC implements [hal.NIC].
func (n *NIC) MAC() hal.MAC { return n.mac }

// LinkUp implements [hal.LinkStateNIC]: the link is up while both this NIC
// and its peer (or its switch) are open.
func (n *NIC) LinkUp() bool {
	if n.closed.Load() {
		return false
	}
	if n.peer != nil {
		return !n.peer.closed.Load()
	}
	return n.sw != nil && !n.sw.closed.Load()
}

// Stats returns a snapshot of the NIC's counters.
func (n *NIC) Stats() NICStats {
	return NICStats{
		FramesOut: n.framesOut.Load(), BytesOut: n.bytesOut.Load(),
		FramesIn: n.framesIn.Load(), BytesIn: n.bytesIn.Load(),
		TxDrops: n.txDrops.Load(), RxDrops: n.rxDrops.Load(),
	}
}

// Close implements [hal.NIC]. It unblocks this NIC's pending reads and
// writes, and the peer's writes waiting for room in this NIC's queue.
func (n *NIC) Close() error {
	if n.closed.Swap(true) {
		return nil
	}
	n.rx.close()
	if n.peer != nil {
		// Wake our writers waiting for room in the peer's queue.
		n.peer.rx.wakeWriters()
	}
	if n.sw != nil {
		n.sw.removePort(n)
	}
	return nil
}

func (n *NIC) errClosed(op string) error {
	return fmt.Errorf("mem: nic %v: %s: %w", n.mac, op, hal.ErrClosed)
}

// SupportedOffload implements [hal.OffloadNIC]: every ability.
func (n *NIC) SupportedOffload() hal.Offload {
	return hal.OffloadTxCsum | hal.OffloadTxTSO4 | hal.OffloadTxTSO6 | hal.OffloadTxUSO |
		hal.OffloadRxCsum | hal.OffloadRxTSO4 | hal.OffloadRxTSO6
}

// SetOffload implements [hal.OffloadNIC]. Segmentation abilities are
// granted only together with the checksum ability they depend on.
func (n *NIC) SetOffload(want hal.Offload) (hal.Offload, error) {
	if n.closed.Load() {
		return 0, n.errClosed("set offload")
	}
	got := want & n.SupportedOffload()
	if got&hal.OffloadTxCsum == 0 {
		got &^= hal.OffloadTxTSO4 | hal.OffloadTxTSO6 | hal.OffloadTxUSO
	}
	if got&hal.OffloadRxCsum == 0 {
		got &^= hal.OffloadRxTSO4 | hal.OffloadRxTSO6
	}
	n.offload.Store(uint32(got))
	return got, nil
}

func (n *NIC) offloads() hal.Offload { return hal.Offload(n.offload.Load()) }

// ReadFrame implements [hal.NIC].
func (n *NIC) ReadFrame(p []byte) (int, error) {
	m, _, err := n.ReadFrameHdr(p)
	return m, err
}

// ReadFrameHdr implements [hal.OffloadNIC].
func (n *NIC) ReadFrameHdr(p []byte) (int, hal.NetHdr, error) {
	m, hdr, err := n.rx.pop(p)
	if err != nil {
		if errors.Is(err, io.ErrShortBuffer) {
			n.rxDrops.Add(1)
			return 0, hal.NetHdr{}, fmt.Errorf("mem: nic %v: read %d-byte frame into %d bytes: %w", n.mac, m, len(p), err)
		}
		return 0, hal.NetHdr{}, n.errClosed("read")
	}
	n.framesIn.Add(1)
	n.bytesIn.Add(uint64(m))
	return m, hdr, nil
}

// ReadFrames implements [hal.BatchNIC]. Headers of offloaded frames are not
// returned; use it only while Rx offloads are disabled.
func (n *NIC) ReadFrames(bufs [][]byte, sizes []int) (int, error) {
	if len(sizes) < len(bufs) {
		return 0, fmt.Errorf("mem: nic %v: read frames: %d sizes for %d buffers", n.mac, len(sizes), len(bufs))
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	got, err := n.rx.popBatch(bufs, sizes)
	if err != nil {
		return 0, n.errClosed("read")
	}
	for _, s := range sizes[:got] {
		if s < 0 {
			n.rxDrops.Add(1)
			continue
		}
		n.framesIn.Add(1)
		n.bytesIn.Add(uint64(s))
	}
	return got, nil
}

// WriteFrame implements [hal.NIC].
func (n *NIC) WriteFrame(p []byte) error {
	return n.WriteFrameHdr(nil, p)
}

// WriteFrames implements [hal.BatchNIC].
func (n *NIC) WriteFrames(frames [][]byte) (int, error) {
	for i, f := range frames {
		if err := n.WriteFrameHdr(nil, f); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

// WriteFrameHdr implements [hal.OffloadNIC]. The header travels with the
// frame; if the receiver has not enabled the matching Rx ability the frame
// is finished in software first (checksum filled in, super-frame segmented),
// so every receiver sees frames it can take.
func (n *NIC) WriteFrameHdr(hdr *hal.NetHdr, p []byte) error {
	if n.closed.Load() {
		return n.errClosed("write")
	}
	var zero hal.NetHdr
	if hdr == nil {
		hdr = &zero
	}
	maxLen := n.mtu + hal.EthernetHeaderLen
	var plan *gsoPlan
	var planBuf gsoPlan
	if *hdr != zero {
		if err := hdr.Validate(len(p)); err != nil {
			return fmt.Errorf("mem: nic %v: write: %w", n.mac, err)
		}
		if err := n.checkTxAbility(hdr); err != nil {
			return err
		}
		if hdr.GSOType != hal.GSONone {
			maxLen = hal.MaxOffloadFrame
			var err error
			if planBuf, err = gsoMakePlan(hdr, p); err != nil {
				return fmt.Errorf("mem: nic %v: write: %w", n.mac, err)
			}
			plan = &planBuf
		}
	}
	if len(p) < hal.EthernetHeaderLen || len(p) > maxLen {
		return fmt.Errorf("mem: nic %v: write %d-byte frame (limit %d): %w", n.mac, len(p), maxLen, hal.ErrFrameSize)
	}
	if n.sw != nil {
		if err := n.sw.forward(n, hdr, p, plan); err != nil {
			return err
		}
	} else {
		dropped, err := n.peer.rx.put(n, n.peer.offloads(), hdr, p, plan, true)
		if err != nil {
			return err
		}
		if dropped {
			n.txDrops.Add(1)
		}
	}
	n.framesOut.Add(1)
	n.bytesOut.Add(uint64(len(p)))
	return nil
}

func (n *NIC) checkTxAbility(hdr *hal.NetHdr) error {
	if err := nicCheckTx(n.offloads(), hdr); err != nil {
		return fmt.Errorf("mem: nic %v: write: %w", n.mac, err)
	}
	return nil
}

// nicCheckTx checks that a device with the enabled offloads have may send a
// frame with header hdr.
func nicCheckTx(have hal.Offload, hdr *hal.NetHdr) error {
	var need hal.Offload
	if hdr.Flags&hal.NetHdrFNeedsCsum != 0 {
		need |= hal.OffloadTxCsum
	}
	switch hdr.GSOType &^ hal.GSOECN {
	case hal.GSOTCPv4:
		need |= hal.OffloadTxTSO4
	case hal.GSOTCPv6:
		need |= hal.OffloadTxTSO6
	case hal.GSOUDPL4:
		need |= hal.OffloadTxUSO
	case hal.GSOUDP:
		return fmt.Errorf("UDP fragmentation offload: %w", errUnsupportedGSO)
	}
	if need&^have != 0 {
		return fmt.Errorf("header needs %v, enabled %v: %w", need&^have, have, errors.ErrUnsupported)
	}
	return nil
}

// nicSlot is one frame in a receive queue. Its buffer is kept and reused.
type nicSlot struct {
	buf []byte
	n   int
	hdr hal.NetHdr
}

// nicQueue is a NIC's bounded receive queue, a ring of reusable slots.
type nicQueue struct {
	mu       sync.Mutex
	readable sync.Cond
	writable sync.Cond
	slots    []nicSlot
	head     int
	count    int
	closed   bool
}

func (q *nicQueue) init(n int) {
	q.slots = make([]nicSlot, n)
	q.readable.L = &q.mu
	q.writable.L = &q.mu
}

func (q *nicQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.count = 0
	for i := range q.slots {
		q.slots[i].buf = nil
	}
	q.readable.Broadcast()
	q.writable.Broadcast()
	q.mu.Unlock()
}

func (q *nicQueue) wakeWriters() {
	q.mu.Lock()
	q.writable.Broadcast()
	q.mu.Unlock()
}

// reserve returns the next free slot, waiting for one if block is set. It
// returns nil if the frame must be dropped (queue closed, or full and not
// blocking) and an error if sender was closed while waiting. q.mu is held.
func (q *nicQueue) reserve(sender *NIC, size int, block bool) (*nicSlot, error) {
	for q.count == len(q.slots) && !q.closed && block {
		if sender.closed.Load() {
			return nil, sender.errClosed("write")
		}
		q.writable.Wait()
	}
	if q.closed || q.count == len(q.slots) {
		return nil, nil
	}
	s := &q.slots[(q.head+q.count)%len(q.slots)]
	if cap(s.buf) < size {
		s.buf = make([]byte, max(size, 2048))
	}
	s.buf = s.buf[:cap(s.buf)]
	return s, nil
}

// put queues frame for the owner of q, whose enabled offloads are rx,
// finishing offload work the receiver cannot do. It reports whether the
// frame (or any of its segments) was dropped.
func (q *nicQueue) put(sender *NIC, rx hal.Offload, hdr *hal.NetHdr, frame []byte, plan *gsoPlan, block bool) (dropped bool, err error) {
	segment := plan != nil && !nicRxTakesGSO(rx, hdr)
	q.mu.Lock()
	defer q.mu.Unlock()
	if !segment {
		s, err := q.reserve(sender, len(frame), block)
		if s == nil {
			return err == nil, err
		}
		s.n = copy(s.buf, frame)
		s.hdr = *hdr
		if rx&hal.OffloadRxCsum == 0 {
			if hdr.Flags&hal.NetHdrFNeedsCsum != 0 {
				// Validated by the sender; cannot fail.
				_ = gsoFinishChecksum(hdr, s.buf[:s.n])
			}
			s.hdr = hal.NetHdr{}
		}
		q.commit()
		return false, nil
	}
	var out hal.NetHdr
	if rx&hal.OffloadRxCsum != 0 {
		out.Flags = hal.NetHdrFDataValid
	}
	for i := range plan.segs {
		s, err := q.reserve(sender, plan.maxSegLen(), block)
		if s == nil {
			return err == nil, err
		}
		s.n = plan.segment(s.buf, frame, i)
		s.hdr = out
		q.commit()
	}
	return false, nil
}

// commit makes the reserved slot readable. q.mu is held.
func (q *nicQueue) commit() {
	q.count++
	q.readable.Signal()
}

// nicRxTakesGSO reports whether a receiver with offloads rx accepts the
// super-frame described by hdr as it is.
func nicRxTakesGSO(rx hal.Offload, hdr *hal.NetHdr) bool {
	switch hdr.GSOType &^ hal.GSOECN {
	case hal.GSOTCPv4:
		return rx&hal.OffloadRxTSO4 != 0
	case hal.GSOTCPv6:
		return rx&hal.OffloadRxTSO6 != 0
	}
	return false
}

// pop takes the oldest frame. When p is too short the frame is discarded
// and pop returns its length with io.ErrShortBuffer.
func (q *nicQueue) pop(p []byte) (int, hal.NetHdr, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.count == 0 && !q.closed {
		q.readable.Wait()
	}
	if q.closed {
		return 0, hal.NetHdr{}, hal.ErrClosed
	}
	s := &q.slots[q.head]
	q.head = (q.head + 1) % len(q.slots)
	q.count--
	q.writable.Signal()
	if s.n > len(p) {
		return s.n, hal.NetHdr{}, io.ErrShortBuffer
	}
	return copy(p, s.buf[:s.n]), s.hdr, nil
}

// popBatch takes up to len(bufs) frames, waiting for at least one.
func (q *nicQueue) popBatch(bufs [][]byte, sizes []int) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.count == 0 && !q.closed {
		q.readable.Wait()
	}
	if q.closed {
		return 0, hal.ErrClosed
	}
	got := 0
	for got < len(bufs) && q.count > 0 {
		s := &q.slots[q.head]
		q.head = (q.head + 1) % len(q.slots)
		q.count--
		if s.n > len(bufs[got]) {
			sizes[got] = -1
		} else {
			sizes[got] = copy(bufs[got], s.buf[:s.n])
		}
		got++
	}
	q.writable.Broadcast()
	return got, nil
}
