package virtio_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

// resetRig is one driver under TestResetUnderLoad: goroutines doing I/O,
// a disturbance that makes the driver reset the device or a queue, an
// observer calling the driver's accessors, and a check that the device
// works once the disturbances stop.
type resetRig struct {
	dev *model.Device
	// io are the I/O loops, each called repeatedly on a goroutine of its
	// own until the driver is closed.
	io []func() error
	// disturb makes round i's reset happen and returns once the driver
	// has mended the device.
	disturb func(t *testing.T, i int)
	// observe reads what a user of the driver may read at any time.
	observe func()
	// works checks that I/O succeeds again.
	works func(t *testing.T)
	close func()
}

// TestResetUnderLoad resets devices (DEVICE_NEEDS_RESET, queue resets,
// virtio-net changing its receive offloads) while other goroutines do I/O
// on every queue, configuration interrupts arrive and users read the
// driver's accessors. Under -race it proves that recovery rewrites no state
// those goroutines read unsynchronised; without it, that every call ends
// with success or a known error and the device works afterwards.
func TestResetUnderLoad(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 6
	}
	cases := []struct {
		name string
		rig  func(t *testing.T) *resetRig
	}{
		{name: "blk-needs-reset", rig: func(t *testing.T) *resetRig { return blkResetRig(t, model.Options{}, false) }},
		{name: "blk-queue-reset", rig: func(t *testing.T) *resetRig { return blkResetRig(t, model.Options{}, true) }},
		{name: "blk-no-ring-reset", rig: func(t *testing.T) *resetRig {
			return blkResetRig(t, model.Options{HideFeatures: virtio.Bit(virtio.VIRTIO_F_RING_RESET)}, true)
		}},
		{name: "net-needs-reset", rig: func(t *testing.T) *resetRig { return netResetRig(t, false) }},
		{name: "net-set-offload", rig: func(t *testing.T) *resetRig { return netResetRig(t, true) }},
		{name: "console-needs-reset", rig: consoleResetRig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rig(t)
			var mu sync.Mutex
			var unknown error
			var workers sync.WaitGroup
			for _, op := range r.io {
				workers.Go(func() {
					for {
						err := op()
						switch {
						case err == nil || knownErr(err):
						case errors.Is(err, hal.ErrClosed):
							return
						default:
							mu.Lock()
							unknown = errors.Join(unknown, err)
							mu.Unlock()
							return
						}
					}
				})
			}
			var stop atomic.Bool
			var observer sync.WaitGroup
			observer.Go(func() {
				for !stop.Load() {
					r.observe()
					time.Sleep(10 * time.Microsecond)
				}
			})
			resets0, qresets0 := r.dev.Resets()
			for i := range rounds {
				r.disturb(t, i)
			}
			resets, qresets := r.dev.Resets()
			require.Greater(t, resets+qresets, resets0+qresets0, "nothing was reset")
			r.works(t)
			stop.Store(true)
			observer.Wait()
			r.close()
			require.True(t, waitTimeout(&workers, 30*time.Second), "I/O hung after Close")
			require.NoError(t, unknown)
		})
	}
}

// mended waits until the driver has reset a device that asked for it.
func mended(t *testing.T, dev *model.Device) {
	t.Helper()
	require.Eventually(t, func() bool {
		return dev.Status()&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET == 0
	}, 20*time.Second, 100*time.Microsecond, "the driver did not reset the device")
}

// blkResetRig has four requests in flight at a time. Each round either
// asks for a device reset or, with faulty, breaks the queue with a bad
// used entry (mended by a queue reset, or a device reset without
// VIRTIO_F_RING_RESET).
func blkResetRig(t *testing.T, o model.Options, faulty bool) *resetRig {
	const sector, sectors = 512, 64
	b, dev, _ := newBlock(t, sectors*sector, mem.BlockOptions{}, model.BlockOptions{}, o,
		virtio.BlockOptions{Timeout: 5 * time.Second, QueueSize: 16, Slots: 4})
	r := &resetRig{dev: dev, close: func() { _ = b.Close() }}
	for w := range 4 {
		rng := rand.New(rand.NewPCG(uint64(w), 2))
		buf := make([]byte, 2*sector)
		r.io = append(r.io, func() error {
			off := int64(rng.IntN(sectors-1)) * sector
			var err error
			switch rng.IntN(3) {
			case 0:
				_, err = b.WriteAt(buf, off)
			case 1:
				_, err = b.ReadAt(buf, off)
			default:
				err = b.Sync()
			}
			return err
		})
	}
	r.disturb = func(t *testing.T, _ int) {
		if !faulty {
			dev.RequestReset()
			mended(t, dev)
			return
		}
		resets0, qresets0 := dev.Resets()
		dev.SetFaults(model.Faults{BadUsedID: true})
		require.Eventually(t, func() bool {
			resets, qresets := dev.Resets()
			return resets+qresets > resets0+qresets0
		}, 20*time.Second, 100*time.Microsecond, "the driver did not reset after a bad used entry")
		dev.SetFaults(model.Faults{})
	}
	r.observe = func() { _ = b.Features() }
	r.works = func(t *testing.T) {
		buf := make([]byte, sector)
		var err error
		for range 20 { // requests the last fault broke may still be failing
			if _, err = b.ReadAt(buf, 0); err == nil {
				break
			}
		}
		require.NoError(t, err)
	}
	return r
}

// netResetRig receives and transmits at once. Each round asks for a
// device reset or, with offload, toggles the receive offloads (which
// reinitialises the device).
func netResetRig(t *testing.T, offload bool) *resetRig {
	x, y := mem.NewNICPair(mem.NICOptions{})
	n, dev, _ := newNet(t, x, model.NetOptions{}, model.Options{},
		virtio.NetOptions{Timeout: 5 * time.Second, RxQueueSize: 16, TxQueueSize: 8})
	frame := func(dst, src hal.MAC, tag byte) []byte {
		f := make([]byte, 64)
		copy(f, dst[:])
		copy(f[6:], src[:])
		f[12], f[13], f[14] = 0x88, 0xb5, tag
		return f
	}
	// The peer sends frames for the driver to receive and takes those it
	// sends, until closed.
	var peer sync.WaitGroup
	peer.Go(func() {
		for y.WriteFrame(frame(n.MAC(), y.MAC(), 1)) == nil {
			time.Sleep(50 * time.Microsecond)
		}
	})
	peer.Go(func() {
		buf := make([]byte, 2048)
		for {
			if _, err := y.ReadFrame(buf); err != nil {
				return
			}
		}
	})
	r := &resetRig{dev: dev}
	r.close = func() {
		_ = n.Close()
		_ = y.Close()
		peer.Wait()
	}
	rxBuf := make([]byte, 2048)
	out := frame(y.MAC(), n.MAC(), 2)
	r.io = []func() error{
		func() error { _, err := n.ReadFrame(rxBuf); return err },
		func() error { return n.WriteFrame(out) },
		func() error {
			_, err := n.WriteFrames([][]byte{out, out})
			return err
		},
	}
	r.disturb = func(t *testing.T, i int) {
		if !offload {
			dev.RequestReset()
			mended(t, dev)
			return
		}
		want := hal.OffloadTxCsum
		if i%2 == 0 {
			want |= hal.OffloadRxCsum
		}
		got, err := n.SetOffload(want)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	r.observe = func() {
		_ = n.Features()
		_ = n.LinkUp()
	}
	r.works = func(t *testing.T) {
		var err error
		for range 20 {
			if err = n.WriteFrame(out); err == nil {
				break
			}
		}
		require.NoError(t, err)
	}
	return r
}

// consoleResetRig reads and writes at once while the device asks for
// resets; the configuration interrupts that ask also make the driver
// re-read the window size.
func consoleResetRig(t *testing.T) *resetRig {
	c, op, _, dev := newConsole(t, model.ConsoleOptions{Cols: 80, Rows: 24}, model.Options{})
	var peer sync.WaitGroup
	peer.Go(func() { // the operator types
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(op, "line %d\n", i); err != nil {
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	})
	peer.Go(func() { // and reads the output
		_, _ = io.Copy(io.Discard, op)
	})
	r := &resetRig{dev: dev}
	r.close = func() {
		_ = c.Close()
		_ = op.(io.Closer).Close()
		peer.Wait()
	}
	rxBuf := make([]byte, 64)
	r.io = []func() error{
		func() error { _, err := c.Read(rxBuf); return err },
		func() error { _, err := c.Write([]byte("output\n")); return err },
	}
	r.disturb = func(t *testing.T, _ int) {
		dev.RequestReset()
		mended(t, dev)
	}
	r.observe = func() { _, _, _ = c.WindowSize() }
	r.works = func(t *testing.T) {
		var err error
		for range 20 {
			if _, err = c.Write([]byte("ok\n")); err == nil {
				break
			}
		}
		require.NoError(t, err)
	}
	return r
}
