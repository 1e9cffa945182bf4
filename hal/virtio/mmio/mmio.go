package mmio

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal/virtio"
)

// Transport is a virtio-mmio device.
type Transport struct {
	regs virtio.Regs
	dma  virtio.DMA
	irq  virtio.Interrupt
	id   virtio.DeviceID

	mu      sync.Mutex // serialises the selector registers
	stop    chan struct{}
	wg      sync.WaitGroup
	started bool
}

var _ virtio.Transport = (*Transport)(nil)

// Options configures New. The zero value is the default.
type Options struct{}

// New probes the window regs for a virtio-mmio version 2 device. irq is
// its interrupt line; dma the memory it can reach. A window with no device
// (DeviceID 0, as QEMU leaves unused slots) returns an error wrapping
// ErrNoDevice.
func New(regs virtio.Regs, dma virtio.DMA, irq virtio.Interrupt, _ Options) (*Transport, error) {
	if m := regs.Read32(MagicValue); m != Magic {
		return nil, fmt.Errorf("virtio-mmio: magic %#x, want %#x: %w", m, Magic, ErrNoDevice)
	}
	if v := regs.Read32(Version); v != 2 {
		return nil, fmt.Errorf("virtio-mmio: version %d, only version 2 is supported: %w", v, errors.ErrUnsupported)
	}
	id := regs.Read32(DeviceID)
	if id == 0 {
		return nil, fmt.Errorf("virtio-mmio: empty slot: %w", ErrNoDevice)
	}
	return &Transport{regs: regs, dma: dma, irq: irq, id: virtio.DeviceID(id)}, nil
}

// ErrNoDevice reports a window without a virtio device.
var ErrNoDevice = errors.New("virtio-mmio: no device")

// DeviceID implements virtio.Transport.
func (t *Transport) DeviceID() virtio.DeviceID { return t.id }

// DeviceFeatures implements virtio.Transport.
func (t *Transport) DeviceFeatures() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return virtio.ReadFeatures(t.regs, DeviceFeaturesSel, DeviceFeatures)
}

// SetDriverFeatures implements virtio.Transport.
func (t *Transport) SetDriverFeatures(f uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	virtio.WriteFeatures(t.regs, DriverFeaturesSel, DriverFeatures, f)
}

// Status implements virtio.Transport.
func (t *Transport) Status() uint8 { return uint8(t.regs.Read32(Status)) }

// SetStatus implements virtio.Transport.
func (t *Transport) SetStatus(s uint8) { t.regs.Write32(Status, uint32(s)) }

// Reset implements virtio.Transport.
func (t *Transport) Reset() error {
	t.regs.Write32(Status, 0)
	if poll(func() bool { return t.regs.Read32(Status) == 0 }) {
		return nil
	}
	return fmt.Errorf("virtio-mmio: device did not finish reset: %w", virtio.ErrDevice)
}

// Config implements virtio.Transport.
func (t *Transport) Config() virtio.Regs { return window{t.regs, Config} }

// ConfigGeneration implements virtio.Transport.
func (t *Transport) ConfigGeneration() uint32 { return t.regs.Read32(ConfigGeneration) }

// NumQueues implements virtio.Transport: MMIO cannot tell.
func (t *Transport) NumQueues() int { return -1 }

// QueueMax implements virtio.Transport.
func (t *Transport) QueueMax(q int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.regs.Write32(QueueSel, uint32(q))
	if t.regs.Read32(QueueReady) != 0 {
		return 0 // in use: not ours to configure
	}
	return int(t.regs.Read32(QueueNumMax))
}

// SetupQueue implements virtio.Transport (§4.2.3.2).
func (t *Transport) SetupQueue(q, size int, desc, driver, device uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.regs.Write32(QueueSel, uint32(q))
	if t.regs.Read32(QueueReady) != 0 {
		return fmt.Errorf("virtio-mmio: queue %d already in use: %w", q, virtio.ErrDevice)
	}
	if max := t.regs.Read32(QueueNumMax); max == 0 || uint32(size) > max {
		return fmt.Errorf("virtio-mmio: queue %d: size %d beyond maximum %d: %w", q, size, max, virtio.ErrDevice)
	}
	t.regs.Write32(QueueNum, uint32(size))
	t.regs.Write32(QueueDescLow, uint32(desc))
	t.regs.Write32(QueueDescHigh, uint32(desc>>32))
	t.regs.Write32(QueueDriverLow, uint32(driver))
	t.regs.Write32(QueueDriverHigh, uint32(driver>>32))
	t.regs.Write32(QueueDeviceLow, uint32(device))
	t.regs.Write32(QueueDeviceHigh, uint32(device>>32))
	t.regs.Write32(QueueReady, 1)
	if t.regs.Read32(QueueReady) != 1 {
		return fmt.Errorf("virtio-mmio: queue %d did not become ready: %w", q, virtio.ErrDevice)
	}
	return nil
}

// ResetQueue implements virtio.Transport (§4.2.3.5).
func (t *Transport) ResetQueue(q int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.regs.Write32(QueueSel, uint32(q))
	t.regs.Write32(QueueReset, 1)
	// The reset is complete when QueueReset reads back 0 (and the queue
	// is no longer ready).
	if poll(func() bool { return t.regs.Read32(QueueReset) == 0 && t.regs.Read32(QueueReady) == 0 }) {
		return nil
	}
	return fmt.Errorf("virtio-mmio: queue %d did not finish reset: %w", q, virtio.ErrDevice)
}

// Notify implements virtio.Transport.
func (t *Transport) Notify(q int) { t.regs.Write32(QueueNotify, uint32(q)) }

// DMA implements virtio.Transport.
func (t *Transport) DMA() virtio.DMA { return t.dma }

// Start implements virtio.Transport: one goroutine waits for the line,
// reads and acknowledges InterruptStatus and dispatches.
func (t *Transport) Start(onQueue func(q int), onConfig func()) error {
	if t.started {
		return errors.New("virtio-mmio: interrupts already started")
	}
	if t.irq == nil {
		return errors.New("virtio-mmio: no interrupt line")
	}
	t.started = true
	t.stop = make(chan struct{})
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for t.irq.Wait(t.stop) {
			st := t.regs.Read32(InterruptStatus)
			t.regs.Write32(InterruptACK, st)
			if st&VIRTIO_MMIO_INT_CONFIG != 0 {
				onConfig()
			}
			if st&VIRTIO_MMIO_INT_VRING != 0 {
				onQueue(-1)
			}
		}
	}()
	return nil
}

// Stop implements virtio.Transport.
func (t *Transport) Stop() {
	if !t.started {
		return
	}
	t.started = false
	close(t.stop)
	t.wg.Wait()
}

// window is a sub-window of a register window.
type window struct {
	r    virtio.Regs
	base uint32
}

func (w window) Read8(off uint32) uint8       { return w.r.Read8(w.base + off) }
func (w window) Read16(off uint32) uint16     { return w.r.Read16(w.base + off) }
func (w window) Read32(off uint32) uint32     { return w.r.Read32(w.base + off) }
func (w window) Write8(off uint32, v uint8)   { w.r.Write8(w.base+off, v) }
func (w window) Write16(off uint32, v uint16) { w.r.Write16(w.base+off, v) }
func (w window) Write32(off uint32, v uint32) { w.r.Write32(w.base+off, v) }

// resetTimeout bounds the wait for a device or queue reset to finish.
const resetTimeout = time.Second

// poll calls done until it reports true or resetTimeout passes, backing
// off from busy polling to sleeps.
func poll(done func() bool) bool {
	deadline := time.Now().Add(resetTimeout)
	for i := 0; ; i++ {
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		if i > 100 {
			time.Sleep(50 * time.Microsecond)
		}
	}
}
