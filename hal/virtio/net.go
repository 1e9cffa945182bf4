package virtio

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// NetOptions configures a virtio-net driver. The zero value is the
// default.
type NetOptions struct {
	// MAC is used if the device has no VIRTIO_NET_F_MAC; zero means a
	// random locally administered address.
	MAC hal.MAC
	// Clock times transmit waits; nil means the Go runtime's clock.
	Clock hal.Clock
	// Timeout bounds a wait for a free transmit slot; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// RxQueueSize and TxQueueSize cap the queue sizes; zero means
	// DefaultQueueSize.
	RxQueueSize, TxQueueSize int
}

// Net is a virtio-net driver (virtio 1.2 §5.1) with one receive and one
// transmit queue. It implements hal.NIC, hal.BatchNIC, hal.OffloadNIC,
// hal.VecNIC and hal.LinkStateNIC.
//
// Receive buffers are 2 KiB and merged with VIRTIO_NET_F_MRG_RXBUF;
// without it each buffer holds a whole frame. A read copies the frame from
// them into the caller's buffer (or, with ReadFrameHdrVec, scatters it
// across the caller's buffers). Transmit copies each frame with its header
// into one buffer of its own (gathering it from the caller's pieces with
// WriteFrameHdrVec), so WriteFrame returns at once; several frames written
// together cost one notification. The vectored methods accept any number
// of buffers, also more than hal.MaxVecBufs. Checksum
// and segmentation offload use the 12-byte version 1 header: transmit
// abilities (VIRTIO_NET_F_CSUM, HOST_TSO4/6, HOST_USO) are negotiated at
// start and granted by SetOffload; receive abilities (GUEST_CSUM,
// GUEST_TSO4/6) change what the device may deliver, so SetOffload
// reinitialises the device to change them.
type Net struct {
	d         *device
	rx, tx    *queue
	mac       hal.MAC
	mtu       int
	offered   uint64
	supported hal.Offload
	enabled   hal.Offload
	mrg       bool
	link      atomic.Bool

	rxMu     sync.Mutex
	rxBufLen int
	rxBufs   [][]byte
	rxBus    []uint64
	rxOf     []int // buffer on the ring at each head
	rxSpare  []int // buffers not on the ring
	rxSeg    [1]Seg
	rxW      *waiter

	txMu     sync.Mutex
	txBufLen int
	txBufs   [][]byte
	txBus    []uint64
	txOf     []int
	txFree   []int
	txSeg    [1]Seg
	txW      *waiter
}

var (
	_ hal.NIC          = (*Net)(nil)
	_ hal.BatchNIC     = (*Net)(nil)
	_ hal.OffloadNIC   = (*Net)(nil)
	_ hal.VecNIC       = (*Net)(nil)
	_ hal.LinkStateNIC = (*Net)(nil)
)

const (
	netRxBufLen  = 2048
	netGuestMask = 1<<VIRTIO_NET_F_GUEST_CSUM | 1<<VIRTIO_NET_F_GUEST_TSO4 | 1<<VIRTIO_NET_F_GUEST_TSO6
	netWanted    = 1<<VIRTIO_NET_F_MAC | 1<<VIRTIO_NET_F_MTU | 1<<VIRTIO_NET_F_STATUS | 1<<VIRTIO_NET_F_MRG_RXBUF |
		1<<VIRTIO_F_EVENT_IDX | 1<<VIRTIO_F_RING_RESET
)

// netTx maps transmit abilities to features; netRx receive ones.
var (
	netTx = [...]struct {
		bit     uint
		ability hal.Offload
	}{
		{VIRTIO_NET_F_CSUM, hal.OffloadTxCsum},
		{VIRTIO_NET_F_HOST_TSO4, hal.OffloadTxTSO4},
		{VIRTIO_NET_F_HOST_TSO6, hal.OffloadTxTSO6},
		{VIRTIO_NET_F_HOST_USO, hal.OffloadTxUSO},
	}
	netRx = [...]struct {
		bit     uint
		ability hal.Offload
	}{
		{VIRTIO_NET_F_GUEST_CSUM, hal.OffloadRxCsum},
		{VIRTIO_NET_F_GUEST_TSO4, hal.OffloadRxTSO4},
		{VIRTIO_NET_F_GUEST_TSO6, hal.OffloadRxTSO6},
	}
)

// NewNet initialises the virtio-net device behind t.
func NewNet(t Transport, o NetOptions) (*Net, error) {
	d := newDevice(t, "virtio-net", o.Clock, o.Timeout)
	n := &Net{d: d, rxW: newWaiter(d.clock), txW: newWaiter(d.clock)}
	n.offered = t.DeviceFeatures()
	want := uint64(netWanted)
	if n.offered&Bit(VIRTIO_NET_F_CSUM) != 0 {
		n.supported |= hal.OffloadTxCsum
		want |= Bit(VIRTIO_NET_F_CSUM)
		for _, m := range netTx[1:] {
			if n.offered&Bit(m.bit) != 0 {
				n.supported |= m.ability
				want |= Bit(m.bit)
			}
		}
	}
	if n.offered&Bit(VIRTIO_NET_F_GUEST_CSUM) != 0 {
		n.supported |= hal.OffloadRxCsum
		for _, m := range netRx[1:] {
			if n.offered&Bit(m.bit) != 0 {
				n.supported |= m.ability
			}
		}
	}
	f, err := negotiate(t, DeviceNet, want, 0)
	if err != nil {
		return nil, err
	}
	d.features.Store(f)
	n.mrg = d.has(VIRTIO_NET_F_MRG_RXBUF)
	if err := n.readConfig(o.MAC); err != nil {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		return nil, err
	}
	d.onConfig = n.configChanged

	rxSize, txSize := o.RxQueueSize, o.TxQueueSize
	if rxSize <= 0 {
		rxSize = DefaultQueueSize
	}
	if txSize <= 0 {
		txSize = DefaultQueueSize
	}
	n.rxBufLen = netRxBufLen
	if !n.mrg {
		n.rxBufLen = VirtioNetHdrLen + n.mtu + hal.EthernetHeaderLen
		if n.supported&(hal.OffloadRxTSO4|hal.OffloadRxTSO6) != 0 {
			n.rxBufLen = VirtioNetHdrLen + hal.MaxOffloadFrame
			rxSize = min(rxSize, 64)
		}
	}
	n.txBufLen = VirtioNetHdrLen + n.mtu + hal.EthernetHeaderLen
	if n.supported&(hal.OffloadTxTSO4|hal.OffloadTxTSO6|hal.OffloadTxUSO) != 0 {
		n.txBufLen = VirtioNetHdrLen + hal.MaxOffloadFrame
		txSize = min(txSize, 64)
	}
	fail := func(err error) (*Net, error) {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		d.close()
		return nil, err
	}
	if n.rx, err = newQueue(t, f, VirtioNetRxQ, rxSize, 0, "virtio-net"); err != nil {
		return fail(err)
	}
	d.queues = append(d.queues, n.rx)
	if n.tx, err = newQueue(t, f, VirtioNetTxQ, txSize, 0, "virtio-net"); err != nil {
		return fail(err)
	}
	d.queues = append(d.queues, n.tx)
	if n.rxBufs, n.rxBus, err = d.allocBufs(n.rx.n, n.rxBufLen, 64); err != nil {
		return fail(err)
	}
	if n.txBufs, n.txBus, err = d.allocBufs(n.tx.n, n.txBufLen, 64); err != nil {
		return fail(err)
	}
	n.rxOf = make([]int, n.rx.n)
	n.rxSpare = make([]int, 0, n.rx.n)
	n.txOf = make([]int, n.tx.n)
	n.txFree = make([]int, 0, n.tx.n)
	n.resetBuffers()
	if err := d.start(); err != nil {
		return fail(err)
	}
	n.kickRx()
	return n, nil
}

// resetBuffers makes every transmit buffer free and puts every receive
// buffer on the (empty) receive ring, without notifying.
func (n *Net) resetBuffers() {
	n.txFree = n.txFree[:0]
	for i := range n.txBufs {
		n.txFree = append(n.txFree, i)
	}
	n.rxSpare = n.rxSpare[:0]
	for i := range n.rxBufs {
		n.rxSpare = append(n.rxSpare, i)
	}
	n.rx.mu.Lock()
	n.refillLocked()
	n.rx.mu.Unlock()
	n.tx.mu.Lock()
	n.tx.quiet()
	n.tx.mu.Unlock()
}

// refillLocked gives the spare receive buffers to the device. The caller
// holds n.rx.mu.
func (n *Net) refillLocked() {
	for len(n.rxSpare) > 0 {
		k := n.rxSpare[len(n.rxSpare)-1]
		n.rxSeg[0] = Seg{Addr: n.rxBus[k], Len: uint32(n.rxBufLen), Write: true}
		head, err := n.rx.add(n.rxSeg[:])
		if err != nil {
			return
		}
		n.rxOf[head] = k
		n.rxSpare = n.rxSpare[:len(n.rxSpare)-1]
	}
}

// maybeRefill gives spare receive buffers back to the device once the used
// entries already published are consumed. Reposting a head while entries
// are pending would let a duplicate used entry for it pass for the
// completion of the new chain. (rxPop reposts too before it waits.)
func (n *Net) maybeRefill() {
	q := n.rx
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.pending() {
		n.refillLocked()
	}
}

func (n *Net) kickRx() {
	n.rx.mu.Lock()
	kick := n.rx.kick()
	n.rx.mu.Unlock()
	if kick {
		n.rx.notify()
	}
}

func (n *Net) readConfig(mac hal.MAC) error {
	var m hal.MAC
	var status, mtu uint16
	err := readConfig(n.d.t, func(c Regs) {
		for i := range m {
			m[i] = c.Read8(uint32(VirtioNetCfgMAC + i))
		}
		status = c.Read16(VirtioNetCfgStatus)
		mtu = c.Read16(VirtioNetCfgMTU)
	})
	if err != nil {
		return err
	}
	switch {
	case n.d.has(VIRTIO_NET_F_MAC):
		n.mac = m
	case mac != hal.MAC{}:
		n.mac = mac
	default:
		_, _ = rand.Read(n.mac[:])
		n.mac[0] = n.mac[0]&^1 | 2 // unicast, locally administered
	}
	n.mtu = hal.DefaultMTU
	if n.d.has(VIRTIO_NET_F_MTU) {
		if mtu < hal.MinMTU {
			return fmt.Errorf("virtio-net: device MTU %d below %d: %w", mtu, hal.MinMTU, ErrDevice)
		}
		n.mtu = int(mtu)
	}
	n.link.Store(!n.d.has(VIRTIO_NET_F_STATUS) || status&VIRTIO_NET_S_LINK_UP != 0)
	return nil
}

// configChanged re-reads the link status after a configuration interrupt.
func (n *Net) configChanged() {
	if !n.d.has(VIRTIO_NET_F_STATUS) {
		return
	}
	var status uint16
	if readConfig(n.d.t, func(c Regs) { status = c.Read16(VirtioNetCfgStatus) }) == nil {
		n.link.Store(status&VIRTIO_NET_S_LINK_UP != 0)
	}
}

// MTU implements hal.NIC.
func (n *Net) MTU() int { return n.mtu }

// MAC implements hal.NIC.
func (n *Net) MAC() hal.MAC { return n.mac }

// LinkUp implements hal.LinkStateNIC.
func (n *Net) LinkUp() bool { return n.link.Load() }

// Features returns the negotiated feature bits.
func (n *Net) Features() uint64 { return n.d.features.Load() }

// SupportedOffload implements hal.OffloadNIC.
func (n *Net) SupportedOffload() hal.Offload { return n.supported }

// SetOffload implements hal.OffloadNIC. Changing the receive abilities
// resets the device: frames in flight are dropped.
func (n *Net) SetOffload(want hal.Offload) (hal.Offload, error) {
	n.rxMu.Lock()
	defer n.rxMu.Unlock()
	n.txMu.Lock()
	defer n.txMu.Unlock()
	if n.d.isClosed() {
		return 0, fmt.Errorf("virtio-net: set offload: %w", hal.ErrClosed)
	}
	want &= n.supported
	if want&hal.OffloadTxCsum == 0 {
		want &^= hal.OffloadTxTSO4 | hal.OffloadTxTSO6 | hal.OffloadTxUSO
	}
	if want&hal.OffloadRxCsum == 0 {
		want &^= hal.OffloadRxTSO4 | hal.OffloadRxTSO6
	}
	if !n.mrg && n.rxBufLen < VirtioNetHdrLen+hal.MaxOffloadFrame {
		want &^= hal.OffloadRxTSO4 | hal.OffloadRxTSO6
	}
	var guest uint64
	for _, m := range netRx {
		if want&m.ability != 0 {
			guest |= Bit(m.bit)
		}
	}
	if cur := n.d.features.Load(); guest != cur&netGuestMask {
		f := cur&^netGuestMask | guest
		err := n.d.reinit(f, func() error {
			n.resetBuffers()
			return nil
		})
		if err != nil {
			return n.enabled, fmt.Errorf("virtio-net: set offload %v: %w", want, err)
		}
		n.kickRx()
	}
	n.enabled = want
	return want, nil
}

// ReadFrame implements hal.NIC.
func (n *Net) ReadFrame(p []byte) (int, error) {
	k, _, err := n.ReadFrameHdr(p)
	return k, err
}

// ReadFrameHdr implements hal.OffloadNIC.
func (n *Net) ReadFrameHdr(p []byte) (int, hal.NetHdr, error) {
	return n.ReadFrameHdrVec([][]byte{p})
}

// ReadFrameHdrVec implements hal.VecNIC: the frame is copied from the
// receive buffers straight into bufs.
func (n *Net) ReadFrameHdrVec(bufs [][]byte) (int, hal.NetHdr, error) {
	if err := n.recoverDevice(); err != nil {
		return 0, hal.NetHdr{}, fmt.Errorf("virtio-net: read: %w", err)
	}
	n.rxMu.Lock()
	defer n.rxMu.Unlock()
	k, hdr, err := n.readFrame(bufs, true)
	n.kickRx()
	return k, hdr, err
}

// ReadFrames implements hal.BatchNIC.
func (n *Net) ReadFrames(bufs [][]byte, sizes []int) (int, error) {
	if len(sizes) < len(bufs) {
		return 0, fmt.Errorf("virtio-net: read frames: %d sizes for %d buffers", len(sizes), len(bufs))
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	if err := n.recoverDevice(); err != nil {
		return 0, fmt.Errorf("virtio-net: read: %w", err)
	}
	n.rxMu.Lock()
	defer n.rxMu.Unlock()
	defer n.kickRx()
	got := 0
	for got < len(bufs) {
		k, _, err := n.readFrame(bufs[got:got+1], got == 0)
		switch {
		case err == nil:
			sizes[got] = k
		case errors.Is(err, io.ErrShortBuffer):
			sizes[got] = -1
		case err == errNoFrame:
			return got, nil
		default:
			if got > 0 {
				return got, nil
			}
			return 0, err
		}
		got++
	}
	return got, nil
}

var errNoFrame = errors.New("virtio-net: no frame")

// rxPop takes the next used receive buffer, waiting if wait is set (with
// the receive timeout if timed).
func (n *Net) rxPop(wait, timed bool) (uint16, uint32, error) {
	q := n.rx
	var expired <-chan struct{}
	if timed {
		n.rxW.arm(n.d.timeout)
		defer n.rxW.disarm()
		expired = n.rxW.expired
	}
	for {
		q.mu.Lock()
		head, ln, ok, err := q.pop()
		if err != nil || ok {
			q.mu.Unlock()
			return head, ln, err
		}
		// Nothing is pending, so reposting cannot let a duplicate pass;
		// give the device every spare buffer before waiting.
		n.refillLocked()
		kick := q.kick()
		pending := wait && q.arm()
		q.mu.Unlock()
		if kick {
			q.notify()
		}
		if !wait {
			return 0, 0, errNoFrame
		}
		if pending {
			continue
		}
		select {
		case <-q.signal:
		case <-n.d.closed:
			return 0, 0, hal.ErrClosed
		case <-expired:
			return 0, 0, fmt.Errorf("rest of a merged frame not delivered within %v: %w", n.d.timeout, hal.ErrTimeout)
		}
	}
}

// recycle returns the buffer at head to the spare list. The caller holds
// n.rxMu.
func (n *Net) recycle(head uint16) {
	n.rxSpare = append(n.rxSpare, n.rxOf[head])
}

// scatter copies bytes into a list of buffers, front to back, skipping
// empty ones.
type scatter struct {
	bufs [][]byte
	i    int // buffer being filled
	off  int // bytes of bufs[i] filled
}

// write appends src; the caller has checked that the buffers have room.
func (s *scatter) write(src []byte) {
	for len(src) > 0 && s.i < len(s.bufs) {
		k := copy(s.bufs[s.i][s.off:], src)
		src = src[k:]
		s.off += k
		if s.off == len(s.bufs[s.i]) {
			s.i++
			s.off = 0
		}
	}
}

// readFrame reads one frame into bufs; the caller holds n.rxMu and kicks
// the receive queue afterwards.
func (n *Net) readFrame(bufs [][]byte, wait bool) (int, hal.NetHdr, error) {
	if n.d.isClosed() {
		return 0, hal.NetHdr{}, fmt.Errorf("virtio-net: read: %w", hal.ErrClosed)
	}
	if err := n.recoverRx(); err != nil {
		return 0, hal.NetHdr{}, fmt.Errorf("virtio-net: read: %w", err)
	}
	head, ln, err := n.rxPop(wait, false)
	if err != nil {
		if err == errNoFrame {
			return 0, hal.NetHdr{}, err
		}
		return 0, hal.NetHdr{}, fmt.Errorf("virtio-net: read: %w", err)
	}
	defer n.maybeRefill()
	room := 0
	for _, b := range bufs {
		room += len(b)
	}
	w := scatter{bufs: bufs}
	buf := n.rxBufs[n.rxOf[head]]
	n.recycle(head)
	if ln < VirtioNetHdrLen {
		return 0, hal.NetHdr{}, fmt.Errorf("virtio-net: read: used length %d shorter than the header: %w", ln, ErrDevice)
	}
	hdr, _ := hal.DecodeNetHdr(buf)
	nb := 1
	if n.mrg {
		nb = int(binary.LittleEndian.Uint16(buf[hal.NetHdrLen:]))
		if nb < 1 || nb > n.rx.n {
			return 0, hal.NetHdr{}, fmt.Errorf("virtio-net: read: frame in %d buffers on a queue of %d: %w", nb, n.rx.n, ErrDevice)
		}
	}
	total := int(ln) - VirtioNetHdrLen
	fits := total <= room
	if fits {
		w.write(buf[VirtioNetHdrLen:ln])
	}
	for i := 1; i < nb; i++ {
		head, ln, err := n.rxPop(true, true)
		if err != nil {
			return 0, hal.NetHdr{}, fmt.Errorf("virtio-net: read: %w", err)
		}
		buf := n.rxBufs[n.rxOf[head]]
		n.recycle(head)
		if fits && total+int(ln) <= room {
			w.write(buf[:ln])
		} else {
			fits = false
		}
		total += int(ln)
	}
	if !fits {
		return 0, hal.NetHdr{}, fmt.Errorf("virtio-net: read: %d-byte frame into %d bytes of buffers: %w", total, room, io.ErrShortBuffer)
	}
	if total < hal.EthernetHeaderLen {
		return 0, hal.NetHdr{}, fmt.Errorf("virtio-net: read: %d-byte frame from the device: %w", total, hal.ErrFrameSize)
	}
	if n.enabled&(hal.OffloadRxCsum|hal.OffloadRxTSO4|hal.OffloadRxTSO6) == 0 {
		hdr = hal.NetHdr{}
	}
	return total, hdr, nil
}

// recoverDevice resets and reinitialises the whole device when a queue
// broke in a way a queue reset cannot mend (DEVICE_NEEDS_RESET, or no
// VIRTIO_F_RING_RESET). It breaks both queues first so that a reader or
// writer waiting on the other one lets go of its lock. The caller holds
// neither n.rxMu nor n.txMu.
func (n *Net) recoverDevice() error {
	err := n.rx.broken()
	if err == nil {
		err = n.tx.broken()
	}
	if err == nil || n.d.isClosed() {
		return nil
	}
	if n.d.has(VIRTIO_F_RING_RESET) && !errors.Is(err, ErrNeedsReset) {
		return nil // each direction resets its own queue
	}
	n.rx.breakWith(err)
	n.tx.breakWith(err)
	n.rxMu.Lock()
	defer n.rxMu.Unlock()
	n.txMu.Lock()
	defer n.txMu.Unlock()
	if n.d.isClosed() || n.rx.broken() == nil && n.tx.broken() == nil {
		return nil
	}
	if rerr := n.d.reinit(n.d.features.Load(), func() error { n.resetBuffers(); return nil }); rerr != nil {
		return fmt.Errorf("%w (and resetting the device failed: %w)", err, rerr)
	}
	n.kickRx()
	return nil
}

// recoverRx resets a broken receive queue (VIRTIO_F_RING_RESET). The
// caller holds n.rxMu.
func (n *Net) recoverRx() error {
	err := n.rx.broken()
	if err == nil || n.d.isClosed() || errors.Is(err, ErrNeedsReset) {
		return err
	}
	if rerr := n.rx.reset(); rerr != nil {
		return err
	}
	n.rxSpare = n.rxSpare[:0]
	for i := range n.rxBufs {
		n.rxSpare = append(n.rxSpare, i)
	}
	n.rx.mu.Lock()
	n.refillLocked()
	n.rx.mu.Unlock()
	n.kickRx()
	return nil
}

// recoverTx resets a broken transmit queue. The caller holds n.txMu.
func (n *Net) recoverTx() error {
	err := n.tx.broken()
	if err == nil || n.d.isClosed() || errors.Is(err, ErrNeedsReset) {
		return err
	}
	if rerr := n.tx.reset(); rerr != nil {
		return err
	}
	n.txFree = n.txFree[:0]
	for i := range n.txBufs {
		n.txFree = append(n.txFree, i)
	}
	n.tx.mu.Lock()
	n.tx.quiet()
	n.tx.mu.Unlock()
	return nil
}

// WriteFrame implements hal.NIC.
func (n *Net) WriteFrame(p []byte) error {
	return n.WriteFrameHdrVec(nil, [][]byte{p})
}

// WriteFrameHdr implements hal.OffloadNIC.
func (n *Net) WriteFrameHdr(hdr *hal.NetHdr, p []byte) error {
	return n.WriteFrameHdrVec(hdr, [][]byte{p})
}

// WriteFrameHdrVec implements hal.VecNIC: the pieces are copied straight
// into one transmit buffer.
func (n *Net) WriteFrameHdrVec(hdr *hal.NetHdr, bufs [][]byte) error {
	if err := n.recoverDevice(); err != nil {
		return fmt.Errorf("virtio-net: write: %w", err)
	}
	n.txMu.Lock()
	defer n.txMu.Unlock()
	err := n.send(hdr, bufs)
	n.kickTx()
	return err
}

// WriteFrames implements hal.BatchNIC: one notification for the batch.
func (n *Net) WriteFrames(frames [][]byte) (int, error) {
	if err := n.recoverDevice(); err != nil {
		return 0, fmt.Errorf("virtio-net: write: %w", err)
	}
	n.txMu.Lock()
	defer n.txMu.Unlock()
	defer n.kickTx()
	for i := range frames {
		if err := n.send(nil, frames[i:i+1]); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

func (n *Net) kickTx() {
	n.tx.mu.Lock()
	kick := n.tx.kick()
	n.tx.mu.Unlock()
	if kick {
		n.tx.notify()
	}
}

// checkHdr applies WriteFrameHdr's rules to hdr for a frame of l bytes and
// returns the largest frame it allows.
func (n *Net) checkHdr(hdr *hal.NetHdr, l int) (int, error) {
	if hdr == nil || *hdr == (hal.NetHdr{}) {
		return n.mtu + hal.EthernetHeaderLen, nil
	}
	if err := hdr.Validate(l); err != nil {
		return 0, err
	}
	if hdr.Flags&hal.NetHdrFRSCInfo != 0 {
		return 0, fmt.Errorf("header flag RSC_INFO on transmit: %w", errors.ErrUnsupported)
	}
	if hdr.Flags&hal.NetHdrFNeedsCsum != 0 && n.enabled&hal.OffloadTxCsum == 0 {
		return 0, fmt.Errorf("checksum offload not enabled: %w", errors.ErrUnsupported)
	}
	if hdr.GSOType&hal.GSOECN != 0 {
		return 0, fmt.Errorf("GSO with ECN: %w", errors.ErrUnsupported)
	}
	var need hal.Offload
	switch hdr.GSOType {
	case hal.GSONone:
		return n.mtu + hal.EthernetHeaderLen, nil
	case hal.GSOTCPv4:
		need = hal.OffloadTxTSO4
	case hal.GSOTCPv6:
		need = hal.OffloadTxTSO6
	case hal.GSOUDPL4:
		need = hal.OffloadTxUSO
	default:
		return 0, fmt.Errorf("GSO type %d: %w", hdr.GSOType, errors.ErrUnsupported)
	}
	if n.enabled&need == 0 {
		return 0, fmt.Errorf("%v not enabled: %w", need, errors.ErrUnsupported)
	}
	if hdr.Flags&hal.NetHdrFNeedsCsum == 0 {
		return 0, fmt.Errorf("segmentation without NEEDS_CSUM: %w", errors.ErrUnsupported)
	}
	return hal.MaxOffloadFrame, nil
}

// send places the frame formed by bufs on the transmit ring; the caller
// holds n.txMu and kicks afterwards.
func (n *Net) send(hdr *hal.NetHdr, bufs [][]byte) error {
	if n.d.isClosed() {
		return fmt.Errorf("virtio-net: write: %w", hal.ErrClosed)
	}
	l := 0
	for _, p := range bufs {
		l += len(p)
	}
	maxLen, err := n.checkHdr(hdr, l)
	if err != nil {
		return fmt.Errorf("virtio-net: write: %w", err)
	}
	if l < hal.EthernetHeaderLen || l > maxLen || VirtioNetHdrLen+l > n.txBufLen {
		return fmt.Errorf("virtio-net: write: %d-byte frame (limit %d): %w", l, maxLen, hal.ErrFrameSize)
	}
	if err := n.recoverTx(); err != nil {
		return fmt.Errorf("virtio-net: write: %w", err)
	}
	q := n.tx
	q.mu.Lock()
	timed := false
	for {
		if err := n.reapTx(); err != nil {
			q.mu.Unlock()
			return fmt.Errorf("virtio-net: write: %w", err)
		}
		if len(n.txFree) > 0 {
			break
		}
		kick := q.kick() // frames of this batch may still be unannounced
		pending := q.arm()
		q.mu.Unlock()
		if kick {
			q.notify()
		}
		if !pending {
			if !timed {
				timed = true
				n.txW.arm(n.d.timeout)
				defer n.txW.disarm()
			}
			select {
			case <-q.signal:
			case <-n.d.closed:
				return fmt.Errorf("virtio-net: write: %w", hal.ErrClosed)
			case <-n.txW.expired:
				err := fmt.Errorf("no transmit slot freed within %v: %w", n.d.timeout, hal.ErrTimeout)
				q.breakWith(fmt.Errorf("%s: %w", q.name, err))
				return fmt.Errorf("virtio-net: write: %w", err)
			}
		}
		q.mu.Lock()
	}
	k := n.txFree[len(n.txFree)-1]
	buf := n.txBufs[k]
	if hdr != nil {
		h := *hdr
		h.Flags &^= hal.NetHdrFDataValid
		h.Encode(buf)
	} else {
		clear(buf[:hal.NetHdrLen])
	}
	binary.LittleEndian.PutUint16(buf[hal.NetHdrLen:], 0)
	// Copy what the pieces hold now: Len never exceeds what was copied,
	// even if a caller changes them under the call.
	off := VirtioNetHdrLen
	for _, p := range bufs {
		off += copy(buf[off:], p)
	}
	n.txSeg[0] = Seg{Addr: n.txBus[k], Len: uint32(off)}
	head, err := q.add(n.txSeg[:])
	if err != nil {
		q.mu.Unlock()
		return fmt.Errorf("virtio-net: write: %w", err)
	}
	n.txFree = n.txFree[:len(n.txFree)-1]
	n.txOf[head] = k
	q.quiet()
	q.mu.Unlock()
	return nil
}

// reapTx frees the transmit buffers the device is done with. The caller
// holds n.tx.mu.
func (n *Net) reapTx() error {
	for {
		head, _, ok, err := n.tx.pop()
		if err != nil || !ok {
			return err
		}
		n.txFree = append(n.txFree, n.txOf[head])
	}
}

// Close implements hal.NIC: it resets the device.
func (n *Net) Close() error {
	if n.d.shutdown() {
		n.rxMu.Lock()
		n.txMu.Lock()
		n.d.release()
		n.txMu.Unlock()
		n.rxMu.Unlock()
	}
	return nil
}
