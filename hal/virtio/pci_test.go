package virtio_test

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

var pciCases = []struct {
	name string
	po   model.PCIOptions
}{
	{name: "intx"},
	{name: "msix-1", po: model.PCIOptions{Vectors: 1}},
	{name: "msix-3", po: model.PCIOptions{Vectors: 3}},
	{name: "transitional-msix-2", po: model.PCIOptions{Vectors: 2, Transitional: true}},
}

func TestPCIBlock(t *testing.T) {
	for _, tc := range pciCases {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestBlockDevice(t, func(t *testing.T) hal.BlockDevice {
				disk, err := mem.NewBlock(1<<20, mem.BlockOptions{})
				require.NoError(t, err)
				tr, _ := newPCI(t, model.NewBlock(disk, model.BlockOptions{}), model.Options{}, tc.po)
				b, err := virtio.NewBlock(tr, virtio.BlockOptions{})
				require.NoError(t, err)
				return b
			})
		})
	}
}

func TestPCINet(t *testing.T) {
	for _, tc := range pciCases {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
				x, y := mem.NewNICPair(mem.NICOptions{})
				be := model.NewNet(x, model.NetOptions{})
				t.Cleanup(func() { _ = be.Close() })
				tr, _ := newPCI(t, be, model.Options{}, tc.po)
				n, err := virtio.NewNet(tr, virtio.NetOptions{})
				require.NoError(t, err)
				return n, y
			})
		})
	}
}

func TestPCIConsoleAndRNG(t *testing.T) {
	for _, tc := range pciCases {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newPCI(t, model.NewRNG(mem.NewEntropy(2), model.RNGOptions{}), model.Options{}, tc.po)
			r, err := virtio.NewRNG(tr, virtio.RNGOptions{})
			require.NoError(t, err)
			defer r.Close()
			haltest.TestEntropy(t, r)

			mc := mem.NewConsole()
			be := model.NewConsole(mc, model.ConsoleOptions{Cols: 80, Rows: 24})
			defer be.Close()
			tr2, _ := newPCI(t, be, model.Options{}, tc.po)
			c, err := virtio.NewConsole(tr2, virtio.ConsoleOptions{})
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte("ping"))
			require.NoError(t, err)
			got := make([]byte, 4)
			_, err = io.ReadFull(mc.Operator(), got)
			require.NoError(t, err)
			require.Equal(t, "ping", string(got))
			cols, rows, err := c.WindowSize()
			require.NoError(t, err)
			require.Equal(t, [2]int{80, 24}, [2]int{cols, rows})
		})
	}
}

func TestPCIConsoleConformance(t *testing.T) {
	for _, tc := range pciCases {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestConsole(t, func(t *testing.T) (hal.Console, io.ReadWriter) {
				mc := mem.NewConsole()
				be := model.NewConsole(mc, model.ConsoleOptions{})
				t.Cleanup(func() { _ = be.Close() })
				tr, _ := newPCI(t, be, model.Options{}, tc.po)
				c, err := virtio.NewConsole(tr, virtio.ConsoleOptions{})
				require.NoError(t, err)
				return c, mc.Operator()
			})
		})
	}
}
