package mem

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
)

func TestSwitchConformance(t *testing.T) {
	haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
		sw := NewSwitch(SwitchOptions{})
		t.Cleanup(func() { _ = sw.Close() })
		a, b := sw.NewPort(NICOptions{}), sw.NewPort(NICOptions{})
		// A third port takes flooded frames too.
		sw.NewPort(NICOptions{})
		return a, b
	})
}

// switchRead reads one frame from n and returns its tag.
func switchRead(t *testing.T, n *NIC) uint32 {
	t.Helper()
	buf := make([]byte, 1514)
	k, err := n.ReadFrame(buf)
	require.NoError(t, err)
	return testTag(buf[:k])
}

func TestSwitchForwarding(t *testing.T) {
	tests := []struct {
		name string
		// send writes frames; want is the number queued at ports a, b, c.
		send func(t *testing.T, a, b, c *NIC)
		want [3]int
		st   SwitchStats
	}{
		{"broadcast-floods", func(t *testing.T, a, b, c *NIC) {
			require.NoError(t, a.WriteFrame(testFrame(hal.Broadcast, a.MAC(), 1, 60)))
		}, [3]int{0, 1, 1}, SwitchStats{Flooded: 1}},
		{"multicast-floods", func(t *testing.T, a, b, c *NIC) {
			require.NoError(t, a.WriteFrame(testFrame(hal.MAC{0x33, 0x33, 0, 0, 0, 1}, a.MAC(), 1, 60)))
		}, [3]int{0, 1, 1}, SwitchStats{Flooded: 1}},
		{"unknown-unicast-floods", func(t *testing.T, a, b, c *NIC) {
			require.NoError(t, a.WriteFrame(testFrame(b.MAC(), a.MAC(), 1, 60)))
		}, [3]int{0, 1, 1}, SwitchStats{Flooded: 1}},
		{"learned-unicast-forwarded", func(t *testing.T, a, b, c *NIC) {
			require.NoError(t, a.WriteFrame(testFrame(hal.Broadcast, a.MAC(), 1, 60)))
			require.NoError(t, b.WriteFrame(testFrame(a.MAC(), b.MAC(), 2, 60)))
			require.NoError(t, a.WriteFrame(testFrame(b.MAC(), a.MAC(), 3, 60)))
			assert.Equal(t, uint32(2), switchRead(t, a))
			assert.Equal(t, uint32(1), switchRead(t, b))
			assert.Equal(t, uint32(3), switchRead(t, b))
			assert.Equal(t, uint32(1), switchRead(t, c))
		}, [3]int{0, 0, 0}, SwitchStats{Flooded: 1, Forwarded: 2}},
		{"own-port-filtered", func(t *testing.T, a, b, c *NIC) {
			other := hal.MAC{0x02, 9, 9, 9, 9, 9}
			require.NoError(t, a.WriteFrame(testFrame(hal.Broadcast, other, 1, 60)))
			require.NoError(t, a.WriteFrame(testFrame(other, a.MAC(), 2, 60)))
		}, [3]int{0, 1, 1}, SwitchStats{Flooded: 1, Filtered: 1}},
		{"closed-port-forgotten", func(t *testing.T, a, b, c *NIC) {
			require.NoError(t, b.WriteFrame(testFrame(hal.Broadcast, b.MAC(), 1, 60)))
			assert.Equal(t, uint32(1), switchRead(t, a))
			assert.Equal(t, uint32(1), switchRead(t, c))
			require.NoError(t, b.Close())
			require.NoError(t, a.WriteFrame(testFrame(b.MAC(), a.MAC(), 2, 60)))
		}, [3]int{0, 0, 1}, SwitchStats{Flooded: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sw := NewSwitch(SwitchOptions{})
			defer sw.Close()
			a, b, c := sw.NewPort(NICOptions{}), sw.NewPort(NICOptions{}), sw.NewPort(NICOptions{})
			tc.send(t, a, b, c)
			assert.Equal(t, tc.want, [3]int{nicQueued(a), nicQueued(b), nicQueued(c)})
			assert.Equal(t, tc.st, sw.Stats())
		})
	}
}

func TestSwitchFullPortDrops(t *testing.T) {
	sw := NewSwitch(SwitchOptions{})
	defer sw.Close()
	a := sw.NewPort(NICOptions{})
	slow := sw.NewPort(NICOptions{QueueLen: 2})
	fast := sw.NewPort(NICOptions{})
	for i := range 5 {
		// Broadcast: the stalled port must not hold up the other one.
		require.NoError(t, a.WriteFrame(testFrame(hal.Broadcast, a.MAC(), uint32(i), 60)))
	}
	assert.Equal(t, 2, nicQueued(slow))
	assert.Equal(t, 5, nicQueued(fast))
	assert.Equal(t, uint64(3), slow.Stats().RxDrops)
	assert.Equal(t, uint64(3), sw.Stats().Drops)
	assert.Equal(t, uint32(0), switchRead(t, slow))
	assert.Equal(t, uint32(1), switchRead(t, slow))
}

func TestSwitchMTUMismatchDrops(t *testing.T) {
	sw := NewSwitch(SwitchOptions{})
	defer sw.Close()
	jumbo, small := sw.NewPort(NICOptions{MTU: 9000}), sw.NewPort(NICOptions{MTU: 1500})
	require.NoError(t, jumbo.WriteFrame(testFrame(hal.Broadcast, jumbo.MAC(), 1, 1514)))
	require.NoError(t, jumbo.WriteFrame(testFrame(hal.Broadcast, jumbo.MAC(), 2, 1515)))
	assert.Equal(t, 1, nicQueued(small))
	assert.Equal(t, uint64(1), small.Stats().RxDrops)
	assert.Equal(t, uint32(1), switchRead(t, small))
}

func TestSwitchAgeOut(t *testing.T) {
	clk := NewClock(time.Unix(1e9, 0))
	sw := NewSwitch(SwitchOptions{AgeOut: time.Minute, Clock: clk})
	defer sw.Close()
	a, b, c := sw.NewPort(NICOptions{}), sw.NewPort(NICOptions{}), sw.NewPort(NICOptions{})
	require.NoError(t, a.WriteFrame(testFrame(hal.Broadcast, a.MAC(), 1, 60)))
	clk.Advance(59 * time.Second)
	require.NoError(t, b.WriteFrame(testFrame(a.MAC(), b.MAC(), 2, 60)))
	assert.Equal(t, 1, nicQueued(c), "still known: forwarded only to a (c holds the first broadcast)")
	clk.Advance(2 * time.Second)
	require.NoError(t, b.WriteFrame(testFrame(a.MAC(), b.MAC(), 3, 60)))
	assert.Equal(t, 2, nicQueued(c), "aged out: flooded")
	assert.Equal(t, SwitchStats{Flooded: 2, Forwarded: 1}, sw.Stats())
}

func TestSwitchClose(t *testing.T) {
	sw := NewSwitch(SwitchOptions{})
	a := sw.NewPort(NICOptions{})
	require.NoError(t, sw.Close())
	require.NoError(t, sw.Close())
	assert.False(t, a.LinkUp())
	assert.ErrorIs(t, a.WriteFrame(testFrame(hal.Broadcast, a.MAC(), 1, 60)), hal.ErrClosed)
	late := sw.NewPort(NICOptions{})
	_, err := late.ReadFrame(make([]byte, 100))
	assert.ErrorIs(t, err, hal.ErrClosed)
}

func TestSwitchSegmentsPerPort(t *testing.T) {
	sw := NewSwitch(SwitchOptions{})
	defer sw.Close()
	a, tso, plain := sw.NewPort(NICOptions{}), sw.NewPort(NICOptions{}), sw.NewPort(NICOptions{})
	_, err := a.SetOffload(a.SupportedOffload())
	require.NoError(t, err)
	_, err = tso.SetOffload(tso.SupportedOffload())
	require.NoError(t, err)
	frame, _, l4, _ := testPacket{payload: testPayload(5000, 1)}.build()
	hdr := hal.NetHdr{GSOType: hal.GSOTCPv4, GSOSize: 1000, HdrLen: 54, Flags: hal.NetHdrFNeedsCsum, CsumStart: uint16(l4), CsumOffset: 16}
	require.NoError(t, a.WriteFrameHdr(&hdr, frame))
	assert.Equal(t, 1, nicQueued(tso))
	assert.Equal(t, 5, nicQueued(plain))
}

func benchSwitch(b *testing.B, size int) {
	sw := NewSwitch(SwitchOptions{})
	defer sw.Close()
	x, y := sw.NewPort(NICOptions{}), sw.NewPort(NICOptions{})
	// Teach the switch where y is so frames are forwarded, not flooded.
	require.NoError(b, y.WriteFrame(testFrame(hal.Broadcast, y.MAC(), 0, 60)))
	_, err := x.ReadFrame(make([]byte, 1514))
	require.NoError(b, err)
	frame := testFrame(y.MAC(), x.MAC(), 1, size)
	buf := make([]byte, 1514)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		// Write and read in turn: the switch drops rather than waits.
		if err := x.WriteFrame(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := y.ReadFrame(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSwitch(b *testing.B) {
	b.Run("64", func(b *testing.B) { benchSwitch(b, 64) })
	b.Run("1500", func(b *testing.B) { benchSwitch(b, 1514) })
}
