package sched_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/sched"
)

var epoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// In every test below the clock is a manual one: nothing sleeps for real.
// Tests run in a synctest bubble, which makes synctest.Wait a reliable "the
// code under test is now blocked" and fails the test if a goroutine is
// left behind.

func TestSleep(t *testing.T) {
	tests := []struct {
		name    string
		d       time.Duration
		cancel  bool // cancel ctx while sleeping
		precede bool // cancel ctx before sleeping
		steps   []time.Duration
		want    error
		wantAt  time.Duration // clock time when Sleep returned, if exact
		anyAt   bool          // the advance goes on past the wake-up
	}{
		{name: "full sleep", d: 5 * time.Second, steps: []time.Duration{4 * time.Second, time.Second}, wantAt: 5 * time.Second},
		{name: "overshooting advance", d: 5 * time.Second, steps: []time.Duration{time.Minute}, anyAt: true},
		{name: "cancelled while sleeping", d: 5 * time.Second, cancel: true, steps: []time.Duration{time.Second}, want: context.Canceled, wantAt: time.Second},
		{name: "cancelled before sleeping", d: 5 * time.Second, precede: true, want: context.Canceled},
		{name: "zero duration", d: 0},
		{name: "negative duration", d: -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := mem.NewClock(epoch)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.precede {
					cancel()
				}
				type result struct {
					err error
					at  time.Duration
				}
				res := make(chan result, 1)
				go func() {
					err := sched.Sleep(ctx, clk, tt.d)
					res <- result{err, clk.Monotonic()}
				}()
				for _, step := range tt.steps {
					synctest.Wait()
					select {
					case r := <-res:
						t.Fatalf("Sleep returned early at %v: %v", r.at, r.err)
					default:
					}
					clk.Advance(step)
				}
				if tt.cancel {
					cancel()
				}
				r := <-res
				assert.ErrorIs(t, r.err, tt.want)
				if tt.want == nil {
					assert.NoError(t, r.err)
				}
				if !tt.anyAt {
					assert.Equal(t, tt.wantAt, r.at)
				}
				assert.Zero(t, clk.Pending(), "Sleep must not leave its timer armed")
			})
		})
	}
}

func TestSleepUntilClockDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := mem.NewClock(epoch)
		ctx, cancel := sched.WithTimeout(t.Context(), clk, 2*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- sched.Sleep(ctx, clk, time.Hour) }()
		synctest.Wait()
		clk.Advance(2 * time.Second)
		assert.ErrorIs(t, <-errc, context.DeadlineExceeded)
	})
}

func TestAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := mem.NewClock(epoch)
		ch := sched.After(clk, 3*time.Second)
		clk.Advance(2 * time.Second)
		select {
		case v := <-ch:
			t.Fatalf("After fired early: %v", v)
		default:
		}
		clk.Advance(2 * time.Second)
		select {
		case v := <-ch:
			assert.True(t, v.Equal(epoch.Add(3*time.Second)), "got %v", v)
		default:
			t.Fatal("After did not fire")
		}
	})
}

func TestSleepMany(t *testing.T) {
	// Sleepers wake in order of their deadlines, each at its own time.
	synctest.Test(t, func(t *testing.T) {
		clk := mem.NewClock(epoch)
		woke := make(chan time.Duration, 10)
		for i := range 10 {
			go func() {
				d := time.Duration(10-i) * time.Second
				require.NoError(t, sched.Sleep(t.Context(), clk, d))
				woke <- clk.Monotonic()
			}()
		}
		synctest.Wait()
		require.Equal(t, 10, clk.Pending())
		for i := 1; i <= 10; i++ {
			require.True(t, clk.AdvanceToNext())
			assert.Equal(t, time.Duration(i)*time.Second, <-woke)
		}
	})
}
