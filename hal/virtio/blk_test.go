package virtio_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

func newBlock(t testing.TB, size int64, bo mem.BlockOptions, mo model.BlockOptions, o model.Options, do virtio.BlockOptions) (*virtio.Block, *model.Device, *mem.Block) {
	t.Helper()
	disk, err := mem.NewBlock(size, bo)
	require.NoError(t, err)
	tr, dev := newMMIO(t, model.NewBlock(disk, mo), o)
	b, err := virtio.NewBlock(tr, do)
	require.NoError(t, err)
	return b, dev, disk
}

func TestBlockConformance(t *testing.T) {
	cases := []struct {
		name string
		bo   mem.BlockOptions
		mo   model.BlockOptions
		do   virtio.BlockOptions
	}{
		{name: "default"},
		{name: "4k-sectors", bo: mem.BlockOptions{SectorSize: 4096}},
		{name: "one-segment", mo: model.BlockOptions{SegMax: 1, SizeMax: 4096}},
		{name: "no-seg-max", mo: model.BlockOptions{NoSegMax: true, NoSizeMax: true}},
		{name: "small-queue", do: virtio.BlockOptions{QueueSize: 4, Slots: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestBlockDevice(t, func(t *testing.T) hal.BlockDevice {
				b, _, _ := newBlock(t, 4<<20, tc.bo, tc.mo, model.Options{}, tc.do)
				return b
			})
		})
	}
}
