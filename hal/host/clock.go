package host

import (
	"container/heap"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// Clock is the host's clock as a hal.Clock: Now is the wall clock, Monotonic
// the Go runtime's monotonic clock measured from the Clock's creation, and
// timers are Go runtime timers.
//
// Timers due at the same moment run one after another on one goroutine, in
// deadline order (creation order for equal deadlines), which is what
// hal.Clock promises; a timer function that blocks delays timers due
// together with it, not later ones.
type Clock struct {
	start time.Time

	mu    sync.Mutex
	queue timerQueue
	seq   uint64
	wake  *time.Timer // armed for the earliest deadline in queue
	armed time.Duration
}

var _ hal.Clock = (*Clock)(nil)

// NewClock returns a clock whose Monotonic origin is now.
func NewClock() *Clock {
	c := &Clock{start: time.Now()}
	c.wake = time.AfterFunc(time.Hour, c.fire)
	c.wake.Stop()
	return c
}

// Now returns the wall-clock time.
func (c *Clock) Now() time.Time { return time.Now() }

// Monotonic returns the time elapsed since NewClock, on the monotonic clock.
func (c *Clock) Monotonic() time.Duration { return time.Since(c.start) }

// AfterFunc arranges for f to be called once d has elapsed; see hal.Clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) hal.Timer {
	t := &clockTimer{c: c, f: f, index: -1}
	c.mu.Lock()
	c.schedule(t, d)
	c.mu.Unlock()
	return t
}

// schedule queues t to fire d from now. c.mu is held.
func (c *Clock) schedule(t *clockTimer, d time.Duration) {
	t.when = c.Monotonic() + max(d, 0)
	c.seq++
	t.seq = c.seq
	heap.Push(&c.queue, t)
	c.rearm()
}

// rearm points the runtime timer at the earliest deadline. c.mu is held.
func (c *Clock) rearm() {
	if len(c.queue) == 0 {
		c.wake.Stop()
		return
	}
	c.wake.Reset(c.queue[0].when - c.Monotonic())
}

// fire runs every timer that is due, in deadline order.
func (c *Clock) fire() {
	c.mu.Lock()
	now := c.Monotonic()
	var due []*clockTimer
	for len(c.queue) > 0 && c.queue[0].when <= now {
		due = append(due, heap.Pop(&c.queue).(*clockTimer))
	}
	c.rearm()
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

type clockTimer struct {
	c     *Clock
	f     func()
	when  time.Duration
	seq   uint64
	index int // position in the queue, -1 when not pending
}

// Stop cancels the timer; see hal.Timer.
func (t *clockTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.queue, t.index)
	c.rearm()
	return true
}

// Reset reschedules the timer d from now; see hal.Timer.
func (t *clockTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	pending := t.index >= 0
	if pending {
		heap.Remove(&c.queue, t.index)
	}
	c.schedule(t, d)
	return pending
}

// timerQueue is a min-heap of timers by (deadline, creation order).
type timerQueue []*clockTimer

func (q timerQueue) Len() int { return len(q) }
func (q timerQueue) Less(i, j int) bool {
	if q[i].when != q[j].when {
		return q[i].when < q[j].when
	}
	return q[i].seq < q[j].seq
}
func (q timerQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *timerQueue) Push(x any) {
	t := x.(*clockTimer)
	t.index = len(*q)
	*q = append(*q, t)
}
func (q *timerQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*q = old[:len(old)-1]
	return t
}
