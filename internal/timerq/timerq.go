// Package timerq is the deadline-ordered timer queue behind anykernel's
// hal.Clock backends: earliest deadline first, equal deadlines in the order
// they were armed, as the hal.Clock contract requires. A Queue is not safe
// for concurrent use; the clock that owns it holds its own lock.
package timerq

import (
	"container/heap"
	"time"
)

// Timer is one entry. Its zero value is an unqueued timer; F is what the
// owning clock calls when the timer is due.
type Timer struct {
	F    func()
	when time.Duration
	seq  uint64
	pos  int // index in the heap plus one; 0 when not queued
}

// Pending reports whether t is queued.
func (t *Timer) Pending() bool { return t.pos > 0 }

// When returns the deadline t was last queued for.
func (t *Timer) When() time.Duration { return t.when }

// Queue is a min-heap of timers by (deadline, arming order).
type Queue struct {
	h   timerHeap
	seq uint64
}

// Push queues t for deadline when, after any timer already queued for the
// same deadline. A timer already queued is moved.
func (q *Queue) Push(t *Timer, when time.Duration) {
	if t.Pending() {
		heap.Remove(&q.h, t.pos-1)
	}
	t.when = when
	t.seq = q.seq
	q.seq++
	heap.Push(&q.h, t)
}

// Remove takes t out of the queue and reports whether it was queued.
func (q *Queue) Remove(t *Timer) bool {
	if !t.Pending() {
		return false
	}
	heap.Remove(&q.h, t.pos-1)
	return true
}

// Len returns the number of queued timers.
func (q *Queue) Len() int { return len(q.h) }

// Next returns the earliest deadline, or false if the queue is empty.
func (q *Queue) Next() (time.Duration, bool) {
	if len(q.h) == 0 {
		return 0, false
	}
	return q.h[0].when, true
}

// PopDue removes and returns the earliest timer if its deadline is at or
// before now, or returns nil.
func (q *Queue) PopDue(now time.Duration) *Timer {
	if len(q.h) == 0 || q.h[0].when > now {
		return nil
	}
	return heap.Pop(&q.h).(*Timer)
}

type timerHeap []*Timer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when < h[j].when
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos = i + 1
	h[j].pos = j + 1
}

func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.pos = len(*h) + 1
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = nil
	t.pos = 0
	*h = old[:n]
	return t
}
