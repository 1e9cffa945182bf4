// Package hal is the hardware abstraction layer of anykernel: the contracts
// between components (netstack, blockfs, console, sched, compat) and the
// devices they run on.
//
// A component talks to hardware only through the interfaces declared here,
// which is what lets the same component code run in three modes:
//
//   - test: in-memory devices from hal/mem (NIC pairs and switches, RAM
//     disks, buffer consoles, a manual clock), with fault injection;
//   - hosted: Linux host devices from hal/host (TAP, image files, the
//     terminal, the OS clock);
//   - unikernel: virtio drivers from hal/virtio on the bare-metal platform.
//
// The core interfaces are small: [NIC], [BlockDevice], [Console], [Clock]
// and [Entropy]. Abilities that only some devices have (batched frame I/O,
// virtio-net header offload, scatter/gather frame I/O, discard, FUA writes,
// console size and raw mode)
// are separate single-purpose interfaces, discovered by type assertion the
// way io/fs discovers ReadDirFS:
//
//	if o, ok := nic.(hal.OffloadNIC); ok { ... }
//
// Every method's contract is written on the interface. Backends prove they
// honour it by running the conformance suites in hal/haltest.
//
// Errors crossing these interfaces wrap the sentinels declared in this
// package ([ErrClosed], [ErrOutOfRange], [ErrMisaligned], [ErrFrameSize],
// [ErrReadOnly]) or errors.ErrUnsupported; test them with errors.Is.
//
// What this package is not: it holds no implementations and imports only
// the standard library, so importing it compiles no third-party code.
package hal
