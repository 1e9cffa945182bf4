// Package sched provides clocks and timers over [hal.Clock]: sleeping,
// channel timers and tickers, and contexts whose deadlines follow a
// hal.Clock rather than the host's time.
//
// Components use these instead of the time package wherever time matters to
// their behaviour (retransmission, timeouts, lease renewal, log timestamps),
// so that a program can hand them any clock: [System] for real time, the
// manual clock of hal/mem in tests (where advancing the clock drives every
// timer deterministically, with no real sleeping), or the platform timer of
// the bare-metal port.
//
// The API mirrors the time and context packages:
//
//	time.Sleep(d)              sched.Sleep(ctx, clk, d)
//	time.After(d)              sched.After(clk, d)
//	time.NewTimer(d)           sched.NewTimer(clk, d)
//	time.NewTicker(d)          sched.NewTicker(clk, d)
//	context.WithTimeout(p, d)  sched.WithTimeout(p, clk, d)
//	context.WithDeadline(p, t) sched.WithDeadline(p, clk, t)
//
// Timers and tickers follow the Go 1.23 channel semantics: after Stop or
// Reset returns, no value from before the call is received.
//
// Scope: this package holds the clock-facing layer shared by every run
// mode. On the bare-metal platform sched will also schedule the threads
// the Go runtime creates onto the CPUs, drive the timer interrupt and halt
// the CPU when idle; that scheduler lives in its own subpackage, so that
// hosted programs importing sched compile none of it.
package sched
