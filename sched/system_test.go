package sched_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/sched"
)

func TestSystemConformance(t *testing.T) {
	// The suite needs real time to pass here; it advances by at most a
	// second per subtest.
	haltest.TestClock(t, func(t *testing.T) (hal.Clock, func(time.Duration)) {
		return sched.System(), time.Sleep
	})
}

func TestSystemClockDrivesSched(t *testing.T) {
	clk := sched.System()
	assert.GreaterOrEqual(t, clk.Monotonic(), time.Duration(0))
	ctx, cancel := sched.WithTimeout(context.Background(), clk, time.Millisecond)
	defer cancel()
	<-ctx.Done()
	assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	assert.NoError(t, sched.Sleep(context.Background(), clk, time.Millisecond))

	before := clk.Now()
	fired := <-sched.After(clk, time.Millisecond)
	assert.False(t, fired.Before(before), "After sent %v, before it was armed at %v", fired, before)

	tk := sched.NewTicker(clk, time.Millisecond)
	first, second := <-tk.C, <-tk.C
	tk.Stop()
	assert.True(t, second.After(first), "ticks %v then %v", first, second)
}
