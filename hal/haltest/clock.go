package haltest

import (
	"sync"
	"testing"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// TestClock checks the hal.Clock contract. makeClock returns the clock under
// test and a function that lets time pass on it: a manual clock's Advance,
// or time.Sleep for a clock that follows real time. The suite only ever
// advances by small durations (at most a second in total per subtest).
func TestClock(t *testing.T, makeClock func(t *testing.T) (c hal.Clock, advance func(d time.Duration))) {
	t.Helper()
	run := func(name string, f func(t *testing.T, c hal.Clock, adv func(time.Duration))) {
		t.Run(name, func(t *testing.T) {
			c, adv := makeClock(t)
			f(t, c, adv)
		})
	}
	run("Monotonic", testClockMonotonic)
	run("Now", testClockNow)
	run("AfterFuncFires", testClockAfterFunc)
	run("AfterFuncNotEarly", testClockNotEarly)
	run("Order", testClockOrder)
	run("Stop", testClockStop)
	run("Reset", testClockReset)
	run("Rearm", testClockRearm)
	run("Concurrent", testClockConcurrent)
}

// waitFired waits for ch, advancing the clock in small steps so that both
// manual and real clocks get there. It fails after hangTimeout of real time.
func waitFired(t *testing.T, ch <-chan time.Duration, adv func(time.Duration), what string) time.Duration {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for time.Now().Before(deadline) {
		select {
		case at := <-ch:
			return at
		default:
		}
		adv(time.Millisecond)
		select {
		case at := <-ch:
			return at
		case <-time.After(time.Millisecond):
		}
	}
	t.Fatalf("%s: timer never fired", what)
	return 0
}

func testClockMonotonic(t *testing.T, c hal.Clock, adv func(time.Duration)) {
	prev := c.Monotonic()
	if prev < 0 {
		t.Fatalf("Monotonic() = %v, negative", prev)
	}
	for range 100 {
		now := c.Monotonic()
		if now < prev {
			t.Fatalf("Monotonic went backwards: %v then %v", prev, now)
		}
		prev = now
	}
	start := c.Monotonic()
	adv(20 * time.Millisecond)
	if el := c.Monotonic() - start; el < 20*time.Millisecond {
		t.Fatalf("after advancing 20ms, Monotonic advanced only %v", el)
	}
}

func testClockNow(t *testing.T, c hal.Clock, adv func(time.Duration)) {
	w0, m0 := c.Now(), c.Monotonic()
	if w0.IsZero() {
		t.Fatalf("Now() is the zero time")
	}
	adv(30 * time.Millisecond)
	w1, m1 := c.Now(), c.Monotonic()
	dw, dm := w1.Sub(w0), m1-m0
	if dw < 30*time.Millisecond {
		t.Fatalf("wall clock advanced %v over an advance of 30ms", dw)
	}
	// Without a wall-clock step the two clocks move together (generously).
	if diff := dw - dm; diff > time.Second || diff < -time.Second {
		t.Fatalf("wall advanced %v while monotonic advanced %v", dw, dm)
	}
}

func testClockAfterFunc(t *testing.T, c hal.Clock, adv func(time.Duration)) {
	for _, d := range []time.Duration{-time.Second, 0, time.Millisecond, 15 * time.Millisecond} {
		ch := make(chan time.Duration, 1)
		start := c.Monotonic()
		c.AfterFunc(d, func() { ch <- c.Monotonic() })
		at := waitFired(t, ch, adv, "AfterFunc("+d.String()+")")
		if d > 0 && at-start < d {
			t.Fatalf("AfterFunc(%v) fired after %v", d, at-start)
		}
	}
}

func testClockNotEarly(t *testing.T, c hal.Clock, adv func(time.Duration)) {
	ch := make(chan time.Duration, 1)
	start := c.Monotonic()
	const d = 50 * time.Millisecond
	c.AfterFunc(d, func() { ch <- c.Monotonic() })
	adv(d / 2)
	select {
	case at := <-ch:
		if at-start < d {
			t.Fatalf("timer for %v fired after %v", d, at-start)
		}
	default:
	}
	at := waitFired(t, ch, adv, "AfterFunc")
	if at-start < d {
		t.Fatalf("timer for %v fired after %v", d, at-start)
	}
}

func testClockOrder(t *testing.T, c hal.Clock, adv func(time.Duration)) {
	// Timers with distinct deadlines run in deadline order. The callbacks
	// record their firing order; deadlines are spread widely enough that a
	// real clock's goroutine scheduling cannot swap them.
	var mu sync.Mutex
	var order []int
	done := make(chan time.Duration, 1)
	delays := []time.Duration{40, 10, 30, 20} // milliseconds
	for i, d := range delays {
		c.AfterFunc(d*time.Millisecond, func() {
			mu.Lock()
			order = append(order, i)
			n := len(order)
			mu.Unlock()
			if n == len(delays) {
				done <- 0
			}
		})
	}
	waitFired(t, done, adv, "four timers")
	mu.Lock()
	defer mu.Unlock()
	want := []int{1, 3, 2, 0}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("timers fired in order %v, want %v", order, want)
		}
	}
}

func testClockStop(t *testing.T, c hal.Clock, adv func(time.Duration)) {
	fired := make(chan time.Duration, 1)
	tm := c.AfterFunc(20*time.Millisecond, func() { fired <- 0 })
	if !tm.Stop() {
		t.Fatalf("Stop on a pending timer = false, want true")
	}
	if tm.Stop() {
		t.Fatalf("second Stop = true, want false")
	}
	// A later timer firing proves time has passed the stopped one's deadline.
	later := make(chan time.Duration, 1)
	c.AfterFunc(40*time.Millisecond, func() { later <- 0 })
	waitFired(t, later, adv, "later timer")
	select {
	case <-fired:
		t.Fatalf("stopped timer fired")
	default:
	}
	// Stop after firing reports false.
	ch := make(chan time.Duration, 1)
	tm2 := c.AfterFunc(0, func() { ch <- 0 })
	waitFired(t, ch, adv, "immediate timer")
	if tm2.Stop() {
		t.Fatalf("Stop after the timer fired = true, want false")
	}
}

func testClockReset(t *testing.T, c hal.Clock, adv func(time.Duration)) {
	ch := make(chan time.Duration, 2)
	start := c.Monotonic()
	tm := c.AfterFunc(time.Hour, func() { ch <- c.Monotonic() })
	if !tm.Reset(10 * time.Millisecond) {
		t.Fatalf("Reset of a pending timer = false, want true")
	}
	at := waitFired(t, ch, adv, "reset timer")
	if at-start < 10*time.Millisecond {
		t.Fatalf("reset timer fired after %v, before 10ms", at-start)
	}
	// Reset after firing re-arms and reports false.
	start = c.Monotonic()
	if tm.Reset(5 * time.Millisecond) {
		t.Fatalf("Reset of a fired timer = true, want false")
	}
	at = waitFired(t, ch, adv, "re-armed timer")
	if at-start < 5*time.Millisecond {
		t.Fatalf("re-armed timer fired after %v, before 5ms", at-start)
	}
	// Reset after Stop re-arms too.
	tm.Stop()
	tm.Reset(time.Millisecond)
	waitFired(t, ch, adv, "timer reset after Stop")
}

func testClockRearm(t *testing.T, c hal.Clock, adv func(time.Duration)) {
	// A callback may call the clock, including AfterFunc.
	ch := make(chan time.Duration, 1)
	count := 0
	var f func()
	f = func() {
		count++
		if count == 3 {
			ch <- c.Monotonic()
			return
		}
		c.AfterFunc(2*time.Millisecond, f)
	}
	c.AfterFunc(2*time.Millisecond, f)
	waitFired(t, ch, adv, "chain of three timers")
}

func testClockConcurrent(t *testing.T, c hal.Clock, adv func(time.Duration)) {
	// Timers created and stopped from many goroutines at once: each timer
	// that Stop reported stopped never fires; every other timer fires once.
	const n = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	fires := make([]int, n)
	stopped := make([]bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tm := c.AfterFunc(time.Duration(i%5+1)*time.Millisecond, func() {
				mu.Lock()
				fires[i]++
				mu.Unlock()
			})
			_ = c.Now()
			_ = c.Monotonic()
			if i%2 == 1 {
				s := tm.Stop()
				mu.Lock()
				stopped[i] = s
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(hangTimeout)
	for {
		mu.Lock()
		pending := 0
		for i := range n {
			if stopped[i] && fires[i] != 0 {
				mu.Unlock()
				t.Fatalf("timer %d fired after Stop reported it stopped", i)
			}
			if fires[i] > 1 {
				mu.Unlock()
				t.Fatalf("timer %d fired %d times", i, fires[i])
			}
			if !stopped[i] && fires[i] == 0 {
				pending++
			}
		}
		mu.Unlock()
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d timers never fired", pending)
		}
		adv(time.Millisecond)
		time.Sleep(time.Millisecond)
	}
	// Let any wrongly surviving timer fire, then check once more.
	adv(20 * time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if stopped[i] && fires[i] != 0 {
			t.Fatalf("timer %d fired after Stop reported it stopped", i)
		}
	}
}
