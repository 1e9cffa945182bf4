// Package pc is the bare-metal x86-64 platform of anykernel: it boots an
// ordinary GOOS=linux GOARCH=amd64 Go program directly on a PC (QEMU -M pc
// or q35) and serves it the Linux system calls the Go runtime makes.
//
// A program becomes a unikernel by importing this package for its side
// effect and being built by anyk build:
//
//	import _ "github.com/anykernel/anykernel/hal/pc"
//
// Built normally, the program stays an ordinary Linux program: nothing here
// runs. anyk build links it with -E pointing at multibootEntry, which makes
// this package's boot code the program's entry, and writes a multiboot 1
// header into the ELF's first page so QEMU's -kernel loads it.
//
// The kernel, all Go and Go assembly, runs beneath the Go runtime with the
// program in ring 0:
//
//   - a hand-encoded 32-bit stub builds identity page tables for the first
//     4 GiB, enters long mode and calls kmain on a kernel stack, with a
//     kernel g (stack bounds for the prologue checks) reached through a
//     kernel TLS block in FS_BASE;
//   - GDT, TSS with separate interrupt stacks, IDT for exceptions and the
//     8259 PIC; SYSCALL through LSTAR; every trap saves a full register and
//     FXSAVE frame, switches FS_BASE and calls the Go trap handler;
//   - demand-zero paging for the program's anonymous mappings, with a
//     bitmap frame allocator;
//   - the TSC calibrated against the PIT for monotonic time, the CMOS RTC
//     for wall time, and a one-shot PIT interrupt for timeouts and time
//     slices; an idle context halts when no thread can run;
//   - the system calls themselves are compat/linux, the scheduling logic
//     sched/threads.
//
// The kernel command line carries the program's environment and arguments
// and kernel switches; see [Cmdline]. Exit statuses go out through QEMU's
// isa-debug-exit device (port 0xf4). Code beneath the runtime follows strict
// rules: no allocation, no write barriers (pointer-free globals only), no
// calls into the runtime but memmove/memclr and bounds-check panics; a test
// of cmd/anyk checks the linked image for that.
package pc
