package virtio_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

func newRNG(t testing.TB, mo model.RNGOptions, o model.Options, do virtio.RNGOptions) (*virtio.RNG, *model.Device) {
	t.Helper()
	tr, dev := newMMIO(t, model.NewRNG(mem.NewEntropy(1), mo), o)
	r, err := virtio.NewRNG(tr, do)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r, dev
}

func TestRNGConformance(t *testing.T) {
	cases := []struct {
		name string
		mo   model.RNGOptions
	}{
		{name: "full-fills"},
		{name: "short-fills", mo: model.RNGOptions{MaxFill: 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRNG(t, tc.mo, model.Options{}, virtio.RNGOptions{})
			haltest.TestEntropy(t, r)
		})
	}
}
