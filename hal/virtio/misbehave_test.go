package virtio_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

// shortTimeout is the driver timeout in the stall tests: the device never
// answers, so the test waits for exactly this long.
const shortTimeout = 200 * time.Millisecond

// timeoutFor returns shortTimeout for a test that expects a timeout and a
// timeout no loaded machine reaches for one that does not.
func timeoutFor(want error) time.Duration {
	if errors.Is(want, hal.ErrTimeout) {
		return shortTimeout
	}
	return 10 * time.Second
}

// TestBlockMisbehavingDevice runs requests against a device committing
// one fault. Each fault must surface as the expected error (or none, for
// faults a careful driver shrugs off), never a panic or a hang, and once
// the device behaves again the driver must recover: its next requests
// succeed and the data is intact.
func TestBlockMisbehavingDevice(t *testing.T) {
	cases := []struct {
		name    string
		faults  model.Faults
		wantErr error // nil: every request succeeds despite the fault
	}{
		{name: "used-length-beyond-buffer", faults: model.Faults{UsedLenExtra: 4096}, wantErr: virtio.ErrDevice},
		{name: "used-id-out-of-range", faults: model.Faults{BadUsedID: true}, wantErr: virtio.ErrDevice},
		{name: "duplicate-used-entries", faults: model.Faults{DuplicateUsed: true}, wantErr: virtio.ErrDevice},
		{name: "used-index-jumps", faults: model.Faults{UsedIdxJump: 9}, wantErr: virtio.ErrDevice},
		{name: "stalled", faults: model.Faults{Stall: true}, wantErr: hal.ErrTimeout},
		{name: "stalls-after-3", faults: model.Faults{StallAfter: 3}, wantErr: hal.ErrTimeout},
		{name: "descriptor-loops-written-by-device", faults: model.Faults{CorruptDescriptors: true}},
		{name: "slow", faults: model.Faults{Delay: 5 * time.Millisecond}},
	}
	for _, tc := range cases {
		for _, ringReset := range []bool{true, false} {
			name := tc.name
			o := model.Options{}
			if !ringReset {
				name += "/no-ring-reset"
				o.HideFeatures = virtio.Bit(virtio.VIRTIO_F_RING_RESET)
			}
			t.Run(name, func(t *testing.T) {
				testBlockFault(t, o, tc.faults, tc.wantErr, ringReset)
			})
		}
	}
}

func testBlockFault(t *testing.T, o model.Options, faults model.Faults, wantErr error, ringReset bool) {
	b, dev, disk := newBlock(t, 1<<20, mem.BlockOptions{}, model.BlockOptions{}, o,
		virtio.BlockOptions{Timeout: timeoutFor(wantErr)})
	defer b.Close()
	want := bytes.Repeat([]byte("virtio!\n"), 512)
	_, err := disk.WriteAt(want, 0)
	require.NoError(t, err)
	_, err = disk.WriteAt(want, 4096)
	require.NoError(t, err)
	resets0, qresets0 := dev.Resets()

	dev.SetFaults(faults)
	var firstErr error
	got := make([]byte, len(want))
	for i := range 6 {
		_, err := b.ReadAt(got, int64(i%2)*4096)
		if err != nil {
			firstErr = err
			break
		}
		require.Equal(t, want, got)
	}
	if wantErr == nil {
		require.NoError(t, firstErr)
	} else {
		require.ErrorIs(t, firstErr, wantErr)
	}

	dev.SetFaults(model.Faults{})
	for i := range 4 {
		clear(got)
		_, err := b.ReadAt(got, 0)
		require.NoError(t, err, "request %d after the device recovered", i)
		require.Equal(t, want, got)
		_, err = b.WriteAt(want[:512], 8192)
		require.NoError(t, err)
	}
	require.NoError(t, b.Sync())
	resets, qresets := dev.Resets()
	switch {
	case wantErr == nil:
		require.Equal(t, [2]int{resets0, qresets0}, [2]int{resets, qresets}, "reset without a fault")
	case ringReset:
		require.Equal(t, resets0, resets, "the whole device was reset though one queue would do")
		require.Greater(t, qresets, qresets0, "the queue was not reset")
	default:
		require.Greater(t, resets, resets0, "the device was not reset")
	}
}

func TestBlockNeedsReset(t *testing.T) {
	b, dev, _ := newBlock(t, 1<<20, mem.BlockOptions{}, model.BlockOptions{}, model.Options{},
		virtio.BlockOptions{Timeout: 10 * time.Second})
	defer b.Close()
	dev.SetFaults(model.Faults{Stall: true})
	errc := make(chan error, 1)
	go func() {
		_, err := b.ReadAt(make([]byte, 512), 0)
		errc <- err
	}()
	// Once the stalled request is with the device, the device asks for a
	// reset.
	require.Eventually(t, func() bool {
		notifies, _ := dev.QueueStats(0)
		return notifies > 0
	}, 10*time.Second, time.Millisecond)
	dev.RequestReset()
	require.ErrorIs(t, <-errc, virtio.ErrNeedsReset)
	dev.SetFaults(model.Faults{})
	_, err := b.ReadAt(make([]byte, 512), 0)
	require.NoError(t, err)
	require.Zero(t, dev.Status()&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, "the driver reset the device")
}

// TestBlockInitialisation covers devices the driver must refuse or open
// with restrictions.
func TestBlockInitialisation(t *testing.T) {
	cases := []struct {
		name     string
		mo       model.BlockOptions
		o        model.Options
		do       virtio.BlockOptions
		wantErr  error
		readOnly bool
	}{
		{name: "no-version-1", o: model.Options{HideFeatures: virtio.Bit(virtio.VIRTIO_F_VERSION_1)}, wantErr: errors.ErrUnsupported},
		{name: "refuses-features", o: model.Options{Faults: model.Faults{RefuseFeatures: true}}, wantErr: virtio.ErrDevice},
		{name: "config-never-settles", o: model.Options{Faults: model.Faults{UnsettledConfig: true}}, wantErr: virtio.ErrDevice},
		{name: "no-flush-writable", mo: model.BlockOptions{NoFlush: true}, wantErr: errors.ErrUnsupported},
		{name: "no-flush-read-only", mo: model.BlockOptions{NoFlush: true}, do: virtio.BlockOptions{ReadOnly: true}, readOnly: true},
		{name: "device-read-only", mo: model.BlockOptions{ReadOnly: true}, readOnly: true},
		{name: "without-indirect-and-event-idx", o: model.Options{HideFeatures: virtio.Bit(virtio.VIRTIO_F_INDIRECT_DESC) | virtio.Bit(virtio.VIRTIO_F_EVENT_IDX)}},
		{name: "queue-too-small", o: model.Options{QueueSize: 1}, wantErr: virtio.ErrDevice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			disk, err := mem.NewBlock(64<<10, mem.BlockOptions{})
			require.NoError(t, err)
			tr, dev := newMMIO(t, model.NewBlock(disk, tc.mo), tc.o)
			b, err := virtio.NewBlock(tr, tc.do)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.NotZero(t, dev.Status()&virtio.VIRTIO_CONFIG_S_FAILED, "device left FAILED")
				return
			}
			require.NoError(t, err)
			defer b.Close()
			require.Equal(t, tc.readOnly, b.ReadOnly())
			buf := make([]byte, 4096)
			_, err = b.WriteAt(buf, 0)
			if tc.readOnly {
				require.ErrorIs(t, err, hal.ErrReadOnly)
			} else {
				require.NoError(t, err)
			}
			_, err = b.ReadAt(buf, 0)
			require.NoError(t, err)
			require.NoError(t, b.Sync())
		})
	}
}

func TestNetMisbehavingDevice(t *testing.T) {
	cases := []struct {
		name    string
		faults  model.Faults
		wantErr error
		write   bool // the fault shows on the transmit side
	}{
		{name: "rx-used-length-beyond-buffer", faults: model.Faults{Queues: 1 << virtio.VirtioNetRxQ, UsedLenExtra: 1 << 16}, wantErr: virtio.ErrDevice},
		{name: "rx-used-id-out-of-range", faults: model.Faults{Queues: 1 << virtio.VirtioNetRxQ, BadUsedID: true}, wantErr: virtio.ErrDevice},
		{name: "rx-duplicates", faults: model.Faults{Queues: 1 << virtio.VirtioNetRxQ, DuplicateUsed: true}, wantErr: virtio.ErrDevice},
		{name: "tx-used-id-out-of-range", faults: model.Faults{Queues: 1 << virtio.VirtioNetTxQ, BadUsedID: true}, wantErr: virtio.ErrDevice, write: true},
		{name: "tx-stalled", faults: model.Faults{Queues: 1 << virtio.VirtioNetTxQ, Stall: true}, wantErr: hal.ErrTimeout, write: true},
		{name: "descriptor-loops-written-by-device", faults: model.Faults{CorruptDescriptors: true}},
		{name: "slow", faults: model.Faults{Delay: time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, y := mem.NewNICPair(mem.NICOptions{})
			defer y.Close()
			n, dev, _ := newNet(t, x, model.NetOptions{}, model.Options{}, virtio.NetOptions{Timeout: timeoutFor(tc.wantErr), TxQueueSize: 8})
			defer n.Close()
			frame := func(i int) []byte {
				f := make([]byte, 100)
				dst, src := y.MAC(), n.MAC()
				copy(f, dst[:])
				copy(f[6:], src[:])
				f[12], f[13], f[14] = 0x88, 0xb5, byte(i)
				return f
			}
			dev.SetFaults(tc.faults)
			buf := make([]byte, 2048)
			var firstErr error
			for i := range 20 {
				if tc.write {
					if err := n.WriteFrame(frame(i)); err != nil {
						firstErr = err
						break
					}
					continue
				}
				require.NoError(t, y.WriteFrame(frame(i)))
				k, err := n.ReadFrame(buf)
				if err != nil {
					firstErr = err
					break
				}
				require.Equal(t, frame(i), buf[:k])
			}
			if tc.wantErr == nil {
				require.NoError(t, firstErr)
			} else {
				require.ErrorIs(t, firstErr, tc.wantErr)
			}
			// Recovery: a well-behaved device again carries frames both ways.
			dev.SetFaults(model.Faults{})
			for i := range 3 {
				require.NoError(t, n.WriteFrame(frame(100+i)))
				for {
					k, err := y.ReadFrame(buf)
					require.NoError(t, err)
					if k == 100 && buf[14] == byte(100+i) {
						break
					}
				}
			}
			// Frames the faulty device may have left queued are drained
			// first; then a fresh frame must arrive intact. A queue reset
			// may drop it, so the peer sends until one arrives.
			defer resend(t, y, frame(200))()
			for {
				k, err := n.ReadFrame(buf)
				require.NoError(t, err)
				if buf[14] == 200 {
					require.Equal(t, frame(200), buf[:k])
					break
				}
			}
		})
	}
}

func TestNetLinkChange(t *testing.T) {
	x, y := mem.NewNICPair(mem.NICOptions{})
	defer y.Close()
	n, _, be := newNet(t, x, model.NetOptions{}, model.Options{}, virtio.NetOptions{})
	defer n.Close()
	require.True(t, n.LinkUp())
	be.SetLink(false)
	require.Eventually(t, func() bool { return !n.LinkUp() }, 10*time.Second, time.Millisecond)
	be.SetLink(true)
	require.Eventually(t, n.LinkUp, 10*time.Second, time.Millisecond)
}

// TestNetLinkAfterReset: a link change whose configuration interrupt never
// arrived is picked up when the driver next resets the device, here to
// change receive offloads.
func TestNetLinkAfterReset(t *testing.T) {
	x, y := mem.NewNICPair(mem.NICOptions{})
	defer y.Close()
	n, dev, be := newNet(t, x, model.NetOptions{}, model.Options{}, virtio.NetOptions{})
	defer n.Close()
	require.True(t, n.LinkUp())
	be.Bind(nil) // the next change raises no interrupt
	be.SetLink(false)
	be.Bind(dev)
	require.True(t, n.LinkUp(), "the driver saw a change nobody signalled")
	on := n.SupportedOffload() & (hal.OffloadRxCsum | hal.OffloadTxCsum)
	require.NotZero(t, on&hal.OffloadRxCsum, "the model offers no receive offload")
	_, err := n.SetOffload(on)
	require.NoError(t, err)
	require.False(t, n.LinkUp(), "link status not re-read after the device reset")
}

func TestRNGMisbehavingDevice(t *testing.T) {
	cases := []struct {
		name    string
		mo      model.RNGOptions
		faults  model.Faults
		wantErr error
	}{
		{name: "used-length-beyond-buffer", faults: model.Faults{UsedLenExtra: 1}, wantErr: virtio.ErrDevice},
		{name: "stalled", faults: model.Faults{Stall: true}, wantErr: hal.ErrTimeout},
		{name: "returns-nothing", mo: model.RNGOptions{MaxFill: -1}, wantErr: hal.ErrTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, dev := newRNG(t, tc.mo, model.Options{}, virtio.RNGOptions{Timeout: shortTimeout})
			dev.SetFaults(tc.faults)
			p := make([]byte, 64)
			n, err := r.Read(p)
			require.ErrorIs(t, err, tc.wantErr)
			require.Zero(t, n)
		})
	}
}

// TestNetDeviceReset: faults a queue reset cannot mend (the device asks
// for a reset, or cannot reset one queue) are mended by resetting and
// reinitialising the whole device, after which frames flow both ways.
func TestNetDeviceReset(t *testing.T) {
	cases := []struct {
		name   string
		o      model.Options
		faults model.Faults
		reset  bool // the device sets DEVICE_NEEDS_RESET
	}{
		{name: "needs-reset", reset: true},
		{name: "no-ring-reset-rx-fault", o: model.Options{HideFeatures: virtio.Bit(virtio.VIRTIO_F_RING_RESET)},
			faults: model.Faults{Queues: 1 << virtio.VirtioNetRxQ, BadUsedID: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, y := mem.NewNICPair(mem.NICOptions{})
			defer y.Close()
			n, dev, _ := newNet(t, x, model.NetOptions{}, tc.o, virtio.NetOptions{Timeout: shortTimeout})
			defer n.Close()
			frame := func(tag byte) []byte {
				f := make([]byte, 64)
				dst, src := y.MAC(), n.MAC()
				copy(f, dst[:])
				copy(f[6:], src[:])
				f[12], f[13], f[14] = 0x88, 0xb5, tag
				return f
			}
			buf := make([]byte, 2048)
			dev.SetFaults(tc.faults)
			if tc.reset {
				dev.RequestReset()
			} else {
				require.NoError(t, y.WriteFrame(frame(1)))
				_, err := n.ReadFrame(buf)
				require.ErrorIs(t, err, virtio.ErrDevice)
			}
			dev.SetFaults(model.Faults{})
			// An empty batch moves no frame but lets the driver mend the
			// device once it has seen the fault.
			require.Eventually(t, func() bool {
				_, err := n.WriteFrames(nil)
				return err == nil && dev.Status()&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET == 0
			}, 10*time.Second, time.Millisecond)
			require.NoError(t, n.WriteFrame(frame(2)))
			for {
				k, err := y.ReadFrame(buf)
				require.NoError(t, err)
				if k == 64 && buf[14] == 2 {
					break
				}
			}
			require.NoError(t, y.WriteFrame(frame(3)))
			for {
				_, err := n.ReadFrame(buf)
				require.NoError(t, err)
				if buf[14] == 3 {
					break
				}
			}
			require.Zero(t, dev.Status()&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET)
		})
	}
}

// TestConsoleDeviceReset: after DEVICE_NEEDS_RESET the console resets the
// device and carries bytes both ways again.
func TestConsoleDeviceReset(t *testing.T) {
	c, op, _, dev := newConsole(t, model.ConsoleOptions{}, model.Options{})
	defer c.Close()
	dev.RequestReset()
	// An empty write does no I/O but lets the driver mend the device.
	require.Eventually(t, func() bool {
		_, _ = c.Write(nil)
		return dev.Status()&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET == 0
	}, 10*time.Second, time.Millisecond)
	_, err := c.Write([]byte("x"))
	require.NoError(t, err)
	got := make([]byte, 1)
	_, err = op.Read(got)
	require.NoError(t, err)
	require.Equal(t, "x", string(got))
	_, err = op.Write([]byte("y"))
	require.NoError(t, err)
	_, err = c.Read(got)
	require.NoError(t, err)
	require.Equal(t, "y", string(got))
}

// TestBlockResizedUnderDriver: the device shrinks mid-flight. The driver
// keeps the size it started with (hal.BlockDevice sizes do not change);
// requests the device now refuses fail with ErrIO, the others go on.
func TestBlockResizedUnderDriver(t *testing.T) {
	disk, err := mem.NewBlock(1<<20, mem.BlockOptions{})
	require.NoError(t, err)
	be := model.NewBlock(disk, model.BlockOptions{})
	tr, _ := newMMIO(t, be, model.Options{})
	b, err := virtio.NewBlock(tr, virtio.BlockOptions{})
	require.NoError(t, err)
	defer b.Close()
	buf := make([]byte, 4096)
	_, err = b.ReadAt(buf, 1<<20-4096)
	require.NoError(t, err)
	be.SetCapacity(512 << 10)
	_, err = b.ReadAt(buf, 1<<20-4096)
	require.ErrorIs(t, err, virtio.ErrIO)
	_, err = b.WriteAt(buf, 512<<10)
	require.ErrorIs(t, err, virtio.ErrIO)
	_, err = b.ReadAt(buf, 0)
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), b.Size())
}

// TestBlockStalledSlotsComeBack: requests that time out leave their
// buffers with the device; after the queue reset every slot is usable
// again, so the driver keeps its full concurrency.
func TestBlockStalledSlotsComeBack(t *testing.T) {
	const slots = 3
	b, dev, _ := newBlock(t, 1<<20, mem.BlockOptions{}, model.BlockOptions{}, model.Options{},
		virtio.BlockOptions{Timeout: shortTimeout, Slots: slots})
	defer b.Close()
	dev.SetFaults(model.Faults{Stall: true})
	var wg sync.WaitGroup
	for i := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.ReadAt(make([]byte, 512), int64(i)*512)
			assert.ErrorIs(t, err, hal.ErrTimeout)
		}()
	}
	wg.Wait()
	dev.SetFaults(model.Faults{})
	// All slots at once again: if any stayed lost, one of these would wait
	// for a slot forever (and the test time out).
	for i := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.ReadAt(make([]byte, 512), int64(i)*512)
			assert.NoError(t, err)
		}()
	}
	require.True(t, waitTimeout(&wg, 10*time.Second), "a request waited for a slot that never came back")
}
