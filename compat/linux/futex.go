package linux

import "github.com/anykernel/anykernel/sched/threads"

// FutexTable records which threads wait on which futex word. Waiters on
// one address are woken first come, first served. The zero value is empty.
type FutexTable struct {
	addr    [threads.MaxThreads]uint64
	seq     [threads.MaxThreads]uint64
	waiting [threads.MaxThreads]bool
	next    uint64
}

// Wait queues thread t on addr.
func (f *FutexTable) Wait(t int, addr uint64) {
	if t < 0 || t >= threads.MaxThreads {
		return
	}
	f.next++
	f.addr[t] = addr
	f.seq[t] = f.next
	f.waiting[t] = true
}

// Cancel removes t from whatever it waits on and reports whether it waited.
func (f *FutexTable) Cancel(t int) bool {
	if t < 0 || t >= threads.MaxThreads || !f.waiting[t] {
		return false
	}
	f.waiting[t] = false
	return true
}

// Waiting reports whether t waits on a futex.
func (f *FutexTable) Waiting(t int) bool {
	return t >= 0 && t < threads.MaxThreads && f.waiting[t]
}

// WakeOne dequeues the oldest waiter on addr; ok is false if there is none.
func (f *FutexTable) WakeOne(addr uint64) (t int, ok bool) {
	best := -1
	for i := range f.waiting {
		if f.waiting[i] && f.addr[i] == addr && (best < 0 || f.seq[i] < f.seq[best]) {
			best = i
		}
	}
	if best < 0 {
		return -1, false
	}
	f.waiting[best] = false
	return best, true
}
