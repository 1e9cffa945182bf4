package netstack

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/anykernel/anykernel/hal"
)

// gsoMaxSize is the largest TCP segment (headers included, link header
// excluded) handed to a NIC with segmentation offload. gVisor's TCP keeps its
// payload below this minus a worst-case TCP header, so an IPv6 packet built
// from it still fits the 64 KiB IP limit that hal.MaxOffloadFrame encodes.
const gsoMaxSize = 65535 - header.IPv6MinimumSize - 20

// rxBatch is how many frames one ReadFrames call may return.
const rxBatch = 32

// link is a gVisor link endpoint (below link/ethernet) over a hal.NIC. It
// sends and receives whole Ethernet frames; the Ethernet header itself is
// added and parsed by the ethernet.Endpoint wrapped around it.
//
// Offload: when the NIC is a hal.OffloadNIC and offload is enabled, TCP
// segments leave as up to 64 KiB super-frames with a virtio-net header
// (GSO with partial checksums, the device finishes them), and received
// frames carry a header telling whether the device validated or left
// partial their checksums. The stack's capability for receive-checksum
// offload is then claimed, and frames the device did not vouch for are
// verified here in software, so no frame reaches the stack unchecked.
type link struct {
	nic   hal.NIC
	batch hal.BatchNIC   // nil unless the NIC batches and no offload is in use
	off   hal.OffloadNIC // nil unless offload is in use
	vec   hal.VecNIC     // nil unless offload is in use and the NIC scatters
	ol    hal.Offload    // enabled offloads
	mtu   uint32         // Ethernet payload MTU plus the Ethernet header
	mac   tcpip.LinkAddress
	stats *linkStats

	mu         sync.Mutex
	dispatcher stack.NetworkDispatcher
	started    bool
	closed     bool
	onClose    func()

	wg      sync.WaitGroup
	closing atomic.Bool

	txPool sync.Pool // *[]byte frame buffers
	txq    *txQueue  // nil when packets are written on the sender's goroutine
}

// linkStats counts what the link endpoint dropped and why.
type linkStats struct {
	rxFrames      atomic.Uint64
	rxDropShort   atomic.Uint64
	rxDropCsum    atomic.Uint64
	rxDropHdr     atomic.Uint64
	rxErrors      atomic.Uint64
	txFrames      atomic.Uint64
	txErrors      atomic.Uint64
	txSuperFrames atomic.Uint64
}

var (
	_ stack.LinkEndpoint = (*link)(nil)
	_ stack.GSOEndpoint  = (*link)(nil)
)

// newLink builds the endpoint. want is the offload set to ask an
// OffloadNIC for; zero means plain frames. queueLen > 0 puts a transmit
// queue of that many packets, drained by a goroutine of its own, between
// the stack and the NIC; zero has the stack write on its own goroutines.
func newLink(nic hal.NIC, want hal.Offload, queueLen int) (*link, error) {
	l := &link{
		nic:   nic,
		mtu:   uint32(nic.MTU() + hal.EthernetHeaderLen),
		stats: &linkStats{},
	}
	m := nic.MAC()
	l.mac = tcpip.LinkAddress(m[:])
	if off, ok := nic.(hal.OffloadNIC); ok && want != 0 {
		// Only whole, consistent sets are useful: TSO needs the
		// transmit checksum, receive TSO needs the receive checksum.
		got, err := off.SetOffload(want & off.SupportedOffload())
		if err != nil {
			return nil, err
		}
		if got&hal.OffloadTxCsum == 0 {
			got &^= hal.OffloadTxTSO4 | hal.OffloadTxTSO6 | hal.OffloadTxUSO
		}
		if got&hal.OffloadRxCsum == 0 {
			got &^= hal.OffloadRxTSO4 | hal.OffloadRxTSO6
		}
		if got != 0 {
			l.off = off
			l.ol = got
			l.vec, _ = nic.(hal.VecNIC)
		} else if _, err := off.SetOffload(0); err != nil {
			return nil, err
		}
	}
	if b, ok := nic.(hal.BatchNIC); ok && l.off == nil {
		l.batch = b
	}
	bufLen := int(l.mtu)
	if l.off != nil {
		bufLen = hal.MaxOffloadFrame
	}
	l.txPool.New = func() any {
		b := make([]byte, bufLen)
		return &b
	}
	if queueLen > 0 {
		l.txq = newTxQueue(queueLen)
	}
	return l, nil
}

// MTU implements stack.LinkEndpoint: the largest frame without FCS.
func (l *link) MTU() uint32 { return l.mtu }

// SetMTU implements stack.LinkEndpoint. A hal.NIC's MTU is fixed.
func (l *link) SetMTU(uint32) {}

// MaxHeaderLength implements stack.LinkEndpoint; ethernet.Endpoint adds its own.
func (l *link) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint.
func (l *link) LinkAddress() tcpip.LinkAddress { return l.mac }

// SetLinkAddress implements stack.LinkEndpoint. A hal.NIC's MAC is fixed.
func (l *link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint. Transmit checksum offload is
// never claimed: gVisor would then leave UDP and ICMP checksums unwritten.
// TCP uses the device's checksum engine through GSO instead.
func (l *link) Capabilities() stack.LinkEndpointCapabilities {
	if l.ol&hal.OffloadRxCsum != 0 {
		return stack.CapabilityRXChecksumOffload
	}
	return 0
}

// GSOMaxSize implements stack.GSOEndpoint.
func (l *link) GSOMaxSize() uint32 {
	if l.tso() {
		return gsoMaxSize
	}
	return 0
}

// SupportedGSO implements stack.GSOEndpoint.
func (l *link) SupportedGSO() stack.SupportedGSO {
	if l.tso() {
		return stack.HostGSOSupported
	}
	return stack.GSONotSupported
}

// tso reports whether TCP segmentation offload is on for both families that
// gVisor may hand down; GSO is per endpoint, not per family, so both are
// needed.
func (l *link) tso() bool {
	need := hal.OffloadTxCsum | hal.OffloadTxTSO4 | hal.OffloadTxTSO6
	return l.ol&need == need
}

// Attach implements stack.LinkEndpoint. The first attach starts the receive
// goroutine; attaching nil detaches the stack.
func (l *link) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dispatcher = d
	if d != nil && !l.started && !l.closed {
		l.started = true
		l.wg.Add(1)
		go l.readLoop()
		if l.txq != nil {
			l.wg.Add(1)
			go l.txLoop()
		}
	}
}

// IsAttached implements stack.LinkEndpoint.
func (l *link) IsAttached() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dispatcher != nil
}

// Wait implements stack.LinkEndpoint: it waits for the receive goroutine.
func (l *link) Wait() { l.wg.Wait() }

// ARPHardwareType implements stack.LinkEndpoint.
func (l *link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.LinkEndpoint; ethernet.Endpoint does it.
func (l *link) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint; ethernet.Endpoint does it.
func (l *link) ParseHeader(*stack.PacketBuffer) bool { return true }

// SetOnCloseAction implements stack.LinkEndpoint.
func (l *link) SetOnCloseAction(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onClose = f
}

// Close implements stack.LinkEndpoint: it closes the NIC, which unblocks the
// receive goroutine.
func (l *link) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	f := l.onClose
	l.mu.Unlock()
	l.closing.Store(true)
	if f != nil {
		f()
	}
	if l.txq != nil {
		l.txq.close()
	}
	_ = l.nic.Close()
}

func (l *link) currentDispatcher() stack.NetworkDispatcher {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dispatcher
}

// WritePackets implements stack.LinkWriter. Each packet already carries its
// Ethernet header.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	if l.txq != nil {
		return l.txq.push(pkts.AsSlice())
	}
	return l.write(pkts.AsSlice())
}

// write sends packets to the NIC in order, stopping at the first failure.
func (l *link) write(all []*stack.PacketBuffer) (int, tcpip.Error) {
	if l.batch != nil && len(all) > 1 {
		return l.writeBatch(all)
	}
	for i, pkt := range all {
		if err := l.writeOne(pkt); err != nil {
			return i, err
		}
	}
	return len(all), nil
}

func (l *link) getBuf() *[]byte { return l.txPool.Get().(*[]byte) }

// flatten copies pkt's bytes into b and returns the frame.
func flatten(pkt *stack.PacketBuffer, b []byte) ([]byte, bool) {
	n := 0
	for _, s := range pkt.AsSlices() {
		if n+len(s) > len(b) {
			return nil, false
		}
		n += copy(b[n:], s)
	}
	return b[:n], true
}

func (l *link) writeOne(pkt *stack.PacketBuffer) tcpip.Error {
	if l.vec != nil {
		v := vecPool.Get().(*vecWrite)
		defer v.put()
		if pieces, ok := gather(pkt, v.iov[:0]); ok {
			return l.writeVec(pkt, &v.h, pieces)
		}
	}
	bp := l.getBuf()
	defer l.txPool.Put(bp)
	frame, ok := flatten(pkt, *bp)
	if !ok {
		l.stats.txErrors.Add(1)
		return &tcpip.ErrMessageTooLong{}
	}
	var err error
	if l.off != nil {
		var h hal.NetHdr
		l.netHdr(pkt, &h)
		if h.GSOType != hal.GSONone {
			l.stats.txSuperFrames.Add(1)
		}
		err = l.off.WriteFrameHdr(&h, frame)
	} else {
		err = l.nic.WriteFrame(frame)
	}
	if err != nil {
		l.stats.txErrors.Add(1)
		return txError(err)
	}
	l.stats.txFrames.Add(1)
	return nil
}

// gather appends pkt's bytes to out as slices of the packet's own buffers,
// reporting false if they need more than cap(out) slices.
func gather(pkt *stack.PacketBuffer, out [][]byte) ([][]byte, bool) {
	views, skip := pkt.AsViewList()
	for v := views.Front(); v != nil; v = v.Next() {
		s := v.AsSlice()
		if skip >= len(s) {
			skip -= len(s)
			continue
		}
		s, skip = s[skip:], 0
		if len(out) == cap(out) {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// vecWrite is the scratch space of one gather write. Both fields escape
// through the hal.VecNIC call, so they are pooled rather than declared on
// the stack, which would cost two allocations per frame.
type vecWrite struct {
	h   hal.NetHdr
	iov [hal.MaxVecBufs][]byte
}

var vecPool = sync.Pool{New: func() any { return new(vecWrite) }}

// put clears v's references to packet buffers and returns it to the pool.
func (v *vecWrite) put() {
	*v = vecWrite{}
	vecPool.Put(v)
}

// writeVec sends pkt straight from its buffers, which gather cut into
// pieces: no copy into a frame buffer. h is zeroed scratch space.
func (l *link) writeVec(pkt *stack.PacketBuffer, h *hal.NetHdr, pieces [][]byte) tcpip.Error {
	l.netHdr(pkt, h)
	if h.GSOType != hal.GSONone {
		l.stats.txSuperFrames.Add(1)
	}
	if err := l.vec.WriteFrameHdrVec(h, pieces); err != nil {
		l.stats.txErrors.Add(1)
		return txError(err)
	}
	l.stats.txFrames.Add(1)
	return nil
}

func (l *link) writeBatch(all []*stack.PacketBuffer) (int, tcpip.Error) {
	bufs := make([]*[]byte, 0, len(all))
	frames := make([][]byte, 0, len(all))
	defer func() {
		for _, b := range bufs {
			l.txPool.Put(b)
		}
	}()
	for _, pkt := range all {
		bp := l.getBuf()
		bufs = append(bufs, bp)
		f, ok := flatten(pkt, *bp)
		if !ok {
			break
		}
		frames = append(frames, f)
	}
	n, err := l.batch.WriteFrames(frames)
	l.stats.txFrames.Add(uint64(n))
	switch {
	case err != nil:
		l.stats.txErrors.Add(1)
		return n, txError(err)
	case n < len(all):
		// A packet too large for the frame buffer stopped the batch.
		l.stats.txErrors.Add(1)
		return n, &tcpip.ErrMessageTooLong{}
	}
	return n, nil
}

// netHdr fills h for a packet about to be written to an OffloadNIC. Only
// TCP segments built for host GSO carry a partial checksum; every other
// packet is complete and travels with an all-zero header.
func (l *link) netHdr(pkt *stack.PacketBuffer, h *hal.NetHdr) {
	g := pkt.GSOOptions
	if g.Type == stack.GSONone || !g.NeedsCsum {
		return
	}
	l3 := hal.EthernetHeaderLen + int(g.L3HdrLen)
	if pkt.NetworkProtocolNumber == header.IPv4ProtocolNumber {
		// IPv4 options lengthen the header beyond the GSO's minimum.
		l3 = hal.EthernetHeaderLen + len(pkt.NetworkHeader().Slice())
	}
	h.Flags = hal.NetHdrFNeedsCsum
	h.CsumStart = uint16(l3)
	h.CsumOffset = g.CsumOffset
	if pkt.Data().Size() <= int(g.MSS) {
		return
	}
	switch g.Type {
	case stack.GSOTCPv4:
		h.GSOType = hal.GSOTCPv4
	case stack.GSOTCPv6:
		h.GSOType = hal.GSOTCPv6
	default:
		return
	}
	h.GSOSize = g.MSS
	h.HdrLen = uint16(l3 + len(pkt.TransportHeader().Slice()))
}

// txError maps a NIC write failure to the tcpip error gVisor expects.
func txError(err error) tcpip.Error {
	switch {
	case errors.Is(err, hal.ErrClosed):
		return &tcpip.ErrClosedForSend{}
	case errors.Is(err, hal.ErrFrameSize):
		return &tcpip.ErrMessageTooLong{}
	}
	return &tcpip.ErrAborted{}
}

// readLoop receives frames until the NIC is closed.
func (l *link) readLoop() {
	defer l.wg.Done()
	switch {
	case l.vec != nil:
		l.readVec()
	case l.off != nil:
		l.readOffload()
	case l.batch != nil:
		l.readBatch()
	default:
		l.readPlain()
	}
}

// readFailed decides what a receive error means: true stops the loop.
// Errors other than a closed device are counted and retried after a short
// pause that grows while they persist, so a broken device cannot spin a CPU.
func (l *link) readFailed(err error, streak *int) bool {
	if errors.Is(err, hal.ErrClosed) || l.closing.Load() {
		return true
	}
	l.stats.rxErrors.Add(1)
	*streak++
	if *streak > 3 {
		d := time.Duration(*streak) * time.Millisecond
		if d > 100*time.Millisecond {
			d = 100 * time.Millisecond
		}
		time.Sleep(d)
	}
	return false
}

func (l *link) readPlain() {
	buf := make([]byte, l.mtu)
	streak := 0
	for {
		n, err := l.nic.ReadFrame(buf)
		if err != nil {
			if l.readFailed(err, &streak) {
				return
			}
			continue
		}
		streak = 0
		l.deliver(buf[:n], nil)
	}
}

func (l *link) readBatch() {
	bufs := make([][]byte, rxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, l.mtu)
	}
	sizes := make([]int, rxBatch)
	streak := 0
	for {
		n, err := l.batch.ReadFrames(bufs, sizes)
		if err != nil {
			if l.readFailed(err, &streak) {
				return
			}
			continue
		}
		streak = 0
		for i := range n {
			if sizes[i] < 0 || sizes[i] > len(bufs[i]) {
				l.stats.rxDropShort.Add(1)
				continue
			}
			l.deliver(bufs[i][:sizes[i]], nil)
		}
	}
}

func (l *link) readOffload() {
	buf := make([]byte, hal.MaxOffloadFrame)
	streak := 0
	for {
		n, h, err := l.off.ReadFrameHdr(buf)
		if err != nil {
			if l.readFailed(err, &streak) {
				return
			}
			continue
		}
		streak = 0
		l.deliver(buf[:n], &h)
	}
}

// smallPayload is the payload length up to which readVec copies a frame's
// payload into a chunk of its own size and keeps its 64 KiB receive chunk
// for the next frame: small frames (ACKs, the tail of a burst) would
// otherwise each pin, and clear, a 64 KiB chunk.
const smallPayload = 4096

// readVec receives frames straight into gVisor buffers: the first splitAt
// bytes of a frame into a small header chunk, the rest into a 64 KiB
// payload chunk that is handed to the stack without a copy. Together they
// hold hal.MaxOffloadFrame. This is frameBuffer's layout without the copy.
func (l *link) readVec() {
	var (
		hv, pv *buffer.View
		bufs   [2][]byte
		streak int
	)
	defer func() {
		if hv != nil {
			hv.Release()
		}
		if pv != nil {
			pv.Release()
		}
	}()
	for {
		if hv == nil {
			hv = buffer.NewViewSize(splitAt)
		}
		if pv == nil {
			pv = buffer.NewViewSize(buffer.MaxChunkSize)
		}
		bufs[0], bufs[1] = hv.AsSlice(), pv.AsSlice()
		n, h, err := l.vec.ReadFrameHdrVec(bufs[:])
		if err != nil {
			if l.readFailed(err, &streak) {
				return
			}
			continue
		}
		streak = 0
		l.stats.rxFrames.Add(1)
		if !l.rxCheck(n, &h) {
			continue
		}
		if h.Flags&(hal.NetHdrFNeedsCsum|hal.NetHdrFDataValid) == 0 {
			// Rare: the device vouched for nothing, so the checksums
			// are verified here, on a flat copy.
			frame := make([]byte, n)
			copy(frame[copy(frame, bufs[0]):], bufs[1])
			if !checksumsValid(frame) {
				l.stats.rxDropCsum.Add(1)
				continue
			}
		}
		d := l.currentDispatcher()
		if d == nil {
			continue
		}
		var payload buffer.Buffer
		switch p := n - splitAt; {
		case p <= 0:
			hv.CapLength(n)
			payload = buffer.MakeWithView(hv)
		case p <= smallPayload:
			payload = buffer.MakeWithView(hv)
			payload.Append(buffer.NewViewWithData(bufs[1][:p]))
		default:
			payload = buffer.MakeWithView(hv)
			pv.CapLength(p)
			payload.Append(pv)
			pv = nil
		}
		hv = nil
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload})
		d.DeliverNetworkPacket(0, pkt)
		pkt.DecRef()
	}
}

// rxCheck applies deliver's checks that need only the frame's length and
// header, counting what it drops.
func (l *link) rxCheck(n int, h *hal.NetHdr) bool {
	if n < hal.EthernetHeaderLen {
		l.stats.rxDropShort.Add(1)
		return false
	}
	if h.Validate(n) != nil {
		l.stats.rxDropHdr.Add(1)
		return false
	}
	return true
}

// deliver hands one received frame to the stack. The frame is copied, so
// the caller may reuse its buffer at once.
func (l *link) deliver(frame []byte, h *hal.NetHdr) {
	l.stats.rxFrames.Add(1)
	if len(frame) < hal.EthernetHeaderLen {
		l.stats.rxDropShort.Add(1)
		return
	}
	if l.ol&hal.OffloadRxCsum != 0 {
		// The stack skips checksum checks on this endpoint: make sure
		// that is true of every frame it gets.
		if h == nil || h.Validate(len(frame)) != nil {
			l.stats.rxDropHdr.Add(1)
			return
		}
		if h.Flags&(hal.NetHdrFNeedsCsum|hal.NetHdrFDataValid) == 0 && !checksumsValid(frame) {
			l.stats.rxDropCsum.Add(1)
			return
		}
	}
	d := l.currentDispatcher()
	if d == nil {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		Payload: frameBuffer(frame),
	})
	// ethernet.Endpoint reads the protocol from the header it parses.
	d.DeliverNetworkPacket(0, pkt)
	pkt.DecRef()
}

// splitAt is where frameBuffer cuts a large frame: beyond the longest
// Ethernet, IPv4 and TCP headers (14+60+60 bytes), leaving room for some
// IPv6 extension headers.
const splitAt = 256

// frameBuffer copies a frame into a gVisor buffer. A large frame is stored
// as two chunks, headers and payload: the IP layer pulls its header up
// while holding a reference to it, which makes gVisor copy the whole chunk
// the header lives in, and that chunk had better be small. It also keeps
// every chunk within gVisor's pooled sizes.
func frameBuffer(frame []byte) buffer.Buffer {
	if len(frame) <= 2*splitAt {
		return buffer.MakeWithData(frame)
	}
	b := buffer.MakeWithData(frame[:splitAt])
	b.Append(buffer.NewViewWithData(frame[splitAt:]))
	return b
}

// txQueue holds packets between the stack and the link's transmit
// goroutine, so that the goroutines producing them (an application's Write,
// gVisor's TCP processor sending ACKs) go on with protocol work while the
// transmit goroutine spends its time in the device write; on a TAP that
// write includes the kernel's own receive processing. A full queue makes
// producers wait, as a device write on their own goroutine would: nothing
// is dropped.
type txQueue struct {
	limit int
	wake  chan struct{} // holds a token while packets may be pending
	done  chan struct{} // closed by close

	mu      sync.Mutex
	space   sync.Cond             // on mu: the queue was emptied or closed
	pending []*stack.PacketBuffer // each holding a reference of its own
	closed  bool
}

func newTxQueue(limit int) *txQueue {
	q := &txQueue{limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{})}
	q.space.L = &q.mu
	return q
}

// push queues pkts in order, waiting for room as needed. It reports how
// many it queued: fewer than len(pkts) only once the queue is closed.
func (q *txQueue) push(pkts []*stack.PacketBuffer) (int, tcpip.Error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, pkt := range pkts {
		for len(q.pending) >= q.limit && !q.closed {
			q.space.Wait()
		}
		if q.closed {
			return i, &tcpip.ErrClosedForSend{}
		}
		q.pending = append(q.pending, pkt.IncRef())
		if len(q.pending) == 1 {
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
	}
	return len(pkts), nil
}

// take swaps the pending packets for spare (emptied), returning them.
func (q *txQueue) take(spare []*stack.PacketBuffer) []*stack.PacketBuffer {
	q.mu.Lock()
	defer q.mu.Unlock()
	got := q.pending
	q.pending = spare[:0]
	q.space.Broadcast()
	return got
}

func (q *txQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
		q.space.Broadcast()
	}
}

// txLoop writes queued packets until the link is closed. Packets still
// queued then are dropped.
func (l *link) txLoop() {
	defer l.wg.Done()
	q := l.txq
	var batch []*stack.PacketBuffer
	release := func() {
		for i, pkt := range batch {
			pkt.DecRef()
			batch[i] = nil
		}
	}
	for {
		select {
		case <-q.wake:
		case <-q.done:
			batch = q.take(batch)
			release()
			return
		}
		batch = q.take(batch)
		for sent := 0; sent < len(batch); {
			n, err := l.write(batch[sent:])
			sent += n
			if err != nil {
				sent++ // counted by write; the stack recovers it as a loss
			}
		}
		release()
	}
}
