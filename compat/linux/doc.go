// Package linux serves the Linux x86-64 system-call ABI to an unmodified
// GOOS=linux Go program running on the anykernel bare-metal platform
// (hal/pc): threads created with clone, futexes with timeouts, anonymous
// memory mappings, clocks, epoll and eventfd for the Go netpoller, signals
// for faults and for asynchronous preemption, getrandom, console writes and
// exit.
//
// The ABI follows the Linux x86-64 conventions (system-call numbers from
// arch/x86/entry/syscalls/syscall_64.tbl; struct layouts of sigaction,
// rt_sigframe, ucontext, siginfo, stack_t, epoll_event and timespec as the
// kernel defines them for x86-64). Unknown calls return ENOSYS and are
// counted.
//
// Everything here is plain logic over fixed-size, pointer-free state: the
// code runs inside the platform's trap handler, beneath the Go runtime,
// where it must not allocate, take a write barrier or call into the
// runtime. The hardware is reached only through the small [Machine]
// interface, so the same dispatcher runs hosted under go test against a
// simulated machine.
//
// What it is not: there is no file system and no sockets here. Programs use
// blockfs and netstack in-process; opening a file returns ENOENT.
package linux
