package mem_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/mem"
)

func TestClockConformance(t *testing.T) {
	haltest.TestClock(t, func(t *testing.T) (hal.Clock, func(time.Duration)) {
		c := mem.NewClock(clockEpoch)
		return c, c.Advance
	})
}

var clockEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// firing records which timers fired and what the clock said when they did.
type firing struct {
	mu  sync.Mutex
	got []string
}

func (r *firing) add(c *mem.Clock, name string) func() {
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, fmt.Sprintf("%s@%v", name, c.Monotonic()))
	}
}

func (r *firing) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

func TestClockNowFollowsMonotonic(t *testing.T) {
	c := mem.NewClock(clockEpoch)
	assert.Equal(t, time.Duration(0), c.Monotonic())
	assert.True(t, c.Now().Equal(clockEpoch))

	c.Advance(1500 * time.Millisecond)
	assert.Equal(t, 1500*time.Millisecond, c.Monotonic())
	assert.True(t, c.Now().Equal(clockEpoch.Add(1500*time.Millisecond)))

	c.Advance(-time.Hour)
	assert.Equal(t, 1500*time.Millisecond, c.Monotonic(), "a negative advance must not move time back")
	c.AdvanceTo(time.Second)
	assert.Equal(t, 1500*time.Millisecond, c.Monotonic(), "AdvanceTo the past must not move time back")
	c.AdvanceTo(3 * time.Second)
	assert.Equal(t, 3*time.Second, c.Monotonic())
}

func TestClockNowDropsHostMonotonicReading(t *testing.T) {
	c := mem.NewClock(time.Now())
	// A time carrying a host monotonic reading prints "m=+..."; the manual
	// clock's wall times must not, or Sub would measure host time.
	assert.NotContains(t, c.Now().String(), "m=")
}

func TestClockFiringOrder(t *testing.T) {
	type arm struct {
		name string
		d    time.Duration
	}
	tests := []struct {
		name    string
		arms    []arm
		advance time.Duration
		want    []string
	}{
		{
			name:    "deadline order regardless of creation order",
			arms:    []arm{{"c", 3 * time.Second}, {"a", time.Second}, {"b", 2 * time.Second}},
			advance: 5 * time.Second,
			want:    []string{"a@1s", "b@2s", "c@3s"},
		},
		{
			name:    "ties fire in creation order",
			arms:    []arm{{"x", time.Second}, {"y", time.Second}, {"z", time.Second}, {"w", 500 * time.Millisecond}},
			advance: time.Second,
			want:    []string{"w@500ms", "x@1s", "y@1s", "z@1s"},
		},
		{
			name:    "timers beyond the window stay pending",
			arms:    []arm{{"early", time.Second}, {"late", time.Minute}},
			advance: 10 * time.Second,
			want:    []string{"early@1s"},
		},
		{
			name:    "deadline exactly at the end of the window fires",
			arms:    []arm{{"edge", 10 * time.Second}},
			advance: 10 * time.Second,
			want:    []string{"edge@10s"},
		},
		{
			name:    "non-positive durations are due at once",
			arms:    []arm{{"zero", 0}, {"neg", -time.Second}},
			advance: 0,
			want:    []string{"zero@0s", "neg@0s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mem.NewClock(clockEpoch)
			var rec firing
			for _, a := range tt.arms {
				c.AfterFunc(a.d, rec.add(c, a.name))
			}
			c.Advance(tt.advance)
			assert.Equal(t, tt.want, rec.take())
			assert.Equal(t, len(tt.arms)-len(tt.want), c.Pending())
			assert.Equal(t, tt.advance, c.Monotonic(), "after the callbacks the clock is at the end of the window")
		})
	}
}

func TestClockNothingFiresWithoutAdvance(t *testing.T) {
	c := mem.NewClock(clockEpoch)
	var rec firing
	c.AfterFunc(0, rec.add(c, "now"))
	c.AfterFunc(time.Nanosecond, rec.add(c, "soon"))
	assert.Empty(t, rec.take(), "AfterFunc must not run f on the caller's goroutine")
	c.Advance(0)
	assert.Equal(t, []string{"now@0s"}, rec.take())
	c.Advance(time.Nanosecond)
	assert.Equal(t, []string{"soon@1ns"}, rec.take())
}

func TestClockCallbacksSeeTheirDeadline(t *testing.T) {
	c := mem.NewClock(clockEpoch)
	var sawMono time.Duration
	var sawNow time.Time
	c.AfterFunc(1234*time.Millisecond, func() {
		sawMono = c.Monotonic()
		sawNow = c.Now()
	})
	c.Advance(time.Hour)
	assert.Equal(t, 1234*time.Millisecond, sawMono)
	assert.True(t, sawNow.Equal(clockEpoch.Add(1234*time.Millisecond)))
}

func TestClockCallbacksMayUseTheClock(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(c *mem.Clock, rec *firing)
		advance time.Duration
		want    []string
		pending int
	}{
		{
			name: "timer armed in a callback within the window fires in the same advance",
			setup: func(c *mem.Clock, rec *firing) {
				c.AfterFunc(time.Second, func() {
					rec.add(c, "first")()
					c.AfterFunc(time.Second, rec.add(c, "second"))
				})
			},
			advance: 5 * time.Second,
			want:    []string{"first@1s", "second@2s"},
		},
		{
			name: "timer armed in a callback beyond the window waits",
			setup: func(c *mem.Clock, rec *firing) {
				c.AfterFunc(time.Second, func() {
					rec.add(c, "first")()
					c.AfterFunc(time.Minute, rec.add(c, "second"))
				})
			},
			advance: 5 * time.Second,
			want:    []string{"first@1s"},
			pending: 1,
		},
		{
			name: "callback armed at zero delay fires before later timers",
			setup: func(c *mem.Clock, rec *firing) {
				c.AfterFunc(time.Second, func() {
					rec.add(c, "first")()
					c.AfterFunc(0, rec.add(c, "immediate"))
				})
				c.AfterFunc(2*time.Second, rec.add(c, "later"))
			},
			advance: 5 * time.Second,
			want:    []string{"first@1s", "immediate@1s", "later@2s"},
		},
		{
			name: "periodic re-arming through Reset in the callback",
			setup: func(c *mem.Clock, rec *firing) {
				var tm hal.Timer
				tm = c.AfterFunc(time.Second, func() {
					rec.add(c, "tick")()
					assert.False(t, tm.Reset(time.Second), "a firing timer is no longer pending")
				})
			},
			advance: 3 * time.Second,
			want:    []string{"tick@1s", "tick@2s", "tick@3s"},
			pending: 1,
		},
		{
			name: "callback stops a later timer",
			setup: func(c *mem.Clock, rec *firing) {
				var victim hal.Timer
				c.AfterFunc(time.Second, func() {
					rec.add(c, "stopper")()
					assert.True(t, victim.Stop())
				})
				victim = c.AfterFunc(2*time.Second, rec.add(c, "victim"))
			},
			advance: 5 * time.Second,
			want:    []string{"stopper@1s"},
		},
		{
			name: "callback stops a timer with the same deadline",
			setup: func(c *mem.Clock, rec *firing) {
				var victim hal.Timer
				c.AfterFunc(time.Second, func() {
					rec.add(c, "stopper")()
					assert.True(t, victim.Stop())
				})
				victim = c.AfterFunc(time.Second, rec.add(c, "victim"))
			},
			advance: 5 * time.Second,
			want:    []string{"stopper@1s"},
		},
		{
			name: "callback postpones a later timer out of the window",
			setup: func(c *mem.Clock, rec *firing) {
				var victim hal.Timer
				c.AfterFunc(time.Second, func() {
					rec.add(c, "resetter")()
					assert.True(t, victim.Reset(time.Hour))
				})
				victim = c.AfterFunc(2*time.Second, rec.add(c, "victim"))
			},
			advance: 5 * time.Second,
			want:    []string{"resetter@1s"},
			pending: 1,
		},
		{
			name: "nested advance from a callback keeps order",
			setup: func(c *mem.Clock, rec *firing) {
				c.AfterFunc(time.Second, func() {
					rec.add(c, "outer")()
					c.Advance(time.Second)
				})
				c.AfterFunc(2*time.Second, rec.add(c, "inner"))
				c.AfterFunc(4*time.Second, rec.add(c, "last"))
			},
			advance: 5 * time.Second,
			want:    []string{"outer@1s", "inner@2s", "last@4s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mem.NewClock(clockEpoch)
			var rec firing
			tt.setup(c, &rec)
			c.Advance(tt.advance)
			assert.Equal(t, tt.want, rec.take())
			assert.Equal(t, tt.pending, c.Pending())
		})
	}
}

func TestClockStopReset(t *testing.T) {
	tests := []struct {
		name string
		// run gets a timer armed for 10s on a fresh clock and returns what
		// the test expects to have fired after advancing to 1 minute.
		run  func(t *testing.T, c *mem.Clock, tm hal.Timer) []string
		want []string
	}{
		{
			name: "stop pending timer",
			run: func(t *testing.T, c *mem.Clock, tm hal.Timer) []string {
				assert.True(t, tm.Stop())
				assert.False(t, tm.Stop(), "second Stop")
				return nil
			},
		},
		{
			name: "stop after firing",
			run: func(t *testing.T, c *mem.Clock, tm hal.Timer) []string {
				c.Advance(10 * time.Second)
				assert.False(t, tm.Stop())
				return []string{"t@10s"}
			},
		},
		{
			name: "reset pending timer earlier",
			run: func(t *testing.T, c *mem.Clock, tm hal.Timer) []string {
				c.Advance(time.Second)
				assert.True(t, tm.Reset(2*time.Second))
				return []string{"t@3s"}
			},
		},
		{
			name: "reset pending timer later",
			run: func(t *testing.T, c *mem.Clock, tm hal.Timer) []string {
				c.Advance(5 * time.Second)
				assert.True(t, tm.Reset(20*time.Second))
				c.Advance(10 * time.Second)
				assert.Equal(t, 1, c.Pending(), "the old deadline must be gone")
				return []string{"t@25s"}
			},
		},
		{
			name: "reset stopped timer",
			run: func(t *testing.T, c *mem.Clock, tm hal.Timer) []string {
				require.True(t, tm.Stop())
				assert.False(t, tm.Reset(time.Second))
				return []string{"t@1s"}
			},
		},
		{
			name: "reset fired timer fires again",
			run: func(t *testing.T, c *mem.Clock, tm hal.Timer) []string {
				c.Advance(10 * time.Second)
				assert.False(t, tm.Reset(5*time.Second))
				return []string{"t@10s", "t@15s"}
			},
		},
		{
			name: "reset twice keeps one pending instance",
			run: func(t *testing.T, c *mem.Clock, tm hal.Timer) []string {
				assert.True(t, tm.Reset(time.Second))
				assert.True(t, tm.Reset(2*time.Second))
				assert.Equal(t, 1, c.Pending())
				return []string{"t@2s"}
			},
		},
		{
			name: "reset to zero fires on next advance",
			run: func(t *testing.T, c *mem.Clock, tm hal.Timer) []string {
				c.Advance(time.Second)
				assert.True(t, tm.Reset(0))
				return []string{"t@1s"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mem.NewClock(clockEpoch)
			var rec firing
			tm := c.AfterFunc(10*time.Second, rec.add(c, "t"))
			want := tt.run(t, c, tm)
			c.AdvanceTo(time.Minute)
			assert.Equal(t, want, rec.take())
		})
	}
}

func TestClockResetRanksAfterEarlierArmed(t *testing.T) {
	c := mem.NewClock(clockEpoch)
	var rec firing
	a := c.AfterFunc(time.Second, rec.add(c, "a"))
	c.AfterFunc(time.Second, rec.add(c, "b"))
	a.Reset(time.Second) // same deadline, re-armed after b
	c.Advance(time.Second)
	assert.Equal(t, []string{"b@1s", "a@1s"}, rec.take())
}

func TestClockAdvanceToNext(t *testing.T) {
	c := mem.NewClock(clockEpoch)
	var rec firing

	assert.False(t, c.AdvanceToNext(), "no timers")
	_, ok := c.NextDeadline()
	assert.False(t, ok)

	c.AfterFunc(3*time.Second, rec.add(c, "c"))
	c.AfterFunc(time.Second, rec.add(c, "a1"))
	c.AfterFunc(time.Second, rec.add(c, "a2"))
	next, ok := c.NextDeadline()
	require.True(t, ok)
	assert.Equal(t, time.Second, next)
	assert.Equal(t, 3, c.Pending())

	assert.True(t, c.AdvanceToNext())
	assert.Equal(t, []string{"a1@1s", "a2@1s"}, rec.take(), "all timers of that deadline fire")
	assert.Equal(t, time.Second, c.Monotonic())

	assert.True(t, c.AdvanceToNext())
	assert.Equal(t, []string{"c@3s"}, rec.take())
	assert.Equal(t, 3*time.Second, c.Monotonic())

	assert.False(t, c.AdvanceToNext())
	assert.Equal(t, 3*time.Second, c.Monotonic())
}

func TestClockWaitForTimers(t *testing.T) {
	c := mem.NewClock(clockEpoch)
	done := make(chan time.Duration)
	const workers = 4
	for range workers {
		go func() {
			ch := make(chan struct{})
			c.AfterFunc(time.Second, func() { close(ch) })
			<-ch
			done <- c.Monotonic()
		}()
	}
	require.NoError(t, c.WaitForTimers(t.Context(), workers))
	c.Advance(time.Second)
	for range workers {
		assert.Equal(t, time.Second, <-done)
	}
	assert.Zero(t, c.Pending())
}

func TestClockWaitForTimersCancelled(t *testing.T) {
	c := mem.NewClock(clockEpoch)
	c.AfterFunc(time.Second, func() {})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := c.WaitForTimers(ctx, 2)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "1 pending")
	assert.NoError(t, c.WaitForTimers(ctx, 1), "already satisfied")
}

// TestClockConcurrentUse arms, stops and resets timers from many goroutines
// while another advances the clock; run with -race. Every timer must fire
// exactly once unless it was stopped.
func TestClockConcurrentUse(t *testing.T) {
	c := mem.NewClock(clockEpoch)
	const (
		goroutines = 8
		perG       = 200
	)
	var (
		mu    sync.Mutex
		fired = map[int]int{}
		wg    sync.WaitGroup
	)
	stopped := make([][]int, goroutines)
	// A Reset that finds its timer already fired re-arms it, so that timer
	// fires twice.
	rearmed := make([][]int, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				id := g*perG + i
				tm := c.AfterFunc(time.Duration(i%17)*time.Millisecond, func() {
					mu.Lock()
					fired[id]++
					mu.Unlock()
				})
				switch i % 5 {
				case 0:
					if tm.Stop() {
						stopped[g] = append(stopped[g], id)
					}
				case 1:
					if !tm.Reset(time.Duration(i%7) * time.Millisecond) {
						rearmed[g] = append(rearmed[g], id)
					}
				}
				_ = c.Now()
			}
		})
	}
	advancing := make(chan struct{})
	go func() {
		defer close(advancing)
		for range 100 {
			c.Advance(time.Millisecond)
		}
	}()
	wg.Wait()
	<-advancing
	c.Advance(time.Second) // everything still pending is due by now
	assert.Zero(t, c.Pending())

	isStopped, isRearmed := map[int]bool{}, map[int]bool{}
	for g := range goroutines {
		for _, id := range stopped[g] {
			isStopped[id] = true
		}
		for _, id := range rearmed[g] {
			isRearmed[id] = true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range goroutines * perG {
		switch {
		case isStopped[id]:
			assert.Zero(t, fired[id], "stopped timer %d fired", id)
		case isRearmed[id]:
			assert.Equal(t, 2, fired[id], "timer %d, fired then re-armed by Reset", id)
		default:
			assert.Equal(t, 1, fired[id], "timer %d", id)
		}
	}
}

func TestClockString(t *testing.T) {
	c := mem.NewClock(clockEpoch)
	assert.Equal(t, "mem.Clock(at 0s, no timers)", c.String())
	c.AfterFunc(2*time.Second, func() {})
	c.Advance(time.Second)
	assert.Equal(t, "mem.Clock(at 1s, 1 timers, next at 2s)", c.String())
}
