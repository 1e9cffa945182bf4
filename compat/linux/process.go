package linux

import (
	"unsafe"

	"github.com/anykernel/anykernel/sched/threads"
)

// MaxThreads is the number of threads a process can have at once.
const MaxThreads = threads.MaxThreads

type waitKind uint8

const (
	waitNone waitKind = iota
	waitFutex
	waitSleep
	waitEpoll
	waitRead
)

// Thread is one thread of the process: its saved registers and FPU state,
// TLS base, signal state and what it waits for.
type Thread struct {
	Regs   Regs
	fx     [FXSize + 16]byte
	FSBase uint64
	Tid    int32

	sigMask    uint64
	sigPending uint64
	altSP      uint64
	altSize    uint64
	clearTid   uint64

	wait     waitKind
	waitAddr uint64
	waitN    int32
	waitFD   int32
}

// FXState returns the thread's 16-byte-aligned FXSAVE area.
func (t *Thread) FXState() []byte {
	a := uintptr(unsafe.Pointer(&t.fx[0]))
	o := (16 - a%16) % 16
	return t.fx[o : o+FXSize]
}

type sigAction struct {
	handler, flags, restorer, mask uint64
}

// Stats counts what the process did.
type Stats struct {
	Calls          [NumSyscalls]uint64
	Unknown        uint64 // calls answered ENOSYS because they are not served
	ThreadsCreated uint64
	PageFaults     uint64
	Signals        uint64
}

// Process is the state of the one program the kernel runs: its threads and
// their scheduler, futex waiters, memory map, descriptors and signal
// actions. It holds no pointers, so it can live in a global of the
// bare-metal kernel.
type Process struct {
	Threads [MaxThreads]Thread
	Sched   threads.Scheduler
	Futex   FutexTable
	MM      AddressSpace
	Files   Files
	sigact  [NSIG + 1]sigAction
	Stats   Stats

	// Trace logs every system call to the console.
	Trace bool
	// Quantum is the time slice in nanoseconds (10 ms if zero).
	Quantum int64
	// VDSO is the address of a vDSO image to pass as AT_SYSINFO_EHDR
	// (none if zero).
	VDSO uint64

	nextTid  int32
	out      Line
	Exited   bool
	ExitCode int
}

// Layout of the initial address space.
const (
	// MmapBase and MmapTop bound where mappings without a usable hint go.
	MmapBase = 1 << 32
	MmapTop  = 1 << 46
	// StackTop is the top of the main thread's stack, StackSize its size.
	StackTop  = 0x7fff_f000_0000
	StackSize = 8 << 20
)

// Init resets p. The ranges [imageStart, imageEnd) (the program's loaded
// segments) are mapped readable, writable and executable.
func (p *Process) Init(imageStart, imageEnd uint64) Errno {
	trace, quantum, vdso := p.Trace, p.Quantum, p.VDSO
	*p = Process{Trace: trace, Quantum: quantum, VDSO: vdso}
	if p.Quantum <= 0 {
		p.Quantum = 10_000_000
	}
	p.MM.Init(MmapBase, MmapTop)
	p.Files.Init()
	p.nextTid = 1
	if imageEnd > imageStart {
		s := imageStart &^ (PageSize - 1)
		if _, err := p.MM.Map(s, imageEnd-s, PROT_READ|PROT_WRITE|PROT_EXEC, true, false); err != 0 {
			return err
		}
	}
	return 0
}

// Start creates the main thread at entry with a Linux initial stack
// (argc, argv, envp, auxv with AT_PAGESZ and AT_RANDOM) and makes it
// runnable. fx is the initial FPU state. It returns the thread's number.
func (p *Process) Start(m Machine, entry uint64, args, env *Strings, fx []byte) (int, Errno) {
	if _, err := p.MM.Map(StackTop-StackSize, StackSize, PROT_READ|PROT_WRITE, true, false); err != 0 {
		return -1, err
	}
	// Strings and the random bytes at the top, pointers below.
	strBytes := uint64(16 + args.used + env.used)
	strStart := (StackTop - 64 - strBytes) &^ 15
	nptr := uint64(1 + args.n + 1 + env.n + 1 + 2*6)
	sp := (strStart - nptr*8) &^ 15
	b, err := p.user(m, sp, StackTop-sp, true)
	if err != 0 {
		return -1, err
	}
	at := func(addr uint64) []byte { return b[addr-sp:] }
	rnd := strStart
	if !m.Random(at(rnd)[:16]) {
		return -1, EIO
	}
	s := rnd + 16
	w := sp
	put := func(v uint64) { put64(at(w), v); w += 8 }
	put(uint64(args.n))
	for i := 0; i < args.n; i++ {
		put(s)
		s += uint64(copy(at(s), args.buf[args.off[i]:int(args.off[i])+int(args.len[i])+1]))
	}
	put(0)
	for i := 0; i < env.n; i++ {
		put(s)
		s += uint64(copy(at(s), env.buf[env.off[i]:int(env.off[i])+int(env.len[i])+1]))
	}
	put(0)
	put(AT_PAGESZ)
	put(PageSize)
	put(AT_RANDOM)
	put(rnd)
	put(AT_CLKTCK)
	put(100)
	put(AT_HWCAP)
	put(0)
	if p.VDSO != 0 {
		put(AT_SYSINFO_EHDR)
		put(p.VDSO)
	} else {
		put(AT_IGNORE)
		put(0)
	}
	put(AT_NULL)
	put(0)

	t, ok := p.Sched.Alloc()
	if !ok {
		return -1, EAGAIN
	}
	th := &p.Threads[t]
	*th = Thread{}
	th.Tid = p.newTid()
	th.Regs = Regs{RIP: entry, RSP: sp, RFLAGS: FlagIF | 2}
	copy(th.FXState(), fx)
	p.Stats.ThreadsCreated++
	return t, 0
}

func (p *Process) newTid() int32 {
	t := p.nextTid
	p.nextTid++
	return t
}

// user returns the user memory [addr, addr+n) after checking the memory
// map allows the access and populating it.
func (p *Process) user(m Machine, addr, n uint64, write bool) ([]byte, Errno) {
	if n == 0 {
		return nil, 0
	}
	if !p.MM.Access(addr, n, write) {
		return nil, EFAULT
	}
	if !m.Populate(addr, n) {
		return nil, ENOMEM
	}
	return m.Bytes(addr, n), 0
}

// PageFault handles a fault at addr by the running thread: it maps a page
// if the memory map allows the access, and otherwise raises SIGSEGV.
func (p *Process) PageFault(m Machine, addr uint64, write bool) {
	t := p.Sched.Current()
	if t < 0 {
		return
	}
	p.Stats.PageFaults++
	page := addr &^ (PageSize - 1)
	if p.MM.Access(page, 1, write) {
		if m.Populate(page, PageSize) {
			return
		}
		p.fatal(m, t, "out of memory", SIGKILL, addr)
		return
	}
	code := SEGV_MAPERR
	if _, ok := p.MM.Find(addr); ok {
		code = SEGV_ACCERR
	}
	p.Fault(m, SIGSEGV, code, addr)
}

// complete finishes thread t's blocking call with result r and makes it
// runnable.
func (p *Process) complete(t int, r int64) {
	th := &p.Threads[t]
	th.Regs.RAX = uint64(r)
	th.wait = waitNone
	p.Futex.Cancel(t)
	p.Sched.Wake(t)
}

// Expire finishes the waits whose deadlines passed by now.
func (p *Process) Expire(m Machine, now int64) {
	for {
		t, ok := p.Sched.Expired(now)
		if !ok {
			return
		}
		switch p.Threads[t].wait {
		case waitFutex:
			p.complete(t, -int64(ETIMEDOUT))
		case waitEpoll:
			n, _ := p.epollCollect(m, t)
			p.complete(t, int64(n))
		default:
			p.complete(t, 0)
		}
	}
}

// pollWake completes epoll waits that have events now.
func (p *Process) pollWake(m Machine) {
	for t := range p.Threads {
		if p.Sched.State(t) != threads.Blocked || p.Threads[t].wait != waitEpoll {
			continue
		}
		if n, err := p.epollCollect(m, t); err != 0 {
			p.complete(t, -int64(err))
		} else if n > 0 {
			p.complete(t, int64(n))
		}
	}
}

func (p *Process) epollCollect(m Machine, t int) (int, Errno) {
	th := &p.Threads[t]
	b, err := p.user(m, th.waitAddr, uint64(th.waitN)*12, true)
	if err != 0 {
		return 0, err
	}
	return p.Files.EpollReady(uint64(th.waitFD), b)
}

// exitThread ends thread t.
func (p *Process) exitThread(m Machine, t int) {
	th := &p.Threads[t]
	if th.clearTid != 0 {
		if b, err := p.user(m, th.clearTid, 4, true); err == 0 {
			put32(b, 0)
			p.futexWake(th.clearTid, 1)
		}
	}
	p.Futex.Cancel(t)
	p.Sched.Exit(t)
	if p.Sched.Live() == 0 {
		p.exit(m, 0)
	}
}

// exit ends the process.
func (p *Process) exit(m Machine, code int) {
	p.Exited = true
	p.ExitCode = code & 0xff
	for t := range p.Threads {
		p.Sched.Exit(t)
	}
	m.Exit(p.ExitCode)
}

// Live returns the number of threads.
func (p *Process) Live() int { return p.Sched.Live() }

func (p *Process) futexWake(addr uint64, n int) int {
	woken := 0
	for woken < n {
		t, ok := p.Futex.WakeOne(addr)
		if !ok {
			break
		}
		p.complete(t, 0)
		woken++
	}
	return woken
}

// Notify adds n to eventfd fd's counter on behalf of the platform (an
// interrupt, say) and wakes the epoll waits it satisfies.
func (p *Process) Notify(m Machine, fd uint64, n uint64) Errno {
	if e := p.Files.EventfdWrite(fd, n); e != 0 {
		return e
	}
	p.pollWake(m)
	return 0
}

// ConsoleInput tells the process console input has arrived: a thread
// blocked reading the console gets it, and epoll waits on the console
// wake.
func (p *Process) ConsoleInput(m Machine) {
	p.Files.setConsoleInput(true)
	for t := range p.Threads {
		if p.Sched.State(t) != threads.Blocked || p.Threads[t].wait != waitRead {
			continue
		}
		th := &p.Threads[t]
		b, err := p.user(m, th.waitAddr, uint64(th.waitN), true)
		if err != 0 {
			p.complete(t, -int64(err))
			continue
		}
		n := m.ConsoleRead(b)
		if n < len(b) {
			p.Files.setConsoleInput(false)
		}
		if n > 0 {
			p.complete(t, int64(n))
		}
		if n < len(b) {
			break
		}
	}
	p.pollWake(m)
}
