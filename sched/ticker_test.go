package sched_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/sched"
)

func TestTicker(t *testing.T) {
	type step struct {
		advance time.Duration // clock advance before receiving
		want    time.Duration // tick expected on C (0: none)
	}
	tests := []struct {
		name   string
		period time.Duration
		steps  []step
	}{
		{
			name:   "ticks on every period",
			period: time.Second,
			steps: []step{
				{advance: 500 * time.Millisecond},
				{advance: 500 * time.Millisecond, want: time.Second},
				{advance: time.Second, want: 2 * time.Second},
				{advance: time.Second, want: 3 * time.Second},
			},
		},
		{
			name:   "slow receiver gets one tick and loses the rest",
			period: time.Second,
			steps: []step{
				{advance: 5 * time.Second, want: time.Second},
				{advance: 0},
				{advance: time.Second, want: 6 * time.Second},
			},
		},
		{
			name:   "ticks stay on the grid after an uneven advance",
			period: 3 * time.Second,
			steps: []step{
				{advance: 4 * time.Second, want: 3 * time.Second},
				{advance: time.Second},
				{advance: time.Second, want: 6 * time.Second},
				{advance: 2 * time.Second},
				{advance: time.Second, want: 9 * time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := mem.NewClock(epoch)
				tk := sched.NewTicker(clk, tt.period)
				defer tk.Stop()
				for i, s := range tt.steps {
					clk.Advance(s.advance)
					v, ok := received(tk.C)
					if s.want == 0 {
						assert.False(t, ok, "step %d: unexpected tick at %v", i, v.Sub(epoch))
						continue
					}
					if assert.True(t, ok, "step %d: no tick", i) {
						assert.Equal(t, s.want, v.Sub(epoch), "step %d", i)
					}
				}
			})
		})
	}
}

func TestTickerStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := mem.NewClock(epoch)
		tk := sched.NewTicker(clk, time.Second)
		clk.Advance(time.Second) // a tick waits, unreceived
		tk.Stop()
		assert.Zero(t, clk.Pending(), "Stop releases the clock timer")
		clk.Advance(time.Minute)
		_, ok := received(tk.C)
		assert.False(t, ok, "no tick after Stop, not even a stale one")
		tk.Stop() // twice is fine
	})
}

func TestTickerReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := mem.NewClock(epoch)
		tk := sched.NewTicker(clk, time.Second)
		defer tk.Stop()
		clk.Advance(1500 * time.Millisecond) // tick at 1s, unreceived
		tk.Reset(5 * time.Second)
		_, ok := received(tk.C)
		assert.False(t, ok, "stale tick after Reset")
		assert.Equal(t, 1, clk.Pending())

		clk.Advance(4 * time.Second)
		_, ok = received(tk.C)
		assert.False(t, ok, "old period still ticking")
		clk.Advance(time.Second)
		v, ok := received(tk.C)
		if assert.True(t, ok) {
			assert.Equal(t, 6500*time.Millisecond, v.Sub(epoch))
		}
		clk.Advance(5 * time.Second)
		v, ok = received(tk.C)
		if assert.True(t, ok) {
			assert.Equal(t, 11500*time.Millisecond, v.Sub(epoch))
		}

		tk.Stop()
		tk.Reset(time.Second) // a stopped ticker restarts
		clk.Advance(time.Second)
		_, ok = received(tk.C)
		assert.True(t, ok)
	})
}

func TestTickerBadPeriodPanics(t *testing.T) {
	clk := mem.NewClock(epoch)
	assert.Panics(t, func() { sched.NewTicker(clk, 0) })
	tk := sched.NewTicker(clk, time.Second)
	defer tk.Stop()
	assert.Panics(t, func() { tk.Reset(-time.Second) })
}

func TestTickerGoroutineReceiver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := mem.NewClock(epoch)
		tk := sched.NewTicker(clk, time.Second)
		got := make(chan time.Duration)
		go func() {
			for range 3 {
				got <- (<-tk.C).Sub(epoch)
			}
			tk.Stop()
		}()
		for i := 1; i <= 3; i++ {
			synctest.Wait()
			clk.Advance(time.Second)
			assert.Equal(t, time.Duration(i)*time.Second, <-got)
		}
		synctest.Wait()
		assert.Zero(t, clk.Pending())
	})
}
