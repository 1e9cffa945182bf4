package osclock_test

import (
	"testing"
	"time"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/internal/osclock"
)

func TestConformance(t *testing.T) {
	haltest.TestClock(t, func(t *testing.T) (hal.Clock, func(time.Duration)) {
		return osclock.New(), time.Sleep
	})
}

// TestCloseDeadlinesInOrder arms timers a microsecond apart in reverse
// order of creation; they must still fire in deadline order.
func TestCloseDeadlinesInOrder(t *testing.T) {
	c := osclock.New()
	const n = 50
	got := make(chan int, n)
	for i := n - 1; i >= 0; i-- {
		c.AfterFunc(time.Millisecond+time.Duration(i)*time.Microsecond, func() { got <- i })
	}
	for want := range n {
		select {
		case i := <-got:
			if i != want {
				t.Fatalf("timer %d fired in position %d", i, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timer %d never fired", want)
		}
	}
}
