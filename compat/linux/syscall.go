package linux

import "github.com/anykernel/anykernel/sched/threads"

// Syscall serves the system call the running thread made: the number in
// RAX, arguments in RDI, RSI, RDX, R10, R8, R9. The result goes to RAX,
// now or, for a call that blocks, when it completes. As after the SYSCALL
// instruction on Linux, RCX and R11 return holding RIP and RFLAGS.
func (p *Process) Syscall(m Machine) {
	t := p.Sched.Current()
	if t < 0 {
		return
	}
	r := &p.Threads[t].Regs
	nr := r.RAX
	if nr < NumSyscalls {
		p.Stats.Calls[nr]++
	}
	if nr == SYS_rt_sigreturn {
		p.sigreturn(m, t)
		if p.Trace {
			p.trace(m, t, nr, 0, false)
		}
		return
	}
	r.RCX = r.RIP
	r.R11 = r.RFLAGS
	ret, blocked := p.dispatch(m, t, nr, r.RDI, r.RSI, r.RDX, r.R10, r.R8, r.R9)
	if ret == -int64(ENOSYS) {
		p.Stats.Unknown++
	}
	if !blocked && p.Sched.State(t) != threads.Free {
		p.Threads[t].Regs.RAX = uint64(ret)
	}
	if p.Trace {
		p.trace(m, t, nr, ret, blocked)
	}
}

func errno(e Errno) int64 { return -int64(e) }

func ret(v int64, e Errno) int64 {
	if e != 0 {
		return -int64(e)
	}
	return v
}

// dispatch serves call nr for thread t and returns its result; blocked
// means the thread now waits and its result comes later.
func (p *Process) dispatch(m Machine, t int, nr, a0, a1, a2, a3, a4, a5 uint64) (int64, bool) {
	th := &p.Threads[t]
	switch nr {
	case SYS_write:
		return p.write(m, a0, a1, a2), false
	case SYS_writev:
		return p.writev(m, a0, a1, a2), false
	case SYS_read:
		return p.read(m, t, a0, a1, a2)
	case SYS_close:
		if a0 < 3 {
			return 0, false
		}
		return errno(p.Files.Close(a0)), false
	case SYS_open, SYS_openat, SYS_stat, SYS_lstat, SYS_access, SYS_faccessat, SYS_faccessat2,
		SYS_readlink, SYS_readlinkat, SYS_statx:
		return errno(ENOENT), false
	case SYS_fstat:
		return p.fstat(m, a0, a1), false
	case SYS_newfstatat:
		if a3&0x1000 != 0 { // AT_EMPTY_PATH
			return p.fstat(m, a0, a2), false
		}
		return errno(ENOENT), false
	case SYS_ioctl:
		return errno(ENOTTY), false
	case SYS_fcntl:
		return p.fcntl(a0, a1, a2), false
	case SYS_mmap:
		return p.mmap(m, a0, a1, a2, a3, a4), false
	case SYS_munmap:
		if e := p.MM.Unmap(a0, a1); e != 0 {
			return errno(e), false
		}
		m.Release(a0, (a1+PageSize-1)&^(PageSize-1))
		return 0, false
	case SYS_mprotect:
		return errno(p.MM.Protect(a0, a1, uint32(a2))), false
	case SYS_madvise:
		if a0&(PageSize-1) != 0 {
			return errno(EINVAL), false
		}
		if a2 == MADV_DONTNEED || a2 == MADV_FREE {
			n := (a1 + PageSize - 1) &^ (PageSize - 1)
			if !p.MM.Access(a0, n, false) {
				return errno(ENOMEM), false
			}
			m.Release(a0, n)
		}
		return 0, false
	case SYS_brk:
		return 0, false
	case SYS_rt_sigaction:
		return p.sigaction(m, a0, a1, a2, a3), false
	case SYS_rt_sigprocmask:
		return p.sigprocmask(m, t, a0, a1, a2, a3), false
	case SYS_sigaltstack:
		return p.sigaltstack(m, t, a0, a1), false
	case SYS_sched_yield:
		p.Sched.Yield()
		return 0, false
	case SYS_nanosleep:
		return p.nanosleep(m, t, CLOCK_MONOTONIC, 0, a0)
	case SYS_clock_nanosleep:
		return p.nanosleep(m, t, a0, a1, a2)
	case SYS_getpid:
		return 1, false
	case SYS_gettid:
		return int64(th.Tid), false
	case SYS_getppid:
		return 0, false
	case SYS_getuid, SYS_getgid, SYS_geteuid, SYS_getegid:
		return 0, false
	case SYS_clone:
		return p.clone(m, t, a0, a1, a2, a3, a4), false
	case SYS_fork, SYS_vfork, SYS_execve:
		return errno(ENOSYS), false
	case SYS_exit:
		p.exitThread(m, t)
		return 0, false
	case SYS_exit_group:
		p.exit(m, int(a0))
		return 0, false
	case SYS_kill:
		if a0 != 1 && a0 != 0 {
			return errno(ESRCH), false
		}
		return p.kill(t, a1), false
	case SYS_tkill:
		return p.tgkill(a0, a1), false
	case SYS_tgkill:
		if a0 != 1 {
			return errno(ESRCH), false
		}
		return p.tgkill(a1, a2), false
	case SYS_uname:
		return p.uname(m, a0), false
	case SYS_getcwd:
		b, e := p.user(m, a0, a1, true)
		if e != 0 {
			return errno(e), false
		}
		if len(b) < 2 {
			return errno(34), false // ERANGE
		}
		b[0], b[1] = '/', 0
		return 2, false
	case SYS_gettimeofday:
		if a0 != 0 {
			b, e := p.user(m, a0, 16, true)
			if e != 0 {
				return errno(e), false
			}
			w := m.Walltime()
			put64(b, uint64(w/1e9))
			put64(b[8:], uint64(w%1e9/1000))
		}
		return 0, false
	case SYS_time:
		s := m.Walltime() / 1e9
		if a0 != 0 {
			b, e := p.user(m, a0, 8, true)
			if e != 0 {
				return errno(e), false
			}
			put64(b, uint64(s))
		}
		return s, false
	case SYS_clock_gettime:
		return p.clockGettime(m, a0, a1), false
	case SYS_clock_getres:
		if a1 != 0 {
			b, e := p.user(m, a1, 16, true)
			if e != 0 {
				return errno(e), false
			}
			put64(b, 0)
			put64(b[8:], 1)
		}
		return 0, false
	case SYS_futex:
		return p.futex(m, t, a0, a1, a2, a3, a5)
	case SYS_sched_getaffinity:
		if a1 < 8 {
			return errno(EINVAL), false
		}
		b, e := p.user(m, a2, 8, true)
		if e != 0 {
			return errno(e), false
		}
		put64(b, 1)
		return 8, false
	case SYS_arch_prctl:
		switch a0 {
		case ARCH_SET_FS:
			th.FSBase = a1
			return 0, false
		case ARCH_GET_FS:
			b, e := p.user(m, a1, 8, true)
			if e != 0 {
				return errno(e), false
			}
			put64(b, th.FSBase)
			return 0, false
		}
		return errno(EINVAL), false
	case SYS_prctl:
		return errno(EINVAL), false
	case SYS_set_tid_address:
		th.clearTid = a0
		return int64(th.Tid), false
	case SYS_getrlimit:
		return p.rlimit(m, a0, a1), false
	case SYS_prlimit64:
		if a0 != 0 && a0 != 1 {
			return errno(ESRCH), false
		}
		return p.rlimit(m, a1, a3), false
	case SYS_getrandom:
		b, e := p.user(m, a0, a1, true)
		if e != 0 {
			return errno(e), false
		}
		if !m.Random(b) {
			return errno(EIO), false
		}
		return int64(len(b)), false
	case SYS_eventfd2, SYS_eventfd:
		fd, e := p.Files.Eventfd(a0, uint32(a1))
		return ret(int64(fd), e), false
	case SYS_epoll_create1, SYS_epoll_create:
		fd, e := p.Files.EpollCreate()
		return ret(int64(fd), e), false
	case SYS_epoll_ctl:
		var ev, data uint64
		if a1 != EPOLL_CTL_DEL {
			b, e := p.user(m, a3, 12, false)
			if e != 0 {
				return errno(e), false
			}
			ev, data = uint64(get32(b)), get64(b[4:])
		}
		return errno(p.Files.EpollCtl(a0, int(a1), a2, uint32(ev), data)), false
	case SYS_epoll_wait, SYS_epoll_pwait:
		return p.epollWait(m, t, a0, a1, a2, int64(int32(a3)))
	case SYS_pipe, SYS_pipe2:
		return errno(ENOSYS), false
	case SYS_set_robust_list, SYS_rseq:
		return errno(ENOSYS), false
	}
	return errno(ENOSYS), false
}

func (p *Process) write(m Machine, fd, buf, n uint64) int64 {
	f := p.Files.get(fd)
	if f == nil {
		return errno(EBADF)
	}
	switch f.kind {
	case fdConsole:
		b, e := p.user(m, buf, n, false)
		if e != 0 {
			return errno(e)
		}
		m.Console(b)
		return int64(n)
	case fdEventfd:
		if n < 8 {
			return errno(EINVAL)
		}
		b, e := p.user(m, buf, 8, false)
		if e != 0 {
			return errno(e)
		}
		if e := p.Files.EventfdWrite(fd, get64(b)); e != 0 {
			return errno(e)
		}
		p.pollWake(m)
		return 8
	}
	return errno(EINVAL)
}

func (p *Process) writev(m Machine, fd, iov, cnt uint64) int64 {
	if cnt > 1024 {
		return errno(EINVAL)
	}
	var total int64
	for i := uint64(0); i < cnt; i++ {
		v, e := p.user(m, iov+16*i, 16, false)
		if e != 0 {
			return errno(e)
		}
		n := p.write(m, fd, get64(v), get64(v[8:]))
		if n < 0 {
			if total > 0 {
				return total
			}
			return n
		}
		total += n
	}
	return total
}

func (p *Process) read(m Machine, t int, fd, buf, n uint64) (int64, bool) {
	f := p.Files.get(fd)
	if f == nil {
		return errno(EBADF), false
	}
	switch f.kind {
	case fdConsole:
		if n == 0 {
			return 0, false
		}
		if n > 1<<20 {
			n = 1 << 20
		}
		b, e := p.user(m, buf, n, true)
		if e != 0 {
			return errno(e), false
		}
		got := m.ConsoleRead(b)
		if got < len(b) {
			p.Files.setConsoleInput(false)
		}
		if got > 0 {
			return int64(got), false
		}
		if f.flags&O_NONBLOCK != 0 {
			return errno(EAGAIN), false
		}
		th := &p.Threads[t]
		th.wait, th.waitFD, th.waitAddr, th.waitN = waitRead, int32(fd), buf, int32(n)
		p.Sched.Block(t, 0)
		return 0, true
	case fdEventfd:
		if n < 8 {
			return errno(EINVAL), false
		}
		b, e := p.user(m, buf, 8, true)
		if e != 0 {
			return errno(e), false
		}
		v, e := p.Files.EventfdRead(fd)
		if e != 0 {
			return errno(e), false
		}
		put64(b, v)
		return 8, false
	}
	return errno(EINVAL), false
}

func (p *Process) fstat(m Machine, fd, buf uint64) int64 {
	f := p.Files.get(fd)
	if f == nil {
		return errno(EBADF)
	}
	b, e := p.user(m, buf, 144, true)
	if e != 0 {
		return errno(e)
	}
	clear(b)
	mode := uint32(0o600)
	if f.kind == fdConsole {
		mode |= 0o020000 // S_IFCHR
	}
	put64(b[16:], 1) // st_nlink
	put32(b[24:], mode)
	put64(b[56:], PageSize) // st_blksize
	return 0
}

func (p *Process) fcntl(fd, cmd, arg uint64) int64 {
	f := p.Files.get(fd)
	if f == nil {
		return errno(EBADF)
	}
	switch cmd {
	case F_GETFL:
		return int64(f.flags)
	case F_SETFL:
		f.flags = f.flags&^O_NONBLOCK | uint32(arg)&O_NONBLOCK
		return 0
	case F_GETFD, F_SETFD:
		return 0
	}
	return errno(EINVAL)
}

func (p *Process) mmap(m Machine, addr, length, prot, flags, fd uint64) int64 {
	if flags&MAP_ANONYMOUS == 0 {
		return errno(ENODEV)
	}
	if prot&^(PROT_READ|PROT_WRITE|PROT_EXEC) != 0 {
		return errno(EINVAL)
	}
	a, e := p.MM.Map(addr, length, uint32(prot), flags&MAP_FIXED != 0, flags&MAP_FIXED_NOREPLACE != 0)
	if e != 0 {
		return errno(e)
	}
	// A new mapping reads as zeros: drop whatever was there.
	m.Release(a, (length+PageSize-1)&^(PageSize-1))
	return int64(a)
}

func (p *Process) sigaction(m Machine, sig, act, oact, size uint64) int64 {
	if sig < 1 || sig > NSIG || size != 8 {
		return errno(EINVAL)
	}
	if oact != 0 {
		b, e := p.user(m, oact, 32, true)
		if e != 0 {
			return errno(e)
		}
		a := &p.sigact[sig]
		put64(b, a.handler)
		put64(b[8:], a.flags)
		put64(b[16:], a.restorer)
		put64(b[24:], a.mask)
	}
	if act != 0 {
		if sig == SIGKILL || sig == SIGSTOP {
			return errno(EINVAL)
		}
		b, e := p.user(m, act, 32, false)
		if e != 0 {
			return errno(e)
		}
		p.sigact[sig] = sigAction{handler: get64(b), flags: get64(b[8:]), restorer: get64(b[16:]), mask: get64(b[24:])}
	}
	return 0
}

func (p *Process) sigprocmask(m Machine, t int, how, set, oset, size uint64) int64 {
	th := &p.Threads[t]
	if size != 8 {
		return errno(EINVAL)
	}
	old := th.sigMask
	if set != 0 {
		b, e := p.user(m, set, 8, false)
		if e != 0 {
			return errno(e)
		}
		s := get64(b)
		switch how {
		case SIG_BLOCK:
			th.sigMask |= s
		case SIG_UNBLOCK:
			th.sigMask &^= s
		case SIG_SETMASK:
			th.sigMask = s
		default:
			return errno(EINVAL)
		}
		th.sigMask &^= unblockable
	}
	if oset != 0 {
		b, e := p.user(m, oset, 8, true)
		if e != 0 {
			return errno(e)
		}
		put64(b, old)
	}
	return 0
}

func (p *Process) sigaltstack(m Machine, t int, ss, old uint64) int64 {
	th := &p.Threads[t]
	if old != 0 {
		b, e := p.user(m, old, 24, true)
		if e != 0 {
			return errno(e)
		}
		flags := uint32(0)
		if th.altSize == 0 {
			flags = SS_DISABLE
		} else if r := th.Regs.RSP; r > th.altSP && r <= th.altSP+th.altSize {
			flags = SS_ONSTACK
		}
		put64(b, th.altSP)
		put64(b[8:], uint64(flags))
		put64(b[16:], th.altSize)
	}
	if ss != 0 {
		b, e := p.user(m, ss, 24, false)
		if e != 0 {
			return errno(e)
		}
		if get32(b[8:])&SS_DISABLE != 0 {
			th.altSP, th.altSize = 0, 0
		} else {
			th.altSP, th.altSize = get64(b), get64(b[16:])
		}
	}
	return 0
}

// timespec reads a struct timespec as nanoseconds.
func (p *Process) timespec(m Machine, addr uint64) (int64, Errno) {
	b, e := p.user(m, addr, 16, false)
	if e != 0 {
		return 0, e
	}
	s, ns := int64(get64(b)), int64(get64(b[8:]))
	if s < 0 || ns < 0 || ns >= 1e9 {
		return 0, EINVAL
	}
	if s > 1<<32 {
		s = 1 << 32
	}
	return s*1e9 + ns, 0
}

func (p *Process) clockGettime(m Machine, clock, ts uint64) int64 {
	var v int64
	switch clock {
	case CLOCK_REALTIME, CLOCK_REALTIME_COARSE:
		v = m.Walltime()
	case CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME,
		CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID:
		v = m.Nanotime()
	default:
		return errno(EINVAL)
	}
	b, e := p.user(m, ts, 16, true)
	if e != 0 {
		return errno(e)
	}
	put64(b, uint64(v/1e9))
	put64(b[8:], uint64(v%1e9))
	return 0
}

func (p *Process) nanosleep(m Machine, t int, clock, flags, req uint64) (int64, bool) {
	d, e := p.timespec(m, req)
	if e != 0 {
		return errno(e), false
	}
	now := m.Nanotime()
	deadline := now + d
	if flags&TIMER_ABSTIME != 0 {
		deadline = d
		if clock == CLOCK_REALTIME {
			deadline = d - m.Walltime() + now
		}
	}
	if deadline <= now {
		return 0, false
	}
	p.Threads[t].wait = waitSleep
	p.Sched.Block(t, deadline)
	return 0, true
}

func (p *Process) futex(m Machine, t int, addr, op, val, timeout, val3 uint64) (int64, bool) {
	cmd := op &^ (FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
	switch cmd {
	case FUTEX_WAIT, FUTEX_WAIT_BITSET:
		if addr&3 != 0 {
			return errno(EINVAL), false
		}
		b, e := p.user(m, addr, 4, false)
		if e != 0 {
			return errno(e), false
		}
		if get32(b) != uint32(val) {
			return errno(EAGAIN), false
		}
		var deadline int64
		if timeout != 0 {
			d, e := p.timespec(m, timeout)
			if e != 0 {
				return errno(e), false
			}
			now := m.Nanotime()
			if cmd == FUTEX_WAIT_BITSET {
				deadline = d
				if op&FUTEX_CLOCK_REALTIME != 0 {
					deadline = d - m.Walltime() + now
				}
			} else {
				deadline = now + d
			}
			if deadline <= now {
				return errno(ETIMEDOUT), false
			}
		}
		p.Threads[t].wait = waitFutex
		p.Futex.Wait(t, addr)
		p.Sched.Block(t, deadline)
		return 0, true
	case FUTEX_WAKE, FUTEX_WAKE_BITSET:
		n := int(int32(val))
		if n < 0 {
			return errno(EINVAL), false
		}
		return int64(p.futexWake(addr, n)), false
	}
	return errno(ENOSYS), false
}

func (p *Process) epollWait(m Machine, t int, epfd, events, max uint64, timeoutMs int64) (int64, bool) {
	if max == 0 || max > 1024 {
		return errno(EINVAL), false
	}
	th := &p.Threads[t]
	th.waitFD, th.waitAddr, th.waitN = int32(epfd), events, int32(max)
	n, e := p.epollCollect(m, t)
	if e != 0 || n > 0 || timeoutMs == 0 {
		return ret(int64(n), e), false
	}
	var deadline int64
	if timeoutMs > 0 {
		deadline = m.Nanotime() + timeoutMs*1e6
	}
	th.wait = waitEpoll
	p.Sched.Block(t, deadline)
	return 0, true
}

func (p *Process) clone(m Machine, t int, flags, stack, ptid, ctid, tls uint64) int64 {
	if flags&(CLONE_VM|CLONE_THREAD) != CLONE_VM|CLONE_THREAD {
		return errno(ENOSYS)
	}
	c, ok := p.Sched.Alloc()
	if !ok {
		return errno(EAGAIN)
	}
	parent := &p.Threads[t]
	child := &p.Threads[c]
	*child = Thread{Regs: parent.Regs, FSBase: parent.FSBase, sigMask: parent.sigMask}
	copy(child.FXState(), parent.FXState())
	child.Tid = p.newTid()
	child.Regs.RAX = 0
	if stack != 0 {
		child.Regs.RSP = stack
	}
	if flags&CLONE_SETTLS != 0 {
		child.FSBase = tls
	}
	if flags&CLONE_CHILD_CLEARTID != 0 {
		child.clearTid = ctid
	}
	for _, set := range [2]struct {
		flag uint64
		addr uint64
	}{{CLONE_PARENT_SETTID, ptid}, {CLONE_CHILD_SETTID, ctid}} {
		if flags&set.flag != 0 {
			if b, e := p.user(m, set.addr, 4, true); e == 0 {
				put32(b, uint32(child.Tid))
			}
		}
	}
	p.Stats.ThreadsCreated++
	return int64(child.Tid)
}

func (p *Process) findTid(tid uint64) int {
	for i := range p.Threads {
		if p.Sched.State(i) != threads.Free && uint64(p.Threads[i].Tid) == tid {
			return i
		}
	}
	return -1
}

func (p *Process) tgkill(tid, sig uint64) int64 {
	if sig > NSIG {
		return errno(EINVAL)
	}
	t := p.findTid(tid)
	if t < 0 {
		return errno(ESRCH)
	}
	if sig != 0 {
		p.signal(t, int(sig))
	}
	return 0
}

func (p *Process) kill(t int, sig uint64) int64 {
	if sig > NSIG {
		return errno(EINVAL)
	}
	if sig != 0 {
		p.signal(t, int(sig))
	}
	return 0
}

func (p *Process) uname(m Machine, buf uint64) int64 {
	b, e := p.user(m, buf, 6*65, true)
	if e != 0 {
		return errno(e)
	}
	clear(b)
	copy(b[0:], "Linux")
	copy(b[65:], "anyk")
	copy(b[130:], "6.1.0-anykernel")
	copy(b[195:], "#1")
	copy(b[260:], "x86_64")
	return 0
}

func (p *Process) rlimit(m Machine, resource, old uint64) int64 {
	if old == 0 {
		return 0
	}
	b, e := p.user(m, old, 16, true)
	if e != 0 {
		return errno(e)
	}
	cur, max := uint64(1<<64-1), uint64(1<<64-1)
	if resource == RLIMIT_NOFILE {
		cur, max = MaxFDs, MaxFDs
	}
	put64(b, cur)
	put64(b[8:], max)
	return 0
}
