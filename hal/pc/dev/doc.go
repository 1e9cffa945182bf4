// Package dev is the device-facing side of the bare-metal platform
// (hal/pc) for driver code in the program: port I/O, PCI configuration
// space, DMA memory with physical addresses, and interrupts delivered as
// readable descriptors through Go's own netpoller (the Linux UIO model).
//
// The program runs in ring 0 on the platform with the first 4 GiB
// identity-mapped, so port I/O and memory-mapped registers are used
// directly; DMA memory and interrupt routing come from the kernel through
// system calls in a private range that Linux does not define. On any other
// system [Available] reports false, the system calls fail with ENOSYS and
// port I/O must not be used (it faults outside ring 0).
//
// Interrupts are 8259 PIC lines (legacy INTx, as SeaBIOS routes PCI
// interrupts on QEMU's pc machine): the kernel masks a line when it fires
// and adds one to the line's eventfd; the driver reads the count with
// [IRQ.Wait1], services the device, and unmasks the line with [IRQ.Ack].
//
// [Config], [MMIO] (with [BAR]), [DMAPool] and [IRQ] implement the
// interfaces hal/virtio's transports take, so its drivers run here.
package dev
