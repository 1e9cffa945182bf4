// Package mem provides in-memory implementations of the hal device
// contracts, and decorators that inject faults into any hal device, for
// tests and deterministic simulation.
//
// Backends:
//
//   - network: [NewNICPair] (two NICs back to back, lossless, with
//     backpressure) and [NewSwitch] (a learning Ethernet switch whose ports
//     are NICs and which drops rather than waits). Both carry the virtio-net
//     offload header (virtio 1.2 §5.1.6) with each frame and finish
//     checksums and TCP/UDP segmentation in software for receivers that did
//     not enable the matching offload;
//   - storage: [NewBlock], a RAM disk;
//   - [NewConsole], an in-memory console; [NewClock], a manual clock whose
//     time moves only when told; [NewEntropy], a seeded, reproducible
//     (and therefore not secure) entropy source.
//
// Decorators wrap any hal device, including host and virtio ones:
// [NewFaultyNIC] (loss, duplication, reordering, corruption, delay, jitter,
// bandwidth), [NewCapture] (libpcap capture that tcpdump reads),
// [NewFaultyBlock] (I/O errors and latency) and [NewCrashRecorder] (the
// device as it would be after a power cut at any point).
//
// Everything here is deterministic where the contracts allow: faults are
// drawn from pseudo-random generators seeded by the caller (math/rand/v2),
// so the same seed and the same sequence of operations give the same
// faults, and time-dependent behaviour runs on a hal.Clock that a test can
// drive by hand (or on real time inside a testing/synctest bubble).
//
// Each backend runs the conformance suites of hal/haltest in its tests.
package mem
