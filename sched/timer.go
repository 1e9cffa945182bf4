package sched

import (
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// Timer sends the clock's current time on C once its duration has elapsed on
// a hal.Clock, like time.Timer. Create one with [NewTimer].
//
// As with Go 1.23 timers, C has no stale values: once Stop or Reset has
// returned, a receive from C yields only a value from the timer's next
// firing. All methods are safe for concurrent use.
type Timer struct {
	// C delivers the time (clk.Now) at which the timer fired.
	C <-chan time.Time

	c   chan time.Time
	clk hal.Clock

	mu    sync.Mutex
	gen   uint64 // incremented on every Stop and Reset
	armed bool   // pending and not yet fired
	t     hal.Timer
}

// NewTimer returns a timer that sends on C once d has elapsed on clk. A
// d <= 0 fires as soon as clk fires such timers (for the hal/mem manual
// clock, on its next advance).
func NewTimer(clk hal.Clock, d time.Duration) *Timer {
	c := make(chan time.Time, 1)
	tm := &Timer{C: c, c: c, clk: clk}
	tm.mu.Lock()
	defer tm.mu.Unlock()
	tm.armLocked(d)
	return tm
}

// Stop prevents the timer from firing. It returns true if it stopped a
// pending timer or discarded a fired value nobody had received yet, and
// false if the timer had been stopped or its value received already.
func (tm *Timer) Stop() bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.stopLocked()
}

// Reset stops the timer and arms it to fire after d, reporting whether it
// was still pending (Stop's result).
func (tm *Timer) Reset(d time.Duration) bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	was := tm.stopLocked()
	tm.armLocked(d)
	return was
}

func (tm *Timer) stopLocked() bool {
	tm.gen++
	was := tm.armed
	if tm.armed {
		tm.t.Stop()
		tm.armed = false
	}
	select {
	case <-tm.c:
		was = true
	default:
	}
	return was
}

func (tm *Timer) armLocked(d time.Duration) {
	gen := tm.gen
	tm.armed = true
	tm.t = tm.clk.AfterFunc(d, func() { tm.fire(gen) })
}

func (tm *Timer) fire(gen uint64) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if gen != tm.gen || !tm.armed {
		return // stopped or reset after this firing was scheduled
	}
	tm.armed = false
	select {
	case tm.c <- tm.clk.Now():
	default:
	}
}
