package host

import "github.com/anykernel/anykernel/internal/osclock"

// Clock is the host's clock as a hal.Clock: Now is the wall clock, Monotonic
// the Go runtime's monotonic clock measured from the Clock's creation, and
// timers are Go runtime timers.
//
// Timers due at the same moment run one after another on one goroutine, in
// deadline order (creation order for equal deadlines), which is what
// hal.Clock promises; a timer function that blocks delays timers due
// together with it, not later ones.
type Clock = osclock.Clock

// NewClock returns a clock whose Monotonic origin is now.
func NewClock() *Clock { return osclock.New() }
