// Package threads is the thread-scheduling logic of the bare-metal
// platform: a round-robin run queue, a deadline heap for timed waits and a
// uniprocessor scheduler that combines them with time slicing.
//
// It is plain logic over fixed-size, pointer-free arrays so that it can run
// beneath the Go runtime, inside a trap handler, where nothing may allocate
// or take a write barrier. The same code runs hosted under go test. Threads
// are small integers in [0, MaxThreads); the caller owns everything else
// about them (registers, signal state, system-call bookkeeping).
package threads
