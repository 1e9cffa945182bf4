package mem_test

import (
	"fmt"
	"time"

	"github.com/anykernel/anykernel/hal/mem"
)

func ExampleClock() {
	clk := mem.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	clk.AfterFunc(2*time.Second, func() { fmt.Println("retransmit at", clk.Monotonic()) })
	clk.AfterFunc(time.Second, func() {
		fmt.Println("probe at", clk.Monotonic())
		clk.AfterFunc(500*time.Millisecond, func() { fmt.Println("probe reply timeout at", clk.Monotonic()) })
	})

	clk.Advance(10 * time.Second) // fires all three, in deadline order
	fmt.Println("now", clk.Now().Format(time.TimeOnly), "pending", clk.Pending())
	// Output:
	// probe at 1s
	// probe reply timeout at 1.5s
	// retransmit at 2s
	// now 00:00:10 pending 0
}
