package pci

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal/virtio"
)

// Options configures New. The zero value uses INTx and needs INTx set.
type Options struct {
	// MSIX are the interrupts of MSI-X table entries 0..len-1, which the
	// platform has programmed and enabled. Empty means use INTx.
	MSIX []virtio.Interrupt
	// INTx is the legacy interrupt line, used without MSIX.
	INTx virtio.Interrupt
}

// BARFunc maps memory BAR i (0-5) as a register window.
type BARFunc func(i int) (virtio.Regs, error)

// Cap is one parsed virtio capability.
type Cap struct {
	Type   uint8
	BAR    uint8
	Offset uint32
	Length uint32
	// Multiplier is notify_off_multiplier (notify capability only).
	Multiplier uint32
}

// Caps are the capabilities a virtio-pci function offers.
type Caps struct {
	Common, Notify, ISR, Device Cap
	Has                         [6]bool // indexed by cfg_type
	MSIXTableSize               int     // 0 without an MSI-X capability
}

// maxCaps bounds the walk of the capability list (a list with more
// entries than fit in configuration space loops).
const maxCaps = 48

// ErrNoDevice reports a function that is not a virtio device.
var ErrNoDevice = errors.New("virtio-pci: not a virtio device")

// ParseCaps walks the capability list in configuration space cfg (§4.1.4),
// keeping the first capability of each virtio type whose BAR is valid.
func ParseCaps(cfg virtio.Regs) (Caps, error) {
	var c Caps
	if cfg.Read16(StatusOff)&StatusCapList == 0 {
		return c, fmt.Errorf("virtio-pci: no capability list: %w", virtio.ErrDevice)
	}
	p := uint32(cfg.Read8(CapabilitiesOff)) &^ 3
	seen := 0
	for p != 0 {
		if p < 0x40 || p > 0xfc {
			return c, fmt.Errorf("virtio-pci: capability pointer %#x outside the capability area: %w", p, virtio.ErrDevice)
		}
		if seen++; seen > maxCaps {
			return c, fmt.Errorf("virtio-pci: capability list loops: %w", virtio.ErrDevice)
		}
		id, next := cfg.Read8(p+CapVndr), uint32(cfg.Read8(p+CapNext))&^3
		switch id {
		case CapIDMSIX:
			c.MSIXTableSize = int(cfg.Read16(p+2)&0x7ff) + 1
		case CapIDVendor:
			if p+16 > 0x100 {
				return c, fmt.Errorf("virtio-pci: capability at %#x runs past configuration space: %w", p, virtio.ErrDevice)
			}
			l := cfg.Read8(p + CapLen)
			t := cfg.Read8(p + CapCfgType)
			cp := Cap{Type: t, BAR: cfg.Read8(p + CapBar), Offset: cfg.Read32(p + CapOffset), Length: cfg.Read32(p + CapLength)}
			if l < 16 || cp.BAR > 5 || t < VIRTIO_PCI_CAP_COMMON_CFG || t > VIRTIO_PCI_CAP_DEVICE_CFG || c.Has[t] {
				break // malformed, unknown, on a reserved BAR, or not the first: skip
			}
			if uint64(cp.Offset)+uint64(cp.Length) > 1<<32 {
				break
			}
			if t == VIRTIO_PCI_CAP_NOTIFY_CFG {
				if l < 20 || p+20 > 0x100 {
					break
				}
				cp.Multiplier = cfg.Read32(p + CapNotifyOffMultiplier)
			}
			c.Has[t] = true
			switch t {
			case VIRTIO_PCI_CAP_COMMON_CFG:
				c.Common = cp
			case VIRTIO_PCI_CAP_NOTIFY_CFG:
				c.Notify = cp
			case VIRTIO_PCI_CAP_ISR_CFG:
				c.ISR = cp
			case VIRTIO_PCI_CAP_DEVICE_CFG:
				c.Device = cp
			}
		}
		p = next
	}
	return c, nil
}

// Transport is a virtio-pci modern device.
type Transport struct {
	id        virtio.DeviceID
	common    window
	notify    window
	notifyLen uint32
	mult      uint32
	isr       window
	device    window
	hasDevice bool
	dma       virtio.DMA
	o         Options

	mu        sync.Mutex // serialises the select registers
	numQueues int
	notifyOff []uint32 // per queue, within the notify window
	vecQueues [][]int  // queues on each MSI-X vector
	stop      chan struct{}
	wg        sync.WaitGroup
	started   bool
}

var _ virtio.Transport = (*Transport)(nil)

// New probes the PCI function whose configuration space is cfg.
func New(cfg virtio.Regs, bar BARFunc, dma virtio.DMA, o Options) (*Transport, error) {
	if v := cfg.Read16(VendorIDOff); v != VirtioVendorID {
		return nil, fmt.Errorf("virtio-pci: vendor %#04x: %w", v, ErrNoDevice)
	}
	var id virtio.DeviceID
	switch did := cfg.Read16(DeviceIDOff); {
	case did >= ModernDeviceBase && did <= ModernDeviceLast:
		id = virtio.DeviceID(did - ModernDeviceBase)
	case did >= TransitionalFirst && did <= TransitionalLast:
		id = virtio.DeviceID(cfg.Read16(SubsystemIDOff))
	default:
		return nil, fmt.Errorf("virtio-pci: device %#04x: %w", did, ErrNoDevice)
	}
	caps, err := ParseCaps(cfg)
	if err != nil {
		return nil, err
	}
	for _, need := range []struct {
		t    uint8
		name string
	}{{VIRTIO_PCI_CAP_COMMON_CFG, "common"}, {VIRTIO_PCI_CAP_NOTIFY_CFG, "notify"}} {
		if !caps.Has[need.t] {
			return nil, fmt.Errorf("virtio-pci: no %s configuration capability (a legacy-only device?): %w", need.name, errors.ErrUnsupported)
		}
	}
	if caps.Common.Length < CommonCfgMinLen {
		return nil, fmt.Errorf("virtio-pci: common configuration of %d bytes: %w", caps.Common.Length, virtio.ErrDevice)
	}
	if len(o.MSIX) == 0 && (o.INTx == nil || !caps.Has[VIRTIO_PCI_CAP_ISR_CFG]) {
		return nil, fmt.Errorf("virtio-pci: no MSI-X vectors given and no INTx line with an ISR capability")
	}
	if len(o.MSIX) > 0 && caps.MSIXTableSize > 0 && len(o.MSIX) > caps.MSIXTableSize {
		o.MSIX = o.MSIX[:caps.MSIXTableSize]
	}
	t := &Transport{id: id, dma: dma, o: o, mult: caps.Notify.Multiplier, notifyLen: caps.Notify.Length}
	mk := func(c Cap) (window, error) {
		r, err := bar(int(c.BAR))
		if err != nil {
			return window{}, fmt.Errorf("virtio-pci: BAR %d: %w", c.BAR, err)
		}
		return window{r: r, base: c.Offset, size: c.Length}, nil
	}
	if t.common, err = mk(caps.Common); err != nil {
		return nil, err
	}
	if t.notify, err = mk(caps.Notify); err != nil {
		return nil, err
	}
	if caps.Has[VIRTIO_PCI_CAP_ISR_CFG] {
		if t.isr, err = mk(caps.ISR); err != nil {
			return nil, err
		}
	}
	if caps.Has[VIRTIO_PCI_CAP_DEVICE_CFG] {
		if t.device, err = mk(caps.Device); err != nil {
			return nil, err
		}
		t.hasDevice = true
	}
	t.numQueues = int(t.common.Read16(CommonNumQueues))
	t.notifyOff = make([]uint32, t.numQueues)
	if n := len(o.MSIX); n > 0 {
		t.vecQueues = make([][]int, n)
	}
	return t, nil
}

// DeviceID implements virtio.Transport.
func (t *Transport) DeviceID() virtio.DeviceID { return t.id }

// DeviceFeatures implements virtio.Transport.
func (t *Transport) DeviceFeatures() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return virtio.ReadFeatures(t.common, CommonDeviceFeatureSelect, CommonDeviceFeature)
}

// SetDriverFeatures implements virtio.Transport.
func (t *Transport) SetDriverFeatures(f uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	virtio.WriteFeatures(t.common, CommonDriverFeatureSelect, CommonDriverFeature, f)
}

// Status implements virtio.Transport.
func (t *Transport) Status() uint8 { return t.common.Read8(CommonDeviceStatus) }

// SetStatus implements virtio.Transport.
func (t *Transport) SetStatus(s uint8) { t.common.Write8(CommonDeviceStatus, s) }

// Reset implements virtio.Transport (§4.1.4.3.1: the reset is complete
// when device_status reads 0).
func (t *Transport) Reset() error {
	t.common.Write8(CommonDeviceStatus, 0)
	if poll(func() bool { return t.common.Read8(CommonDeviceStatus) == 0 }) {
		return nil
	}
	return fmt.Errorf("virtio-pci: device did not finish reset: %w", virtio.ErrDevice)
}

// Config implements virtio.Transport; a device without a device
// configuration capability reads as all ones.
func (t *Transport) Config() virtio.Regs {
	if !t.hasDevice {
		return window{r: nopRegs{}}
	}
	return t.device
}

// ConfigGeneration implements virtio.Transport.
func (t *Transport) ConfigGeneration() uint32 {
	return uint32(t.common.Read8(CommonConfigGeneration))
}

// NumQueues implements virtio.Transport.
func (t *Transport) NumQueues() int { return t.numQueues }

// QueueMax implements virtio.Transport.
func (t *Transport) QueueMax(q int) int {
	if q < 0 || q >= t.numQueues {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.common.Write16(CommonQueueSelect, uint16(q))
	if t.common.Read16(CommonQueueEnable) != 0 {
		return 0
	}
	return int(t.common.Read16(CommonQueueSize))
}

// vectorFor returns the MSI-X vector of queue q.
func (t *Transport) vectorFor(q int) uint16 {
	switch n := len(t.o.MSIX); {
	case n == 0:
		return VIRTIO_MSI_NO_VECTOR
	case n == 1:
		return 0
	default:
		return uint16(1 + q%(n-1))
	}
}

// SetupQueue implements virtio.Transport (§4.1.5.1.3).
func (t *Transport) SetupQueue(q, size int, desc, driver, device uint64) error {
	if q < 0 || q >= t.numQueues {
		return fmt.Errorf("virtio-pci: queue %d of %d: %w", q, t.numQueues, virtio.ErrDevice)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.o.MSIX) > 0 {
		t.common.Write16(CommonConfigMSIXVector, 0)
		if t.common.Read16(CommonConfigMSIXVector) != 0 {
			return fmt.Errorf("virtio-pci: device refused MSI-X vector 0 for configuration changes: %w", virtio.ErrDevice)
		}
	}
	t.common.Write16(CommonQueueSelect, uint16(q))
	if t.common.Read16(CommonQueueEnable) != 0 {
		return fmt.Errorf("virtio-pci: queue %d already enabled: %w", q, virtio.ErrDevice)
	}
	if max := t.common.Read16(CommonQueueSize); max == 0 || size > int(max) {
		return fmt.Errorf("virtio-pci: queue %d: size %d beyond maximum %d: %w", q, size, max, virtio.ErrDevice)
	}
	t.common.Write16(CommonQueueSize, uint16(size))
	write64(t.common, CommonQueueDesc, desc)
	write64(t.common, CommonQueueDriver, driver)
	write64(t.common, CommonQueueDevice, device)
	if v := t.vectorFor(q); v != VIRTIO_MSI_NO_VECTOR {
		t.common.Write16(CommonQueueMSIXVector, v)
		if got := t.common.Read16(CommonQueueMSIXVector); got != v {
			return fmt.Errorf("virtio-pci: queue %d: device refused MSI-X vector %d: %w", q, v, virtio.ErrDevice)
		}
		if !contains(t.vecQueues[v], q) {
			t.vecQueues[v] = append(t.vecQueues[v], q)
		}
	}
	off := uint64(t.common.Read16(CommonQueueNotifyOff)) * uint64(t.mult)
	if off+2 > uint64(t.notifyLen) {
		return fmt.Errorf("virtio-pci: queue %d: notify offset %d outside the %d-byte notify area: %w", q, off, t.notifyLen, virtio.ErrDevice)
	}
	t.notifyOff[q] = uint32(off)
	t.common.Write16(CommonQueueEnable, 1)
	return nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func write64(w window, off uint32, v uint64) {
	w.Write32(off, uint32(v))
	w.Write32(off+4, uint32(v>>32))
}

// ResetQueue implements virtio.Transport (§4.1.4.3.2).
func (t *Transport) ResetQueue(q int) error {
	if q < 0 || q >= t.numQueues {
		return fmt.Errorf("virtio-pci: queue %d of %d: %w", q, t.numQueues, virtio.ErrDevice)
	}
	if t.common.size < CommonCfgLen {
		return fmt.Errorf("virtio-pci: common configuration has no queue_reset: %w", errors.ErrUnsupported)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.common.Write16(CommonQueueSelect, uint16(q))
	t.common.Write16(CommonQueueReset, 1)
	// The reset is complete when queue_reset reads back 0 and the queue is
	// disabled.
	if poll(func() bool { return t.common.Read16(CommonQueueReset) == 0 && t.common.Read16(CommonQueueEnable) == 0 }) {
		return nil
	}
	return fmt.Errorf("virtio-pci: queue %d did not finish reset: %w", q, virtio.ErrDevice)
}

// Notify implements virtio.Transport.
func (t *Transport) Notify(q int) {
	if q >= 0 && q < len(t.notifyOff) {
		t.notify.Write16(t.notifyOff[q], uint16(q))
	}
}

// DMA implements virtio.Transport.
func (t *Transport) DMA() virtio.DMA { return t.dma }

// Start implements virtio.Transport.
func (t *Transport) Start(onQueue func(q int), onConfig func()) error {
	if t.started {
		return errors.New("virtio-pci: interrupts already started")
	}
	t.started = true
	t.stop = make(chan struct{})
	if len(t.o.MSIX) == 0 {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for t.o.INTx.Wait(t.stop) {
				isr := t.isr.Read8(0) // reading acknowledges
				if isr&ISRConfig != 0 {
					onConfig()
				}
				if isr&ISRQueue != 0 {
					onQueue(-1)
				}
			}
		}()
		return nil
	}
	for v, irq := range t.o.MSIX {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for irq.Wait(t.stop) {
				if v == 0 {
					onConfig()
				}
				t.mu.Lock()
				qs := t.vecQueues[v]
				t.mu.Unlock()
				switch len(qs) {
				case 0:
				case 1:
					onQueue(qs[0])
				default:
					onQueue(-1)
				}
			}
		}()
	}
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

// window is a capability's structure within a BAR; accesses beyond its
// length read as all ones and are dropped.
type window struct {
	r          virtio.Regs
	base, size uint32
}

func (w window) ok(off, n uint32) bool { return uint64(off)+uint64(n) <= uint64(w.size) }

func (w window) Read8(off uint32) uint8 {
	if !w.ok(off, 1) {
		return 0xff
	}
	return w.r.Read8(w.base + off)
}
func (w window) Read16(off uint32) uint16 {
	if !w.ok(off, 2) {
		return 0xffff
	}
	return w.r.Read16(w.base + off)
}
func (w window) Read32(off uint32) uint32 {
	if !w.ok(off, 4) {
		return 0xffffffff
	}
	return w.r.Read32(w.base + off)
}
func (w window) Write8(off uint32, v uint8) {
	if w.ok(off, 1) {
		w.r.Write8(w.base+off, v)
	}
}
func (w window) Write16(off uint32, v uint16) {
	if w.ok(off, 2) {
		w.r.Write16(w.base+off, v)
	}
}
func (w window) Write32(off uint32, v uint32) {
	if w.ok(off, 4) {
		w.r.Write32(w.base+off, v)
	}
}

type nopRegs struct{}

func (nopRegs) Read8(uint32) uint8     { return 0xff }
func (nopRegs) Read16(uint32) uint16   { return 0xffff }
func (nopRegs) Read32(uint32) uint32   { return 0xffffffff }
func (nopRegs) Write8(uint32, uint8)   {}
func (nopRegs) Write16(uint32, uint16) {}
func (nopRegs) Write32(uint32, uint32) {}

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
