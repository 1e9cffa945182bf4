package sched

import (
	"time"

	"github.com/anykernel/anykernel/hal"
)

// processStart is the origin of the system clock's Monotonic time. It holds
// a monotonic reading, so Monotonic is immune to wall-clock steps.
var processStart = time.Now()

// System returns a hal.Clock over the time package: Now is time.Now,
// Monotonic counts from the start of the process, and timers are
// time.AfterFunc timers. Every call returns an equivalent clock.
func System() hal.Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Monotonic() time.Duration { return time.Since(processStart) }

func (systemClock) AfterFunc(d time.Duration, f func()) hal.Timer {
	return systemTimer{time.AfterFunc(d, f)}
}

// systemTimer adapts *time.Timer, whose Stop and Reset already have the
// hal.Timer meaning for AfterFunc timers.
type systemTimer struct{ t *time.Timer }

func (t systemTimer) Stop() bool { return t.t.Stop() }

func (t systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
