package mem

import (
	"bytes"
	"errors"
	"math/bits"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
)

func TestFaultyNICConformanceNoFaults(t *testing.T) {
	haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
		a, b := NewNICPair(NICOptions{})
		return NewFaultyNIC(a, NICFaults{Seed: 1}), NewFaultyNIC(b, NICFaults{Seed: 2})
	})
}

// With a delay every frame goes through the timed queue and the delivery
// goroutine; order and content must survive.
func TestFaultyNICConformanceDelayed(t *testing.T) {
	haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
		a, b := NewNICPair(NICOptions{})
		return NewFaultyNIC(a, NICFaults{Delay: time.Millisecond}), NewFaultyNIC(b, NICFaults{Bandwidth: 1 << 30})
	})
}

// faultRun writes n frames through a FaultyNIC with faults f (no timing
// faults) and returns the frames that arrived, in order.
func faultRun(t *testing.T, f NICFaults, n int) ([][]byte, NICFaultStats) {
	t.Helper()
	// Fixed addresses make runs comparable byte for byte.
	a, b := NewNICPair(NICOptions{QueueLen: 2*n + 2, MAC: hal.MAC{0x02, 0, 0, 0, 0, 0x10}})
	fn := NewFaultyNIC(a, f)
	defer fn.Close()
	defer b.Close()
	for i := range n {
		require.NoError(t, fn.WriteFrame(testFrame(b.MAC(), a.MAC(), uint32(i), 100)))
	}
	got := make([][]byte, nicQueued(b))
	buf := make([]byte, 1514)
	for i := range got {
		k, err := b.ReadFrame(buf)
		require.NoError(t, err)
		got[i] = bytes.Clone(buf[:k])
	}
	return got, fn.Stats()
}

func faultTags(frames [][]byte) []uint32 {
	tags := make([]uint32, len(frames))
	for i, f := range frames {
		tags[i] = testTag(f)
	}
	return tags
}

func TestFaultyNICLossRate(t *testing.T) {
	const n, p = 10000, 0.1
	got, st := faultRun(t, NICFaults{Seed: 42, Loss: p}, n)
	lost := n - len(got)
	// Binomial(10000, 0.1): mean 1000, standard deviation 30; allow 5 sigma.
	assert.InDelta(t, n*p, lost, 150)
	assert.Equal(t, uint64(lost), st.Lost)
	assert.Equal(t, uint64(n), st.Frames)
	tags := faultTags(got)
	for i := 1; i < len(tags); i++ {
		require.Less(t, tags[i-1], tags[i], "loss must not reorder")
	}

	again, _ := faultRun(t, NICFaults{Seed: 42, Loss: p}, n)
	assert.Equal(t, tags, faultTags(again), "same seed, same losses")
	other, _ := faultRun(t, NICFaults{Seed: 43, Loss: p}, n)
	assert.NotEqual(t, tags, faultTags(other), "another seed, other losses")
}

func TestFaultyNICFaults(t *testing.T) {
	tests := []struct {
		name  string
		f     NICFaults
		check func(t *testing.T, got [][]byte, st NICFaultStats)
	}{
		{"none", NICFaults{}, func(t *testing.T, got [][]byte, st NICFaultStats) {
			assert.Equal(t, []uint32{0, 1, 2, 3, 4, 5, 6, 7}, faultTags(got))
			assert.Equal(t, NICFaultStats{Frames: 8}, st)
		}},
		{"lose-all", NICFaults{Loss: 1}, func(t *testing.T, got [][]byte, st NICFaultStats) {
			assert.Empty(t, got)
			assert.Equal(t, uint64(8), st.Lost)
		}},
		{"duplicate-all", NICFaults{Duplicate: 1}, func(t *testing.T, got [][]byte, st NICFaultStats) {
			assert.Equal(t, []uint32{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7}, faultTags(got))
			assert.Equal(t, uint64(8), st.Duplicated)
		}},
		{"reorder-all", NICFaults{Reorder: 1}, func(t *testing.T, got [][]byte, st NICFaultStats) {
			assert.Equal(t, []uint32{1, 0, 3, 2, 5, 4, 7, 6}, faultTags(got))
			assert.Equal(t, uint64(4), st.Reordered)
		}},
		{"corrupt-all", NICFaults{Corrupt: 1}, func(t *testing.T, got [][]byte, st NICFaultStats) {
			require.Len(t, got, 8)
			for i, f := range got {
				// Rebuild the frame from its position: the tag itself may be
				// the corrupted field.
				want := testFrame(hal.MAC(f[0:6]), hal.MAC(f[6:12]), uint32(i), 100)
				diff := 0
				for j := range f {
					diff += bits.OnesCount8(f[j] ^ want[j])
				}
				assert.Equal(t, 1, diff, "frame %d: one bit flipped", i)
				assert.Equal(t, want[:14], f[:14], "Ethernet header intact")
			}
			assert.Equal(t, uint64(8), st.Corrupted)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, st := faultRun(t, tc.f, 8)
			tc.check(t, got, st)
		})
	}
}

func TestFaultyNICMixedReproducible(t *testing.T) {
	f := NICFaults{Seed: 7, Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, Corrupt: 0.1}
	a, stA := faultRun(t, f, 2000)
	b, stB := faultRun(t, f, 2000)
	assert.True(t, reflect.DeepEqual(a, b), "same seed, same frames")
	assert.Equal(t, stA, stB)
	for _, c := range []uint64{stA.Lost, stA.Duplicated, stA.Reordered, stA.Corrupted} {
		assert.InDelta(t, 200, c, 100)
	}
}

func TestFaultyNICCallerBufferUntouched(t *testing.T) {
	a, b := NewNICPair(NICOptions{})
	fn := NewFaultyNIC(a, NICFaults{Corrupt: 1, Reorder: 1})
	defer fn.Close()
	defer b.Close()
	frame := testFrame(b.MAC(), a.MAC(), 1, 300)
	orig := bytes.Clone(frame)
	require.NoError(t, fn.WriteFrame(frame))
	// Held for reordering: scribbling on the buffer must not change it.
	for i := range frame {
		frame[i] = 0
	}
	require.NoError(t, fn.WriteFrame(testFrame(b.MAC(), a.MAC(), 2, 300)))
	assert.Equal(t, 2, nicQueued(b))
	buf := make([]byte, 1514)
	_, err := b.ReadFrame(buf)
	require.NoError(t, err)
	n, err := b.ReadFrame(buf)
	require.NoError(t, err)
	require.Equal(t, len(orig), n)
	diff := 0
	for j := range orig {
		diff += bits.OnesCount8(orig[j] ^ buf[j])
	}
	assert.Equal(t, 1, diff, "held frame delivered second, one bit flipped in a copy")
}

// TestFaultyNICTiming runs in a synctest bubble, where the real clock is
// simulated: delays are exact and no test depends on scheduling speed.
func TestFaultyNICTiming(t *testing.T) {
	tests := []struct {
		name string
		f    NICFaults
		size int
		want []time.Duration // arrival time of each frame
	}{
		{"delay", NICFaults{Delay: 50 * time.Millisecond}, 100,
			[]time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}},
		{"bandwidth", NICFaults{Bandwidth: 1000}, 100,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond}},
		{"bandwidth-and-delay", NICFaults{Bandwidth: 10000, Delay: time.Second}, 1000,
			[]time.Duration{1100 * time.Millisecond, 1200 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := NewNICPair(NICOptions{})
				fn := NewFaultyNIC(a, tc.f)
				start := time.Now()
				for i := range tc.want {
					require.NoError(t, fn.WriteFrame(testFrame(b.MAC(), a.MAC(), uint32(i), tc.size)))
				}
				buf := make([]byte, 1514)
				for i, at := range tc.want {
					n, err := b.ReadFrame(buf)
					require.NoError(t, err)
					assert.Equal(t, uint32(i), testTag(buf[:n]))
					assert.Equal(t, at, time.Since(start), "frame %d", i)
				}
				assert.Equal(t, uint64(len(tc.want)), fn.Stats().Delayed)
				// Closing must stop the delivery goroutine, or the bubble
				// reports it as leaked.
				require.NoError(t, fn.Close())
				require.NoError(t, b.Close())
			})
		})
	}
}

func TestFaultyNICJitterReproducible(t *testing.T) {
	arrivals := func(seed uint64) []uint32 {
		var tags []uint32
		synctest.Test(t, func(t *testing.T) {
			a, b := NewNICPair(NICOptions{})
			fn := NewFaultyNIC(a, NICFaults{Seed: seed, Jitter: 10 * time.Millisecond})
			defer b.Close()
			defer fn.Close()
			for i := range 50 {
				require.NoError(t, fn.WriteFrame(testFrame(b.MAC(), a.MAC(), uint32(i), 60)))
			}
			buf := make([]byte, 1514)
			for range 50 {
				n, err := b.ReadFrame(buf)
				require.NoError(t, err)
				tags = append(tags, testTag(buf[:n]))
			}
		})
		return tags
	}
	first := arrivals(3)
	assert.Equal(t, first, arrivals(3))
	inOrder := true
	for i := 1; i < len(first); i++ {
		inOrder = inOrder && first[i-1] < first[i]
	}
	assert.False(t, inOrder, "jitter of 10ms on back-to-back frames reorders some")
}

func TestFaultyNICBandwidthManualClock(t *testing.T) {
	clk := NewClock(time.Unix(0, 0))
	a, b := NewNICPair(NICOptions{})
	fn := NewFaultyNIC(a, NICFaults{Bandwidth: 1000, Clock: clk})
	defer fn.Close()
	defer b.Close()
	for i := range 10 {
		require.NoError(t, fn.WriteFrame(testFrame(b.MAC(), a.MAC(), uint32(i), 100)))
	}
	buf := make([]byte, 1514)
	for i := range 10 {
		// Frame i finishes sending at (i+1)*100ms; nothing can arrive before
		// the clock gets there, since the clock only moves when told.
		clk.Advance(100 * time.Millisecond)
		n, err := b.ReadFrame(buf)
		require.NoError(t, err)
		require.Equal(t, uint32(i), testTag(buf[:n]))
		assert.GreaterOrEqual(t, clk.Monotonic(), time.Duration(i+1)*100*time.Millisecond)
		assert.LessOrEqual(t, b.Stats().FramesIn, uint64(i+1))
	}
}

func TestFaultyNICOffloadPassThrough(t *testing.T) {
	a, b := NewNICPair(NICOptions{})
	fn := NewFaultyNIC(a, NICFaults{})
	defer fn.Close()
	defer b.Close()
	assert.Equal(t, a.SupportedOffload(), fn.SupportedOffload())
	got, err := fn.SetOffload(hal.OffloadTxCsum | hal.OffloadTxTSO4)
	require.NoError(t, err)
	assert.Equal(t, hal.OffloadTxCsum|hal.OffloadTxTSO4, got)
	frame, _, l4, _ := testPacket{payload: testPayload(3000, 1)}.build()
	hdr := hal.NetHdr{GSOType: hal.GSOTCPv4, GSOSize: 1000, Flags: hal.NetHdrFNeedsCsum, CsumStart: uint16(l4), CsumOffset: 16}
	require.NoError(t, fn.WriteFrameHdr(&hdr, frame))
	assert.Equal(t, 3, nicQueued(b), "segmented for a receiver without TSO")

	plain := NewFaultyNIC(faultPlainNIC{a}, NICFaults{})
	assert.Zero(t, plain.SupportedOffload())
	assert.ErrorIs(t, plain.WriteFrameHdr(&hdr, frame), errors.ErrUnsupported)
}

// faultPlainNIC hides every optional interface of a NIC.
type faultPlainNIC struct{ n *NIC }

func (p faultPlainNIC) ReadFrame(b []byte) (int, error) { return p.n.ReadFrame(b) }
func (p faultPlainNIC) WriteFrame(b []byte) error       { return p.n.WriteFrame(b) }
func (p faultPlainNIC) MTU() int                        { return p.n.MTU() }
func (p faultPlainNIC) MAC() hal.MAC                    { return p.n.MAC() }
func (p faultPlainNIC) Close() error                    { return p.n.Close() }
