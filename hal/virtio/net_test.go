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

// newNet puts a virtio-net driver over a modelled device over nic.
func newNet(t testing.TB, nic hal.NIC, mo model.NetOptions, o model.Options, do virtio.NetOptions) (*virtio.Net, *model.Device, *model.Net) {
	t.Helper()
	be := model.NewNet(nic, mo)
	t.Cleanup(func() { _ = be.Close() })
	tr, dev := newMMIO(t, be, o)
	n, err := virtio.NewNet(tr, do)
	require.NoError(t, err)
	return n, dev, be
}

func TestNetConformance(t *testing.T) {
	cases := []struct {
		name string
		nic  mem.NICOptions
		mo   model.NetOptions
		do   virtio.NetOptions
		both bool // virtio on both ends
		// swap puts virtio second, where the suite tests hal.VecNIC
		swap bool
	}{
		{name: "default"},
		{name: "no-mergeable", mo: model.NetOptions{NoMergeable: true}},
		{name: "no-offload", mo: model.NetOptions{NoOffload: true}},
		{name: "small-queues", do: virtio.NetOptions{RxQueueSize: 4, TxQueueSize: 2}},
		{name: "jumbo", nic: mem.NICOptions{MTU: 9000}},
		{name: "virtio-both-ends", both: true},
		{name: "virtio-second/no-mergeable", mo: model.NetOptions{NoMergeable: true}, swap: true},
		{name: "virtio-second/small-queues", do: virtio.NetOptions{RxQueueSize: 4, TxQueueSize: 2}, swap: true},
		{name: "virtio-second/jumbo", nic: mem.NICOptions{MTU: 9000}, swap: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
				x, y := mem.NewNICPair(tc.nic)
				a, _, _ := newNet(t, x, tc.mo, model.Options{}, tc.do)
				switch {
				case tc.swap:
					return y, a
				case !tc.both:
					return a, y
				}
				b, _, _ := newNet(t, y, tc.mo, model.Options{}, tc.do)
				return a, b
			})
		})
	}
}
