package dev

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/anykernel/anykernel/hal/pc"
)

// Private system calls served by hal/pc (numbers Linux leaves unused).
const (
	SysPlatform = pc.SysPlatform // () -> PlatformMagic
	SysDMAAlloc = pc.SysDMAAlloc // (pages, alignPages) -> physical address
	SysIRQBind  = pc.SysIRQBind  // (line, eventfd) -> 0
	SysIRQAck   = pc.SysIRQAck   // (line) -> 0; unmasks the line
)

// PlatformMagic is SysPlatform's answer on the bare-metal platform.
const PlatformMagic = pc.PlatformMagic

// Available reports whether the program runs on the bare-metal platform.
func Available() bool {
	r, _, e := syscall.RawSyscall(SysPlatform, 0, 0, 0)
	return e == 0 && r == PlatformMagic
}

// ErrNotAvailable is returned off the platform.
var ErrNotAvailable = errors.New("dev: not running on the anykernel platform")

// DMA is physically contiguous, pinned memory outside the Go heap that a
// device can address. It is never freed.
type DMA struct {
	// Phys is the physical (bus) address of Mem[0].
	Phys uint64
	// Mem is the memory as the program sees it.
	Mem []byte
}

// AllocDMA returns size bytes (rounded up to whole 4 KiB pages) of zeroed
// DMA memory starting on a page boundary aligned to align bytes (a power
// of two; 0 for page alignment).
func AllocDMA(size, align int) (*DMA, error) {
	if size <= 0 || align < 0 || align&(align-1) != 0 {
		return nil, fmt.Errorf("dev: DMA allocation of %d bytes aligned to %d: %w", size, align, syscall.EINVAL)
	}
	pages := (size + 4095) / 4096
	alignPages := max(align/4096, 1)
	r, _, e := syscall.Syscall(SysDMAAlloc, uintptr(pages), uintptr(alignPages), 0)
	if e != 0 {
		if e == syscall.ENOSYS {
			return nil, ErrNotAvailable
		}
		return nil, fmt.Errorf("dev: DMA allocation of %d pages: %w", pages, e)
	}
	// The platform identity-maps physical memory: the physical address is
	// also where the program sees it.
	mem := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), r)), pages*4096)
	return &DMA{Phys: uint64(r), Mem: mem}, nil
}

// IRQ is an interrupt line bound to an eventfd. It also implements
// virtio.Interrupt (see Wait).
type IRQ struct {
	line   int
	f      *os.File
	waitMu sync.Mutex
	fired  bool
}

// OpenIRQ binds PIC line (1-15, not 2, the cascade) to a new descriptor
// and unmasks it.
func OpenIRQ(line int) (*IRQ, error) {
	if line <= 0 || line == 2 || line > 15 {
		return nil, fmt.Errorf("dev: IRQ %d: %w", line, syscall.EINVAL)
	}
	fd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		return nil, fmt.Errorf("dev: IRQ %d: eventfd: %w", line, e)
	}
	if _, _, e := syscall.Syscall(SysIRQBind, uintptr(line), fd, 0); e != 0 {
		syscall.Close(int(fd))
		if e == syscall.ENOSYS {
			return nil, ErrNotAvailable
		}
		return nil, fmt.Errorf("dev: IRQ %d: bind: %w", line, e)
	}
	return &IRQ{line: line, f: os.NewFile(fd, fmt.Sprintf("irq%d", line))}, nil
}

// Wait1 blocks (in the netpoller, holding no thread) until the line has
// fired, and returns how many times it fired since the last Wait1. The
// line stays masked until Ack.
func (q *IRQ) Wait1() (uint64, error) {
	var b [8]byte
	if _, err := q.f.Read(b[:]); err != nil {
		return 0, fmt.Errorf("dev: IRQ %d: %w", q.line, err)
	}
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56, nil
}

// Ack unmasks the line after the device has been serviced.
func (q *IRQ) Ack() error {
	if _, _, e := syscall.Syscall(SysIRQAck, uintptr(q.line), 0, 0); e != 0 {
		return fmt.Errorf("dev: IRQ %d: ack: %w", q.line, e)
	}
	return nil
}

// Close releases the descriptor (the line stays masked).
func (q *IRQ) Close() error { return q.f.Close() }

// PCI configuration mechanism #1 (PCI Local Bus Specification 3.0 §3.2.2.3.2).
const (
	pciConfigAddress = 0xCF8
	pciConfigData    = 0xCFC
)

func pciAddr(bus, device, function, offset uint8) uint32 {
	return 1<<31 | uint32(bus)<<16 | uint32(device&31)<<11 | uint32(function&7)<<8 | uint32(offset&0xFC)
}

// PCIRead32 reads a 32-bit register of a function's configuration space.
// Only on the platform.
func PCIRead32(bus, device, function, offset uint8) uint32 {
	Out32(pciConfigAddress, pciAddr(bus, device, function, offset))
	return In32(pciConfigData)
}

// PCIWrite32 writes a 32-bit configuration register. Only on the platform.
func PCIWrite32(bus, device, function, offset uint8, v uint32) {
	Out32(pciConfigAddress, pciAddr(bus, device, function, offset))
	Out32(pciConfigData, v)
}

// Port I/O (assembly). Only on the platform: outside ring 0 they fault.

func In8(port uint16) uint8
func Out8(port uint16, v uint8)
func In32(port uint16) uint32
func Out32(port uint16, v uint32)
