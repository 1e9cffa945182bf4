package sched_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/sched"
)

// received returns the value waiting on ch, if any, without blocking.
func received(ch <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestTimer(t *testing.T) {
	tests := []struct {
		name string
		// run drives a timer armed for 10s; it returns the clock times at
		// which values are expected on C when the clock is then advanced
		// to one minute, after whatever the run itself received.
		run  func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration
		want []time.Duration
	}{
		{
			name: "fires once at its deadline",
			run: func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration {
				clk.Advance(9 * time.Second)
				_, ok := received(tm.C)
				assert.False(t, ok, "fired early")
				return []time.Duration{10 * time.Second}
			},
		},
		{
			name: "stop before firing",
			run: func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration {
				assert.True(t, tm.Stop())
				assert.False(t, tm.Stop())
				assert.Zero(t, clk.Pending(), "Stop releases the clock timer")
				return nil
			},
		},
		{
			name: "stop after firing discards the unreceived value",
			run: func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration {
				clk.Advance(10 * time.Second)
				assert.True(t, tm.Stop(), "an unreceived value counts as pending")
				_, ok := received(tm.C)
				assert.False(t, ok, "stale value after Stop")
				return nil
			},
		},
		{
			name: "stop after the value was received",
			run: func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration {
				clk.Advance(10 * time.Second)
				_, ok := received(tm.C)
				require.True(t, ok)
				assert.False(t, tm.Stop())
				return nil
			},
		},
		{
			name: "reset pending timer",
			run: func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration {
				clk.Advance(5 * time.Second)
				assert.True(t, tm.Reset(20*time.Second))
				assert.Equal(t, 1, clk.Pending(), "the old deadline is gone")
				return []time.Duration{25 * time.Second}
			},
		},
		{
			name: "reset after firing replaces the stale value",
			run: func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration {
				clk.Advance(10 * time.Second)
				assert.True(t, tm.Reset(time.Second))
				_, ok := received(tm.C)
				assert.False(t, ok, "stale value after Reset")
				return []time.Duration{11 * time.Second}
			},
		},
		{
			name: "reset after receiving fires again",
			run: func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration {
				clk.Advance(10 * time.Second)
				_, ok := received(tm.C)
				require.True(t, ok)
				assert.False(t, tm.Reset(30*time.Second))
				return []time.Duration{40 * time.Second}
			},
		},
		{
			name: "reset after stop",
			run: func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration {
				tm.Stop()
				assert.False(t, tm.Reset(2*time.Second))
				return []time.Duration{2 * time.Second}
			},
		},
		{
			name: "reset to zero fires on the next advance",
			run: func(t *testing.T, clk *mem.Clock, tm *sched.Timer) []time.Duration {
				clk.Advance(3 * time.Second)
				tm.Reset(0)
				return []time.Duration{3 * time.Second}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := mem.NewClock(epoch)
				tm := sched.NewTimer(clk, 10*time.Second)
				want := tt.run(t, clk, tm)
				// The channel holds one value, so advance deadline by
				// deadline and collect as we go.
				var got []time.Duration
				for clk.AdvanceToNext() {
					if v, ok := received(tm.C); ok {
						got = append(got, v.Sub(epoch))
					}
				}
				clk.AdvanceTo(time.Minute)
				if v, ok := received(tm.C); ok {
					got = append(got, v.Sub(epoch))
				}
				assert.Equal(t, want, got)
			})
		})
	}
}

func TestTimerReceiverGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := mem.NewClock(epoch)
		tm := sched.NewTimer(clk, time.Second)
		got := make(chan time.Time)
		go func() { got <- <-tm.C }()
		synctest.Wait()
		clk.Advance(time.Second)
		assert.True(t, (<-got).Equal(epoch.Add(time.Second)))
	})
}

func TestTimerConcurrentStopReset(t *testing.T) {
	// Stop and Reset racing with the clock; run with -race. Whatever the
	// interleaving, after a final Stop nothing more arrives.
	synctest.Test(t, func(t *testing.T) {
		clk := mem.NewClock(epoch)
		tm := sched.NewTimer(clk, time.Millisecond)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 200 {
				if i%2 == 0 {
					tm.Reset(time.Duration(i%3) * time.Millisecond)
				} else {
					tm.Stop()
				}
			}
		}()
		for range 200 {
			clk.Advance(time.Millisecond)
			received(tm.C)
		}
		<-done
		tm.Stop()
		clk.Advance(time.Hour)
		_, ok := received(tm.C)
		assert.False(t, ok)
	})
}
