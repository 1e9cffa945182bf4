package sched

import (
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// Ticker sends the clock's time on C at every multiple of its period on a
// hal.Clock, like time.Ticker. Ticks are scheduled from the start, not from
// when the previous tick was received, so they do not drift; a receiver
// that falls behind gets one buffered tick and loses the ones it missed.
// Create one with [NewTicker]; Stop it when done, or its timer keeps firing.
//
// As with Go 1.23 tickers, once Stop or Reset has returned no tick from
// before the call is received. All methods are safe for concurrent use.
type Ticker struct {
	// C delivers the time (clk.Now) of each tick.
	C <-chan time.Time

	c   chan time.Time
	clk hal.Clock

	mu     sync.Mutex
	gen    uint64
	period time.Duration
	next   time.Duration // clk.Monotonic time of the next tick
	t      hal.Timer     // nil once stopped
}

// NewTicker returns a ticker whose first tick comes d after now on clk. Like
// time.NewTicker it panics if d <= 0: a ticker without a period is a
// programming error, not a condition to handle at run time.
func NewTicker(clk hal.Clock, d time.Duration) *Ticker {
	if d <= 0 {
		panic("sched: non-positive interval for NewTicker")
	}
	c := make(chan time.Time, 1)
	tk := &Ticker{C: c, c: c, clk: clk}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.startLocked(d)
	return tk
}

// Stop turns the ticker off and discards a tick not yet received. It does
// not close C.
func (tk *Ticker) Stop() {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.stopLocked()
}

// Reset stops the ticker and restarts it with period d; the next tick comes
// d after now. It panics if d <= 0, like time.Ticker.Reset.
func (tk *Ticker) Reset(d time.Duration) {
	if d <= 0 {
		panic("sched: non-positive interval for Ticker.Reset")
	}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.stopLocked()
	tk.startLocked(d)
}

func (tk *Ticker) stopLocked() {
	tk.gen++
	if tk.t != nil {
		tk.t.Stop()
		tk.t = nil
	}
	select {
	case <-tk.c:
	default:
	}
}

func (tk *Ticker) startLocked(d time.Duration) {
	gen := tk.gen
	tk.period = d
	tk.next = tk.clk.Monotonic() + d
	tk.t = tk.clk.AfterFunc(d, func() { tk.tick(gen) })
}

func (tk *Ticker) tick(gen uint64) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if gen != tk.gen || tk.t == nil {
		return
	}
	select {
	case tk.c <- tk.clk.Now():
	default: // the receiver has not taken the last tick: drop this one
	}
	// Schedule the next tick on the original grid, skipping the ticks a
	// late firing has already passed.
	now := tk.clk.Monotonic()
	tk.next += tk.period
	if tk.next <= now {
		tk.next += ((now-tk.next)/tk.period + 1) * tk.period
	}
	tk.t.Reset(tk.next - now)
}
