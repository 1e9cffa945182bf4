package model

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/internal/ring"
)

// vqRig is a queue of 8 with guest memory for chains.
type vqRig struct {
	mem            *Memory
	rings          []byte
	bus            uint64
	availOff       int
	buf, tbl       []byte
	bufBus, tblBus uint64
}

func newRig(t *testing.T) *vqRig {
	r := &vqRig{mem: NewMemory()}
	var err error
	var size int
	r.availOff, _, size = ring.Layout(8)
	r.rings, r.bus, err = r.mem.Alloc(size, 4096)
	require.NoError(t, err)
	r.buf, r.bufBus, err = r.mem.Alloc(256, 16)
	require.NoError(t, err)
	r.tbl, r.tblBus, err = r.mem.Alloc(16*4, 16)
	require.NoError(t, err)
	return r
}

func (r *vqRig) desc(i int, d ring.Desc) { _ = ring.WriteDesc(r.rings[:16*8], i, d) }

func (r *vqRig) post(heads ...uint16) {
	for i, h := range heads {
		binary.LittleEndian.PutUint16(r.rings[r.availOff+4+2*i:], h)
	}
	binary.LittleEndian.PutUint16(r.rings[r.availOff+2:], uint16(len(heads)))
}

// TestVQRejectsBadChains: every way a driver can break a chain is an error
// wrapping ErrDriver, and a good chain next to them is accepted.
func TestVQRejectsBadChains(t *testing.T) {
	const next, write, indirect = ring.VIRTQ_DESC_F_NEXT, ring.VIRTQ_DESC_F_WRITE, ring.VIRTQ_DESC_F_INDIRECT
	cases := []struct {
		name     string
		indirect bool
		setup    func(r *vqRig)
		ok       bool
	}{
		{name: "good", ok: true, setup: func(r *vqRig) {
			r.desc(0, ring.Desc{Addr: r.bufBus, Len: 16, Flags: next, Next: 1})
			r.desc(1, ring.Desc{Addr: r.bufBus + 16, Len: 1, Flags: write})
			r.post(0)
		}},
		{name: "head-out-of-range", setup: func(r *vqRig) { r.post(8) }},
		{name: "link-out-of-range", setup: func(r *vqRig) {
			r.desc(0, ring.Desc{Addr: r.bufBus, Len: 16, Flags: next, Next: 9})
			r.post(0)
		}},
		{name: "loop", setup: func(r *vqRig) {
			r.desc(0, ring.Desc{Addr: r.bufBus, Len: 16, Flags: next, Next: 1})
			r.desc(1, ring.Desc{Addr: r.bufBus, Len: 16, Flags: next, Next: 0})
			r.post(0)
		}},
		{name: "address-outside-memory", setup: func(r *vqRig) {
			r.desc(0, ring.Desc{Addr: 0xdead0000, Len: 16})
			r.post(0)
		}},
		{name: "length-past-buffer", setup: func(r *vqRig) {
			r.desc(0, ring.Desc{Addr: r.bufBus, Len: 257})
			r.post(0)
		}},
		{name: "readable-after-writable", setup: func(r *vqRig) {
			r.desc(0, ring.Desc{Addr: r.bufBus, Len: 16, Flags: write | next, Next: 1})
			r.desc(1, ring.Desc{Addr: r.bufBus, Len: 16})
			r.post(0)
		}},
		{name: "available-index-jumps", setup: func(r *vqRig) {
			binary.LittleEndian.PutUint16(r.rings[r.availOff+2:], 100)
		}},
		{name: "indirect-not-negotiated", setup: func(r *vqRig) {
			r.desc(0, ring.Desc{Addr: r.tblBus, Len: 32, Flags: indirect})
			r.post(0)
		}},
		{name: "indirect-good", indirect: true, ok: true, setup: func(r *vqRig) {
			_ = ring.WriteDesc(r.tbl, 0, ring.Desc{Addr: r.bufBus, Len: 16, Flags: next, Next: 1})
			_ = ring.WriteDesc(r.tbl, 1, ring.Desc{Addr: r.bufBus + 16, Len: 4, Flags: write})
			r.desc(0, ring.Desc{Addr: r.tblBus, Len: 32, Flags: indirect})
			r.post(0)
		}},
		{name: "indirect-nested", indirect: true, setup: func(r *vqRig) {
			_ = ring.WriteDesc(r.tbl, 0, ring.Desc{Addr: r.tblBus, Len: 32, Flags: indirect})
			r.desc(0, ring.Desc{Addr: r.tblBus, Len: 32, Flags: indirect})
			r.post(0)
		}},
		{name: "indirect-odd-length", indirect: true, setup: func(r *vqRig) {
			r.desc(0, ring.Desc{Addr: r.tblBus, Len: 20, Flags: indirect})
			r.post(0)
		}},
		{name: "indirect-with-next", indirect: true, setup: func(r *vqRig) {
			r.desc(0, ring.Desc{Addr: r.tblBus, Len: 32, Flags: indirect | next, Next: 1})
			r.post(0)
		}},
		{name: "indirect-loop", indirect: true, setup: func(r *vqRig) {
			_ = ring.WriteDesc(r.tbl, 0, ring.Desc{Addr: r.bufBus, Len: 16, Flags: next, Next: 1})
			_ = ring.WriteDesc(r.tbl, 1, ring.Desc{Addr: r.bufBus, Len: 16, Flags: next, Next: 0})
			r.desc(0, ring.Desc{Addr: r.tblBus, Len: 32, Flags: indirect})
			r.post(0)
		}},
		{name: "indirect-link-out-of-table", indirect: true, setup: func(r *vqRig) {
			_ = ring.WriteDesc(r.tbl, 0, ring.Desc{Addr: r.bufBus, Len: 16, Flags: next, Next: 2})
			r.desc(0, ring.Desc{Addr: r.tblBus, Len: 32, Flags: indirect})
			r.post(0)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			var f uint64
			if tc.indirect {
				f = 1 << virtio.VIRTIO_F_INDIRECT_DESC
			}
			_, usedOff, _ := ring.Layout(8)
			q, err := NewVQ(r.mem, 0, 8, f, r.bus, r.bus+uint64(r.availOff), r.bus+uint64(usedOff))
			require.NoError(t, err)
			tc.setup(r)
			var c Chain
			ok, err := q.Pop(&c)
			if tc.ok {
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, 16, c.ReadLen)
				require.Positive(t, c.WriteLen)
				return
			}
			require.ErrorIs(t, err, ErrDriver)
			_, err = q.Pop(&c)
			require.ErrorIs(t, err, ErrDriver, "the queue stays stopped")
		})
	}
}

// TestDeviceNeedsResetOnBadDriver: a driver that posts a looping chain
// makes the device set DEVICE_NEEDS_RESET and raise a configuration
// interrupt (virtio 1.2 §2.1.2).
func TestDeviceNeedsResetOnBadDriver(t *testing.T) {
	m := NewMemory()
	dev := NewDevice(m, NewRNG(constEntropy{}, RNGOptions{}), Options{QueueSize: 8})
	defer dev.Close()
	w := dev.MMIO()
	availOff, usedOff, size := ring.Layout(8)
	rings, bus, err := m.Alloc(size, 4096)
	require.NoError(t, err)
	buf, bufBus, err := m.Alloc(64, 16)
	require.NoError(t, err)
	_ = buf
	w.Write32(mmioStatus, 1|2)
	w.Write32(mmioDriverFeaturesSel, 1)
	w.Write32(mmioDriverFeatures, 1) // VIRTIO_F_VERSION_1
	w.Write32(mmioStatus, 1|2|8)
	require.Equal(t, uint32(1|2|8), w.Read32(mmioStatus))
	setupQueue(w, 0, 8, bus, bus+uint64(availOff), bus+uint64(usedOff))
	w.Write32(mmioStatus, 1|2|8|4)

	_ = ring.WriteDesc(rings, 0, ring.Desc{Addr: bufBus, Len: 8, Flags: ring.VIRTQ_DESC_F_WRITE | ring.VIRTQ_DESC_F_NEXT, Next: 0})
	binary.LittleEndian.PutUint16(rings[availOff+4:], 0)
	require.NoError(t, ring.Store16(rings[availOff:], 2, 1))
	w.Write32(mmioQueueNotify, 0)

	stop := make(chan struct{})
	time.AfterFunc(10*time.Second, func() { close(stop) })
	require.True(t, w.IRQ().Wait(stop), "no configuration interrupt")
	require.NotZero(t, w.Read32(mmioInterruptStatus)&2)
	require.NotZero(t, w.Read32(mmioStatus)&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET)
	require.ErrorIs(t, dev.Err(), ErrDriver)
}

type constEntropy struct{}

func (constEntropy) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0x5a
	}
	return len(p), nil
}

// TestDeviceRefusesBadQueueSetup: queue areas outside guest memory, or a
// size that is not a power of two, make DRIVER_OK fail with
// DEVICE_NEEDS_RESET instead of the device touching stray memory.
func TestDeviceRefusesBadQueueSetup(t *testing.T) {
	cases := []struct {
		name string
		size uint32
		desc uint64 // 0: a valid area
	}{
		{name: "descriptors-outside-memory", size: 8, desc: 0xdead0000},
		{name: "size-not-power-of-two", size: 6},
		{name: "size-zero", size: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemory()
			dev := NewDevice(m, NewRNG(constEntropy{}, RNGOptions{}), Options{QueueSize: 8})
			defer dev.Close()
			w := dev.MMIO()
			availOff, usedOff, size := ring.Layout(8)
			_, bus, err := m.Alloc(size, 4096)
			require.NoError(t, err)
			desc := bus
			if tc.desc != 0 {
				desc = tc.desc
			}
			w.Write32(mmioStatus, 1|2)
			w.Write32(mmioDriverFeaturesSel, 1)
			w.Write32(mmioDriverFeatures, 1)
			w.Write32(mmioStatus, 1|2|8)
			w.Write32(mmioQueueSel, 0)
			w.Write32(mmioQueueNum, tc.size)
			w.Write32(mmioQueueDescLow, uint32(desc))
			w.Write32(mmioQueueDescHigh, uint32(desc>>32))
			w.Write32(mmioQueueDriverLow, uint32(bus+uint64(availOff)))
			w.Write32(mmioQueueDeviceLow, uint32(bus+uint64(usedOff)))
			w.Write32(mmioQueueReady, 1)
			w.Write32(mmioStatus, 1|2|8|4)
			require.NotZero(t, w.Read32(mmioStatus)&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET)
			require.ErrorIs(t, dev.Err(), ErrDriver)
			w.Write32(mmioStatus, 0)
			require.Zero(t, w.Read32(mmioStatus), "a reset clears it")
		})
	}
}

// setupQueue gives queue q its size and ring addresses over MMIO and
// enables it, as a driver does (virtio 1.2 §4.2.3.2).
func setupQueue(w *MMIO, q, size uint32, desc, driver, device uint64) {
	w.Write32(mmioQueueSel, q)
	w.Write32(mmioQueueNum, size)
	w.Write32(mmioQueueDescLow, uint32(desc))
	w.Write32(mmioQueueDescHigh, uint32(desc>>32))
	w.Write32(mmioQueueDriverLow, uint32(driver))
	w.Write32(mmioQueueDriverHigh, uint32(driver>>32))
	w.Write32(mmioQueueDeviceLow, uint32(device))
	w.Write32(mmioQueueDeviceHigh, uint32(device>>32))
	w.Write32(mmioQueueReady, 1)
}
