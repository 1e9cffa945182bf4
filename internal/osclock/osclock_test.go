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

// TestSlowCallbackKeepsOrder: a timer due while an earlier timer's callback
// is still running must wait for it, not overtake it on another goroutine.
func TestSlowCallbackKeepsOrder(t *testing.T) {
	c := osclock.New()
	got := make(chan string, 3)
	c.AfterFunc(time.Millisecond, func() {
		time.Sleep(5 * time.Millisecond)
		got <- "first"
	})
	c.AfterFunc(1500*time.Microsecond, func() { got <- "second" })
	c.AfterFunc(2*time.Millisecond, func() { got <- "third" })
	for _, want := range []string{"first", "second", "third"} {
		select {
		case name := <-got:
			if name != want {
				t.Fatalf("%s timer fired when %s was due to", name, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s timer never fired", want)
		}
	}
}
