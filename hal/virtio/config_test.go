package virtio_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

// patched is a backend whose configuration space is edited on the way out.
type patched struct {
	model.Backend
	patch func(p []byte)
}

func (b patched) Config(p []byte) {
	b.Backend.Config(p)
	b.patch(p)
}

// TestHostileConfiguration: configuration values no real device would
// offer are refused at initialisation (leaving the device FAILED), and odd
// but legal ones are coped with.
func TestHostileConfiguration(t *testing.T) {
	put32 := func(off int, v uint32) func([]byte) {
		return func(p []byte) { binary.LittleEndian.PutUint32(p[off:], v) }
	}
	put16 := func(off int, v uint16) func([]byte) {
		return func(p []byte) { binary.LittleEndian.PutUint16(p[off:], v) }
	}
	blk := func(t *testing.T) model.Backend {
		disk, err := mem.NewBlock(1<<20, mem.BlockOptions{})
		require.NoError(t, err)
		return model.NewBlock(disk, model.BlockOptions{})
	}
	nic := func(t *testing.T) model.Backend {
		x, y := mem.NewNICPair(mem.NICOptions{})
		t.Cleanup(func() { _ = y.Close() })
		b := model.NewNet(x, model.NetOptions{})
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	openBlk := func(tr virtio.Transport) error {
		b, err := virtio.NewBlock(tr, virtio.BlockOptions{})
		if err == nil {
			defer b.Close()
			_, err = b.ReadAt(make([]byte, b.SectorSize()), 0)
		}
		return err
	}
	openNet := func(tr virtio.Transport) error {
		n, err := virtio.NewNet(tr, virtio.NetOptions{})
		if err == nil {
			n.Close()
		}
		return err
	}
	cases := []struct {
		name    string
		backend func(t *testing.T) model.Backend
		patch   func([]byte)
		o       model.Options
		open    func(virtio.Transport) error
		wantErr bool
	}{
		{"blk-size-not-power-of-two", blk, put32(virtio.VirtioBlkCfgBlkSize, 1000), model.Options{}, openBlk, true},
		{"blk-size-too-small", blk, put32(virtio.VirtioBlkCfgBlkSize, 256), model.Options{}, openBlk, true},
		{"blk-capacity-absurd", blk, func(p []byte) { binary.LittleEndian.PutUint64(p, 1<<60) }, model.Options{}, openBlk, true},
		{"blk-sector-beyond-seg-max-times-size-max", blk, func(p []byte) {
			put32(virtio.VirtioBlkCfgSizeMax, 100)(p)
			put32(virtio.VirtioBlkCfgSegMax, 2)(p)
		}, model.Options{}, openBlk, true},
		{"blk-tiny-segments", blk, put32(virtio.VirtioBlkCfgSizeMax, 100), model.Options{}, openBlk, false},
		{"blk-seg-max-zero", blk, put32(virtio.VirtioBlkCfgSegMax, 0), model.Options{}, openBlk, false},
		{"blk-odd-queue-size", blk, func([]byte) {}, model.Options{QueueSize: 100}, openBlk, false},
		{"net-mtu-below-minimum", nic, put16(virtio.VirtioNetCfgMTU, 40), model.Options{}, openNet, true},
		{"net-odd-queue-size", nic, func([]byte) {}, model.Options{QueueSize: 3}, openNet, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, dev := newMMIO(t, patched{tc.backend(t), tc.patch}, tc.o)
			err := tc.open(tr)
			if !tc.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, virtio.ErrDevice)
			require.NotZero(t, dev.Status()&virtio.VIRTIO_CONFIG_S_FAILED)
		})
	}
}

// TestNetWithoutMACOrMTU: a device that offers neither VIRTIO_NET_F_MAC nor
// VIRTIO_NET_F_MTU gets the MAC from the options, or a random locally
// administered unicast one, and the default MTU.
func TestNetWithoutMACOrMTU(t *testing.T) {
	given := hal.MAC{0x02, 0xaa, 0, 0, 0, 1}
	cases := []struct {
		name string
		mac  hal.MAC
	}{
		{name: "from-options", mac: given},
		{name: "random"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, y := mem.NewNICPair(mem.NICOptions{MTU: 9000})
			defer y.Close()
			hide := virtio.Bit(virtio.VIRTIO_NET_F_MAC) | virtio.Bit(virtio.VIRTIO_NET_F_MTU)
			n, _, _ := newNet(t, x, model.NetOptions{}, model.Options{HideFeatures: hide}, virtio.NetOptions{MAC: tc.mac})
			defer n.Close()
			require.Equal(t, hal.DefaultMTU, n.MTU())
			if tc.mac != (hal.MAC{}) {
				require.Equal(t, tc.mac, n.MAC())
				return
			}
			require.NotEqual(t, x.MAC(), n.MAC(), "took the device's MAC without VIRTIO_NET_F_MAC")
			require.True(t, n.MAC().IsLocal())
			require.False(t, n.MAC().IsMulticast())
		})
	}
}
