package linux

import (
	"encoding/binary"
	"testing"

	"github.com/anykernel/anykernel/sched/threads"
)

// FuzzSyscall makes system calls with arbitrary numbers and arguments
// (untrusted input from the program) and checks the dispatcher neither
// panics nor touches memory the address space does not allow: the fake
// machine panics on access to pages never populated through it.
func FuzzSyscall(f *testing.F) {
	seed := func(nr uint64, args ...uint64) []byte {
		b := binary.LittleEndian.AppendUint64(nil, nr)
		for i := 0; i < 6; i++ {
			var a uint64
			if i < len(args) {
				a = args[i]
			}
			b = binary.LittleEndian.AppendUint64(b, a)
		}
		return b
	}
	f.Add(seed(SYS_write, 1, StackTop-64, 32))
	f.Add(seed(SYS_mmap, 0, 1<<20, 3, 0x22, ^uint64(0), 0))
	f.Add(seed(SYS_futex, StackTop-8, 0, 0, StackTop-64))
	f.Add(seed(SYS_rt_sigreturn))
	f.Add(seed(SYS_epoll_ctl, 3, 1, 4, StackTop-100))
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newEnv(t, "prog")
		e.sys(e.main, SYS_epoll_create1, 0)
		e.sys(e.main, SYS_eventfd2, 0, EFD_NONBLOCK)
		for len(data) >= 56 && !e.m.exited {
			nr := binary.LittleEndian.Uint64(data) % (NumSyscalls + 8)
			var a [6]uint64
			for i := range a {
				a[i] = binary.LittleEndian.Uint64(data[8+8*i:])
				// Bias pointers into the stack region so calls get past
				// the first checks.
				if a[i]&1 == 1 && a[i]>>60 == 0 {
					a[i] = StackTop - 1 - a[i]%(64<<10)
				}
			}
			data = data[56:]
			if nr == SYS_exit || nr == SYS_exit_group {
				continue
			}
			if e.p.Sched.State(e.main) == threads.Blocked {
				e.m.now += 1e12
				e.p.Expire(e.m, e.m.now)
				if e.p.Sched.State(e.main) == threads.Blocked {
					return // blocked forever (futex without timeout)
				}
			}
			e.sys(e.main, nr, a[:]...)
		}
	})
}
