package console_test

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/anykernel/anykernel/console"
	"github.com/anykernel/anykernel/hal/mem"
)

// The kernel log and a program's output share one console.
func ExampleMux() {
	cons := mem.NewConsole()
	clk := mem.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	mux := console.NewMux(cons, console.MuxOptions{})

	klog := slog.New(console.NewHandler(mux.Writer("klog"), &console.HandlerOptions{Clock: clk, Prefix: "netstack"}))
	stdout := mux.Writer("prog")

	fmt.Fprint(stdout, "serving on ") // an unfinished line is held back...
	clk.Advance(1234567 * time.Microsecond)
	klog.Info("link up", "mtu", 1500, "addr", "10.0.2.15/24")
	fmt.Fprintln(stdout, ":8080") // ...and goes out whole

	_ = mux.Close()
	out, _ := io.ReadAll(cons.Operator())
	fmt.Print(string(out))
	// Output:
	// [    1.234567] INFO  netstack: link up mtu=1500 addr=10.0.2.15/24
	// serving on :8080
}
