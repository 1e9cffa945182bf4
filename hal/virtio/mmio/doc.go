// Package mmio is the virtio-mmio transport, version 2 (virtio 1.2 §4.2),
// driver side: it turns a register window, DMA memory and an interrupt line
// into a virtio.Transport for the drivers of package virtio.
//
// The platform supplies the three pieces (see package virtio): on the
// unikernel the window is the device's MMIO region mapped uncached and the
// interrupt its line; in tests they come from package virtio/model.
// Legacy (version 1) devices are refused with an error wrapping
// errors.ErrUnsupported. Firecracker's devices are version 2; QEMU's
// virtio-mmio devices (microvm, virt) are legacy unless QEMU runs with
// -global virtio-mmio.force-legacy=false.
package mmio
