// Package virtio holds virtio 1.2 (OASIS) drivers for the four devices
// anykernel needs, each behind its hal contract. Modern devices only:
// VIRTIO_F_VERSION_1 is required.
//
//   - [Net]: virtio-net (§5.1) as hal.NIC, hal.BatchNIC, hal.OffloadNIC,
//     hal.VecNIC (frames copied straight between the rings' buffers and the
//     caller's) and hal.LinkStateNIC;
//   - [Block]: virtio-blk (§5.2) as hal.BlockDevice, hal.Discarder and
//     hal.ReadOnlyDevice;
//   - [Console]: virtio-console (§5.3) port 0 as hal.Console and
//     hal.ConsoleSizer;
//   - [RNG]: virtio-rng (§5.4) as hal.Entropy.
//
// The drivers share the initialisation of §3.1 (reset, ACKNOWLEDGE,
// DRIVER, feature negotiation, FEATURES_OK, DRIVER_OK) and the split
// virtqueue of §2.7: descriptor table, available and used rings, indirect
// descriptors (VIRTIO_F_INDIRECT_DESC) and notification suppression with
// VIRTIO_F_EVENT_IDX or the ring flags. A queue broken by a misbehaving or
// stalled device is reset alone when VIRTIO_F_RING_RESET was negotiated
// (§2.6.1); otherwise, and after DEVICE_NEEDS_RESET, the whole device is
// reset and reinitialised with the same features. Packed virtqueues (§2.8)
// are not implemented; a second implementation of the queue's methods
// (add, kick, pop, arm, quiet) would add them without touching the
// drivers.
//
// # Transports
//
// A driver sees its device only through [Transport]:
//
//	tr, err := mmio.New(regs, dma, irq, mmio.Options{})            // virtio-mmio v2 (§4.2)
//	tr, err := pci.New(cfg, bars, dma, pci.Options{MSIX: vecs})    // virtio-pci modern (§4.1)
//	switch tr.DeviceID() {
//	case virtio.DeviceNet:
//		nic, err := virtio.NewNet(tr, virtio.NetOptions{})
//	case virtio.DeviceBlock:
//		disk, err := virtio.NewBlock(tr, virtio.BlockOptions{})
//	...
//	}
//
// or, with default options, [Open](tr), which returns the driver for the
// device type found.
//
// Package virtio/model is a device model in Go — the device side of the
// same four devices over hal/mem backends, behind both transports, with
// fault injection — that tests the drivers hosted. Package virtio/e2e runs
// netstack and blockfs over them.
//
// # The platform interface
//
// Beneath the transports the platform supplies three small interfaces,
// declared in this package. A unikernel implements them over hardware;
// tests get them from package virtio/model.
//
// [Regs] is register access at byte offsets of a window: Read8/16/32 and
// Write8/16/32, the value little endian in the device and host order in the
// API. Accesses must reach the device in program order, also with respect
// to the driver's accesses to DMA memory (on x86: an uncached mapping for
// MMIO BARs and virtio-mmio regions; port I/O or ECAM for configuration
// space). Accesses outside the window read as all ones and are dropped.
// The windows are:
//   - virtio-mmio: the device's register region (at least 0x100 bytes plus
//     its configuration space; QEMU's are 0x200 bytes);
//   - virtio-pci: configuration space of the function (offsets 0-255 at
//     least), passed as cfg, and each memory BAR its virtio capabilities
//     name, returned by bars(i) for BAR i (64-bit BARs by their lower
//     index). The transport keeps to the capability's offset and length.
//
// [DMA] is memory the device reads and writes. Alloc(size, align) returns
// zeroed memory and its bus address: the address the device uses, which
// is the physical address when there is no IOMMU (VIRTIO_F_ACCESS_PLATFORM
// is never negotiated). Each allocation must be contiguous in bus address
// space, must not move, must be coherent with the device (ordinary
// write-back RAM on x86), and its virtual address must be 8-byte aligned
// and agree with the bus address modulo 8. align is a power of two up to
// 4096. The drivers allocate everything when they start, in few and
// sizeable pieces (one ring region per queue of a few KiB, one indirect
// table area, buffer pools of at most 256 KiB each), and Free each piece
// after resetting the device on Close; a platform that never frees may make
// Free a no-op. Budget: about 2.3 MiB for a block device, 0.9 MiB for a NIC
// (4.7 MiB with TSO), 140 KiB for a console, 8 KiB for an entropy device.
//
// [Interrupt] is one interrupt line or MSI-X vector: Wait(stop) blocks
// until it fired at least once since the previous Wait returned (raises in
// between coalesce), or returns false once stop is closed. One goroutine of
// the transport calls Wait on each Interrupt. For a level-triggered line
// (virtio-mmio, PCI INTx) the transport acknowledges the device after Wait
// returns (InterruptACK, or reading the ISR status); the platform's handler
// should mask the line, signal EOI and wake Wait, and unmask the line when
// Wait is next called. For MSI-X the platform programs table entries
// 0..n-1 to reach its handlers, enables MSI-X in the capability, and
// passes the n Interrupts in table order; the transport then uses vector 0
// for configuration changes and spreads the queues over the others.
//
// Finding the devices is the platform's business: PCI functions with
// vendor 0x1af4 and device 0x1000-0x107f, virtio-mmio regions from the
// command line, device tree or ACPI (mmio.New returns an error wrapping
// mmio.ErrNoDevice for an empty slot).
//
// Drivers order their accesses to the rings with sync/atomic operations on
// the naturally aligned 32-bit word holding each ring index or event field
// (package internal/ring, the only place that uses unsafe). That is the
// barrier §2.7.13 asks for, on every architecture Go supports, and it keeps
// the race detector informed in hosted tests, where the device is a
// goroutine. There are no build tags.
//
// # Time
//
// Each driver's options take a hal.Clock (default: the Go runtime's) and a
// Timeout (default [DefaultTimeout]). A request the device must complete
// (a block request, a free transmit slot, the rest of a merged frame, an
// entropy read) that does not complete in time fails with an error wrapping
// hal.ErrTimeout, and the queue is reset before it is used again. Waiting
// for received frames or console input has no timeout. Waiting allocates
// nothing: the data paths are allocation-free in the steady state.
//
// # Untrusted devices
//
// A device is untrusted input. A used entry whose id is out of range or not
// in flight (a duplicate), whose length exceeds the chain's writable bytes,
// or a used index that moves past the chains in flight breaks the queue
// with an error wrapping [ErrDevice]; DEVICE_NEEDS_RESET is reported as
// [ErrNeedsReset]. Initialisation fails, leaving the device FAILED, for
// missing required features (errors.ErrUnsupported), refused features, a
// configuration that keeps changing while read, an impossible block size or
// MTU, or queues too small. A driver keeps its own copy of every chain and
// never reads back descriptors, so a device that scribbles on the
// descriptor table cannot make it loop or free the wrong buffers. It
// clears each used element it consumes, so a used index moved over
// elements the device never wrote is caught; and it reposts receive
// buffers only when no used entry is pending, so a duplicate entry is
// caught rather than taken for a fresh completion. Nothing a device does
// makes a driver panic, hang without a timeout, or touch memory outside
// the buffers it allocated.
//
// Two things no driver can tell from the truth: a used length within the
// buffer but longer than what the device wrote (the frame or data then
// carries stale bytes the device vouched for), and a device that keeps
// receive buffers and never returns them (it looks like an idle link, for
// which ReadFrame rightly waits until Close).
package virtio
