package sched

import (
	"context"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// Sleep pauses the calling goroutine until d has elapsed on clk or ctx is
// done, whichever comes first. It returns nil after a full sleep and
// ctx.Err() otherwise. A d <= 0 returns at once (with ctx.Err() if ctx is
// already done).
func Sleep(ctx context.Context, clk hal.Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	done := make(chan struct{})
	t := clk.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

// After waits for d to elapse on clk and then sends clk's current time on
// the returned channel, like time.After. The underlying timer is not
// recovered until it fires; use [NewTimer] and Stop in loops that may
// abandon the wait.
func After(clk hal.Clock, d time.Duration) <-chan time.Time {
	return NewTimer(clk, d).C
}
