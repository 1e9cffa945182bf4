package model

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/virtio"
)

// NetOptions configures a modelled virtio-net device. The zero value
// offers MAC, MTU, STATUS, mergeable receive buffers and whatever offloads
// the NIC supports.
type NetOptions struct {
	// NoMergeable withholds VIRTIO_NET_F_MRG_RXBUF.
	NoMergeable bool
	// NoOffload withholds the checksum and segmentation features.
	NoOffload bool
	// Backlog is how many received frames wait for receive buffers; zero
	// means 128.
	Backlog int
}

// Net is the device side of virtio-net (virtio 1.2 §5.1) over a hal.NIC:
// frames the driver transmits are written to the NIC, frames the NIC
// receives fill the driver's receive buffers.
type Net struct {
	nic  hal.NIC
	off  hal.OffloadNIC // nil if the NIC has no offload
	o    NetOptions
	link atomic.Bool
	dev  atomic.Pointer[Device]

	free, full chan *netFrame
	closeOnce  sync.Once
	done       chan struct{}

	// Drops counts frames the device dropped: transmitted frames the NIC
	// refused, received frames no receive buffer could hold.
	Drops atomic.Uint64
}

type netFrame struct {
	b   []byte
	n   int
	hdr hal.NetHdr
}

// NewNet models a virtio-net device over nic and starts receiving from it.
// Close stops it and closes nic.
func NewNet(nic hal.NIC, o NetOptions) *Net {
	if o.Backlog <= 0 {
		o.Backlog = 128
	}
	n := &Net{nic: nic, o: o, free: make(chan *netFrame, o.Backlog), full: make(chan *netFrame, o.Backlog), done: make(chan struct{})}
	if off, ok := nic.(hal.OffloadNIC); ok && !o.NoOffload {
		n.off = off
	}
	n.link.Store(true)
	if l, ok := nic.(hal.LinkStateNIC); ok {
		n.link.Store(l.LinkUp())
	}
	for range o.Backlog {
		n.free <- &netFrame{b: make([]byte, hal.MaxOffloadFrame)}
	}
	go n.pump()
	return n
}

// pump moves frames from the NIC to the backlog.
func (n *Net) pump() {
	for {
		var f *netFrame
		select {
		case f = <-n.free:
		case <-n.done:
			return
		}
		var err error
		if n.off != nil {
			f.n, f.hdr, err = n.off.ReadFrameHdr(f.b)
		} else {
			f.n, err = n.nic.ReadFrame(f.b)
			f.hdr = hal.NetHdr{}
		}
		if err != nil {
			select {
			case <-n.done:
				return
			default:
			}
			n.free <- f
			continue
		}
		n.full <- f
	}
}

// Close stops the device model and closes its NIC.
func (n *Net) Close() error {
	n.closeOnce.Do(func() { close(n.done) })
	return n.nic.Close()
}

// SetLink changes the link status the device reports and raises a
// configuration interrupt, as a cable pulled mid-flight.
func (n *Net) SetLink(up bool) {
	n.link.Store(up)
	if d := n.dev.Load(); d != nil {
		d.ConfigChanged()
	}
}

// Bind tells the backend its device, for configuration interrupts.
func (n *Net) Bind(d *Device) { n.dev.Store(d) }

// DeviceID implements Backend.
func (n *Net) DeviceID() virtio.DeviceID { return virtio.DeviceNet }

// NumQueues implements Backend: one receive and one transmit queue.
func (n *Net) NumQueues() int { return 2 }

// Features implements Backend.
func (n *Net) Features() uint64 {
	f := uint64(1)<<virtio.VIRTIO_NET_F_MAC | 1<<virtio.VIRTIO_NET_F_MTU | 1<<virtio.VIRTIO_NET_F_STATUS
	if !n.o.NoMergeable {
		f |= 1 << virtio.VIRTIO_NET_F_MRG_RXBUF
	}
	if n.off != nil {
		s := n.off.SupportedOffload()
		for _, m := range netOffloadMap {
			if s&m.ability != 0 {
				f |= 1 << m.bit
			}
		}
	}
	return f
}

// netOffloadMap relates virtio-net features to NIC abilities: the driver's
// HOST_* (device transmits) are the NIC's Tx abilities, GUEST_* its Rx.
var netOffloadMap = [...]struct {
	bit     uint
	ability hal.Offload
}{
	{virtio.VIRTIO_NET_F_CSUM, hal.OffloadTxCsum},
	{virtio.VIRTIO_NET_F_HOST_TSO4, hal.OffloadTxTSO4},
	{virtio.VIRTIO_NET_F_HOST_TSO6, hal.OffloadTxTSO6},
	{virtio.VIRTIO_NET_F_HOST_USO, hal.OffloadTxUSO},
	{virtio.VIRTIO_NET_F_GUEST_CSUM, hal.OffloadRxCsum},
	{virtio.VIRTIO_NET_F_GUEST_TSO4, hal.OffloadRxTSO4},
	{virtio.VIRTIO_NET_F_GUEST_TSO6, hal.OffloadRxTSO6},
}

// ConfigLen implements Backend.
func (n *Net) ConfigLen() int { return 12 }

// Config implements Backend.
func (n *Net) Config(p []byte) {
	clear(p)
	mac := n.nic.MAC()
	copy(p[virtio.VirtioNetCfgMAC:], mac[:])
	if n.link.Load() {
		binary.LittleEndian.PutUint16(p[virtio.VirtioNetCfgStatus:], virtio.VIRTIO_NET_S_LINK_UP)
	}
	binary.LittleEndian.PutUint16(p[virtio.VirtioNetCfgMaxVQP:], 1)
	binary.LittleEndian.PutUint16(p[virtio.VirtioNetCfgMTU:], uint16(min(n.nic.MTU(), 65535)))
}

// Start implements Backend.
func (n *Net) Start(r *Run) {
	if n.off != nil {
		var want hal.Offload
		for _, m := range netOffloadMap {
			if r.Features&(1<<m.bit) != 0 {
				want |= m.ability
			}
		}
		_, _ = n.off.SetOffload(want)
	}
	mrg := r.Features&(1<<virtio.VIRTIO_NET_F_MRG_RXBUF) != 0
	r.Go(func() { n.transmit(r, r.Queues[virtio.VirtioNetTxQ]) })
	r.Go(func() { n.receive(r, r.Queues[virtio.VirtioNetRxQ], mrg) })
}

func (n *Net) transmit(r *Run, q *VQ) {
	var c Chain
	buf := make([]byte, virtio.VirtioNetHdrLen+hal.MaxOffloadFrame)
	hdr := new(hal.NetHdr) // one for the run: WriteFrameHdr takes a pointer
	for {
		for {
			ok, err := q.Pop(&c)
			if err != nil || !ok {
				break
			}
			r.Delay()
			if c.ReadLen >= virtio.VirtioNetHdrLen && c.ReadLen <= len(buf) {
				m := c.CopyFrom(0, buf[:c.ReadLen])
				if m < c.ReadLen {
					// The driver reset the queue since the chain was
					// popped: the buffer is no longer the device's to
					// read (§2.6.1.1.1), and the frame is gone with it.
					continue
				}
				*hdr, _ = hal.DecodeNetHdr(buf)
				frame := buf[virtio.VirtioNetHdrLen:m]
				var err error
				if n.off != nil {
					err = n.off.WriteFrameHdr(hdr, frame)
				} else if *hdr != (hal.NetHdr{}) {
					err = errDropped
				} else {
					err = n.nic.WriteFrame(frame)
				}
				if err != nil {
					n.Drops.Add(1)
				}
			} else {
				n.Drops.Add(1)
			}
			q.Put(&c, 0)
		}
		q.Publish()
		if !q.Wait(r.Stop) {
			return
		}
	}
}

var errDropped = errorf("frame dropped")

// receive fills the driver's receive buffers with frames from the
// backlog. It lives as long as the device run: a queue the driver broke
// (§2.1.2) or reset (§2.6.1) holds the frame in hand until the driver
// resets and re-enables the queue, or resets the device, as a real device
// keeps receiving into its own memory while its queue is out of service.
func (n *Net) receive(r *Run, q *VQ, mrg bool) {
	chains := make([]Chain, 64)
	var hdr [virtio.VirtioNetHdrLen]byte
	for {
		var f *netFrame
		select {
		case f = <-n.full:
		case <-r.Stop:
			return
		}
		got, ok := n.gather(r, q, chains, virtio.VirtioNetHdrLen+f.n, mrg)
		if !ok {
			n.free <- f
			return
		}
		room := 0
		for i := range got {
			room += chains[i].WriteLen
		}
		if room < virtio.VirtioNetHdrLen+f.n {
			// No buffers can hold the frame: drop it, returning the
			// buffers unused.
			n.Drops.Add(1)
			for i := range got {
				q.Put(&chains[i], 0)
			}
			q.Publish()
			n.free <- f
			continue
		}
		r.Delay()
		f.hdr.Encode(hdr[:])
		binary.LittleEndian.PutUint16(hdr[hal.NetHdrLen:], uint16(got))
		// Spread header and frame over the chains in order. If the
		// driver resets the queue meanwhile, the copies and used entries
		// stop (CopyTo, Put) and the frame is lost with the buffers, as
		// the reset demands.
		data := f.b[:f.n]
		for i := range got {
			c := &chains[i]
			w := 0
			if i == 0 {
				w = c.CopyTo(0, hdr[:])
			}
			k := c.CopyTo(w, data)
			data = data[k:]
			q.Put(c, w+k)
		}
		q.Publish()
		n.free <- f
	}
}

// gather pops receive chains until they hold need bytes (one chain
// without mrg, at most len(chains) with it) and returns how many it took.
// Every chain it returns belongs to the queue as the driver set it up
// last: chains popped before a queue reset are forgotten, since the reset
// took them back, and a queue that failed is waited on until the driver
// resets it. ok is false once the run stops. (A reset after the last pop
// still takes the chains back; the caller's copies then come to nothing.)
func (n *Net) gather(r *Run, q *VQ, chains []Chain, need int, mrg bool) (got int, ok bool) {
	room := 0
	for room < need && got < len(chains) && (mrg || got == 0) {
		popped, err := q.Pop(&chains[got])
		if err != nil {
			// The driver broke the queue; the device has asked for a
			// reset. Wait for it, holding the frame.
			got, room = 0, 0
			if !q.Wait(r.Stop) {
				return 0, false
			}
			continue
		}
		if !popped {
			q.Publish()
			if !q.Wait(r.Stop) {
				return 0, false
			}
			continue
		}
		if got > 0 && chains[got].epoch != chains[0].epoch {
			// The queue was reset since the first chain was popped:
			// those before this one are no longer the device's.
			chains[0], chains[got] = chains[got], chains[0]
			got, room = 0, 0
		}
		room += chains[got].WriteLen
		got++
	}
	return got, true
}
