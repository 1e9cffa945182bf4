package mem

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/internal/timerq"
)

// Clock is a manual [hal.Clock]: its time moves only when the test says so,
// through [Clock.Advance], [Clock.AdvanceTo] or [Clock.AdvanceToNext]. Code
// under test that sleeps, times out or retransmits on this clock therefore
// runs deterministically and as fast as the test can advance it.
//
// Timers fire in deadline order, timers with equal deadlines in the order
// they were armed (created or Reset). Each fires synchronously on the
// goroutine that advances the clock, with no lock of the clock held, and
// while it runs Monotonic reports exactly its deadline. A timer armed with
// d <= 0 is due at once and fires on the next advance, including Advance(0).
//
// All methods are safe for concurrent use. Timer ordering is guaranteed for
// the advances of one goroutine; advancing from several goroutines at once
// is allowed but leaves the order between their callbacks unspecified.
type Clock struct {
	mu      sync.Mutex
	start   time.Time
	now     time.Duration // Monotonic time
	timers  timerq.Queue
	changed chan struct{} // closed and replaced whenever timers changes
}

var _ hal.Clock = (*Clock)(nil)

// NewClock returns a manual clock whose Monotonic time is 0 and whose wall
// time is start. Now always equals start plus Monotonic; start's monotonic
// clock reading, if any, is discarded.
func NewClock(start time.Time) *Clock {
	return &Clock{start: start.Round(0), changed: make(chan struct{})}
}

// Now returns the start time plus Monotonic.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(c.now)
}

// Monotonic returns the time the clock has been advanced by since creation.
func (c *Clock) Monotonic() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms a timer that calls f once the clock has been advanced by at
// least d from now. f runs on the goroutine that advances the clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) hal.Timer {
	t := &clockTimer{c: c, q: timerq.Timer{F: f}}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armLocked(t, d)
	return t
}

// Advance moves the clock forward by d, firing every timer whose deadline
// falls within the window, timers armed by those callbacks included. A
// negative d is treated as 0.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now + max(d, 0)
	c.mu.Unlock()
	c.runUntil(target)
}

// AdvanceTo moves the clock forward to Monotonic time mono, firing timers as
// Advance does. If mono is not after the current time, the clock stays
// where it is and only the timers already due fire.
func (c *Clock) AdvanceTo(mono time.Duration) {
	c.runUntil(mono)
}

// AdvanceToNext moves the clock to the earliest pending deadline and fires
// the timers due then. It reports false, without moving the clock, if no
// timer is pending.
func (c *Clock) AdvanceToNext() (fired bool) {
	next, ok := c.NextDeadline()
	if !ok {
		return false
	}
	c.runUntil(next)
	return true
}

// Pending returns the number of armed timers that have not fired or been
// stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timers.Len()
}

// NextDeadline returns the Monotonic time at which the earliest pending timer
// is due, or false if none is pending.
func (c *Clock) NextDeadline() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timers.Next()
}

// WaitForTimers blocks until at least n timers are pending, which lets a test
// wait for code running on other goroutines to arm its timers before it
// advances the clock. It returns ctx's error if ctx is done first.
func (c *Clock) WaitForTimers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		pending, changed := c.timers.Len(), c.changed
		c.mu.Unlock()
		if pending >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("mem clock: waiting for %d timers, %d pending: %w", n, pending, ctx.Err())
		}
	}
}

// String describes the clock's state, for test failure messages.
func (c *Clock) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	next, ok := c.timers.Next()
	if !ok {
		return fmt.Sprintf("mem.Clock(at %v, no timers)", c.now)
	}
	return fmt.Sprintf("mem.Clock(at %v, %d timers, next at %v)", c.now, c.timers.Len(), next)
}

// runUntil fires due timers one at a time, in order, then sets the clock to
// target if that is later than where the callbacks left it.
func (c *Clock) runUntil(target time.Duration) {
	for {
		c.mu.Lock()
		limit := max(target, c.now)
		t := c.timers.PopDue(limit)
		if t == nil {
			c.now = limit
			c.mu.Unlock()
			return
		}
		c.now = max(c.now, t.When())
		f := t.F
		c.notifyLocked()
		c.mu.Unlock()
		f()
	}
}

// armLocked schedules t to fire d from now.
func (c *Clock) armLocked(t *clockTimer, d time.Duration) {
	c.timers.Push(&t.q, c.now+max(d, 0))
	c.notifyLocked()
}

// notifyLocked wakes WaitForTimers callers after the set of timers changed.
func (c *Clock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// clockTimer is a timer of a manual Clock.
type clockTimer struct {
	c *Clock
	q timerq.Timer
}

// Stop removes the timer if it is pending and reports whether it was.
func (t *clockTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.timers.Remove(&t.q) {
		return false
	}
	c.notifyLocked()
	return true
}

// Reset re-arms the timer to fire d from now and reports whether it was
// pending. A reset timer ranks after timers already armed for the same
// deadline.
func (t *clockTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	wasPending := t.q.Pending()
	c.armLocked(t, d)
	return wasPending
}
