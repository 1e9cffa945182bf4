package virtio

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
)

// handClock is a hal.Clock whose time and timer callbacks the test drives
// by hand. Its timers keep their callback after Stop, so a test can run a
// callback late, as a real timer does when Stop loses the race with a
// callback that has already started (hal.Timer.Stop).
type handClock struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*handTimer
}

type handTimer struct {
	c       *handClock
	f       func()
	pending bool
	resets  int
}

func (c *handClock) Now() time.Time { return time.Unix(0, int64(c.Monotonic())) }

func (c *handClock) Monotonic() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *handClock) AfterFunc(d time.Duration, f func()) hal.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &handTimer{c: c, f: f, pending: true}
	c.timers = append(c.timers, t)
	return t
}

func (c *handClock) set(now time.Duration) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}

func (t *handTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.pending
	t.pending = false
	return was
}

func (t *handTimer) Reset(time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.pending
	t.pending = true
	t.resets++
	return was
}

func (t *handTimer) resetCount() int {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.resets
}

func isExpired(w *waiter) bool {
	select {
	case <-w.expired:
		return true
	default:
		return false
	}
}

// TestWaiterStaleCallback: a timer callback that runs after its arming is
// over (the request finished, or the waiter was armed again for the next
// request) must not expire the next request. Every case arms the waiter at
// time 0 for 200ms first, then does its steps.
func TestWaiterStaleCallback(t *testing.T) {
	const timeout = 200 * time.Millisecond
	cases := []struct {
		name string
		// steps run on the waiter, the clock and the timer's callback.
		steps       func(w *waiter, c *handClock, fire func())
		wantExpired bool
		wantResets  int // timer resets beyond the arming's
	}{
		{
			name: "callback-after-disarm",
			steps: func(w *waiter, c *handClock, fire func()) {
				c.set(timeout)
				w.disarm() // the request ended for another reason
				fire()
			},
		},
		{
			name: "callback-after-rearm",
			steps: func(w *waiter, c *handClock, fire func()) {
				c.set(timeout)
				w.disarm()
				w.arm(timeout) // the slot's next request
				fire()         // the first arming's callback, late
			},
			wantResets: 2, // the second arm, and the late callback's wait for the rest
		},
		{
			name: "callback-before-rearm-drained",
			steps: func(w *waiter, c *handClock, fire func()) {
				c.set(timeout)
				fire()
				w.disarm()
				w.arm(timeout)
			},
			wantResets: 1,
		},
		{
			name: "due",
			steps: func(w *waiter, c *handClock, fire func()) {
				c.set(timeout)
				fire()
			},
			wantExpired: true,
		},
		{
			name: "early-then-due",
			steps: func(w *waiter, c *handClock, fire func()) {
				c.set(timeout / 2)
				fire() // a timer running early must not be lost
				c.set(timeout)
				fire()
			},
			wantExpired: true,
			wantResets:  1,
		},
		{
			name: "rearmed-then-due",
			steps: func(w *waiter, c *handClock, fire func()) {
				c.set(timeout)
				w.disarm()
				w.arm(timeout)
				fire() // stale: ignored
				c.set(2 * timeout)
				fire() // the second arming's deadline
			},
			wantExpired: true,
			wantResets:  2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &handClock{}
			w := newWaiter(c)
			require.Len(t, c.timers, 1)
			tm := c.timers[0]
			w.arm(timeout)
			require.False(t, isExpired(w), "expired as soon as armed")
			resets0 := tm.resetCount()
			tc.steps(w, c, tm.f)
			require.Equal(t, tc.wantExpired, isExpired(w))
			require.Equal(t, tc.wantResets, tm.resetCount()-resets0)
		})
	}
}
