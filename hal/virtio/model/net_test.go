package model

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/internal/ring"
)

// TestNetReceiveAfterQueueError: a driver breaks the receive queue with a
// looping chain while a frame waits for it. The device asks for a reset
// (§2.1.2) and holds the frame; once the driver resets that queue alone
// (VIRTIO_F_RING_RESET, §2.6.1) and gives it a good buffer, the frame
// arrives in it, whole. The device run goes on serving the queue: it does
// not give up on it for the rest of its life.
func TestNetReceiveAfterQueueError(t *testing.T) {
	const size = 8
	x, y := mem.NewNICPair(mem.NICOptions{})
	defer y.Close()
	be := NewNet(x, NetOptions{NoMergeable: true, NoOffload: true})
	defer be.Close()
	m := NewMemory()
	dev := NewDevice(m, be, Options{QueueSize: size})
	defer dev.Close()
	w := dev.MMIO()
	availOff, usedOff, ringBytes := ring.Layout(size)
	// setup gives queue q fresh rings and enables it.
	setup := func(q uint32) []byte {
		rings, bus, err := m.Alloc(ringBytes, 4096)
		require.NoError(t, err)
		setupQueue(w, q, size, bus, bus+uint64(availOff), bus+uint64(usedOff))
		return rings
	}
	// post offers descriptor 0 as the first available chain.
	post := func(rings []byte, d ring.Desc) {
		require.NoError(t, ring.WriteDesc(rings, 0, d))
		binary.LittleEndian.PutUint16(rings[availOff+ring.AvailRingOff(0):], 0)
		require.NoError(t, ring.Store16(rings[availOff:], ring.AvailIdxOff(), 1))
		w.Write32(mmioQueueNotify, virtio.VirtioNetRxQ)
	}
	w.Write32(mmioStatus, 1|2)
	w.Write32(mmioDriverFeaturesSel, 1)
	w.Write32(mmioDriverFeatures, 1|1<<(virtio.VIRTIO_F_RING_RESET-32)) // VERSION_1, RING_RESET
	w.Write32(mmioStatus, 1|2|8)
	rx := setup(virtio.VirtioNetRxQ)
	setup(virtio.VirtioNetTxQ)
	w.Write32(mmioStatus, 1|2|8|4)
	require.Equal(t, uint32(1|2|8|4), w.Read32(mmioStatus))

	buf, bufBus, err := m.Alloc(2048, 16)
	require.NoError(t, err)
	frame := make([]byte, 64)
	dst, src := x.MAC(), y.MAC()
	copy(frame, dst[:])
	copy(frame[6:], src[:])
	frame[12], frame[13], frame[14] = 0x88, 0xb5, 0x42
	require.NoError(t, y.WriteFrame(frame))

	const write, next = ring.VIRTQ_DESC_F_WRITE, ring.VIRTQ_DESC_F_NEXT
	post(rx, ring.Desc{Addr: bufBus, Len: 2048, Flags: write | next, Next: 0}) // a loop
	require.Eventually(t, func() bool { return dev.Err() != nil }, 10*time.Second, 100*time.Microsecond,
		"the device took a looping chain")
	require.ErrorIs(t, dev.Err(), ErrDriver)
	require.NotZero(t, w.Read32(mmioStatus)&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET)

	w.Write32(mmioQueueSel, virtio.VirtioNetRxQ)
	w.Write32(mmioQueueReset, 1)
	require.Zero(t, w.Read32(mmioQueueReset), "queue reset still in progress")
	require.Zero(t, w.Read32(mmioQueueReady), "queue still enabled after its reset")
	rx = setup(virtio.VirtioNetRxQ)
	post(rx, ring.Desc{Addr: bufBus, Len: 2048, Flags: write})

	used := rx[usedOff:]
	require.Eventually(t, func() bool {
		idx, err := ring.Load16(used, ring.UsedIdxOff())
		return err == nil && idx == 1
	}, 10*time.Second, 100*time.Microsecond, "the held frame never reached the reset queue")
	id, err := ring.Load32(used, ring.UsedElemOff(0))
	require.NoError(t, err)
	n, err := ring.Load32(used, ring.UsedElemOff(0)+4)
	require.NoError(t, err)
	require.Zero(t, id)
	require.Equal(t, uint32(virtio.VirtioNetHdrLen+len(frame)), n)
	require.Equal(t, frame, buf[virtio.VirtioNetHdrLen:n])
	// No offload, and num_buffers is 1 without VIRTIO_NET_F_MRG_RXBUF
	// (§5.1.6.4).
	want := make([]byte, virtio.VirtioNetHdrLen)
	want[virtio.VirtioNetHdrLen-2] = 1
	require.Equal(t, want, buf[:virtio.VirtioNetHdrLen])
}

// TestNetTransmitResetBetweenPopAndCopy: the driver resets the transmit
// queue (§2.6.1) after the device popped a frame's chain and before it
// copied the frame out. The copy then comes back empty, since the buffer is
// the driver's again (§2.6.1.1.1): the device drops the frame, nothing of it
// reaches the NIC, and the queue the driver sets up afresh carries the next
// frame whole.
//
// The reset is made from the run's fault hook, which the transmit path
// consults between taking a chain and reading it, so the race is hit on
// every run. It resets the queue as Device.queueReset does (disable) and,
// in the re-enabled cases, sets it up again as Device.queueReady does
// (enable), so the copy meets either a disabled queue or a newer one.
func TestNetTransmitResetBetweenPopAndCopy(t *testing.T) {
	cases := []struct {
		name      string
		reenable  bool // the queue is set up again before the copy
		noOffload bool // frames go through WriteFrame, not WriteFrameHdr
	}{
		{name: "reset", noOffload: true},
		{name: "reset-offload"},
		{name: "reset-and-reenabled", reenable: true, noOffload: true},
		{name: "reset-and-reenabled-offload", reenable: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const size = 8
			x, y := mem.NewNICPair(mem.NICOptions{})
			defer y.Close()
			be := NewNet(x, NetOptions{NoMergeable: true, NoOffload: tc.noOffload})
			defer be.Close()
			m := NewMemory()
			availOff, usedOff, ringBytes := ring.Layout(size)
			// rings allocates fresh rings for a queue.
			rings := func() ([]byte, uint64) {
				b, bus, err := m.Alloc(ringBytes, 4096)
				require.NoError(t, err)
				return b, bus
			}
			features := uint64(1)<<virtio.VIRTIO_F_VERSION_1 | 1<<virtio.VIRTIO_F_RING_RESET
			_, rxBus := rings()
			rxq, err := NewVQ(m, virtio.VirtioNetRxQ, size, features, rxBus, rxBus+uint64(availOff), rxBus+uint64(usedOff))
			require.NoError(t, err)
			oldTx, oldBus := rings()
			txq, err := NewVQ(m, virtio.VirtioNetTxQ, size, features, oldBus, oldBus+uint64(availOff), oldBus+uint64(usedOff))
			require.NoError(t, err)
			newTx, newBus := rings()
			enableNew := func() error {
				err := txq.enable(size, newBus, newBus+uint64(availOff), newBus+uint64(usedOff))
				txq.Kick()
				return err
			}

			// The hook runs on the transmit goroutine between Pop and
			// CopyFrom; only the first frame is interfered with. No frame
			// is received, so the receive side never consults it.
			var hooked atomic.Int32
			var hookErr error // set before resetDone is closed
			resetDone := make(chan struct{})
			r := &Run{
				Queues:   []*VQ{virtio.VirtioNetRxQ: rxq, virtio.VirtioNetTxQ: txq},
				Features: features,
				Stop:     make(chan struct{}),
				Faults: func() *Faults {
					if hooked.Add(1) == 1 {
						txq.disable()
						if tc.reenable {
							hookErr = enableNew()
						}
						close(resetDone)
					}
					return nil
				},
			}
			be.Start(r)
			defer func() {
				close(r.Stop)
				rxq.Kick()
				txq.Kick()
				r.wg.Wait()
			}()

			dst, src := y.MAC(), x.MAC()
			// post places a frame tagged tag as the first chain of the
			// transmit rings tx and notifies the queue.
			post := func(tx []byte, tag byte) []byte {
				buf, bus, err := m.Alloc(virtio.VirtioNetHdrLen+64, 16)
				require.NoError(t, err)
				frame := buf[virtio.VirtioNetHdrLen:]
				copy(frame, dst[:])
				copy(frame[6:], src[:])
				frame[12], frame[13] = 0x88, 0xb5
				for i := 14; i < len(frame); i++ {
					frame[i] = tag
				}
				require.NoError(t, ring.WriteDesc(tx, 0, ring.Desc{Addr: bus, Len: uint32(len(buf))}))
				binary.LittleEndian.PutUint16(tx[availOff+ring.AvailRingOff(0):], 0)
				require.NoError(t, ring.Store16(tx[availOff:], ring.AvailIdxOff(), 1))
				txq.Kick()
				return append([]byte(nil), frame...)
			}

			post(oldTx, 0xaa)
			select {
			case <-resetDone:
			case <-time.After(10 * time.Second):
				t.Fatal("the device never took the first frame's chain")
			}
			require.NoError(t, hookErr)
			if !tc.reenable {
				require.NoError(t, enableNew())
			}
			good := post(newTx, 0x55)

			newUsed := newTx[usedOff:]
			require.Eventually(t, func() bool {
				idx, err := ring.Load16(newUsed, ring.UsedIdxOff())
				return err == nil && idx == 1
			}, 10*time.Second, 100*time.Microsecond, "the frame after the reset was never completed")
			id, err := ring.Load32(newUsed, ring.UsedElemOff(0))
			require.NoError(t, err)
			require.Zero(t, id)
			idx, err := ring.Load16(oldTx[usedOff:], ring.UsedIdxOff())
			require.NoError(t, err)
			require.Zero(t, idx, "the chain the reset took back was completed")

			require.Equal(t, uint64(1), x.Stats().FramesOut, "frames the NIC was given")
			got := make([]byte, hal.MaxOffloadFrame)
			n, err := y.ReadFrame(got)
			require.NoError(t, err)
			require.Equal(t, good, got[:n], "the frame after the reset")
			require.Equal(t, int32(2), hooked.Load(), "the transmit path took two chains")
		})
	}
}
