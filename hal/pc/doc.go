// Package pc is the bare-metal x86-64 platform of anykernel: it boots an
// ordinary GOOS=linux GOARCH=amd64 Go program directly on a PC-like
// machine (QEMU -M pc, q35 or microvm) and serves it the Linux system calls
// the Go runtime makes.
//
// A program becomes a unikernel by importing this package for its side
// effect and being built by anyk build:
//
//	import _ "github.com/anykernel/anykernel/hal/pc"
//
// Built normally, the program stays an ordinary Linux program: nothing here
// runs. anyk build links it with -E pointing at multibootEntry, which makes
// this package's boot code the image's entry, and writes into the ELF's
// first page a multiboot 1 header (QEMU -kernel on pc and q35) and a Xen
// PVH entry note (microvm, Firecracker, cloud-hypervisor).
//
// The kernel, all Go and Go assembly, runs beneath the Go runtime with the
// program in ring 0:
//
//   - a hand-encoded 32-bit stub builds identity page tables for the first
//     4 GiB (the top gigabyte, device memory, uncached), enters long mode
//     and calls kmain on a kernel stack, with a kernel g (stack bounds for
//     the prologue checks) reached through a kernel TLS block in FS_BASE;
//   - GDT, TSS with separate interrupt stacks, IDT for exceptions and the
//     8259 PIC (routed through the local APIC in virtual wire mode);
//     SYSCALL through LSTAR; every trap saves a full register and FXSAVE
//     frame, switches FS_BASE and calls the Go trap handler;
//   - demand-zero paging for the program's anonymous mappings, with a
//     bitmap frame allocator; page 0 unmapped so nil dereferences fault;
//   - the TSC calibrated against the PIT for monotonic time, the CMOS RTC
//     for wall time, and a one-shot PIT interrupt for timeouts and time
//     slices; an idle context halts when no thread can run;
//   - the serial console (COM1) for output and, by interrupt, input;
//   - the system calls themselves are compat/linux, the scheduling logic
//     sched/threads; the device interface for drivers (DMA memory,
//     interrupts as descriptors) is hal/pc/dev.
//
// The kernel command line carries the program's environment and arguments
// and kernel switches; see [Cmdline]. Exit statuses go out through QEMU's
// isa-debug-exit device (port 0xf4). Code beneath the runtime follows strict
// rules: no allocation, no write barriers (pointer-free globals only), no
// calls into the runtime but memmove/memclr and bounds-check panics; anyk
// build checks every image it makes for that.
package pc
