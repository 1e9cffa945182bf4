package virtio_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/virtio/mmio"
	"github.com/anykernel/anykernel/hal/virtio/model"
	"github.com/anykernel/anykernel/hal/virtio/pci"
)

// newMMIO models backend b behind a virtio-mmio window and returns the
// driver-side transport and the device.
func newMMIO(t testing.TB, b model.Backend, o model.Options) (*mmio.Transport, *model.Device) {
	t.Helper()
	mem := model.NewMemory()
	dev := model.NewDevice(mem, b, o)
	win := dev.MMIO()
	tr, err := mmio.New(win, mem, win.IRQ(), mmio.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dev.Close() })
	return tr, dev
}

// newPCI models backend b as a virtio-pci function and returns the
// driver-side transport and the device.
func newPCI(t testing.TB, b model.Backend, o model.Options, po model.PCIOptions) (*pci.Transport, *model.Device) {
	t.Helper()
	mem := model.NewMemory()
	dev := model.NewDevice(mem, b, o)
	fn := dev.PCI(po)
	tr, err := pci.New(fn.Config(), fn.BAR, mem, pci.Options{MSIX: fn.MSIX(), INTx: fn.INTx()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dev.Close() })
	return tr, dev
}

// resend writes f on nic every few milliseconds until the returned stop
// function is called, which also checks that every write succeeded. A frame
// sent once right after a device's faults are lifted can be delivered into
// a receive queue the driver is about to reset, and that reset rightly drops
// it; a test waiting for that one frame would wait for ever.
func resend(t *testing.T, nic hal.NIC, f []byte) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		for {
			if err := nic.WriteFrame(f); err != nil {
				sent <- err
				return
			}
			select {
			case <-done:
				sent <- nil
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() {
		close(done)
		require.NoError(t, <-sent)
	}
}
