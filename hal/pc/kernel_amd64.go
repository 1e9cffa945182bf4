package pc

import (
	"math/bits"
	"unsafe"

	"github.com/anykernel/anykernel/compat/linux"
)

// Kernel memory. Everything the kernel keeps is in pointer-free globals
// that are zero or constant-initialised: no package initialisation runs
// before the kernel does.
const (
	stackSize  = 64 << 10
	numStacks  = 6
	kstacksLen = stackSize * numStacks // KSTACKS in entry_amd64.s

	vecSyscall = 256
	vecTimer   = 32

	selCode = 0x08
	selData = 0x10
	selTSS  = 0x18

	// bootMagic marks bootInfo; anyk build patches the other words.
	bootMagic = 0x746f6f626b796e61 // "anykboot"

	// Exit statuses the kernel itself reports.
	exitKernelPanic = 125
	exitNoMemory    = 137
)

var (
	kstacks   [kstacksLen]byte
	kernelG   [16]uint64 // a g-shaped record: stack.lo, stack.hi, stackguard0, stackguard1
	kernelTLS [2]uint64  // [0] = &kernelG; FS_BASE points at [1]
	kernelFS  uint64
	kstackTop uint64
	scratchSP uint64
	curFX     uint64
	curFS     uint64
	mbiAddr   uint64 // multiboot info or PVH start info (EBX at entry)
	bootEAX   uint64
	tscEntry  uint64
	tscMain   uint64
	tscUser   uint64 // first system call: the kernel's own start-up is done
	userEntry uint64

	gdt      [6]uint64
	tss      [13]uint64
	idt      [2 * 48]uint64
	desc     [2]uint64
	idleFX   [linux.FXSize + 16]byte
	initFX   [linux.FXSize + 16]byte
	cmdBuf   [4096]byte
	vdso     [vdsoSize]byte
	cmd      Cmdline
	proc     linux.Process
	frames   Frames
	mach     machine
	memTop   uint64
	timerSet bool
	exiting  bool
	timerAt  int64

	// bootInfo is patched by the image builder: magic, first and last byte
	// (exclusive) of the loaded image including BSS, and the address of
	// main.main (0 if unknown).
	bootInfo = [4]uint64{bootMagic, 0, 0, 0}
)

func addrOf(p unsafe.Pointer) uint64 { return uint64(uintptr(p)) }

func mem(addr uint64, n uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(addr))), n)
}

func aligned16(b []byte) uint64 {
	a := addrOf(unsafe.Pointer(&b[0]))
	return (a + 15) &^ 15
}

func stackTop(i int) uint64 { return addrOf(unsafe.Pointer(&kstacks[0])) + uint64(i+1)*stackSize }

func puts(s string) {
	for i := 0; i < len(s); i++ {
		serialPut(s[i])
	}
}

func say(l *line) { serialWrite(l.Bytes()) }

// kmain runs on the boot stack with the kernel g installed, interrupts
// off. It sets the machine up and enters the program; it does not return.
func kmain() {
	serialInit()
	curFX = aligned16(idleFX[:])
	curFS = kernelFS
	if bootInfo[0] != bootMagic || bootInfo[2] <= bootInfo[1] {
		puts("anyk: image lacks boot information; build it with anyk build\n")
		exit(exitKernelPanic)
	}
	setupGDT()
	setupIDT()
	if !cpuCheck() {
		exit(exitKernelPanic)
	}
	setupMemory()
	setupPaging()
	clockInit()
	picInit()
	wrmsr(0xC0000081, uint64(selCode)<<32)        // STAR
	wrmsr(0xC0000082, uint64(syscallEntryAddr())) // LSTAR
	wrmsr(0xC0000084, linux.FlagIF|linux.FlagTF|linux.FlagDF|linux.FlagAC)

	proc.Trace = cmd.Trace
	if !cmd.NoVDSO {
		base := addrOf(unsafe.Pointer(&vdso[0]))
		buildVDSO(vdso[:], base, uint64(vdsoClockGettimeAddr()))
		proc.VDSO = base
	}
	if e := proc.Init(bootInfo[1], bootInfo[2]); e != 0 {
		puts("anyk: cannot map the image\n")
		exit(exitKernelPanic)
	}
	fx := aligned16(initFX[:])
	fpuInit(uintptr(fx))
	if _, e := proc.Start(&mach, userEntry, &cmd.Args, &cmd.Env, mem(fx, linux.FXSize)); e != 0 {
		var l line
		l.S("anyk: cannot start the program: errno ").D(int64(e)).S("\n")
		say(&l)
		exit(exitKernelPanic)
	}
	if bootInfo[3] != 0 {
		setDebug(bootInfo[3], 0x401) // DR0 execute breakpoint on main.main
	}
	// Input that arrived during start-up raised the UART's interrupt while
	// the PIC was being reprogrammed; take it now, which also lets the
	// next byte raise a fresh edge.
	serialIRQ()
	f := kstackTop - linux.RegsSize
	r := (*linux.Regs)(unsafe.Add(unsafe.Pointer(nil), uintptr(f)))
	*r = linux.Regs{}
	resume(r)
	enterFrame(uintptr(f))
}

func cpuCheck() bool {
	_, _, c, _ := cpuid(1, 0)
	if c&(1<<30) == 0 {
		puts("anyk: the CPU has no RDRAND; getrandom needs a hardware source (QEMU: -cpu max)\n")
		return false
	}
	return true
}

func setupGDT() {
	gdt[1] = 0x00AF9A000000FFFF // 64-bit code, ring 0
	gdt[2] = 0x00CF92000000FFFF // data
	base := addrOf(unsafe.Pointer(&tss[0]))
	const limit = 103
	gdt[3] = limit&0xFFFF | (base&0xFFFFFF)<<16 | 0x89<<40 | (limit>>16&0xF)<<48 | (base>>24&0xFF)<<56
	gdt[4] = base >> 32
	t := mem(base, 104)
	putU64(t[36:], kstackTop)   // IST1: interrupts (and the system-call stack)
	putU64(t[44:], stackTop(4)) // IST2: page faults
	putU64(t[52:], stackTop(3)) // IST3: other exceptions
	putU64(t[60:], stackTop(2)) // IST4: double fault, NMI, machine check
	putU16(t[102:], 104)        // no I/O permission bitmap
	d := mem(addrOf(unsafe.Pointer(&desc[0])), 10)
	putU16(d, uint16(len(gdt)*8-1))
	putU64(d[2:], addrOf(unsafe.Pointer(&gdt[0])))
	lgdt(uintptr(addrOf(unsafe.Pointer(&desc[0]))))
	ltr(selTSS)
}

func setupIDT() {
	for v := 0; v < 48; v++ {
		off := uint64(vecAddr(v))
		var ist uint64
		switch {
		case v == 14:
			ist = 2
		case v == 2 || v == 8 || v == 18:
			ist = 4
		case v < 32:
			ist = 3
		default:
			ist = 1
		}
		idt[2*v] = off&0xFFFF | selCode<<16 | ist<<32 | 0x8E<<40 | (off>>16&0xFFFF)<<48
		idt[2*v+1] = off >> 32
	}
	d := mem(addrOf(unsafe.Pointer(&desc[0])), 10)
	putU16(d, uint16(len(idt)*8-1))
	putU64(d[2:], addrOf(unsafe.Pointer(&idt[0])))
	lidt(uintptr(addrOf(unsafe.Pointer(&desc[0]))))
}

// Local APIC registers (Intel SDM vol. 3, §10.4-10.5).
const (
	msrAPICBase  = 0x1B
	apicSVR      = 0xF0
	apicLVTLINT0 = 0x350
	apicLVTLINT1 = 0x360
)

func picInit() {
	// Route the 8259's output through the local APIC as on a PC after
	// firmware set-up ("virtual wire": LINT0 ExtINT, LINT1 NMI). SeaBIOS
	// does this; qboot (QEMU's microvm) does not, and without it no PIC
	// interrupt reaches the CPU. The spurious vector is IRQ 15's slot.
	if _, _, _, d := cpuid(1, 0); d&(1<<9) != 0 {
		base := rdmsr(msrAPICBase)
		if base&(1<<11) != 0 {
			apic := base & 0xFFFFF000
			if apic < 4<<30 {
				w := func(reg uint64, v uint32) { *(*uint32)(unsafe.Add(unsafe.Pointer(nil), uintptr(apic+reg))) = v }
				w(apicSVR, 1<<8|47)
				w(apicLVTLINT0, 0x700)
				w(apicLVTLINT1, 0x400)
			}
		}
	}
	outb(0x20, 0x11)
	outb(0xA0, 0x11)
	outb(0x21, 0x20) // IRQ 0-7 at vectors 32-39
	outb(0xA1, 0x28) // IRQ 8-15 at 40-47
	outb(0x21, 4)
	outb(0xA1, 2)
	outb(0x21, 1)
	outb(0xA1, 1)
	outb(0x21, 0xEE) // the PIT and the console's UART
	outb(0xA1, 0xFF)
}

// Boot protocols.
const (
	multibootMagic = 0x2BADB002 // EAX from a multiboot loader
	pvhMagic       = 0x336EC578 // hvm_start_info.magic (xen/include/public/arch-x86/hvm/start_info.h)
)

// setupMemory reads what the loader passed, multiboot or PVH: the command
// line and the memory map, whose usable RAM above the image goes to the
// frame allocator.
func setupMemory() {
	// Some PVH loaders (qboot, on QEMU's microvm) also set EAX to the
	// multiboot magic: the start info's own magic decides.
	if getU32(mem(mbiAddr, 4)) == pvhMagic {
		setupMemoryPVH()
		return
	}
	mbi := mem(mbiAddr, 52)
	flags := getU32(mbi)
	reserved := bootInfo[2]
	note := func(end uint64) {
		if end > reserved {
			reserved = end
		}
	}
	note(mbiAddr + 88)
	if flags&(1<<2) != 0 {
		p := uint64(getU32(mbi[16:]))
		src := mem(p, uint64(len(cmdBuf)-1))
		n := 0
		for n < len(src) && src[n] != 0 {
			cmdBuf[n] = src[n]
			n++
		}
		note(p + uint64(n) + 1)
		if !ParseCmdline(cmdBuf[:n], &cmd) {
			puts("anyk: command line too long; arguments dropped\n")
		}
	}
	if flags&(1<<6) == 0 {
		// No map: assume mem_upper KiB above 1 MiB.
		memTop = 1<<20 + uint64(getU32(mbi[8:]))*1024
		frames.AddRange(reserved, memTop)
		frames.AddRange(1<<20, bootInfo[1])
		return
	}
	mlen, maddr := uint64(getU32(mbi[44:])), uint64(getU32(mbi[48:]))
	note(maddr + mlen)
	reserved = (reserved + 0xFFFF) &^ 0xFFFF
	for off := uint64(0); off+24 <= mlen; {
		e := mem(maddr+off, 24)
		size := uint64(getU32(e))
		base, length, typ := getU64(e[4:]), getU64(e[12:]), getU32(e[20:])
		off += size + 4
		if typ == 1 {
			addRAM(base, base+length, reserved)
		}
	}
}

// setupMemoryPVH reads an hvm_start_info (version 1: with a memory map).
func setupMemoryPVH() {
	si := mem(mbiAddr, 56)
	reserved := bootInfo[2]
	if p := getU64(si[24:]); p != 0 {
		// PVH passes only what -append says; argv[0] is not in it.
		n := copy(cmdBuf[:], "unikernel ")
		src := mem(p, uint64(len(cmdBuf)-n-1))
		for i := 0; i < len(src) && src[i] != 0; i++ {
			cmdBuf[n] = src[i]
			n++
		}
		if !ParseCmdline(cmdBuf[:n], &cmd) {
			puts("anyk: command line too long; arguments dropped\n")
		}
	}
	reserved = (reserved + 0xFFFF) &^ 0xFFFF
	if getU32(si[4:]) < 1 {
		puts("anyk: PVH start info without a memory map\n")
		exit(exitKernelPanic)
	}
	maddr, n := getU64(si[40:]), uint64(getU32(si[48:]))
	for i := uint64(0); i < n; i++ {
		e := mem(maddr+24*i, 24)
		if getU32(e[16:]) == 1 {
			addRAM(getU64(e), getU64(e)+getU64(e[8:]), reserved)
		}
	}
}

// addRAM gives the usable RAM in [base, end) to the frame allocator,
// except the image and everything below reserved above it.
func addRAM(base, end, reserved uint64) {
	if end > 3<<30 {
		end = 3 << 30 // keep clear of the PCI hole
	}
	if end > memTop {
		memTop = end
	}
	lo := base
	if lo < 1<<20 {
		lo = 1 << 20
	}
	// The image and the loader's data are in use.
	if lo < bootInfo[1] && end > lo {
		frames.AddRange(lo, min(end, bootInfo[1]))
	}
	if lo < reserved {
		lo = reserved
	}
	if end > lo {
		frames.AddRange(lo, end)
	}
}

// trap is called by trapCommon for every exception, interrupt and system
// call, with f the address of the saved frame (a linux.Regs).
func trap(f uintptr) {
	r := (*linux.Regs)(unsafe.Add(unsafe.Pointer(nil), f))
	v := r.Vector
	if v < 32 && r.RSP >= addrOf(unsafe.Pointer(&kstacks[0])) && r.RSP <= kstackTop {
		kernelPanic(r)
	}
	if cur := proc.Sched.Current(); cur >= 0 {
		proc.Threads[cur].Regs = *r
	}
	switch {
	case v == vecSyscall:
		if tscUser == 0 {
			tscUser = rdtsc()
		}
		if cur := proc.Sched.Current(); cur < 0 || !platformCall(cur) {
			proc.Syscall(&mach)
		}
	case v == vecTimer:
		outb(0x20, 0x20)
		timerSet = false
	case v > vecTimer && v < 48:
		irq(int(v - vecTimer))
	case v == 14:
		proc.PageFault(&mach, readCR2(), r.ErrCode&2 != 0)
	case v == 1:
		dr6 := readDR6()
		writeDR6(0)
		if dr6&1 != 0 && bootInfo[3] != 0 && r.RIP == bootInfo[3] {
			tscMain = rdtsc()
			setDebug(0, 0)
		} else {
			proc.Fault(&mach, linux.SIGTRAP, linux.TRAP_BRKPT, r.RIP)
		}
	case v == 0:
		proc.Fault(&mach, linux.SIGFPE, linux.FPE_INTDIV, r.RIP)
	case v == 16 || v == 19:
		proc.Fault(&mach, linux.SIGFPE, 0, r.RIP)
	case v == 3:
		proc.Fault(&mach, linux.SIGTRAP, linux.TRAP_BRKPT, r.RIP)
	case v == 6:
		proc.Fault(&mach, linux.SIGILL, linux.ILL_ILLOPN, r.RIP)
	case v == 17:
		proc.Fault(&mach, linux.SIGBUS, linux.BUS_ADRERR, 0)
	default:
		proc.Fault(&mach, linux.SIGSEGV, 0x80, 0) // SI_KERNEL, as Linux reports #GP
	}
	resume(r)
}

// resume picks what runs next and writes its frame over r.
func resume(r *linux.Regs) {
	now := nanotime()
	proc.Expire(&mach, now)
	next := proc.Sched.Schedule(now, proc.Quantum)
	if next >= 0 {
		proc.Resume(&mach, next)
		th := &proc.Threads[next]
		*r = th.Regs
		r.CS, r.SS = selCode, selData
		r.RFLAGS |= linux.FlagIF
		curFX = aligned16(th.FXState())
		curFS = th.FSBase
	} else {
		*r = linux.Regs{RIP: uint64(idleLoopAddr()), CS: selCode, RFLAGS: linux.FlagIF | 2, RSP: stackTop(1), SS: selData}
		curFX = aligned16(idleFX[:])
		curFS = kernelFS
	}
	armTimer(now)
}

// armTimer programs the PIT for a one-shot interrupt at the scheduler's
// next event, if that is earlier than the one already programmed.
func armTimer(now int64) {
	when, ok := proc.Sched.NextEvent(proc.Quantum)
	if !ok || (timerSet && timerAt <= when) {
		return
	}
	d := when - now
	if d < 20_000 {
		d = 20_000
	}
	if d > 50_000_000 {
		d = 50_000_000
	}
	count := d * pitHz / 1e9
	if count > 0xFFFF {
		count = 0xFFFF
	}
	outb(0x43, 0x30) // channel 0, lo/hi byte, mode 0 (interrupt on terminal count)
	outb(0x40, uint8(count))
	outb(0x40, uint8(count>>8))
	timerSet = true
	timerAt = now + d
}

func kernelPanic(r *linux.Regs) {
	var l line
	l.S("anyk: kernel panic: vector ").D(int64(r.Vector)).S(" error ").X16(r.ErrCode).S(" cr2 ").X16(readCR2()).S("\n")
	say(&l)
	dumpRegs(r)
	lo, hi := addrOf(unsafe.Pointer(&kstacks[0])), kstackTop
	bp := r.RBP
	for i := 0; i < 32 && bp >= lo && bp+16 <= hi && bp&7 == 0; i++ {
		w := mem(bp, 16)
		l = line{}
		l.S("anyk:   pc ").X16(getU64(w[8:])).S("\n")
		say(&l)
		bp = getU64(w)
	}
	exit(exitKernelPanic)
}

func dumpRegs(r *linux.Regs) {
	var l line
	l.S("anyk: rip ").X16(r.RIP).S(" rsp ").X16(r.RSP).S(" rbp ").X16(r.RBP).S(" rflags ").X16(r.RFLAGS).S("\n")
	say(&l)
	l = line{}
	l.S("anyk: rax ").X16(r.RAX).S(" rbx ").X16(r.RBX).S(" rcx ").X16(r.RCX).S(" rdx ").X16(r.RDX).S("\n")
	say(&l)
	l = line{}
	l.S("anyk: rsi ").X16(r.RSI).S(" rdi ").X16(r.RDI).S(" r8 ").X16(r.R8).S(" r9 ").X16(r.R9).S("\n")
	say(&l)
	l = line{}
	l.S("anyk: r10 ").X16(r.R10).S(" r11 ").X16(r.R11).S(" r12 ").X16(r.R12).S(" r13 ").X16(r.R13).S("\n")
	say(&l)
	l = line{}
	l.S("anyk: r14 ").X16(r.R14).S(" r15 ").X16(r.R15).S("\n")
	say(&l)
}

func summary() {
	proc.Summary(&mach)
	var l line
	l.S("anyk: frames in use ").D(int64(frames.Used())).S(" of ").D(int64(frames.Total())).
		S(", memory top ").D(int64(memTop >> 20)).S(" MiB, tsc ").D(int64(tscHz / 1000)).S(" kHz")
	if tscUser != 0 {
		l.S(", boot entry->runtime ").D(tscToNs(tscUser-tscEntry) / 1000).S(" us")
	}
	if tscMain != 0 {
		l.S(", entry->main ").D(tscToNs(tscMain-tscEntry) / 1000).S(" us")
	}
	l.S(", entry->exit ").D(tscToNs(rdtsc()-tscEntry) / 1000).S(" us, console input overruns ").D(int64(rxOverruns)).S(" dropped ").D(int64(rxDropped)).S("\n")
	say(&l)
}

// exit ends the machine through QEMU's isa-debug-exit device (status
// code*2+1) and halts if there is none. QEMU's status has 8 bits, so
// codes above 127 are announced on the console and sent as 127.
func exit(code int) {
	if cmd.Summary && !exiting {
		exiting = true
		summary()
	}
	if code > 127 {
		var l line
		l.S("anyk: exit status ").D(int64(code)).S("\n")
		say(&l)
		code = 127
	}
	outl(0xf4, uint32(code))
	halt()
}

func tscToNs(d uint64) int64 {
	hi, lo := bits.Mul64(d, tscMult)
	return int64(hi<<32 | lo>>32)
}
