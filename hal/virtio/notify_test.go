package virtio_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

// TestNetNotificationBatching: frames written together cost one
// notification at most and transmit completions raise (almost) no
// interrupts, with VIRTIO_F_EVENT_IDX and with the ring flags.
func TestNetNotificationBatching(t *testing.T) {
	cases := []struct {
		name string
		hide uint64
	}{
		{name: "event-idx"},
		{name: "flags", hide: virtio.Bit(virtio.VIRTIO_F_EVENT_IDX)},
	}
	const batches, batch = 200, 16
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, y := mem.NewNICPair(mem.NICOptions{})
			defer y.Close()
			n, dev, _ := newNet(t, x, model.NetOptions{}, model.Options{HideFeatures: tc.hide}, virtio.NetOptions{})
			defer n.Close()
			require.Equal(t, tc.hide == 0, n.Features()&virtio.Bit(virtio.VIRTIO_F_EVENT_IDX) != 0)
			frames := make([][]byte, batch)
			for i := range frames {
				f := make([]byte, 200)
				dst, src := y.MAC(), n.MAC()
				copy(f, dst[:])
				copy(f[6:], src[:])
				f[12], f[13] = 0x88, 0xb5
				frames[i] = f
			}
			buf := make([]byte, 2048)
			for range batches {
				k, err := n.WriteFrames(frames)
				require.NoError(t, err)
				require.Equal(t, batch, k)
				for range batch {
					_, err := y.ReadFrame(buf)
					require.NoError(t, err)
				}
			}
			notifies, interrupts := dev.QueueStats(virtio.VirtioNetTxQ)
			t.Logf("%d frames in %d batches: %d notifications, %d interrupts", batches*batch, batches, notifies, interrupts)
			require.Positive(t, notifies)
			require.LessOrEqual(t, notifies, uint64(batches), "more than one notification per batch")
			// Completions are reaped as frames are written; an interrupt is
			// asked for only when the ring is full.
			require.Less(t, interrupts, uint64(batches/4), "transmit completions raised interrupts")
		})
	}
}
