package dev

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/anykernel/anykernel/hal/virtio"
)

// This file adapts the platform to the interfaces hal/virtio's transports
// take: register windows (PCI configuration space, memory BARs), DMA
// memory and interrupts. Only on the platform.

func mmioRead8(addr uintptr) uint8
func mmioRead16(addr uintptr) uint16
func mmioRead32(addr uintptr) uint32
func mmioWrite8(addr uintptr, v uint8)
func mmioWrite16(addr uintptr, v uint16)
func mmioWrite32(addr uintptr, v uint32)

// Config is the configuration space of one PCI function as a
// virtio.Regs window of 256 bytes.
type Config struct {
	Bus, Device, Function uint8
}

var _ virtio.Regs = Config{}

func (c Config) read(off uint32) (uint32, bool) {
	if off >= 256 {
		return 0, false
	}
	return PCIRead32(c.Bus, c.Device, c.Function, uint8(off&^3)) >> (8 * (off & 3)), true
}

// Read8 implements virtio.Regs.
func (c Config) Read8(off uint32) uint8 {
	v, ok := c.read(off)
	if !ok {
		return 0xFF
	}
	return uint8(v)
}

// Read16 implements virtio.Regs.
func (c Config) Read16(off uint32) uint16 {
	v, ok := c.read(off)
	if !ok || off&3 == 3 {
		return 0xFFFF
	}
	return uint16(v)
}

// Read32 implements virtio.Regs.
func (c Config) Read32(off uint32) uint32 {
	v, ok := c.read(off)
	if !ok || off&3 != 0 {
		return 0xFFFFFFFF
	}
	return v
}

func (c Config) write(off uint32, v, mask uint32) {
	if off >= 256 {
		return
	}
	sh := 8 * (off & 3)
	old := PCIRead32(c.Bus, c.Device, c.Function, uint8(off&^3))
	PCIWrite32(c.Bus, c.Device, c.Function, uint8(off&^3), old&^(mask<<sh)|(v&mask)<<sh)
}

// Write8 implements virtio.Regs (read-modify-write of the dword).
func (c Config) Write8(off uint32, v uint8) { c.write(off, uint32(v), 0xFF) }

// Write16 implements virtio.Regs (read-modify-write of the dword).
func (c Config) Write16(off uint32, v uint16) {
	if off&3 != 3 {
		c.write(off, uint32(v), 0xFFFF)
	}
}

// Write32 implements virtio.Regs.
func (c Config) Write32(off uint32, v uint32) {
	if off < 256 && off&3 == 0 {
		PCIWrite32(c.Bus, c.Device, c.Function, uint8(off), v)
	}
}

// MMIO is a window of memory-mapped registers at physical address Base.
// The platform maps the first 4 GiB one to one, device memory (3-4 GiB)
// uncached.
type MMIO struct {
	Base uint64
	Size uint32
}

var _ virtio.Regs = MMIO{}

func (m MMIO) at(off, width uint32) (uintptr, bool) {
	if off > m.Size || m.Size-off < width || off%width != 0 {
		return 0, false
	}
	return uintptr(m.Base) + uintptr(off), true
}

// Read8 implements virtio.Regs.
func (m MMIO) Read8(off uint32) uint8 {
	if a, ok := m.at(off, 1); ok {
		return mmioRead8(a)
	}
	return 0xFF
}

// Read16 implements virtio.Regs.
func (m MMIO) Read16(off uint32) uint16 {
	if a, ok := m.at(off, 2); ok {
		return mmioRead16(a)
	}
	return 0xFFFF
}

// Read32 implements virtio.Regs.
func (m MMIO) Read32(off uint32) uint32 {
	if a, ok := m.at(off, 4); ok {
		return mmioRead32(a)
	}
	return 0xFFFFFFFF
}

// Write8 implements virtio.Regs.
func (m MMIO) Write8(off uint32, v uint8) {
	if a, ok := m.at(off, 1); ok {
		mmioWrite8(a, v)
	}
}

// Write16 implements virtio.Regs.
func (m MMIO) Write16(off uint32, v uint16) {
	if a, ok := m.at(off, 2); ok {
		mmioWrite16(a, v)
	}
}

// Write32 implements virtio.Regs.
func (m MMIO) Write32(off uint32, v uint32) {
	if a, ok := m.at(off, 4); ok {
		mmioWrite32(a, v)
	}
}

// BAR returns memory BAR i of the function as a register window. It sizes
// the BAR with memory decoding briefly off, as the PCI specification
// describes (PCI 3.0 §6.2.5.1).
func BAR(c Config, i int) (MMIO, error) {
	if i < 0 || i > 5 {
		return MMIO{}, fmt.Errorf("dev: BAR %d: %w", i, os.ErrInvalid)
	}
	off := uint32(0x10 + 4*i)
	lo := c.Read32(off)
	if lo&1 != 0 {
		return MMIO{}, fmt.Errorf("dev: BAR %d is an I/O BAR", i)
	}
	base := uint64(lo &^ 0xF)
	is64 := lo&0x6 == 0x4
	if is64 {
		if i == 5 {
			return MMIO{}, fmt.Errorf("dev: 64-bit BAR %d has no upper half", i)
		}
		base |= uint64(c.Read32(off+4)) << 32
	}
	cmd := c.Read16(0x04)
	c.Write16(0x04, cmd&^0x2) // memory decoding off
	c.Write32(off, 0xFFFFFFFF)
	mask := c.Read32(off) &^ 0xF
	c.Write32(off, lo)
	c.Write16(0x04, cmd)
	if mask == 0 || base == 0 {
		return MMIO{}, fmt.Errorf("dev: BAR %d is not assigned", i)
	}
	size := uint64(^mask) + 1
	if base+size > 4<<30 || size > 1<<31 {
		return MMIO{}, fmt.Errorf("dev: BAR %d at %#x (%d bytes) is outside the mapped 4 GiB", i, base, size)
	}
	return MMIO{Base: base, Size: uint32(size)}, nil
}

// DMAPool is a virtio.DMA over AllocDMA. Freed buffers are kept for reuse
// (the platform does not take DMA memory back). The zero value is ready.
type DMAPool struct {
	mu   sync.Mutex
	free map[int][][]byte
}

var _ virtio.DMA = (*DMAPool)(nil)

// Alloc implements virtio.DMA. Memory is page aligned, so any align up to
// 4096 holds, and the bus address is the memory's own address.
func (p *DMAPool) Alloc(size, align int) ([]byte, uint64, error) {
	if size <= 0 || align <= 0 || align > 4096 || align&(align-1) != 0 {
		return nil, 0, fmt.Errorf("dev: DMA allocation of %d bytes aligned to %d: %w", size, align, os.ErrInvalid)
	}
	pages := (size + 4095) / 4096
	p.mu.Lock()
	if l := p.free[pages]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[pages] = l[:len(l)-1]
		p.mu.Unlock()
		clear(b)
		return b[:size], uint64(uintptr(unsafe.Pointer(&b[0]))), nil
	}
	p.mu.Unlock()
	d, err := AllocDMA(size, 0)
	if err != nil {
		return nil, 0, err
	}
	return d.Mem[:size], d.Phys, nil
}

// Free implements virtio.DMA.
func (p *DMAPool) Free(buf []byte) {
	if cap(buf) == 0 {
		return
	}
	b := buf[:cap(buf)]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.free == nil {
		p.free = map[int][][]byte{}
	}
	pages := len(b) / 4096
	p.free[pages] = append(p.free[pages], b)
}

// Wait implements virtio.Interrupt: it unmasks the line if it fired before
// (the transport has acknowledged the device since the last Wait
// returned), then blocks until it fires again or stop is closed.
func (q *IRQ) Wait(stop <-chan struct{}) bool {
	q.waitMu.Lock()
	defer q.waitMu.Unlock()
	if q.fired {
		q.fired = false
		if q.Ack() != nil {
			return false
		}
	}
	select {
	case <-stop:
		return false
	default:
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-stop:
			q.f.SetReadDeadline(time.Unix(1, 0))
		case <-done:
		}
	}()
	_, err := q.Wait1()
	close(done)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			q.f.SetReadDeadline(time.Time{})
		}
		return false
	}
	q.fired = true
	return true
}

var _ virtio.Interrupt = (*IRQ)(nil)
