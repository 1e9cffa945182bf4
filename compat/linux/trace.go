package linux

// line builds one line of kernel output without allocating. Lines live in
// the Process (see Process.line): a local one would escape to the heap
// when its bytes are passed to Machine.Console through the interface.
type line struct {
	b [200]byte
	n int
}

func (l *line) bytes() []byte { return l.b[:l.n] }

func (l *line) s(s string) *line {
	for i := 0; i < len(s) && l.n < len(l.b); i++ {
		l.b[l.n] = s[i]
		l.n++
	}
	return l
}

func (l *line) d(v int64) *line {
	if v < 0 {
		l.s("-")
		v = -v
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	for ; i < len(tmp) && l.n < len(l.b); i++ {
		l.b[l.n] = tmp[i]
		l.n++
	}
	return l
}

func (l *line) x(v uint64) *line {
	l.s("0x")
	started := false
	for sh := 60; sh >= 0; sh -= 4 {
		c := (v >> uint(sh)) & 15
		if c != 0 || started || sh == 0 {
			started = true
			if l.n < len(l.b) {
				l.b[l.n] = "0123456789abcdef"[c]
				l.n++
			}
		}
	}
	return l
}

// SyscallName returns the name of system call nr, or "" if unknown.
func SyscallName(nr uint64) string {
	if nr < uint64(len(sysNames)) {
		return sysNames[nr]
	}
	switch nr {
	case SYS_faccessat2:
		return "faccessat2"
	case SYS_epoll_pwait2:
		return "epoll_pwait2"
	}
	return ""
}

var sysNames = [...]string{
	SYS_read: "read", SYS_write: "write", SYS_open: "open", SYS_close: "close",
	SYS_stat: "stat", SYS_fstat: "fstat", SYS_lstat: "lstat", SYS_poll: "poll",
	SYS_lseek: "lseek", SYS_mmap: "mmap", SYS_mprotect: "mprotect", SYS_munmap: "munmap",
	SYS_brk: "brk", SYS_rt_sigaction: "rt_sigaction", SYS_rt_sigprocmask: "rt_sigprocmask",
	SYS_rt_sigreturn: "rt_sigreturn", SYS_ioctl: "ioctl", SYS_pread64: "pread64",
	SYS_pwrite64: "pwrite64", SYS_readv: "readv", SYS_writev: "writev", SYS_access: "access",
	SYS_pipe: "pipe", SYS_sched_yield: "sched_yield", SYS_mremap: "mremap",
	SYS_mincore: "mincore", SYS_madvise: "madvise", SYS_dup: "dup", SYS_nanosleep: "nanosleep",
	SYS_setitimer: "setitimer", SYS_getpid: "getpid", SYS_clone: "clone", SYS_fork: "fork",
	SYS_vfork: "vfork", SYS_execve: "execve", SYS_exit: "exit", SYS_kill: "kill",
	SYS_uname: "uname", SYS_fcntl: "fcntl", SYS_getcwd: "getcwd", SYS_readlink: "readlink",
	SYS_gettimeofday: "gettimeofday", SYS_getrlimit: "getrlimit", SYS_getuid: "getuid",
	SYS_getgid: "getgid", SYS_geteuid: "geteuid", SYS_getegid: "getegid",
	SYS_getppid: "getppid", SYS_sigaltstack: "sigaltstack", SYS_prctl: "prctl",
	SYS_arch_prctl: "arch_prctl", SYS_gettid: "gettid", SYS_tkill: "tkill", SYS_time: "time",
	SYS_futex: "futex", SYS_sched_getaffinity: "sched_getaffinity",
	SYS_epoll_create: "epoll_create", SYS_set_tid_address: "set_tid_address",
	SYS_clock_gettime: "clock_gettime", SYS_clock_getres: "clock_getres",
	SYS_clock_nanosleep: "clock_nanosleep", SYS_exit_group: "exit_group",
	SYS_epoll_wait: "epoll_wait", SYS_epoll_ctl: "epoll_ctl", SYS_tgkill: "tgkill",
	SYS_openat: "openat", SYS_newfstatat: "newfstatat", SYS_readlinkat: "readlinkat",
	SYS_faccessat: "faccessat", SYS_set_robust_list: "set_robust_list",
	SYS_epoll_pwait: "epoll_pwait", SYS_eventfd: "eventfd", SYS_eventfd2: "eventfd2",
	SYS_epoll_create1: "epoll_create1", SYS_pipe2: "pipe2", SYS_prlimit64: "prlimit64",
	SYS_getrandom: "getrandom", SYS_statx: "statx", SYS_rseq: "rseq",
}

func (p *Process) trace(m Machine, t int, nr uint64, r int64, blocked bool) {
	l := p.line()
	l.s("anyk: [").d(int64(p.Threads[t].Tid)).s("] ")
	if name := SyscallName(nr); name != "" {
		l.s(name)
	} else {
		l.s("syscall_").d(int64(nr))
	}
	rg := &p.Threads[t].Regs
	l.s("(").x(rg.RDI).s(", ").x(rg.RSI).s(", ").x(rg.RDX).s(", ").x(rg.R10).s(")")
	switch {
	case nr == SYS_rt_sigreturn:
		l.s(" -> rip ").x(rg.RIP)
	case blocked:
		l.s(" = <blocked>")
	case r < 0 && r > -4096:
		l.s(" = -").d(-r)
	default:
		l.s(" = ").x(uint64(r))
	}
	l.s("\n")
	m.Console(l.bytes())
}

// Summary writes the process's counters to the console: threads, signals,
// page faults and the count of each system call made.
func (p *Process) Summary(m Machine) {
	l := p.line()
	l.s("anyk: threads created ").d(int64(p.Stats.ThreadsCreated)).s(", live ").d(int64(p.Live())).
		s(", context switches ").d(int64(p.Sched.Switches)).s(", signals ").d(int64(p.Stats.Signals)).
		s(", page faults ").d(int64(p.Stats.PageFaults)).s(", unknown syscalls ").d(int64(p.Stats.Unknown)).s("\n")
	m.Console(l.bytes())
	l = p.line()
	l.s("anyk: syscalls:")
	for nr := uint64(0); nr < NumSyscalls; nr++ {
		c := p.Stats.Calls[nr]
		if c == 0 {
			continue
		}
		if l.n > 150 {
			l.s("\n")
			m.Console(l.bytes())
			l = p.line()
			l.s("anyk: syscalls:")
		}
		l.s(" ")
		if name := SyscallName(nr); name != "" {
			l.s(name)
		} else {
			l.s("#").d(int64(nr))
		}
		l.s("=").d(int64(c))
	}
	l.s("\n")
	m.Console(l.bytes())
}

// line returns the process's output line, emptied.
func (p *Process) line() *line {
	p.out = line{}
	return &p.out
}
