package linux

// Errno is a Linux error number (asm-generic/errno-base.h, errno.h).
type Errno int

// Error numbers returned by the system calls served here.
const (
	EPERM     Errno = 1
	ENOENT    Errno = 2
	ESRCH     Errno = 3
	EINTR     Errno = 4
	EIO       Errno = 5
	EBADF     Errno = 9
	EAGAIN    Errno = 11
	ENOMEM    Errno = 12
	EFAULT    Errno = 14
	EEXIST    Errno = 17
	ENODEV    Errno = 19
	EINVAL    Errno = 22
	EMFILE    Errno = 24
	ENOTTY    Errno = 25
	ENOSYS    Errno = 38
	ETIMEDOUT Errno = 110
)

// System-call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
const (
	SYS_read              = 0
	SYS_write             = 1
	SYS_open              = 2
	SYS_close             = 3
	SYS_stat              = 4
	SYS_fstat             = 5
	SYS_lstat             = 6
	SYS_poll              = 7
	SYS_lseek             = 8
	SYS_mmap              = 9
	SYS_mprotect          = 10
	SYS_munmap            = 11
	SYS_brk               = 12
	SYS_rt_sigaction      = 13
	SYS_rt_sigprocmask    = 14
	SYS_rt_sigreturn      = 15
	SYS_ioctl             = 16
	SYS_pread64           = 17
	SYS_pwrite64          = 18
	SYS_readv             = 19
	SYS_writev            = 20
	SYS_access            = 21
	SYS_pipe              = 22
	SYS_sched_yield       = 24
	SYS_mremap            = 25
	SYS_mincore           = 27
	SYS_madvise           = 28
	SYS_dup               = 32
	SYS_nanosleep         = 35
	SYS_setitimer         = 38
	SYS_getpid            = 39
	SYS_clone             = 56
	SYS_fork              = 57
	SYS_vfork             = 58
	SYS_execve            = 59
	SYS_exit              = 60
	SYS_kill              = 62
	SYS_uname             = 63
	SYS_fcntl             = 72
	SYS_getcwd            = 79
	SYS_readlink          = 89
	SYS_gettimeofday      = 96
	SYS_getrlimit         = 97
	SYS_getuid            = 102
	SYS_getgid            = 104
	SYS_geteuid           = 107
	SYS_getegid           = 108
	SYS_getppid           = 110
	SYS_sigaltstack       = 131
	SYS_prctl             = 157
	SYS_arch_prctl        = 158
	SYS_gettid            = 186
	SYS_tkill             = 200
	SYS_time              = 201
	SYS_futex             = 202
	SYS_sched_getaffinity = 204
	SYS_epoll_create      = 213
	SYS_set_tid_address   = 218
	SYS_clock_gettime     = 228
	SYS_clock_getres      = 229
	SYS_clock_nanosleep   = 230
	SYS_exit_group        = 231
	SYS_epoll_wait        = 232
	SYS_epoll_ctl         = 233
	SYS_tgkill            = 234
	SYS_openat            = 257
	SYS_newfstatat        = 262
	SYS_readlinkat        = 267
	SYS_faccessat         = 269
	SYS_set_robust_list   = 273
	SYS_epoll_pwait       = 281
	SYS_eventfd           = 284
	SYS_eventfd2          = 290
	SYS_epoll_create1     = 291
	SYS_pipe2             = 293
	SYS_prlimit64         = 302
	SYS_getrandom         = 318
	SYS_statx             = 332
	SYS_rseq              = 334
	SYS_faccessat2        = 439
	SYS_epoll_pwait2      = 441

	// NumSyscalls bounds the system-call numbers that are counted one by
	// one; larger numbers count as unknown.
	NumSyscalls = 512
)

// Memory-mapping flags (asm-generic/mman-common.h, mman.h).
const (
	PROT_NONE  = 0x0
	PROT_READ  = 0x1
	PROT_WRITE = 0x2
	PROT_EXEC  = 0x4

	MAP_SHARED          = 0x01
	MAP_PRIVATE         = 0x02
	MAP_FIXED           = 0x10
	MAP_ANONYMOUS       = 0x20
	MAP_FIXED_NOREPLACE = 0x100000

	MADV_DONTNEED = 4
	MADV_FREE     = 8
)

// Clone flags (uapi/linux/sched.h).
const (
	CLONE_VM             = 0x00000100
	CLONE_THREAD         = 0x00010000
	CLONE_SETTLS         = 0x00080000
	CLONE_PARENT_SETTID  = 0x00100000
	CLONE_CHILD_CLEARTID = 0x00200000
	CLONE_CHILD_SETTID   = 0x01000000
)

// Futex operations (uapi/linux/futex.h).
const (
	FUTEX_WAIT           = 0
	FUTEX_WAKE           = 1
	FUTEX_WAIT_BITSET    = 9
	FUTEX_WAKE_BITSET    = 10
	FUTEX_PRIVATE_FLAG   = 128
	FUTEX_CLOCK_REALTIME = 256
)

// Clock identifiers (uapi/linux/time.h).
const (
	CLOCK_REALTIME           = 0
	CLOCK_MONOTONIC          = 1
	CLOCK_PROCESS_CPUTIME_ID = 2
	CLOCK_THREAD_CPUTIME_ID  = 3
	CLOCK_MONOTONIC_RAW      = 4
	CLOCK_REALTIME_COARSE    = 5
	CLOCK_MONOTONIC_COARSE   = 6
	CLOCK_BOOTTIME           = 7

	TIMER_ABSTIME = 1
)

// Signals and their flags (uapi/asm-generic/signal.h, x86 signal.h).
const (
	SIGHUP   = 1
	SIGINT   = 2
	SIGQUIT  = 3
	SIGILL   = 4
	SIGTRAP  = 5
	SIGABRT  = 6
	SIGBUS   = 7
	SIGFPE   = 8
	SIGKILL  = 9
	SIGSEGV  = 11
	SIGPIPE  = 13
	SIGALRM  = 14
	SIGTERM  = 15
	SIGCHLD  = 17
	SIGSTOP  = 19
	SIGURG   = 23
	SIGPROF  = 27
	SIGWINCH = 28
	NSIG     = 64

	SA_SIGINFO  = 0x4
	SA_ONSTACK  = 0x08000000
	SA_RESTART  = 0x10000000
	SA_NODEFER  = 0x40000000
	SA_RESTORER = 0x04000000

	SIG_DFL = 0
	SIG_IGN = 1

	SIG_BLOCK   = 0
	SIG_UNBLOCK = 1
	SIG_SETMASK = 2

	SS_ONSTACK = 1
	SS_DISABLE = 2

	// si_code values (uapi/asm-generic/siginfo.h).
	SI_USER     = 0
	SI_TKILL    = -6
	SEGV_MAPERR = 1
	SEGV_ACCERR = 2
	FPE_INTDIV  = 1
	ILL_ILLOPN  = 2
	BUS_ADRERR  = 2
	TRAP_BRKPT  = 1
)

// epoll and eventfd (uapi/linux/eventpoll.h, eventfd.h).
const (
	EPOLLIN  = 0x1
	EPOLLOUT = 0x4
	EPOLLERR = 0x8
	EPOLLHUP = 0x10
	EPOLLET  = 1 << 31

	EPOLL_CTL_ADD = 1
	EPOLL_CTL_DEL = 2
	EPOLL_CTL_MOD = 3

	EFD_NONBLOCK = 0x800
	O_NONBLOCK   = 0x800
	O_RDWR       = 0x2

	F_GETFD = 1
	F_SETFD = 2
	F_GETFL = 3
	F_SETFL = 4

	ARCH_SET_FS = 0x1002
	ARCH_GET_FS = 0x1003

	AT_NULL         = 0
	AT_IGNORE       = 1
	AT_SYSINFO_EHDR = 33
	AT_PAGESZ       = 6
	AT_HWCAP        = 16
	AT_CLKTCK       = 17
	AT_RANDOM       = 25

	RLIMIT_NOFILE = 7
)

// PageSize is the x86-64 base page size.
const PageSize = 4096
