// Devices shows the platform's device interface from a program's point of
// view: it lists PCI bus 0, allocates DMA memory, reads a virtio-rng device
// with hal/virtio's driver if there is one, and takes interrupts from the
// CMOS real-time clock's periodic timer (IRQ 8) through a descriptor read
// in Go's netpoller. Hosted it reports that the platform is absent.
//
//	go run ./cmd/anyk build -o devices.img ./examples/devices
//	go run ./cmd/anyk run -device virtio-rng-pci,disable-legacy=on devices.img
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/anykernel/anykernel/hal"
	_ "github.com/anykernel/anykernel/hal/pc"
	"github.com/anykernel/anykernel/hal/pc/dev"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/pci"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devices:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	if !dev.Available() {
		fmt.Fprintln(w, "not on the anykernel platform")
		return nil
	}
	for d := uint8(0); d < 32; d++ {
		id := dev.PCIRead32(0, d, 0, 0)
		if id&0xffff == 0xffff {
			continue
		}
		class := dev.PCIRead32(0, d, 0, 8) >> 24
		irq := dev.PCIRead32(0, d, 0, 0x3c) & 0xff
		fmt.Fprintf(w, "pci 00:%02x.0 %04x:%04x class %02x irq %d\n", d, id&0xffff, id>>16, class, irq)
	}
	if err := checkDMA(); err != nil {
		return err
	}
	fmt.Fprintln(w, "dma ok")
	if err := virtioDevices(w); err != nil {
		return err
	}
	n, err := rtcInterrupts(ctx, 4)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "irq 8 fired %d times\n", n)
	return nil
}

// virtioDevices drives the modern virtio-rng and virtio-blk PCI devices
// on bus 0 with hal/virtio's drivers over the platform's PCI, DMA and
// interrupts: 64 random bytes from virtio-rng, the SHA-256 of the first
// MiB (or all, if smaller) of a virtio-blk disk, and, given two virtio-net
// NICs on one QEMU hub, 100 frames sent from the first to the second.
func virtioDevices(w io.Writer) error {
	var nics []*virtio.Net
	for d := uint8(0); d < 32; d++ {
		cfg := dev.Config{Bus: 0, Device: d}
		id := virtio.DeviceID(cfg.Read16(2) - 0x1040)
		if cfg.Read16(0) != 0x1af4 || (id != virtio.DeviceEntropy && id != virtio.DeviceBlock && id != virtio.DeviceNet) {
			continue
		}
		irq, err := dev.OpenIRQ(int(cfg.Read8(0x3c)))
		if err != nil {
			return err
		}
		defer irq.Close()
		cfg.Write16(0x04, cfg.Read16(0x04)|0x6) // memory decoding, bus mastering
		bar := func(i int) (virtio.Regs, error) { return dev.BAR(cfg, i) }
		t, err := pci.New(cfg, bar, &dev.DMAPool{}, pci.Options{INTx: irq})
		if err != nil {
			return err
		}
		switch id {
		case virtio.DeviceEntropy:
			rng, err := virtio.NewRNG(t, virtio.RNGOptions{})
			if err != nil {
				return err
			}
			defer rng.Close()
			buf := make([]byte, 64)
			if _, err := io.ReadFull(rng, buf); err != nil {
				return err
			}
			if bytes.Count(buf, []byte{0}) == len(buf) {
				return errors.New("virtio-rng returned zeros")
			}
			fmt.Fprintf(w, "virtio-rng at 00:%02x.0 read %d bytes\n", d, len(buf))
		case virtio.DeviceBlock:
			blk, err := virtio.NewBlock(t, virtio.BlockOptions{})
			if err != nil {
				return err
			}
			defer blk.Close()
			n := min(blk.Size(), 1<<20)
			buf := make([]byte, n)
			if _, err := blk.ReadAt(buf, 0); err != nil {
				return err
			}
			fmt.Fprintf(w, "virtio-blk at 00:%02x.0 %d bytes, sha256 of the first %d: %x\n", d, blk.Size(), n, sha256.Sum256(buf))
		case virtio.DeviceNet:
			nic, err := virtio.NewNet(t, virtio.NetOptions{})
			if err != nil {
				return err
			}
			defer nic.Close()
			nics = append(nics, nic)
			fmt.Fprintf(w, "virtio-net at 00:%02x.0 mac %v mtu %d\n", d, nic.MAC(), nic.MTU())
		}
	}
	if len(nics) == 2 {
		return exchange(w, nics[0], nics[1])
	}
	return nil
}

// exchange sends frames from a to b (two NICs on one QEMU hub) and checks
// they arrive intact.
func exchange(w io.Writer, a, b *virtio.Net) error {
	const frames = 100
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, hal.MaxFrameLen(b))
		for i := 0; i < frames; {
			n, err := b.ReadFrame(buf)
			if err != nil {
				got <- err
				return
			}
			if n < 16 || binary.BigEndian.Uint16(buf[12:]) != 0x88B5 {
				continue // not ours
			}
			if int(buf[14]) != i%256 || n != 60+i {
				got <- fmt.Errorf("frame %d arrived as %d bytes, sequence %d", i, n, buf[14])
				return
			}
			i++
		}
		got <- nil
	}()
	for i := 0; i < frames; i++ {
		f := make([]byte, 60+i)
		copy(f, hal.Broadcast[:])
		m := a.MAC()
		copy(f[6:], m[:])
		binary.BigEndian.PutUint16(f[12:], 0x88B5)
		f[14] = byte(i)
		if err := a.WriteFrame(f); err != nil {
			return err
		}
	}
	select {
	case err := <-got:
		if err != nil {
			return err
		}
	case <-time.After(30 * time.Second):
		return errors.New("frames lost between the NICs")
	}
	fmt.Fprintf(w, "virtio-net: %d frames crossed the hub\n", frames)
	return nil
}

func checkDMA() error {
	d, err := dev.AllocDMA(3*4096, 8192)
	if err != nil {
		return err
	}
	if d.Phys%8192 != 0 || len(d.Mem) != 3*4096 {
		return fmt.Errorf("DMA buffer at %#x, %d bytes", d.Phys, len(d.Mem))
	}
	for i, b := range d.Mem {
		if b != 0 {
			return fmt.Errorf("DMA byte %d is %#x, not zero", i, b)
		}
		d.Mem[i] = byte(i)
	}
	for i, b := range d.Mem {
		if b != byte(i) {
			return errors.New("DMA memory does not hold what was written")
		}
	}
	return nil
}

// CMOS RTC (MC146818) registers.
const (
	cmosIndex = 0x70
	cmosData  = 0x71
	regA      = 0x0A
	regB      = 0x0B
	regC      = 0x0C
	nmiOff    = 0x80
)

func cmosRead(reg uint8) uint8 {
	dev.Out8(cmosIndex, nmiOff|reg)
	return dev.In8(cmosData)
}

func cmosWrite(reg, v uint8) {
	dev.Out8(cmosIndex, nmiOff|reg)
	dev.Out8(cmosData, v)
}

// rtcInterrupts turns on the RTC's 8 Hz periodic interrupt and waits for
// want of them, acknowledging each at the device and then at the platform.
func rtcInterrupts(ctx context.Context, want int) (int, error) {
	q, err := dev.OpenIRQ(8)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	cmosWrite(regA, cmosRead(regA)&0xF0|13) // 8 Hz
	cmosWrite(regB, cmosRead(regB)|0x40)    // periodic interrupt enable
	cmosRead(regC)
	defer cmosWrite(regB, cmosRead(regB)&^0x40)
	got := make(chan error, 1)
	total := 0
	go func() {
		for total < want {
			n, err := q.Wait1()
			if err != nil {
				got <- err
				return
			}
			total += int(n)
			cmosRead(regC) // the RTC drops its interrupt request
			if err := q.Ack(); err != nil {
				got <- err
				return
			}
		}
		got <- nil
	}()
	select {
	case err := <-got:
		return total, err
	case <-time.After(30 * time.Second):
		return total, errors.New("RTC interrupts stopped")
	case <-ctx.Done():
		return total, ctx.Err()
	}
}
