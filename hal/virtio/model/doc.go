// Package model is a software model of virtio 1.2 devices — the device
// side of virtio-net, virtio-blk, virtio-console and virtio-rng — used to
// test the drivers of package virtio hosted, under go test.
//
// The model and the driver share guest memory ([Memory], which implements
// virtio.DMA): the driver writes descriptors and rings into it, the model
// translates bus addresses back to the same bytes. A [Device] holds the
// transport-independent state (status, features, queue configuration,
// configuration space, interrupts); [Device.MMIO] exposes it as a
// virtio-mmio version 2 register window and [Device.PCI] as a virtio-pci
// modern function. Backends serve the queues over hal devices: [Block] over
// a hal.BlockDevice, [Net] over a hal.NIC, [Console] over an io.ReadWriter,
// [RNG] over a hal.Entropy.
//
// The driver is untrusted here too: [VQ] checks every index, address,
// length and link, and a bad chain sets DEVICE_NEEDS_RESET.
//
// The model misbehaves on request ([Faults], switchable at any time with
// [Device.SetFaults]): used lengths beyond the buffer, used ids out of
// range, duplicate used entries, a used index that jumps, descriptors
// overwritten with loops, stalled or slow completions, a configuration
// generation that never settles, refused features, and features withheld
// (Options.HideFeatures). Configuration changes mid-flight come from the
// backends ([Net.SetLink], [Console.Resize], [Block.SetCapacity]) and
// [Device.RequestReset] sets DEVICE_NEEDS_RESET. [Device.QueueStats] and
// [Device.Resets] let tests check notification suppression and how the
// driver recovered.
package model
