package linux

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/sched/threads"
)

// env is a process started on a fake machine, with helpers to make
// system calls as one of its threads.
type env struct {
	t    *testing.T
	p    *Process
	m    *fakeMachine
	main int
}

const (
	imageStart = 0x400000
	imageEnd   = 0x600000
	entryPC    = 0x401000
)

func newEnv(t *testing.T, args ...string) *env {
	t.Helper()
	p := new(Process)
	m := newFakeMachine()
	require.Zero(t, p.Init(imageStart, imageEnd))
	var a, e Strings
	for _, s := range args {
		require.True(t, a.Add([]byte(s)))
	}
	require.True(t, e.Add([]byte("HOME=/")))
	fx := make([]byte, FXSize)
	fx[24] = 0x80 // MXCSR low byte, to see it copied
	th, err := p.Start(m, entryPC, &a, &e, fx)
	require.Zero(t, err)
	require.Equal(t, th, p.Sched.Schedule(m.now, p.Quantum))
	return &env{t: t, p: p, m: m, main: th}
}

// run makes thread t current.
func (e *env) run(t int) {
	e.t.Helper()
	if e.p.Sched.Current() == t {
		return
	}
	for i := 0; i < threads.MaxThreads+1 && e.p.Sched.Current() != t; i++ {
		e.p.Sched.Yield()
		e.p.Sched.Schedule(e.m.now, e.p.Quantum)
	}
	require.Equal(e.t, t, e.p.Sched.Current(), "thread %d never scheduled", t)
}

// sys makes system call nr as thread t and returns RAX (meaningless if
// the call blocked).
func (e *env) sys(t int, nr uint64, args ...uint64) int64 {
	e.t.Helper()
	e.run(t)
	r := &e.p.Threads[t].Regs
	r.RAX = nr
	a := [6]uint64{}
	copy(a[:], args)
	r.RDI, r.RSI, r.RDX, r.R10, r.R8, r.R9 = a[0], a[1], a[2], a[3], a[4], a[5]
	r.RIP += 2
	e.p.Syscall(e.m)
	return int64(e.p.Threads[t].Regs.RAX)
}

// mem returns n bytes of user memory at addr, populating it.
func (e *env) mem(addr, n uint64) []byte {
	e.t.Helper()
	b, err := e.p.user(e.m, addr, n, false)
	require.Zero(e.t, err, "user memory %#x", addr)
	return b
}

// scratch maps a fresh page and returns its address.
func (e *env) scratch() uint64 {
	e.t.Helper()
	a := e.sys(e.main, SYS_mmap, 0, PageSize, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, ^uint64(0), 0)
	require.Positive(e.t, a)
	return uint64(a)
}

func TestProcessIsPointerFree(t *testing.T) {
	var check func(reflect.Type, string)
	check = func(ty reflect.Type, path string) {
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.String, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
			t.Errorf("%s is a %s: kernel state must hold no pointers", path, ty.Kind())
		case reflect.Array:
			check(ty.Elem(), path+"[]")
		case reflect.Struct:
			for i := 0; i < ty.NumField(); i++ {
				check(ty.Field(i).Type, path+"."+ty.Field(i).Name)
			}
		}
	}
	check(reflect.TypeOf(Process{}), "Process")
}

func TestStartStack(t *testing.T) {
	e := newEnv(t, "prog", "a b", "c")
	r := e.p.Threads[e.main].Regs
	assert.Equal(t, uint64(entryPC), r.RIP)
	assert.Zero(t, r.RSP%16, "argc is 16-byte aligned")
	w := func(i uint64) uint64 { return get64(e.mem(r.RSP+8*i, 8)) }
	str := func(addr uint64) string {
		b := e.mem(addr, 64)
		return string(b[:strings.IndexByte(string(b), 0)])
	}
	require.Equal(t, uint64(3), w(0))
	assert.Equal(t, "prog", str(w(1)))
	assert.Equal(t, "a b", str(w(2)))
	assert.Equal(t, "c", str(w(3)))
	assert.Zero(t, w(4))
	assert.Equal(t, "HOME=/", str(w(5)))
	assert.Zero(t, w(6))
	auxv := map[uint64]uint64{}
	for i := uint64(7); w(i) != AT_NULL; i += 2 {
		auxv[w(i)] = w(i + 1)
	}
	assert.Equal(t, uint64(PageSize), auxv[AT_PAGESZ])
	require.NotZero(t, auxv[AT_RANDOM])
	assert.Len(t, e.mem(auxv[AT_RANDOM], 16), 16)
	assert.Equal(t, byte(0x80), e.p.Threads[e.main].FXState()[24], "initial FPU state copied")
}

func TestStartFailsWithoutRandom(t *testing.T) {
	p := new(Process)
	m := newFakeMachine()
	m.noRandom = true
	require.Zero(t, p.Init(imageStart, imageEnd))
	var a, e Strings
	_, err := p.Start(m, entryPC, &a, &e, make([]byte, FXSize))
	assert.Equal(t, EIO, err)
}

func TestSimpleCalls(t *testing.T) {
	e := newEnv(t, "prog")
	buf := e.scratch()
	tests := []struct {
		name string
		nr   uint64
		args []uint64
		want int64
	}{
		{"getpid", SYS_getpid, nil, 1},
		{"gettid", SYS_gettid, nil, 1},
		{"unknown call", 9999, nil, -int64(ENOSYS)},
		{"unserved call", SYS_pipe2, []uint64{buf, 0}, -int64(ENOSYS)},
		{"openat", SYS_openat, []uint64{0, buf, 0, 0}, -int64(ENOENT)},
		{"fcntl getfl console", SYS_fcntl, []uint64{1, F_GETFL}, O_RDWR},
		{"fcntl bad fd", SYS_fcntl, []uint64{40, F_GETFL}, -int64(EBADF)},
		{"affinity", SYS_sched_getaffinity, []uint64{0, 128, buf}, 8},
		{"affinity short", SYS_sched_getaffinity, []uint64{0, 4, buf}, -int64(EINVAL)},
		{"clock monotonic", SYS_clock_gettime, []uint64{CLOCK_MONOTONIC, buf}, 0},
		{"clock bad id", SYS_clock_gettime, []uint64{99, buf}, -int64(EINVAL)},
		{"clock bad pointer", SYS_clock_gettime, []uint64{CLOCK_REALTIME, 8}, -int64(EFAULT)},
		{"arch_prctl set fs", SYS_arch_prctl, []uint64{ARCH_SET_FS, 0x1234}, 0},
		{"arch_prctl bad code", SYS_arch_prctl, []uint64{7, 0}, -int64(EINVAL)},
		{"getrandom", SYS_getrandom, []uint64{buf, 100, 0}, 100},
		{"uname", SYS_uname, []uint64{buf}, 0},
		{"kill other process", SYS_kill, []uint64{77, SIGURG}, -int64(ESRCH)},
		{"tgkill unknown thread", SYS_tgkill, []uint64{1, 99, SIGURG}, -int64(ESRCH)},
		{"sigaction bad signal", SYS_rt_sigaction, []uint64{0, 0, 0, 8}, -int64(EINVAL)},
		{"sigaction SIGKILL", SYS_rt_sigaction, []uint64{SIGKILL, buf, 0, 8}, -int64(EINVAL)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.p.Stats.Unknown
			got := e.sys(e.main, tc.nr, tc.args...)
			assert.Equal(t, tc.want, got)
			r := e.p.Threads[e.main].Regs
			assert.Equal(t, r.RIP, r.RCX, "RCX holds the return address")
			if tc.want == -int64(ENOSYS) {
				assert.Equal(t, before+1, e.p.Stats.Unknown, "ENOSYS is counted")
			}
		})
	}
	assert.Equal(t, uint64(0x1234), e.p.Threads[e.main].FSBase)
	assert.Equal(t, "Linux", string(e.mem(buf, 5)))
}

func TestClockGettime(t *testing.T) {
	e := newEnv(t, "prog")
	buf := e.scratch()
	e.m.now = 5*1e9 + 123
	require.Zero(t, e.sys(e.main, SYS_clock_gettime, CLOCK_MONOTONIC, buf))
	assert.Equal(t, uint64(5), get64(e.mem(buf, 8)))
	assert.Equal(t, uint64(123), get64(e.mem(buf+8, 8)))
	require.Zero(t, e.sys(e.main, SYS_clock_gettime, CLOCK_REALTIME, buf))
	assert.Equal(t, uint64(1_700_000_005), get64(e.mem(buf, 8)))
}

func TestWriteConsole(t *testing.T) {
	e := newEnv(t, "prog")
	buf := e.scratch()
	copy(e.mem(buf, 6), "hello\n")
	assert.Equal(t, int64(6), e.sys(e.main, SYS_write, 1, buf, 6))
	// writev of two pieces
	iov := buf + 512
	put64(e.mem(iov, 8), buf)
	put64(e.mem(iov+8, 8), 2)
	put64(e.mem(iov+16, 8), buf+2)
	put64(e.mem(iov+24, 8), 4)
	assert.Equal(t, int64(6), e.sys(e.main, SYS_writev, 2, iov, 2))
	assert.Equal(t, "hello\nhello\n", e.m.console.String())
	assert.Equal(t, -int64(EFAULT), e.sys(e.main, SYS_write, 1, 16, 6), "unmapped buffer")
	assert.Equal(t, -int64(EBADF), e.sys(e.main, SYS_write, 9, buf, 1))
}

func TestFutexWaitWake(t *testing.T) {
	e := newEnv(t, "prog")
	word := e.scratch()
	child := int(e.spawn(t))
	// Value mismatch: EAGAIN without blocking.
	put32(e.mem(word, 4), 7)
	assert.Equal(t, -int64(EAGAIN), e.sys(e.main, SYS_futex, word, FUTEX_WAIT|FUTEX_PRIVATE_FLAG, 6, 0))
	// The main thread waits; the child wakes it.
	e.sys(e.main, SYS_futex, word, FUTEX_WAIT|FUTEX_PRIVATE_FLAG, 7, 0)
	assert.Equal(t, threads.Blocked, e.p.Sched.State(e.main))
	assert.Equal(t, int64(1), e.sys(child, SYS_futex, word, FUTEX_WAKE|FUTEX_PRIVATE_FLAG, 1))
	assert.Equal(t, threads.Runnable, e.p.Sched.State(e.main))
	assert.Zero(t, e.p.Threads[e.main].Regs.RAX)
	assert.Equal(t, int64(0), e.sys(child, SYS_futex, word, FUTEX_WAKE|FUTEX_PRIVATE_FLAG, 1), "nobody left")
}

func TestFutexTimeout(t *testing.T) {
	e := newEnv(t, "prog")
	word := e.scratch()
	ts := word + 64
	put64(e.mem(ts, 8), 0)
	put64(e.mem(ts+8, 8), 5_000_000) // 5 ms
	e.sys(e.main, SYS_futex, word, FUTEX_WAIT, 0, ts)
	require.Equal(t, threads.Blocked, e.p.Sched.State(e.main))
	e.m.now += 4_000_000
	e.p.Expire(e.m, e.m.now)
	assert.Equal(t, threads.Blocked, e.p.Sched.State(e.main), "not yet")
	e.m.now += 1_000_000
	e.p.Expire(e.m, e.m.now)
	assert.Equal(t, threads.Runnable, e.p.Sched.State(e.main))
	assert.Equal(t, -int64(ETIMEDOUT), int64(e.p.Threads[e.main].Regs.RAX))
	assert.False(t, e.p.Futex.Waiting(e.main), "timed-out waiter left the futex")
}

func TestNanosleep(t *testing.T) {
	e := newEnv(t, "prog")
	ts := e.scratch()
	put64(e.mem(ts, 8), 1)
	put64(e.mem(ts+8, 8), 0)
	e.sys(e.main, SYS_nanosleep, ts, 0)
	require.Equal(t, threads.Blocked, e.p.Sched.State(e.main))
	when, ok := e.p.Sched.NextEvent(e.p.Quantum)
	require.True(t, ok)
	assert.Equal(t, e.m.now+1e9, when)
	e.m.now = when
	e.p.Expire(e.m, e.m.now)
	assert.Equal(t, threads.Runnable, e.p.Sched.State(e.main))
	put64(e.mem(ts+8, 8), 2e9)
	assert.Equal(t, -int64(EINVAL), e.sys(e.main, SYS_nanosleep, ts, 0), "nanoseconds out of range")
}

// spawn clones a thread with its own TLS and returns its number.
func (e *env) spawn(t *testing.T) uint64 {
	t.Helper()
	const flags = CLONE_VM | CLONE_THREAD | CLONE_SETTLS | 0x0f00
	tid := e.sys(e.main, SYS_clone, flags, 0x7000_0000_0000, 0, 0, 0xabc)
	require.Positive(t, tid)
	c := e.p.findTid(uint64(tid))
	require.GreaterOrEqual(t, c, 0)
	return uint64(c)
}

func TestClone(t *testing.T) {
	e := newEnv(t, "prog")
	e.p.Threads[e.main].Regs.RBX = 42
	c := int(e.spawn(t))
	ch := e.p.Threads[c]
	par := e.p.Threads[e.main]
	assert.Zero(t, ch.Regs.RAX, "child sees 0")
	assert.Equal(t, uint64(0x7000_0000_0000), ch.Regs.RSP)
	assert.Equal(t, uint64(0xabc), ch.FSBase)
	assert.Equal(t, uint64(42), ch.Regs.RBX, "registers survive")
	assert.Equal(t, par.Regs.RIP, ch.Regs.RIP)
	assert.Equal(t, uint64(ch.Tid), par.Regs.RAX)
	assert.Equal(t, -int64(ENOSYS), e.sys(e.main, SYS_clone, 0x11 /* SIGCHLD fork */, 0, 0, 0, 0))
	// Thread exit leaves the process running; the last exit ends it.
	e.sys(c, SYS_exit, 0)
	assert.Equal(t, threads.Free, e.p.Sched.State(c))
	assert.False(t, e.m.exited)
	e.sys(e.main, SYS_exit, 0)
	assert.True(t, e.m.exited)
}

func TestExitGroup(t *testing.T) {
	e := newEnv(t, "prog")
	e.sys(e.main, SYS_exit_group, 259)
	require.True(t, e.m.exited)
	assert.Equal(t, 3, e.m.code, "status is truncated to 8 bits")
	assert.Zero(t, e.p.Live())
}

func TestMmapSyscalls(t *testing.T) {
	e := newEnv(t, "prog")
	const hint = 0xc000000000
	a := e.sys(e.main, SYS_mmap, hint, 64<<20, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, ^uint64(0), 0)
	require.Equal(t, int64(hint), a, "free hint honoured")
	_, err := e.p.user(e.m, hint, 8, false)
	assert.Equal(t, EFAULT, err, "reservation is not accessible")
	a = e.sys(e.main, SYS_mmap, hint, 4<<20, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, ^uint64(0), 0)
	require.Equal(t, int64(hint), a)
	b := e.mem(hint, 8)
	b[0] = 9
	assert.Zero(t, e.sys(e.main, SYS_madvise, hint, PageSize, MADV_DONTNEED))
	assert.Zero(t, e.mem(hint, 8)[0], "DONTNEED pages read as zero")
	a2 := e.sys(e.main, SYS_mmap, hint, PageSize, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, ^uint64(0), 0)
	assert.NotEqual(t, int64(hint), a2, "taken hint not reused")
	assert.Equal(t, -int64(EEXIST), e.sys(e.main, SYS_mmap, hint, PageSize, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, ^uint64(0), 0))
	assert.Equal(t, -int64(ENODEV), e.sys(e.main, SYS_mmap, 0, PageSize, PROT_READ, MAP_PRIVATE, 3, 0), "file mappings")
	assert.Zero(t, e.sys(e.main, SYS_munmap, hint, 64<<20))
	_, ok := e.p.MM.Find(hint)
	assert.False(t, ok)
}

func TestPageFault(t *testing.T) {
	e := newEnv(t, "prog")
	a := uint64(e.sys(e.main, SYS_mmap, 0, 2*PageSize, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, ^uint64(0), 0))
	e.p.PageFault(e.m, a+PageSize+8, true)
	assert.True(t, e.m.pages[a+PageSize], "page mapped on demand")
	assert.False(t, e.m.exited)
	// A fault outside any mapping without a handler kills the process.
	e.p.PageFault(e.m, 8, false)
	assert.True(t, e.m.exited)
	assert.Equal(t, 128+SIGSEGV, e.m.code)
	assert.Contains(t, e.m.console.String(), "unhandled fault: signal 11")
}

func TestEpollEventfd(t *testing.T) {
	e := newEnv(t, "prog")
	buf := e.scratch()
	epfd := e.sys(e.main, SYS_epoll_create1, 0x80000)
	efd := e.sys(e.main, SYS_eventfd2, 0, EFD_NONBLOCK)
	require.GreaterOrEqual(t, epfd, int64(3))
	require.GreaterOrEqual(t, efd, int64(3))
	ev := buf
	put32(e.mem(ev, 4), EPOLLIN)
	put64(e.mem(ev+4, 8), 0xfeed)
	require.Zero(t, e.sys(e.main, SYS_epoll_ctl, uint64(epfd), EPOLL_CTL_ADD, uint64(efd), ev))
	assert.Equal(t, -int64(EEXIST), e.sys(e.main, SYS_epoll_ctl, uint64(epfd), EPOLL_CTL_ADD, uint64(efd), ev))
	out := buf + 256
	assert.Zero(t, e.sys(e.main, SYS_epoll_pwait, uint64(epfd), out, 8, 0, 0), "nothing ready, zero timeout")
	// Block with a timeout, then another thread writes the eventfd.
	child := int(e.spawn(t))
	e.sys(e.main, SYS_epoll_pwait, uint64(epfd), out, 8, 1000, 0)
	require.Equal(t, threads.Blocked, e.p.Sched.State(e.main))
	val := buf + 128
	put64(e.mem(val, 8), 1)
	assert.Equal(t, int64(8), e.sys(child, SYS_write, uint64(efd), val, 8))
	require.Equal(t, threads.Runnable, e.p.Sched.State(e.main))
	assert.Equal(t, uint64(1), e.p.Threads[e.main].Regs.RAX)
	assert.Equal(t, uint32(EPOLLIN), get32(e.mem(out, 4)))
	assert.Equal(t, uint64(0xfeed), get64(e.mem(out+4, 8)))
	// Reading drains it.
	assert.Equal(t, int64(8), e.sys(e.main, SYS_read, uint64(efd), val, 8))
	assert.Equal(t, uint64(1), get64(e.mem(val, 8)))
	assert.Equal(t, -int64(EAGAIN), e.sys(e.main, SYS_read, uint64(efd), val, 8))
	// A timed wait expires with zero events.
	e.sys(e.main, SYS_epoll_pwait, uint64(epfd), out, 8, 10, 0)
	e.m.now += 10_000_000
	e.p.Expire(e.m, e.m.now)
	assert.Zero(t, e.p.Threads[e.main].Regs.RAX)
	assert.Zero(t, e.sys(e.main, SYS_close, uint64(efd)))
	assert.Equal(t, -int64(EBADF), e.sys(e.main, SYS_close, uint64(efd)))
}

func TestSignalDeliveryAndReturn(t *testing.T) {
	e := newEnv(t, "prog")
	buf := e.scratch()
	alt := uint64(e.sys(e.main, SYS_mmap, 0, 8*PageSize, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, ^uint64(0), 0))
	// sigaltstack and a SA_ONSTACK|SA_SIGINFO handler for SIGSEGV and SIGURG.
	put64(e.mem(buf, 8), alt)
	put64(e.mem(buf+8, 8), 0)
	put64(e.mem(buf+16, 8), 8*PageSize)
	require.Zero(t, e.sys(e.main, SYS_sigaltstack, buf, 0))
	act := buf + 64
	put64(e.mem(act, 8), 0x401234)
	put64(e.mem(act+8, 8), SA_SIGINFO|SA_ONSTACK|SA_RESTORER)
	put64(e.mem(act+16, 8), 0x405678)
	put64(e.mem(act+24, 8), 0)
	require.Zero(t, e.sys(e.main, SYS_rt_sigaction, SIGSEGV, act, 0, 8))
	require.Zero(t, e.sys(e.main, SYS_rt_sigaction, SIGURG, act, 0, 8))

	r := &e.p.Threads[e.main].Regs
	r.RBX, r.RIP, r.RSP = 77, 0x402000, StackTop-4096
	saved := *r
	e.p.Fault(e.m, SIGSEGV, SEGV_MAPERR, 0x10)
	assert.Equal(t, uint64(0x401234), r.RIP)
	assert.Equal(t, uint64(SIGSEGV), r.RDI)
	assert.True(t, r.RSP > alt && r.RSP < alt+8*PageSize, "frame on the alternate stack")
	assert.Zero(t, (r.RSP+8)%16, "entry alignment as after a call")
	assert.Equal(t, uint64(0x405678), get64(e.mem(r.RSP, 8)), "return address is the restorer")
	assert.Equal(t, uint64(0x10), get64(e.mem(r.RSI+16, 8)), "si_addr")
	assert.Equal(t, uint64(0x402000), get64(e.mem(r.RDX+40+8*scRIP, 8)), "saved RIP in the ucontext")
	assert.NotZero(t, e.p.Threads[e.main].sigMask&sigBit(SIGSEGV), "signal blocked in its handler")
	// The handler returns through the restorer: rt_sigreturn.
	r.RSP += 8
	e.sys(e.main, SYS_rt_sigreturn)
	r = &e.p.Threads[e.main].Regs
	assert.Equal(t, saved.RIP, r.RIP)
	assert.Equal(t, saved.RSP, r.RSP)
	assert.Equal(t, saved.RBX, r.RBX)
	assert.Zero(t, e.p.Threads[e.main].sigMask&sigBit(SIGSEGV), "mask restored")

	// tgkill: pending until the thread resumes.
	tid := uint64(e.p.Threads[e.main].Tid)
	require.Zero(t, e.sys(e.main, SYS_tgkill, 1, tid, SIGURG))
	assert.NotEqual(t, uint64(0x401234), e.p.Threads[e.main].Regs.RIP)
	e.p.Resume(e.m, e.main)
	assert.Equal(t, uint64(0x401234), e.p.Threads[e.main].Regs.RIP)
	assert.Equal(t, uint64(SIGURG), e.p.Threads[e.main].Regs.RDI)
	assert.Equal(t, uint64(2), e.p.Stats.Signals)
}

func TestDefaultSignalActions(t *testing.T) {
	tests := []struct {
		name   string
		sig    uint64
		killed bool
	}{
		{"SIGURG ignored", SIGURG, false},
		{"SIGTERM kills", SIGTERM, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "prog")
			require.Zero(t, e.sys(e.main, SYS_kill, 1, tc.sig))
			e.p.Resume(e.m, e.main)
			assert.Equal(t, tc.killed, e.m.exited)
			if tc.killed {
				assert.Equal(t, 128+int(tc.sig), e.m.code)
			}
		})
	}
}

func TestTrace(t *testing.T) {
	e := newEnv(t, "prog")
	e.p.Trace = true
	e.sys(e.main, SYS_getpid)
	e.sys(e.main, 400)
	out := e.m.console.String()
	assert.Contains(t, out, "anyk: [1] getpid(")
	assert.Contains(t, out, "= 0x1\n")
	assert.Contains(t, out, "syscall_400(")
	assert.Contains(t, out, "= -38\n")
	e.p.Summary(e.m)
	assert.Contains(t, e.m.console.String(), "getpid=1")
	assert.Contains(t, e.m.console.String(), "#400=1")
	assert.Contains(t, e.m.console.String(), "unknown syscalls 1")
}

func TestEpollEdgeTriggered(t *testing.T) {
	e := newEnv(t, "prog")
	buf := e.scratch()
	epfd := uint64(e.sys(e.main, SYS_epoll_create1, 0))
	efd := uint64(e.sys(e.main, SYS_eventfd2, 0, EFD_NONBLOCK))
	put32(e.mem(buf, 4), EPOLLIN|EPOLLOUT|EPOLLET)
	put64(e.mem(buf+4, 8), 7)
	require.Zero(t, e.sys(e.main, SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, efd, buf))
	out := buf + 256
	wait := func() uint32 {
		n := e.sys(e.main, SYS_epoll_pwait, epfd, out, 4, 0, 0)
		if n == 0 {
			return 0
		}
		require.Equal(t, int64(1), n)
		return get32(e.mem(out, 4))
	}
	assert.Equal(t, uint32(EPOLLOUT), wait(), "writable, once")
	assert.Zero(t, wait(), "no new edge")
	require.Zero(t, e.p.Notify(e.m, efd, 1))
	assert.Equal(t, uint32(EPOLLIN), wait(), "one edge per write")
	assert.Zero(t, wait(), "still readable, but no new edge")
	require.Zero(t, e.p.Notify(e.m, efd, 1))
	assert.Equal(t, uint32(EPOLLIN), wait(), "a second write is a second edge")
	assert.Equal(t, EBADF, e.p.Notify(e.m, 40, 1))
	assert.True(t, e.p.Files.IsEventfd(efd))
	assert.False(t, e.p.Files.IsEventfd(epfd))
}

func TestConsoleRead(t *testing.T) {
	e := newEnv(t, "prog")
	buf := e.scratch()
	e.m.input.WriteString("hi")
	assert.Equal(t, int64(2), e.sys(e.main, SYS_read, 0, buf, 100), "input already there")
	assert.Equal(t, "hi", string(e.mem(buf, 2)))

	// Nothing there: a blocking read waits for ConsoleInput.
	e.sys(e.main, SYS_read, 0, buf, 3)
	require.Equal(t, threads.Blocked, e.p.Sched.State(e.main))
	e.m.input.WriteString("hello")
	e.p.ConsoleInput(e.m)
	require.Equal(t, threads.Runnable, e.p.Sched.State(e.main))
	assert.Equal(t, uint64(3), e.p.Threads[e.main].Regs.RAX, "read up to its length")
	assert.Equal(t, "hel", string(e.mem(buf, 3)))

	// Non-blocking: EAGAIN once drained; epoll reports input.
	require.Zero(t, e.sys(e.main, SYS_fcntl, 0, F_SETFL, O_NONBLOCK))
	assert.Equal(t, int64(2), e.sys(e.main, SYS_read, 0, buf, 10))
	assert.Equal(t, -int64(EAGAIN), e.sys(e.main, SYS_read, 0, buf, 10))
	epfd := uint64(e.sys(e.main, SYS_epoll_create1, 0))
	put32(e.mem(buf, 4), EPOLLIN)
	put64(e.mem(buf+4, 8), 0)
	require.Zero(t, e.sys(e.main, SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, 0, buf))
	out := buf + 64
	assert.Zero(t, e.sys(e.main, SYS_epoll_pwait, epfd, out, 4, 0, 0), "no input")
	e.m.input.WriteString("x")
	e.p.ConsoleInput(e.m)
	assert.Equal(t, int64(1), e.sys(e.main, SYS_epoll_pwait, epfd, out, 4, 0, 0))
	assert.Equal(t, uint32(EPOLLIN), get32(e.mem(out, 4))&EPOLLIN)
}
