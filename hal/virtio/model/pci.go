package model

import (
	"encoding/binary"
	"fmt"

	"github.com/anykernel/anykernel/hal/virtio"
)

// PCIOptions configures the PCI view of a device. The zero value is a
// modern function with INTx only.
type PCIOptions struct {
	// Vectors is the MSI-X table size; zero means no MSI-X capability.
	Vectors int
	// Transitional gives the function a transitional device ID
	// (0x1000-0x103f) with the type in the subsystem ID.
	Transitional bool
}

// Layout of the modelled function: all structures in BAR 4.
const (
	pciBAR          = 4
	pciCommonOff    = 0x0000
	pciISROff       = 0x1000
	pciDeviceOff    = 0x2000
	pciNotifyOff    = 0x3000
	pciAreaLen      = 0x1000
	pciNotifyMult   = 4
	pciCommonCfgLen = 0x3c
)

// PCI is the virtio-pci modern view of a Device: a configuration space
// with the virtio capabilities and BAR 4 holding the common, ISR, device
// and notify structures (virtio 1.2 §4.1).
type PCI struct {
	d   *Device
	cfg [256]byte
}

// PCI returns the device's PCI function. Call it before the driver starts;
// it sets the device's interrupt routing (MSI-X vectors or INTx).
func (d *Device) PCI(o PCIOptions) *PCI {
	p := &PCI{d: d}
	c := p.cfg[:]
	id := uint16(d.backend.DeviceID())
	binary.LittleEndian.PutUint16(c[0x00:], 0x1af4)
	if o.Transitional {
		transitional := map[virtio.DeviceID]uint16{virtio.DeviceNet: 0x1000, virtio.DeviceBlock: 0x1001,
			virtio.DeviceConsole: 0x1003, virtio.DeviceEntropy: 0x1005}
		binary.LittleEndian.PutUint16(c[0x02:], transitional[d.backend.DeviceID()])
	} else {
		binary.LittleEndian.PutUint16(c[0x02:], 0x1040+id)
	}
	binary.LittleEndian.PutUint16(c[0x06:], 0x10) // capability list
	c[0x08] = 1                                   // revision
	binary.LittleEndian.PutUint16(c[0x2c:], 0x1af4)
	binary.LittleEndian.PutUint16(c[0x2e:], id)
	c[0x34] = 0x40
	caps := []struct {
		typ      uint8
		off, len uint32
	}{
		{1, pciCommonOff, pciCommonCfgLen},
		{3, pciISROff, 1},
		{4, pciDeviceOff, uint32(d.backend.ConfigLen())},
		{2, pciNotifyOff, pciAreaLen},
	}
	pos := 0x40
	for i, cp := range caps {
		l := 16
		if cp.typ == 2 {
			l = 20
		}
		if cp.typ == 4 && cp.len == 0 {
			continue
		}
		c[pos] = 0x09
		c[pos+2] = byte(l)
		c[pos+3] = cp.typ
		c[pos+4] = pciBAR
		binary.LittleEndian.PutUint32(c[pos+8:], cp.off)
		binary.LittleEndian.PutUint32(c[pos+12:], cp.len)
		if cp.typ == 2 {
			binary.LittleEndian.PutUint32(c[pos+16:], pciNotifyMult)
		}
		next := pos + 0x18
		if i == len(caps)-1 && o.Vectors == 0 {
			next = 0
		}
		c[pos+1] = byte(next)
		pos += 0x18
	}
	if o.Vectors > 0 {
		c[pos] = 0x11
		binary.LittleEndian.PutUint16(c[pos+2:], uint16(o.Vectors-1)|0x8000) // enabled
	}
	d.mu.Lock()
	if o.Vectors > 0 {
		d.msix = true
		d.lines = make([]*IRQ, o.Vectors)
		for i := range d.lines {
			d.lines[i] = NewIRQ()
		}
	} else {
		d.msix = false
		d.lines = []*IRQ{NewIRQ()}
	}
	d.mu.Unlock()
	return p
}

// Config returns the function's configuration space.
func (p *PCI) Config() virtio.Regs { return cfgRegs{p} }

// BAR maps BAR i; only BAR 4 exists.
func (p *PCI) BAR(i int) (virtio.Regs, error) {
	if i != pciBAR {
		return nil, fmt.Errorf("model: BAR %d not implemented", i)
	}
	return barRegs{p.d}, nil
}

// MSIX returns the MSI-X vectors as interrupts (none without MSI-X).
func (p *PCI) MSIX() []virtio.Interrupt {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	if !p.d.msix {
		return nil
	}
	out := make([]virtio.Interrupt, len(p.d.lines))
	for i, l := range p.d.lines {
		out[i] = l
	}
	return out
}

// INTx returns the legacy interrupt line.
func (p *PCI) INTx() virtio.Interrupt { return p.d.lines[0] }

type cfgRegs struct{ p *PCI }

func (r cfgRegs) Read8(off uint32) uint8 {
	if off >= 256 {
		return 0xff
	}
	return r.p.cfg[off]
}
func (r cfgRegs) Read16(off uint32) uint16 {
	if off+2 > 256 {
		return 0xffff
	}
	return binary.LittleEndian.Uint16(r.p.cfg[off:])
}
func (r cfgRegs) Read32(off uint32) uint32 {
	if off+4 > 256 {
		return 0xffffffff
	}
	return binary.LittleEndian.Uint32(r.p.cfg[off:])
}
func (cfgRegs) Write8(uint32, uint8)   {}
func (cfgRegs) Write16(uint32, uint16) {}
func (cfgRegs) Write32(uint32, uint32) {}

// barRegs is BAR 4.
type barRegs struct{ d *Device }

func (b barRegs) read(off uint32, n int) uint32 {
	d := b.d
	switch {
	case off >= pciDeviceOff && off < pciDeviceOff+pciAreaLen:
		return d.configRead(off-pciDeviceOff, n)
	case off == pciISROff:
		d.mu.Lock()
		v := d.isr
		d.isr = 0
		d.mu.Unlock()
		return v
	case off < pciCommonCfgLen:
		return b.common(off, n)
	}
	return 0xffffffff >> (32 - 8*n)
}

func (b barRegs) common(off uint32, n int) uint32 {
	d := b.d
	if off == 0x15 {
		return d.configGeneration() & 0xff
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.selQueue()
	switch off {
	case 0x00:
		return d.devSel
	case 0x04:
		return d.featuresWord(d.devSel)
	case 0x08:
		return d.drvSel
	case 0x0c:
		if d.drvSel < 2 {
			return uint32(d.driverF >> (32 * d.drvSel))
		}
		return 0
	case 0x10:
		return uint32(d.configVec)
	case 0x12:
		return uint32(len(d.queues))
	case 0x14:
		return uint32(d.status)
	case 0x16:
		return d.queueSel
	}
	if q == nil {
		return 0
	}
	switch off {
	case 0x18:
		return uint32(q.size)
	case 0x1a:
		return uint32(q.vector)
	case 0x1c:
		if q.ready {
			return 1
		}
		return 0
	case 0x1e:
		return d.queueSel // notify offset = queue index × multiplier
	case 0x20, 0x24, 0x28, 0x2c, 0x30, 0x34:
		v := [...]uint64{q.desc, q.driver, q.device}[(off-0x20)/8]
		return uint32(v >> (8 * (off % 8)))
	case 0x3a:
		return 0 // resets complete at once
	}
	return 0
}

func (b barRegs) write(off uint32, v uint32) {
	d := b.d
	switch {
	case off >= pciNotifyOff && off < pciNotifyOff+pciAreaLen:
		d.notify(int((off - pciNotifyOff) / pciNotifyMult))
		return
	case off >= pciCommonCfgLen:
		return
	}
	switch off {
	case 0x14:
		d.setStatus(uint8(v))
		return
	case 0x1c:
		d.mu.Lock()
		sel := int(d.queueSel)
		d.mu.Unlock()
		if v == 1 {
			d.queueReady(sel, true)
		}
		return
	case 0x3a:
		d.mu.Lock()
		sel := int(d.queueSel)
		d.mu.Unlock()
		if v == 1 {
			d.queueReset(sel)
		}
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch off {
	case 0x00:
		d.devSel = v
		return
	case 0x08:
		d.drvSel = v
		return
	case 0x0c:
		if d.drvSel < 2 && d.status&virtio.VIRTIO_CONFIG_S_FEATURES_OK == 0 {
			sh := 32 * d.drvSel
			d.driverF = d.driverF&^(0xffffffff<<sh) | uint64(v)<<sh
		}
		return
	case 0x10:
		d.configVec = d.vectorOrNone(v)
		return
	case 0x16:
		d.queueSel = v
		return
	}
	q := d.selQueue()
	if q == nil || q.ready {
		return
	}
	switch off {
	case 0x18:
		q.size = int(v)
	case 0x1a:
		q.vector = d.vectorOrNone(v)
	case 0x20, 0x24:
		q.desc = set32(q.desc, off-0x20, v)
	case 0x28, 0x2c:
		q.driver = set32(q.driver, off-0x28, v)
	case 0x30, 0x34:
		q.device = set32(q.device, off-0x30, v)
	}
}

func set32(x uint64, half uint32, v uint32) uint64 {
	sh := 8 * half
	return x&^(0xffffffff<<sh) | uint64(v)<<sh
}

// vectorOrNone accepts an MSI-X vector the table has; others read back as
// VIRTIO_MSI_NO_VECTOR. The caller holds d.mu.
func (d *Device) vectorOrNone(v uint32) uint16 {
	if d.msix && int(v) < len(d.lines) {
		return uint16(v)
	}
	return noVector
}

func (b barRegs) Read8(off uint32) uint8   { return uint8(b.read(off, 1)) }
func (b barRegs) Read16(off uint32) uint16 { return uint16(b.read(off, 2)) }
func (b barRegs) Read32(off uint32) uint32 { return b.read(off, 4) }
func (b barRegs) Write8(off uint32, v uint8) {
	b.write(off, uint32(v))
}
func (b barRegs) Write16(off uint32, v uint16) { b.write(off, uint32(v)) }
func (b barRegs) Write32(off uint32, v uint32) { b.write(off, v) }
