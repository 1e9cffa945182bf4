// Package osclock is the operating system's clock as a hal.Clock, shared by
// hal/host (the hosted backend) and sched.System (real time for components
// that want it without choosing a backend).
package osclock

import (
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/internal/timerq"
)

// Clock is the OS clock as a hal.Clock: Now is the wall clock, Monotonic
// the Go runtime's monotonic clock measured from the Clock's creation, and
// timers are Go runtime timers.
//
// Timers due at the same moment run one after another on one goroutine, in
// deadline order (creation order for equal deadlines), which is what
// hal.Clock promises; a timer function that blocks delays timers due
// together with it, not later ones.
type Clock struct {
	start time.Time

	mu     sync.Mutex
	queue  timerq.Queue
	wake   *time.Timer // armed for the earliest deadline in queue
	firing bool        // a fire call is running timers
}

var _ hal.Clock = (*Clock)(nil)

// New returns a clock whose Monotonic origin is now.
func New() *Clock {
	c := &Clock{start: time.Now()}
	c.wake = time.AfterFunc(time.Hour, c.fire)
	c.wake.Stop()
	return c
}

// Now returns the wall-clock time.
func (c *Clock) Now() time.Time { return time.Now() }

// Monotonic returns the time elapsed since New, on the monotonic clock.
func (c *Clock) Monotonic() time.Duration { return time.Since(c.start) }

// AfterFunc arranges for f to be called once d has elapsed; see hal.Clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) hal.Timer {
	t := &clockTimer{c: c, q: timerq.Timer{F: f}}
	c.mu.Lock()
	c.schedule(t, d)
	c.mu.Unlock()
	return t
}

// schedule queues t to fire d from now. c.mu is held.
func (c *Clock) schedule(t *clockTimer, d time.Duration) {
	c.queue.Push(&t.q, c.Monotonic()+max(d, 0))
	c.rearm()
}

// rearm points the runtime timer at the earliest deadline. c.mu is held.
func (c *Clock) rearm() {
	next, ok := c.queue.Next()
	if !ok {
		c.wake.Stop()
		return
	}
	c.wake.Reset(next - c.Monotonic())
}

// fire runs every timer that is due, in deadline order. Only one fire runs
// timers at a time: a wake-up that arrives while another is running its
// batch leaves the work to it, so a later deadline can never overtake an
// earlier one that is still being called.
func (c *Clock) fire() {
	c.mu.Lock()
	if c.firing {
		c.mu.Unlock()
		return
	}
	c.firing = true
	for {
		now := c.Monotonic()
		var due []func()
		for t := c.queue.PopDue(now); t != nil; t = c.queue.PopDue(now) {
			due = append(due, t.F)
		}
		if len(due) == 0 {
			c.firing = false
			c.rearm()
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		for _, f := range due {
			f()
		}
		c.mu.Lock()
	}
}

type clockTimer struct {
	c *Clock
	q timerq.Timer
}

// Stop cancels the timer; see hal.Timer.
func (t *clockTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.queue.Remove(&t.q) {
		return false
	}
	c.rearm()
	return true
}

// Reset reschedules the timer d from now; see hal.Timer.
func (t *clockTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	pending := t.q.Pending()
	c.schedule(t, d)
	return pending
}
