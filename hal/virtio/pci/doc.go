// Package pci is the virtio-pci transport for modern devices (virtio 1.2
// §4.1), driver side: it parses the function's capability list to find the
// common, notify, ISR and device configuration structures, and turns them
// into a virtio.Transport for the drivers of package virtio.
//
// The platform supplies configuration space access (a virtio.Regs over
// offsets 0-255), a virtio.Regs for each memory BAR the capabilities name,
// DMA memory, and either MSI-X interrupts (table entries 0..n-1 already
// programmed and MSI-X enabled by the platform) or the INTx line. With two
// or more MSI-X vectors, vector 0 carries configuration changes and the
// queues share the others round-robin; with one, everything shares it;
// without, INTx is used and acknowledged by reading the ISR status.
//
// Modern (0x1040-0x107f) and transitional (0x1000-0x103f, through their
// modern capabilities) device IDs are accepted; the legacy I/O interface is
// never used. QEMU's transitional devices on the pc machine qualify; their
// modern structures live in a 64-bit memory BAR (BAR 4), which firmware
// may place above 4 GiB.
//
// An INTx line shared by several functions must wake the Interrupt of each
// of them: every transport reads its own ISR status and ignores the
// interrupt if its device did not raise it.
package pci
