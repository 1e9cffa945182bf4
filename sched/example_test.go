package sched_test

import (
	"context"
	"fmt"
	"time"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/sched"
)

// A request with a timeout, driven by a manual clock: the test decides when
// the deadline passes, and nothing sleeps.
func ExampleWithTimeout() {
	clk := mem.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := sched.WithTimeout(context.Background(), clk, 3*time.Second)
	defer cancel()

	done := make(chan error)
	go func() { done <- sched.Sleep(ctx, clk, time.Minute) }() // a reply that never comes

	_ = clk.WaitForTimers(context.Background(), 2) // the deadline and the sleep
	clk.Advance(3 * time.Second)
	fmt.Println(<-done)
	// Output: context deadline exceeded
}

func ExampleNewTicker() {
	clk := mem.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tk := sched.NewTicker(clk, time.Second)
	defer tk.Stop()
	for range 3 {
		clk.Advance(time.Second)
		fmt.Println((<-tk.C).Format(time.TimeOnly))
	}
	// Output:
	// 00:00:01
	// 00:00:02
	// 00:00:03
}
