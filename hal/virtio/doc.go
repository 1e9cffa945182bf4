// Package virtio holds virtio 1.2 (OASIS, modern devices only:
// VIRTIO_F_VERSION_1 is required) drivers for the four devices anykernel
// needs, each behind its hal contract:
//
//   - [Net]: virtio-net (§5.1) as hal.NIC, hal.BatchNIC, hal.OffloadNIC and
//     hal.LinkStateNIC;
//   - [Block]: virtio-blk (§5.2) as hal.BlockDevice, hal.Discarder and
//     hal.ReadOnlyDevice;
//   - [Console]: virtio-console (§5.3) port 0 as hal.Console and
//     hal.ConsoleSizer;
//   - [RNG]: virtio-rng (§5.4) as hal.Entropy.
//
// The drivers share the device initialisation of §3.1 (status handshake,
// feature negotiation) and the split virtqueue of §2.7 (descriptor table,
// available and used rings, indirect descriptors, VIRTIO_F_EVENT_IDX
// notification suppression). A queue broken by a misbehaving device is
// reset alone with VIRTIO_F_RING_RESET (§2.6.1), else the device is reset
// and reinitialised.
//
// # Transports
//
// A driver sees its device only through [Transport]. Package virtio/mmio
// implements it for virtio-mmio version 2 (§4.2) and package virtio/pci for
// virtio-pci modern devices (§4.1: capability list, common/notify/ISR/device
// configuration, MSI-X or INTx). Package virtio/model is a device model in
// Go (the device side of the same four devices over hal/mem backends, with
// fault injection) used to test the drivers hosted.
//
// # The platform interface
//
// The platform beneath the transports is three small interfaces, declared
// in this package; a unikernel provides them from hardware, tests from
// ordinary memory (package virtio/model):
//
//   - [Regs]: register access at byte offsets of a window, 8/16/32-bit,
//     little endian in the device, host order in the API; strongly ordered
//     (uncached MMIO, or PCI configuration mechanism #1 / ECAM for a
//     configuration space). For MMIO it is the 0x200-byte device window;
//     for PCI one Regs is configuration space (offsets 0-255, or 4095 with
//     ECAM) and one per memory BAR the device has.
//   - [DMA]: Alloc(size, align) returns zeroed memory and its bus address
//     (the address the device uses: the physical address without an IOMMU;
//     VIRTIO_F_ACCESS_PLATFORM is not negotiated). The memory must not move
//     (not the Go heap under a moving collector; the Go heap is fine in the
//     hosted tests because the device model is Go code addressing the same
//     slice), must be cache coherent with the device (x86: any write-back
//     RAM), its virtual address must be at least 8-byte aligned and agree
//     with the bus address modulo 8. Free returns it after the device was
//     reset or the queue disabled.
//   - [Interrupt]: Wait(stop) blocks until the interrupt fired at least
//     once since the previous Wait returned, or until stop is closed
//     (returning false). One goroutine per Interrupt calls Wait. For a
//     level-triggered line (MMIO, PCI INTx) the transport acknowledges the
//     device (InterruptACK / reading ISR) after Wait returns; the platform
//     must mask the line in its handler and unmask it when Wait is next
//     called, or use edge semantics. For MSI-X the platform programs table
//     entries 0..n-1 to deliver to the n Interrupts it passes to pci.New
//     and enables MSI-X in the capability before calling it.
//
// Drivers order their accesses to shared ring memory with the sync/atomic
// package on the naturally aligned 32-bit word holding each ring index or
// event field, which is the barrier §2.7.13 requires on every architecture
// Go supports and keeps the race detector informed in hosted tests.
//
// Each driver's options take a hal.Clock (default: the Go runtime's clock)
// and a Timeout: a request the device does not complete in time fails with
// an error wrapping hal.ErrTimeout and the queue is reset before the next
// request.
//
// # Untrusted devices
//
// A device is untrusted input. A used entry whose id is out of range or not
// in flight (a duplicate), whose length exceeds the chain's writable bytes,
// or a used index that advances past the chains in flight breaks the queue
// with an error wrapping [ErrDevice]; DEVICE_NEEDS_RESET is reported as
// [ErrNeedsReset]; a configuration that never settles, missing required
// features or refused features fail initialisation. The driver keeps its
// own copy of every chain and never reads back descriptors, so a device
// that scribbles on the descriptor table cannot make it loop. Nothing a
// device does makes a driver panic, hang without a timeout, or touch memory
// outside the buffers it allocated.
package virtio
