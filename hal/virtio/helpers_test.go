package virtio_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/virtio/mmio"
	"github.com/anykernel/anykernel/hal/virtio/model"
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
