package virtio

import "time"

// Regs is a window of device registers: a virtio-mmio region, a slice of a
// PCI BAR, or PCI configuration space. Offsets are bytes from the start of
// the window; values are little endian as the device defines them, already
// converted to host order. Accesses have the width of the method and are
// made in program order with respect to each other and to the DMA memory
// accesses before and after them (an uncached, strongly ordered mapping on
// the real platform). An access outside the window reads as all ones and
// writes are dropped; Regs never panics.
type Regs interface {
	Read8(off uint32) uint8
	Read16(off uint32) uint16
	Read32(off uint32) uint32
	Write8(off uint32, v uint8)
	Write16(off uint32, v uint16)
	Write32(off uint32, v uint32)
}

// DMA is memory the device can read and write: virtqueues and data buffers
// live in it.
type DMA interface {
	// Alloc returns size bytes of zeroed memory whose bus address (the
	// address the device uses) is a multiple of align, a power of two no
	// larger than 4096. The slice's own address is at least 8-byte aligned
	// and congruent to the bus address modulo align, and the memory does not
	// move. The memory stays valid and device-visible until Free. size may
	// be rounded up by the platform; len(buf) == size.
	Alloc(size, align int) (buf []byte, bus uint64, err error)

	// Free returns memory from Alloc. The device must no longer use it.
	Free(buf []byte)
}

// Interrupt is an interrupt line or MSI-X vector as the platform delivers
// it to a driver.
type Interrupt interface {
	// Wait blocks until the interrupt has fired at least once since the
	// previous Wait returned (interrupts arriving meanwhile coalesce into
	// one), or until stop is closed, in which case it returns false. Only
	// one goroutine calls Wait on an Interrupt. A level-triggered line is
	// acknowledged at the device by the transport after Wait returns; the
	// platform masks and unmasks it around that as it must.
	Wait(stop <-chan struct{}) bool
}

// Defaults for the options of the drivers.
const (
	// DefaultTimeout bounds how long a driver waits for the device to
	// complete a request it must complete (a block request, a transmit
	// slot, a reset).
	DefaultTimeout = 30 * time.Second
	// DefaultQueueSize caps the queue size a driver asks for.
	DefaultQueueSize = 256
)

// ReadFeatures reads a 64-bit feature set through a 32-bit window: the
// select register sel chooses the half (0 low, 1 high) that reg shows, as
// both virtio-mmio and virtio-pci lay out feature bits (virtio 1.2 §4.1.4.3,
// §4.2.2). Callers serialise access to the select register.
func ReadFeatures(r Regs, sel, reg uint32) uint64 {
	r.Write32(sel, 0)
	lo := r.Read32(reg)
	r.Write32(sel, 1)
	hi := r.Read32(reg)
	return uint64(hi)<<32 | uint64(lo)
}

// WriteFeatures writes a 64-bit feature set through a 32-bit window; see
// ReadFeatures.
func WriteFeatures(r Regs, sel, reg uint32, f uint64) {
	r.Write32(sel, 0)
	r.Write32(reg, uint32(f))
	r.Write32(sel, 1)
	r.Write32(reg, uint32(f>>32))
}
