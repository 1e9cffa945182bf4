// Package mem provides in-memory implementations of the hal device
// contracts, and decorators that inject faults into any hal device, for
// tests and deterministic simulation.
//
// Backends:
//
//   - network: [NewNICPair] (two NICs back to back, lossless with
//     backpressure) and [NewSwitch] (a learning Ethernet switch whose ports
//     are NICs). Both carry the virtio-net offload header (virtio 1.2
//     §5.1.6) and finish checksums and TCP/UDP segmentation in software for
//     receivers that did not enable the matching offload;
//   - storage: a RAM disk, with block fault injection and a crash recorder
//     that reconstructs the device as it would be after a power cut;
//   - a buffer console, a manual clock and a seeded entropy source.
//
// Decorators: [NewFaultyNIC] (loss, duplication, reordering, corruption,
// delay, jitter, bandwidth) and [NewCapture] (libpcap capture readable by
// tcpdump) wrap any hal.NIC, including host and virtio ones.
//
// Everything here is deterministic where the contract allows: faults are
// drawn from a seeded pseudo-random generator (math/rand/v2 PCG), so the
// same seed and the same sequence of operations give the same faults, and
// time-based behaviour runs on a hal.Clock that a test can drive by hand.
//
// Each backend passes the conformance suites of hal/haltest.
package mem
