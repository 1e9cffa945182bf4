package model

import "github.com/anykernel/anykernel/hal/virtio"

// virtio-mmio version 2 register offsets (virtio 1.2 §4.2.2).
const (
	mmioMagicValue        = 0x000
	mmioVersion           = 0x004
	mmioDeviceID          = 0x008
	mmioVendorID          = 0x00c
	mmioDeviceFeatures    = 0x010
	mmioDeviceFeaturesSel = 0x014
	mmioDriverFeatures    = 0x020
	mmioDriverFeaturesSel = 0x024
	mmioQueueSel          = 0x030
	mmioQueueNumMax       = 0x034
	mmioQueueNum          = 0x038
	mmioQueueReady        = 0x044
	mmioQueueNotify       = 0x050
	mmioInterruptStatus   = 0x060
	mmioInterruptACK      = 0x064
	mmioStatus            = 0x070
	mmioQueueDescLow      = 0x080
	mmioQueueDescHigh     = 0x084
	mmioQueueDriverLow    = 0x090
	mmioQueueDriverHigh   = 0x094
	mmioQueueDeviceLow    = 0x0a0
	mmioQueueDeviceHigh   = 0x0a4
	mmioQueueReset        = 0x0c0
	mmioConfigGeneration  = 0x0fc
	mmioConfig            = 0x100

	mmioMagic  = 0x74726976 // "virt"
	mmioVendor = 0x4b4e5941 // "AYNK"
)

// MMIO is the virtio-mmio (version 2) register window of a Device: it
// implements virtio.Regs. Its interrupt is IRQ.
type MMIO struct{ d *Device }

// MMIO returns the device's virtio-mmio register window.
func (d *Device) MMIO() *MMIO { return &MMIO{d: d} }

// IRQ returns the device's interrupt line.
func (m *MMIO) IRQ() *IRQ { return m.d.lines[0] }

var _ virtio.Regs = (*MMIO)(nil)

// Read32 implements virtio.Regs.
func (m *MMIO) Read32(off uint32) uint32 {
	d := m.d
	if off >= mmioConfig {
		return d.configRead(off-mmioConfig, 4)
	}
	switch off {
	case mmioMagicValue:
		return mmioMagic
	case mmioVersion:
		return 2
	case mmioDeviceID:
		return uint32(d.backend.DeviceID())
	case mmioVendorID:
		return mmioVendor
	case mmioConfigGeneration:
		return d.configGeneration()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.selQueue()
	switch off {
	case mmioDeviceFeatures:
		return d.featuresWord(d.devSel)
	case mmioQueueNumMax:
		if q == nil {
			return 0
		}
		return uint32(d.opts.QueueSize)
	case mmioQueueReady:
		if q != nil && q.ready {
			return 1
		}
		return 0
	case mmioQueueReset:
		return 0 // resets complete at once
	case mmioInterruptStatus:
		return d.isr
	case mmioStatus:
		return uint32(d.status)
	}
	return 0
}

func (d *Device) selQueue() *queueCfg {
	if int(d.queueSel) < len(d.queues) {
		return &d.queues[d.queueSel]
	}
	return nil
}

// Write32 implements virtio.Regs.
func (m *MMIO) Write32(off uint32, v uint32) {
	d := m.d
	switch off {
	case mmioStatus:
		d.setStatus(uint8(v))
		return
	case mmioQueueNotify:
		d.notify(int(v & 0xffff))
		return
	case mmioQueueReady:
		d.mu.Lock()
		sel := int(d.queueSel)
		d.mu.Unlock()
		d.queueReady(sel, v == 1)
		return
	case mmioQueueReset:
		if v == 1 {
			d.mu.Lock()
			sel := int(d.queueSel)
			d.mu.Unlock()
			d.queueReset(sel)
		}
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.selQueue()
	switch off {
	case mmioDeviceFeaturesSel:
		d.devSel = v
	case mmioDriverFeaturesSel:
		d.drvSel = v
	case mmioDriverFeatures:
		if d.drvSel < 2 && d.status&virtio.VIRTIO_CONFIG_S_FEATURES_OK == 0 {
			sh := 32 * d.drvSel
			d.driverF = d.driverF&^(0xffffffff<<sh) | uint64(v)<<sh
		}
	case mmioQueueSel:
		d.queueSel = v
	case mmioInterruptACK:
		d.isr &^= v
	}
	if q == nil || q.ready {
		return
	}
	switch off {
	case mmioQueueNum:
		q.size = int(v)
	case mmioQueueDescLow:
		q.desc = q.desc&^0xffffffff | uint64(v)
	case mmioQueueDescHigh:
		q.desc = q.desc&0xffffffff | uint64(v)<<32
	case mmioQueueDriverLow:
		q.driver = q.driver&^0xffffffff | uint64(v)
	case mmioQueueDriverHigh:
		q.driver = q.driver&0xffffffff | uint64(v)<<32
	case mmioQueueDeviceLow:
		q.device = q.device&^0xffffffff | uint64(v)
	case mmioQueueDeviceHigh:
		q.device = q.device&0xffffffff | uint64(v)<<32
	}
}

// Read8 implements virtio.Regs: only configuration space is byte-wide.
func (m *MMIO) Read8(off uint32) uint8 {
	if off < mmioConfig {
		return 0xff
	}
	return uint8(m.d.configRead(off-mmioConfig, 1))
}

// Read16 implements virtio.Regs: only configuration space is 16-bit wide.
func (m *MMIO) Read16(off uint32) uint16 {
	if off < mmioConfig {
		return 0xffff
	}
	return uint16(m.d.configRead(off-mmioConfig, 2))
}

// Write8 implements virtio.Regs; the modelled configuration spaces are
// read-only, so it does nothing.
func (m *MMIO) Write8(off uint32, v uint8) {}

// Write16 implements virtio.Regs; see Write8.
func (m *MMIO) Write16(off uint32, v uint16) {}
