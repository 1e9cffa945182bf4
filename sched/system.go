package sched

import (
	"sync"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/internal/osclock"
)

// system is the process-wide OS clock, created on first use so its
// Monotonic time counts from then.
var system = sync.OnceValue(osclock.New)

// System returns a hal.Clock over the operating system's clock: Now is
// time.Now, Monotonic counts from the first call to System, and timers fire
// in deadline order as hal.Clock requires (plain time.AfterFunc timers due
// close together can run out of order). Every call returns the same clock.
func System() hal.Clock { return system() }
