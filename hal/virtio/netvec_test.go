package virtio_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

// guardFill is what guardedBufs holds before a read.
const guardFill = 0xA5

// guardedBufs are read buffers cut from one array, with guard bytes
// before, between and after them, so that a write outside them shows.
type guardedBufs struct {
	mem  []byte
	bufs [][]byte
	at   []int // offset of bufs[i] in mem
}

func newGuardedBufs(lens ...int) *guardedBufs {
	const gap = 16
	size := gap
	for _, l := range lens {
		size += l + gap
	}
	g := &guardedBufs{mem: make([]byte, size)}
	off := gap
	for _, l := range lens {
		g.bufs = append(g.bufs, g.mem[off:off+l:off+l])
		g.at = append(g.at, off)
		off += l + gap
	}
	g.fill()
	return g
}

func (g *guardedBufs) fill() {
	for i := range g.mem {
		g.mem[i] = guardFill
	}
}

// check reports a byte changed outside the buffers or, if n >= 0, outside
// the first n bytes of the frame scattered across them.
func (g *guardedBufs) check(n int) error {
	mayChange := make([]bool, len(g.mem))
	pos := 0
	for i, b := range g.bufs {
		for j := range b {
			mayChange[g.at[i]+j] = n < 0 || pos < n
			pos++
		}
	}
	for i, x := range g.mem {
		if x != guardFill && !mayChange[i] {
			return fmt.Errorf("byte %d of %d changed (frame of %d bytes in buffers %v)", i, len(g.mem), n, g.at)
		}
	}
	return nil
}

// frame returns the first n bytes scattered across the buffers.
func (g *guardedBufs) frame(n int) []byte {
	out := make([]byte, 0, n)
	for _, b := range g.bufs {
		out = append(out, b[:min(len(b), n-len(out))]...)
	}
	return out
}

// testFrame is a frame of size bytes from src to dst tagged with tag.
func testFrame(dst, src hal.MAC, tag byte, size int) []byte {
	f := make([]byte, size)
	copy(f, dst[:])
	copy(f[6:], src[:])
	f[12], f[13], f[14] = 0x88, 0xb5, tag
	for i := 15; i < size; i++ {
		f[i] = byte(i * 7)
	}
	return f
}

// TestNetVecMisbehavingDevice: receive faults surface through
// ReadFrameHdrVec as errors, never as a write outside the caller's
// buffers, and once the device behaves again frames arrive intact.
func TestNetVecMisbehavingDevice(t *testing.T) {
	noRingReset := model.Options{HideFeatures: virtio.Bit(virtio.VIRTIO_F_RING_RESET)}
	rxQ := uint64(1) << virtio.VirtioNetRxQ
	cases := []struct {
		name   string
		o      model.Options
		faults model.Faults
	}{
		{name: "used-length-beyond-buffer", faults: model.Faults{Queues: rxQ, UsedLenExtra: 1 << 16}},
		{name: "used-length-beyond-buffer/no-ring-reset", o: noRingReset, faults: model.Faults{Queues: rxQ, UsedLenExtra: 1 << 16}},
		{name: "used-length-just-beyond-buffer", faults: model.Faults{Queues: rxQ, UsedLenExtra: 2048}},
		{name: "used-id-out-of-range", faults: model.Faults{Queues: rxQ, BadUsedID: true}},
		{name: "used-id-out-of-range/no-ring-reset", o: noRingReset, faults: model.Faults{Queues: rxQ, BadUsedID: true}},
		{name: "duplicates", faults: model.Faults{Queues: rxQ, DuplicateUsed: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, y := mem.NewNICPair(mem.NICOptions{})
			defer y.Close()
			n, dev, _ := newNet(t, x, model.NetOptions{}, tc.o, virtio.NetOptions{Timeout: 10 * time.Second})
			defer n.Close()
			g := newGuardedBufs(6, 0, 8, 40, 2000)
			dev.SetFaults(tc.faults)
			var firstErr error
			for i := range 20 {
				want := testFrame(n.MAC(), y.MAC(), byte(i), 100+i)
				require.NoError(t, y.WriteFrame(want))
				g.fill()
				k, _, err := n.ReadFrameHdrVec(g.bufs)
				if err != nil {
					require.Zero(t, k)
					require.NoError(t, g.check(-1), "after %v", err)
					firstErr = err
					break
				}
				require.NoError(t, g.check(k))
				require.Equal(t, want, g.frame(k))
			}
			require.ErrorIs(t, firstErr, virtio.ErrDevice)

			// Frames the faulty device may have left queued are drained
			// first; then a fresh frame must arrive intact. The queue
			// reset the next read does drops whatever the device
			// delivered before it, so the peer sends until one arrives.
			dev.SetFaults(model.Faults{})
			want := testFrame(n.MAC(), y.MAC(), 200, 1514)
			defer resend(t, y, want)()
			for {
				g.fill()
				k, _, err := n.ReadFrameHdrVec(g.bufs)
				require.NoError(t, err)
				require.NoError(t, g.check(k))
				if got := g.frame(k); got[14] == 200 {
					require.Equal(t, want, got)
					break
				}
			}
		})
	}
}

// midFrameNet is a virtio-net device with VIRTIO_NET_F_MRG_RXBUF that
// delivers the first buffer of a frame it announces in two, waits until
// the driver has taken it and reposted the buffer (the reader is then
// waiting for the rest), and asks for a device reset. Once reset it
// delivers frame whole, in one buffer.
type midFrameNet struct {
	reset  func()
	frame  []byte
	starts atomic.Int32
}

func (m *midFrameNet) DeviceID() virtio.DeviceID { return virtio.DeviceNet }
func (m *midFrameNet) NumQueues() int            { return 2 }
func (m *midFrameNet) ConfigLen() int            { return 12 }
func (m *midFrameNet) Features() uint64 {
	return virtio.Bit(virtio.VIRTIO_NET_F_MAC) | virtio.Bit(virtio.VIRTIO_NET_F_MRG_RXBUF)
}
func (m *midFrameNet) Config(p []byte) {
	clear(p)
	copy(p, []byte{2, 0, 0, 0, 0, 1})
}

func (m *midFrameNet) Start(r *model.Run) {
	first := m.starts.Add(1) == 1
	rx := r.Queues[virtio.VirtioNetRxQ]
	pop := func(c *model.Chain) bool {
		for {
			ok, err := rx.Pop(c)
			if err != nil {
				return false
			}
			if ok {
				return true
			}
			if !rx.Wait(r.Stop) {
				return false
			}
		}
	}
	r.Go(func() {
		var hdr [virtio.VirtioNetHdrLen]byte
		var c model.Chain
		if !pop(&c) {
			return
		}
		if !first {
			binary.LittleEndian.PutUint16(hdr[10:], 1)
			c.CopyTo(c.CopyTo(0, hdr[:]), m.frame)
			rx.Put(&c, len(hdr)+len(m.frame))
			rx.Publish()
			<-r.Stop
			return
		}
		// Hold every other buffer, so that the next one popped is one
		// the driver reposted.
		for {
			var other model.Chain
			ok, err := rx.Pop(&other)
			if err != nil {
				return
			}
			if !ok {
				break
			}
		}
		binary.LittleEndian.PutUint16(hdr[10:], 2)
		n := c.CopyTo(0, hdr[:])
		c.CopyTo(n, bytes.Repeat([]byte{0x5A}, c.WriteLen-n))
		rx.Put(&c, c.WriteLen)
		rx.Publish()
		var again model.Chain
		if !pop(&again) {
			return
		}
		m.reset()
		<-r.Stop
	})
}

// TestNetVecResetMidFrame: a device reset while ReadFrameHdrVec waits for
// the rest of a merged frame ends the read with ErrNeedsReset and n = 0,
// without a write outside the caller's buffers; the next read mends the
// device and receives the next frame intact.
func TestNetVecResetMidFrame(t *testing.T) {
	cases := []struct {
		name string
		lens []int
	}{
		{name: "room-for-both-buffers", lens: []int{14, 0, 1000, 3200}},
		{name: "room-for-the-first-only", lens: []int{2036}},
		{name: "room-for-neither", lens: []int{7, 7, 100}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := testFrame(hal.MAC{2, 0, 0, 0, 0, 1}, hal.MAC{2, 0, 0, 0, 0, 2}, 9, 100)
			be := &midFrameNet{frame: want}
			tr, dev := newMMIO(t, be, model.Options{QueueSize: 16})
			be.reset = dev.RequestReset
			n, err := virtio.NewNet(tr, virtio.NetOptions{Timeout: 10 * time.Second})
			require.NoError(t, err)
			defer n.Close()

			g := newGuardedBufs(tc.lens...)
			k, _, err := n.ReadFrameHdrVec(g.bufs)
			require.ErrorIs(t, err, virtio.ErrNeedsReset)
			require.Zero(t, k)
			require.NoError(t, g.check(-1))

			g = newGuardedBufs(14, 0, 3, 200)
			k, _, err = n.ReadFrameHdrVec(g.bufs)
			require.NoError(t, err)
			require.NoError(t, g.check(k))
			require.Equal(t, want, g.frame(k))
			require.Equal(t, int32(2), be.starts.Load(), "device starts")
		})
	}
}

// TestNetVecMergedFrame scatters jumbo frames, which arrive in several
// merged receive buffers, across caller buffers whose boundaries fall
// anywhere, and gathers them from pieces.
func TestNetVecMergedFrame(t *testing.T) {
	const size = 9000 + hal.EthernetHeaderLen
	cases := []struct {
		name  string
		lens  []int
		short bool
	}{
		{name: "one-buffer", lens: []int{size}},
		{name: "unaligned", lens: []int{14, 0, 2000, 33, 5000, 4000}},
		{name: "buffer-boundaries-match", lens: []int{2036, 2048, 2048, 2048, 834}},
		{name: "byte-pieces-then-rest", lens: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, size}},
		{name: "one-byte-short", lens: []int{14, 4000, size - 4000 - 15}, short: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, y := mem.NewNICPair(mem.NICOptions{MTU: 9000})
			defer y.Close()
			n, _, _ := newNet(t, x, model.NetOptions{}, model.Options{}, virtio.NetOptions{})
			defer n.Close()

			want := testFrame(n.MAC(), y.MAC(), byte(i), size)
			require.NoError(t, y.WriteFrame(want))
			g := newGuardedBufs(tc.lens...)
			k, _, err := n.ReadFrameHdrVec(g.bufs)
			if tc.short {
				require.ErrorIs(t, err, io.ErrShortBuffer)
				require.Zero(t, k)
				require.NoError(t, g.check(-1))
				// The long frame is gone; the next one is next.
				next := testFrame(n.MAC(), y.MAC(), 100, 60)
				require.NoError(t, y.WriteFrame(next))
				g.fill()
				k, _, err = n.ReadFrameHdrVec(g.bufs)
				want = next
			}
			require.NoError(t, err)
			require.NoError(t, g.check(k))
			require.Equal(t, want, g.frame(k))

			// The same pieces, gathered, arrive as one frame.
			want = testFrame(y.MAC(), n.MAC(), byte(i), size)
			var pieces [][]byte
			rest := want
			for _, l := range tc.lens {
				l = min(l, len(rest))
				pieces = append(pieces, bytes.Clone(rest[:l]))
				rest = rest[l:]
			}
			if len(rest) > 0 {
				pieces = append(pieces, bytes.Clone(rest))
			}
			require.NoError(t, n.WriteFrameHdrVec(nil, pieces))
			got := make([]byte, size+100)
			k, err = y.ReadFrame(got)
			require.NoError(t, err)
			require.Equal(t, want, got[:k])
		})
	}
}
