package linux

// Line builds one line of kernel output without allocating: the kernel
// runs beneath the Go runtime and may not touch the heap. Output past the
// buffer is dropped. The platform (hal/pc) uses it for its own messages too.
// A Line used from code reached through an interface call must live in
// longer-lived storage (as Process.out does): a local one would escape.
type Line struct {
	b [256]byte
	n int
}

// Bytes returns what has been written.
func (l *Line) Bytes() []byte { return l.b[:l.n] }

// S appends a string.
func (l *Line) S(s string) *Line {
	for i := 0; i < len(s) && l.n < len(l.b); i++ {
		l.b[l.n] = s[i]
		l.n++
	}
	return l
}

// D appends v in decimal.
func (l *Line) D(v int64) *Line {
	if v < 0 {
		l.S("-")
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

// X appends v in hexadecimal with a 0x prefix and no leading zeros.
func (l *Line) X(v uint64) *Line { return l.hex(v, false) }

// X16 appends v as 0x and all sixteen hexadecimal digits, for register
// dumps whose columns should line up.
func (l *Line) X16(v uint64) *Line { return l.hex(v, true) }

func (l *Line) hex(v uint64, full bool) *Line {
	l.S("0x")
	started := full
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
	l.S("anyk: [").D(int64(p.Threads[t].Tid)).S("] ")
	if name := SyscallName(nr); name != "" {
		l.S(name)
	} else {
		l.S("syscall_").D(int64(nr))
	}
	rg := &p.Threads[t].Regs
	l.S("(").X(rg.RDI).S(", ").X(rg.RSI).S(", ").X(rg.RDX).S(", ").X(rg.R10).S(")")
	switch {
	case nr == SYS_rt_sigreturn:
		l.S(" -> rip ").X(rg.RIP)
	case blocked:
		l.S(" = <blocked>")
	case r < 0 && r > -4096:
		l.S(" = -").D(-r)
	default:
		l.S(" = ").X(uint64(r))
	}
	l.S("\n")
	m.Console(l.Bytes())
}

// Summary writes the process's counters to the console: threads, signals,
// page faults and the count of each system call made.
func (p *Process) Summary(m Machine) {
	l := p.line()
	l.S("anyk: threads created ").D(int64(p.Stats.ThreadsCreated)).S(", live ").D(int64(p.Live())).
		S(", context switches ").D(int64(p.Sched.Switches)).S(", signals ").D(int64(p.Stats.Signals)).
		S(", page faults ").D(int64(p.Stats.PageFaults)).S(", unknown syscalls ").D(int64(p.Stats.Unknown)).S("\n")
	m.Console(l.Bytes())
	l = p.line()
	l.S("anyk: syscalls:")
	for nr := uint64(0); nr < NumSyscalls; nr++ {
		c := p.Stats.Calls[nr]
		if c == 0 {
			continue
		}
		if l.n > 150 {
			l.S("\n")
			m.Console(l.Bytes())
			l = p.line()
			l.S("anyk: syscalls:")
		}
		l.S(" ")
		if name := SyscallName(nr); name != "" {
			l.S(name)
		} else {
			l.S("#").D(int64(nr))
		}
		l.S("=").D(int64(c))
	}
	l.S("\n")
	m.Console(l.Bytes())
}

// line returns the process's output line, emptied.
func (p *Process) line() *Line {
	p.out = Line{}
	return &p.out
}
