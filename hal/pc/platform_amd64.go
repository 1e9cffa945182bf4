package pc

import "github.com/anykernel/anykernel/compat/linux"

// irqFD maps a PIC line to the eventfd it notifies, plus one (0: unbound).
var irqFD [16]uint64

// platformCall serves the platform's private system calls (see hal/pc/dev)
// for thread t and reports whether the call was one of them.
func platformCall(t int) bool {
	th := &proc.Threads[t]
	r := &th.Regs
	var ret int64
	switch r.RAX {
	case SysPlatform:
		ret = PlatformMagic
	case SysDMAAlloc:
		ret = dmaAlloc(r.RDI, r.RSI)
	case SysIRQBind:
		line, fd := r.RDI, r.RSI
		switch {
		case line == 0 || line == 2 || line > 15:
			ret = -int64(linux.EINVAL)
		case line == comIRQ:
			ret = -16 // EBUSY: the console's
		case !proc.Files.IsEventfd(fd):
			ret = -int64(linux.EBADF)
		default:
			irqFD[line] = fd + 1
			unmaskIRQ(int(line))
		}
	case SysIRQAck:
		line := r.RDI
		if line > 15 || irqFD[line] == 0 {
			ret = -int64(linux.EINVAL)
		} else {
			unmaskIRQ(int(line))
		}
	default:
		return false
	}
	if proc.Trace {
		var l line
		l.S("anyk: [").D(int64(th.Tid)).S("] platform call ").X16(r.RAX).S("(").X16(r.RDI).S(", ").X16(r.RSI).S(") = ").D(ret).S("\n")
		say(&l)
	}
	r.RAX = uint64(ret)
	r.RCX, r.R11 = r.RIP, r.RFLAGS
	return true
}

// dmaAlloc takes pages physically contiguous frames aligned to align
// frames, zeroes them and returns their address (identity-mapped).
func dmaAlloc(pages, align uint64) int64 {
	if pages == 0 || pages > 4096 || align == 0 || align > 512 || align&(align-1) != 0 {
		return -int64(linux.EINVAL)
	}
	pa, ok := frames.AllocContig(int(pages), int(align))
	if !ok {
		return -int64(linux.ENOMEM)
	}
	clear(mem(pa, pages*4096))
	return int64(pa)
}

// irq handles PIC line n: a bound line is masked until the driver
// acknowledges it, and its eventfd notified.
func irq(n int) {
	if n == 7 || n == 15 {
		// Spurious unless the in-service register says otherwise.
		port := uint16(0x20)
		if n == 15 {
			port = 0xA0
		}
		outb(port, 0x0B) // read ISR
		if inb(port)&0x80 == 0 {
			if n == 15 {
				outb(0x20, 0x20) // the master did see the cascade
			}
			return
		}
	}
	if n == comIRQ {
		serialIRQ()
	} else if fd := irqFD[n]; fd != 0 {
		maskIRQ(n)
		proc.Notify(&mach, fd-1, 1)
	}
	if n >= 8 {
		outb(0xA0, 0x20)
	}
	outb(0x20, 0x20)
}

func maskIRQ(n int) {
	port := uint16(0x21)
	if n >= 8 {
		port, n = 0xA1, n-8
	}
	outb(port, inb(port)|1<<n)
}

func unmaskIRQ(n int) {
	if n >= 8 {
		outb(0x21, inb(0x21)&^(1<<2)) // the cascade
		outb(0xA1, inb(0xA1)&^(1<<(n-8)))
		return
	}
	outb(0x21, inb(0x21)&^(1<<n))
}
