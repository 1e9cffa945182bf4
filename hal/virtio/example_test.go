package virtio_test

import (
	"fmt"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/mmio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

// A virtio-blk driver over a modelled device: the same calls a unikernel
// makes, with guest memory, the register window and the interrupt line
// coming from package model instead of hardware.
func Example() {
	disk, err := mem.NewBlock(1<<20, mem.BlockOptions{})
	if err != nil {
		panic(err)
	}
	guest := model.NewMemory()
	dev := model.NewDevice(guest, model.NewBlock(disk, model.BlockOptions{}), model.Options{})
	defer dev.Close()
	win := dev.MMIO()

	tr, err := mmio.New(win, guest, win.IRQ(), mmio.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println("found a virtio", tr.DeviceID(), "device")
	b, err := virtio.NewBlock(tr, virtio.BlockOptions{})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	sector := make([]byte, b.SectorSize())
	copy(sector, "hello, virtio")
	if _, err := b.WriteAt(sector, 4096); err != nil {
		panic(err)
	}
	if err := b.Sync(); err != nil {
		panic(err)
	}
	back := make([]byte, 13)
	if _, err := disk.ReadAt(sector, 4096); err != nil {
		panic(err)
	}
	copy(back, sector)
	fmt.Printf("%d bytes, sector %d: %q\n", b.Size(), b.SectorSize(), back)
	// Output:
	// found a virtio block device
	// 1048576 bytes, sector 512: "hello, virtio"
}
