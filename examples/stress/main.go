// Stress exercises the Go runtime features a unikernel must support:
// goroutines and channels, timers and sleep accuracy, garbage collection
// under heavy churn, asynchronous preemption of a tight loop, a nil
// dereference recovered as a panic, exit statuses, crypto and the wall
// clock. Each check is a subcommand; with none it runs them all. echo
// copies a line from standard input (the serial console). crash
// blocks SIGSEGV and dereferences nil, so the kernel (not the Go runtime)
// reports the fault: it shows what a fatal fault looks like.
//
//	stress [goroutines|timers|gc|preempt|nilderef|sha256 TEXT|clock|echo|exit CODE|crash]...
//
// Checks print "PASS name" or "FAIL name: reason"; the program exits 1 if
// any failed. Built normally it runs on Linux; anyk build makes it boot.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	_ "github.com/anykernel/anykernel/hal/pc"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

var checks = map[string]func() error{
	"goroutines": checkGoroutines,
	"timers":     checkTimers,
	"gc":         checkGC,
	"preempt":    checkPreempt,
	"nilderef":   checkNilDeref,
}

var order = []string{"goroutines", "timers", "gc", "preempt", "nilderef"}

func run(args []string, stdout io.Writer) int {
	if len(args) == 0 {
		args = order
	}
	failed := false
	for i := 0; i < len(args); i++ {
		name := args[i]
		switch name {
		case "exit":
			code := 0
			if i+1 < len(args) {
				code, _ = strconv.Atoi(args[i+1])
			}
			os.Exit(code)
		case "sha256":
			text := ""
			if i+1 < len(args) {
				text = args[i+1]
				i++
			}
			sum := sha256.Sum256([]byte(text))
			fmt.Fprintf(stdout, "sha256 %s\n", hex.EncodeToString(sum[:]))
			continue
		case "echo":
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil {
				fmt.Fprintf(stdout, "FAIL echo: %v\n", err)
				failed = true
				continue
			}
			fmt.Fprintf(stdout, "echo %s", line)
			continue
		case "crash":
			crash()
			continue
		case "clock":
			fmt.Fprintf(stdout, "clock %d\n", time.Now().UnixNano())
			continue
		}
		f, ok := checks[name]
		if !ok {
			fmt.Fprintf(stdout, "FAIL %s: no such check\n", name)
			failed = true
			continue
		}
		if err := f(); err != nil {
			fmt.Fprintf(stdout, "FAIL %s: %v\n", name, err)
			failed = true
			continue
		}
		fmt.Fprintf(stdout, "PASS %s\n", name)
	}
	if failed {
		return 1
	}
	return 0
}

// checkGoroutines passes a token around a ring of goroutines and fans work
// out and in over channels.
func checkGoroutines() error {
	const n = 200
	first := make(chan int)
	in := first
	for i := 0; i < n; i++ {
		out := make(chan int)
		go func(in <-chan int, out chan<- int) { out <- 1 + <-in }(in, out)
		in = out
	}
	first <- 0
	if got := <-in; got != n {
		return fmt.Errorf("ring carried %d, want %d", got, n)
	}
	var wg sync.WaitGroup
	results := make(chan int, 1000)
	for w := 0; w < 50; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				results <- w*20 + j
			}
		}(w)
	}
	wg.Wait()
	close(results)
	sum := 0
	for v := range results {
		sum += v
	}
	if want := 999 * 1000 / 2; sum != want {
		return fmt.Errorf("fan-in sum %d, want %d", sum, want)
	}
	return nil
}

// checkTimers checks that sleeps and timers are neither early nor grossly
// late, and fire in order.
func checkTimers() error {
	for _, d := range []time.Duration{time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond} {
		start := time.Now()
		time.Sleep(d)
		el := time.Since(start)
		if el < d {
			return fmt.Errorf("Sleep(%v) returned after %v", d, el)
		}
		if el > d+5*time.Second {
			return fmt.Errorf("Sleep(%v) took %v", d, el)
		}
	}
	// Timers with later deadlines report later fire times, none early.
	base := time.Now()
	var timers []*time.Timer
	for i := 5; i >= 1; i-- {
		timers = append(timers, time.NewTimer(time.Duration(i)*15*time.Millisecond))
	}
	var last time.Time
	for i := len(timers) - 1; i >= 0; i-- {
		at := <-timers[i].C
		d := time.Duration(len(timers)-i) * 15 * time.Millisecond
		if at.Sub(base) < d {
			return fmt.Errorf("timer for %v fired after %v", d, at.Sub(base))
		}
		if at.Before(last) {
			return fmt.Errorf("timer for %v fired before an earlier one", d)
		}
		last = at
	}
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	for i := 0; i < 5; i++ {
		<-tk.C
	}
	return nil
}

var sink [][]byte

// checkGC churns about 250 MiB through the heap while keeping a small
// live set, and checks that collections ran and memory was reused.
func checkGC() error {
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	keep := make([][]byte, 8)
	for i := 0; i < 2000; i++ {
		b := make([]byte, 128<<10)
		b[0], b[len(b)-1] = byte(i), byte(i)
		keep[i%len(keep)] = b
		if i%100 == 0 {
			sink = append(sink[:0], make([]byte, 1<<20))
		}
	}
	for i, b := range keep {
		if b[0] != b[len(b)-1] {
			return fmt.Errorf("live buffer %d corrupted", i)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	churn := after.TotalAlloc - before.TotalAlloc
	if churn < 100<<20 {
		return fmt.Errorf("only %d MiB allocated", churn>>20)
	}
	if after.NumGC-before.NumGC < 3 {
		return fmt.Errorf("only %d collections for %d MiB", after.NumGC-before.NumGC, churn>>20)
	}
	if after.HeapSys >= churn {
		return fmt.Errorf("heap grew to %d MiB: no memory was reused", after.HeapSys>>20)
	}
	return nil
}

// checkPreempt spins a goroutine in a loop with no function calls; the
// main goroutine must still get the CPU (asynchronous preemption) to stop it.
func checkPreempt() error {
	var stop atomic.Bool
	var spins atomic.Uint64
	done := make(chan uint64)
	runtime.GOMAXPROCS(1)
	go func() {
		n := uint64(0)
		for !stop.Load() {
			n++
		}
		spins.Store(n)
		done <- n
	}()
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	select {
	case n := <-done:
		if n == 0 {
			return errors.New("spinner never ran")
		}
	case <-time.After(30 * time.Second):
		return errors.New("spinner never stopped")
	}
	return nil
}

// checkNilDeref dereferences a nil pointer and recovers the runtime error.
func checkNilDeref() (err error) {
	type node struct{ next *node }
	var p *node
	defer func() {
		r := recover()
		re, ok := r.(runtime.Error)
		switch {
		case r == nil:
			err = errors.New("no panic")
		case !ok:
			err = fmt.Errorf("panic %v is not a runtime.Error", r)
		case !strings.Contains(re.Error(), "nil pointer dereference"):
			err = fmt.Errorf("unexpected panic %q", re.Error())
		}
	}()
	_ = p.next.next
	return errors.New("dereference did not fault")
}

// crash blocks SIGSEGV in this thread and faults, so the fault cannot be
// turned into a Go panic.
func crash() {
	runtime.LockOSThread()
	set := uint64(1) << (syscall.SIGSEGV - 1)
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 0 /* SIG_BLOCK */, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
	var p *[2]int
	fmt.Println(p[1])
}
