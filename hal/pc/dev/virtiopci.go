package dev

import (
	"fmt"

	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/pci"
)

// VirtioPCI is a modern virtio device found on PCI bus 0.
type VirtioPCI struct {
	Device    uint8 // slot on bus 0
	ID        virtio.DeviceID
	Transport *pci.Transport
	IRQ       *IRQ
}

// FindVirtioPCI scans PCI bus 0 for modern virtio devices (vendor 0x1af4,
// device 0x1040 + type), enables memory decoding and bus mastering on each,
// binds its INTx line and returns a virtio-pci transport for it, ready for
// hal/virtio's drivers (virtio.Open). All devices share one DMA pool.
// Only on the platform.
func FindVirtioPCI() ([]VirtioPCI, error) {
	if !Available() {
		return nil, ErrNotAvailable
	}
	dma := &DMAPool{}
	var out []VirtioPCI
	for d := uint8(0); d < 32; d++ {
		cfg := Config{Bus: 0, Device: d}
		did := cfg.Read16(2)
		if cfg.Read16(0) != pci.VirtioVendorID || did < pci.ModernDeviceBase || did > pci.ModernDeviceLast {
			continue
		}
		irq, err := OpenIRQ(int(cfg.Read8(0x3c)))
		if err != nil {
			return out, fmt.Errorf("dev: virtio at 00:%02x.0: %w", d, err)
		}
		cfg.Write16(0x04, cfg.Read16(0x04)|0x6) // memory decoding, bus mastering
		bar := func(i int) (virtio.Regs, error) { return BAR(cfg, i) }
		t, err := pci.New(cfg, bar, dma, pci.Options{INTx: irq})
		if err != nil {
			irq.Close()
			return out, fmt.Errorf("dev: virtio at 00:%02x.0: %w", d, err)
		}
		out = append(out, VirtioPCI{Device: d, ID: virtio.DeviceID(did - pci.ModernDeviceBase), Transport: t, IRQ: irq})
	}
	return out, nil
}
