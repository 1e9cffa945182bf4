package model

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
