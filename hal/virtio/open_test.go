package virtio_test

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

// otherDevice is a device type without a driver (a balloon).
type otherDevice struct{}

func (otherDevice) DeviceID() virtio.DeviceID { return 5 }
func (otherDevice) Features() uint64          { return 0 }
func (otherDevice) NumQueues() int            { return 1 }
func (otherDevice) Config([]byte)             {}
func (otherDevice) ConfigLen() int            { return 0 }
func (otherDevice) Start(*model.Run)          {}

func TestOpen(t *testing.T) {
	disk, err := mem.NewBlock(64<<10, mem.BlockOptions{})
	require.NoError(t, err)
	x, y := mem.NewNICPair(mem.NICOptions{})
	defer y.Close()
	nb := model.NewNet(x, model.NetOptions{})
	defer nb.Close()
	cb := model.NewConsole(mem.NewConsole(), model.ConsoleOptions{})
	defer cb.Close()
	cases := []struct {
		name  string
		b     model.Backend
		check func(t *testing.T, d any)
	}{
		{"net", nb, func(t *testing.T, d any) { _, ok := d.(hal.OffloadNIC); require.True(t, ok) }},
		{"block", model.NewBlock(disk, model.BlockOptions{}), func(t *testing.T, d any) { _, ok := d.(hal.Discarder); require.True(t, ok) }},
		{"console", cb, func(t *testing.T, d any) { _, ok := d.(hal.ConsoleSizer); require.True(t, ok) }},
		{"entropy", model.NewRNG(mem.NewEntropy(3), model.RNGOptions{}), func(t *testing.T, d any) { _, ok := d.(hal.Entropy); require.True(t, ok) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newMMIO(t, tc.b, model.Options{})
			d, err := virtio.Open(tr)
			require.NoError(t, err)
			tc.check(t, d)
			require.NoError(t, d.(io.Closer).Close())
		})
	}
	t.Run("no-driver", func(t *testing.T) {
		tr, dev := newMMIO(t, otherDevice{}, model.Options{})
		_, err := virtio.Open(tr)
		require.ErrorIs(t, err, errors.ErrUnsupported)
		require.Zero(t, dev.Status(), "the device was touched")
	})
}
