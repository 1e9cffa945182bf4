package hal

import "time"

// Clock is a source of time and timers. It is shaped so that gVisor's
// tcpip.Clock adapts to it one method for one, which lets a simulated clock
// drive TCP's timers in tests.
//
// All methods are safe for concurrent use.
type Clock interface {
	// Now returns the current wall-clock time. It may jump (the wall clock
	// can be set); do not use it to measure intervals.
	Now() time.Time

	// Monotonic returns the time elapsed since an arbitrary fixed origin (the
	// clock's creation or boot). It never decreases.
	Monotonic() time.Duration

	// AfterFunc arranges for f to be called once, on a goroutine of the
	// clock's choosing and without any of the caller's locks held, after at
	// least d has elapsed on this clock's Monotonic time. d <= 0 means as soon
	// as possible: a real clock fires such a timer at once (never inside
	// AfterFunc itself); a simulated clock, whose time moves only when told,
	// fires it at its next advance. Timers whose deadlines differ fire in
	// deadline order; f may itself call the clock (including AfterFunc).
	// Keeping that order means timers due together may run one after another
	// on one goroutine: f should hand long or blocking work to a goroutine of
	// its own.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call created by [Clock.AfterFunc].
type Timer interface {
	// Stop prevents the timer from firing. It returns true if the call
	// stopped the timer, false if the timer had already fired or been
	// stopped. It does not wait for a running f to return.
	Stop() bool

	// Reset changes the timer to fire after d from now, whether or not it
	// has fired or been stopped, and reports whether it was pending.
	Reset(d time.Duration) bool
}
