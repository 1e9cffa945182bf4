package mem

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
)

// blockOnly hides every optional interface of the device it wraps.
type blockOnly struct{ hal.BlockDevice }

func newTestBlock(t *testing.T, sectors int64) *Block {
	t.Helper()
	b, err := NewBlock(sectors*512, BlockOptions{})
	require.NoError(t, err)
	return b
}

func TestFaultyBlockConformance(t *testing.T) {
	cases := []struct {
		name  string
		inner func(t *testing.T) hal.BlockDevice
	}{
		{"over Block", func(t *testing.T) hal.BlockDevice { return newTestBlock(t, 256) }},
		{"over a plain device", func(t *testing.T) hal.BlockDevice { return blockOnly{newTestBlock(t, 256)} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestBlockDevice(t, func(t *testing.T) hal.BlockDevice {
				return NewFaultyBlock(tc.inner(t), BlockFaults{Seed: 1})
			})
		})
	}
}

func TestErrInjectedIsIOError(t *testing.T) {
	assert.ErrorIs(t, ErrInjected, syscall.EIO)
	f := NewFaultyBlock(newTestBlock(t, 8), BlockFaults{BadSectors: []int64{0}})
	_, err := f.ReadAt(make([]byte, 512), 0)
	assert.ErrorIs(t, err, ErrInjected)
	assert.ErrorIs(t, err, syscall.EIO)
	assert.NotErrorIs(t, err, hal.ErrClosed)
}

func TestFaultyBlockBadSectors(t *testing.T) {
	cases := []struct {
		name    string
		bad     []int64
		first   int64 // first sector of the I/O
		sectors int64
		wantN   int // bytes transferred
		wantErr bool
	}{
		{"clean range", []int64{10}, 0, 8, 8 * 512, false},
		{"bad first sector", []int64{4}, 4, 4, 0, true},
		{"bad in the middle", []int64{6}, 4, 4, 2 * 512, true},
		{"bad last sector", []int64{7}, 4, 4, 3 * 512, true},
		{"two bad, the first counts", []int64{9, 6}, 4, 8, 2 * 512, true},
		{"bad just after the range", []int64{8}, 4, 4, 4 * 512, false},
		{"many bad sectors elsewhere", []int64{20, 21, 22, 23, 24, 25, 26, 27, 28, 29}, 4, 2, 2 * 512, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := newTestBlock(t, 32)
			old := blockTestPattern(1, 32*512)
			_, err := inner.WriteAt(old, 0)
			require.NoError(t, err)
			f := NewFaultyBlock(inner, BlockFaults{BadSectors: tc.bad})

			buf := make([]byte, tc.sectors*512)
			n, err := f.ReadAt(buf, tc.first*512)
			assert.Equal(t, tc.wantN, n)
			assert.Equal(t, old[tc.first*512:tc.first*512+int64(n)], buf[:n])
			checkInjected(t, err, tc.wantErr)

			data := blockTestPattern(2, int(tc.sectors*512))
			n, err = f.WriteAt(data, tc.first*512)
			assert.Equal(t, tc.wantN, n)
			checkInjected(t, err, tc.wantErr)
			want := append([]byte(nil), old...)
			copy(want[tc.first*512:], data[:n])
			assert.Equal(t, want, inner.Image(), "exactly the sectors before the bad one are written")

			err = f.Discard(tc.first*512, tc.sectors*512)
			checkInjected(t, err, tc.wantErr)
		})
	}
}

func checkInjected(t *testing.T, err error, want bool) {
	t.Helper()
	if want {
		assert.ErrorIs(t, err, ErrInjected)
		assert.ErrorIs(t, err, syscall.EIO)
	} else {
		assert.NoError(t, err)
	}
}

func TestFaultyBlockRuntimeChanges(t *testing.T) {
	f := NewFaultyBlock(newTestBlock(t, 16), BlockFaults{})
	buf := make([]byte, 512)
	read := func() error { _, err := f.ReadAt(buf, 3*512); return err }
	write := func() error { _, err := f.WriteAt(buf, 3*512); return err }

	steps := []struct {
		name    string
		change  func()
		wantErr bool
	}{
		{"healthy", func() {}, false},
		{"FailSector", func() { f.FailSector(3) }, true},
		{"HealSector", func() { f.HealSector(3) }, false},
		{"FailSector elsewhere", func() { f.FailSector(4) }, false},
		{"FailAll", f.FailAll, true},
		{"Heal", f.Heal, false},
		{"rates of one", func() { f.SetErrorRates(1, 1, 1) }, true},
		{"rates of zero", func() { f.SetErrorRates(0, 0, 0) }, false},
		{"rates out of range clamp", func() { f.SetErrorRates(5, 5, 5) }, true},
		{"Heal clears rates", f.Heal, false},
	}
	for _, s := range steps {
		s.change()
		checkInjected(t, read(), s.wantErr)
		checkInjected(t, write(), s.wantErr)
		checkInjected(t, f.Sync(), s.wantErr && s.name != "FailSector")
		if t.Failed() {
			t.Fatalf("after step %q", s.name)
		}
	}
	st := f.Stats()
	assert.Positive(t, st.ReadErrors)
	assert.Positive(t, st.WriteErrors)
	assert.Positive(t, st.SyncErrors)
}

// faultTrace runs a fixed sequence of calls and records which failed and
// how much each transferred.
func faultTrace(t *testing.T, seed uint64) []int {
	t.Helper()
	f := NewFaultyBlock(newTestBlock(t, 64), BlockFaults{
		Seed: seed, ReadErrorRate: 0.3, WriteErrorRate: 0.3, SyncErrorRate: 0.3,
	})
	var trace []int
	buf := make([]byte, 16*512)
	for i := range 300 {
		var n int
		var err error
		switch i % 3 {
		case 0:
			n, err = f.ReadAt(buf, 0)
		case 1:
			n, err = f.WriteAt(buf, 512)
		case 2:
			err = f.Sync()
		}
		if err != nil {
			require.ErrorIs(t, err, ErrInjected)
			n = -1 - n
		}
		trace = append(trace, n)
	}
	return trace
}

func TestFaultyBlockReproducible(t *testing.T) {
	a, b := faultTrace(t, 42), faultTrace(t, 42)
	assert.Equal(t, a, b, "same seed, same faults")
	assert.NotEqual(t, a, faultTrace(t, 43), "another seed, other faults")

	failures, partial := 0, 0
	for i, n := range a {
		if n < 0 {
			failures++
			if i%3 == 1 && n < -1 {
				partial++
			}
		}
	}
	assert.Greater(t, failures, 50, "a 30%% rate over 300 calls")
	assert.Less(t, failures, 150)
	assert.Positive(t, partial, "some failed writes transfer a prefix")
}

func TestFaultyBlockOptionalInterfaces(t *testing.T) {
	t.Run("discard unsupported", func(t *testing.T) {
		f := NewFaultyBlock(blockOnly{newTestBlock(t, 8)}, BlockFaults{})
		err := f.Discard(0, 512)
		assert.ErrorIs(t, err, errors.ErrUnsupported)
	})
	t.Run("FUA emulated with write and sync", func(t *testing.T) {
		inner := newTestBlock(t, 8)
		f := NewFaultyBlock(blockOnly{inner}, BlockFaults{})
		data := blockTestPattern(9, 1024)
		n, err := f.WriteAtFUA(data, 1024)
		require.NoError(t, err)
		assert.Equal(t, 1024, n)
		assert.Equal(t, uint64(1), inner.Stats().Syncs)
		assert.Equal(t, data, inner.Image()[1024:2048])
	})
	t.Run("FUA passed through", func(t *testing.T) {
		inner := newTestBlock(t, 8)
		f := NewFaultyBlock(inner, BlockFaults{})
		_, err := f.WriteAtFUA(make([]byte, 512), 0)
		require.NoError(t, err)
		assert.Zero(t, inner.Stats().Syncs)
	})
	t.Run("read-only follows the inner device", func(t *testing.T) {
		ro, err := NewBlock(4096, BlockOptions{ReadOnly: true})
		require.NoError(t, err)
		f := NewFaultyBlock(ro, BlockFaults{})
		assert.True(t, f.ReadOnly())
		_, err = f.WriteAt(make([]byte, 512), 0)
		assert.ErrorIs(t, err, hal.ErrReadOnly)
		assert.False(t, NewFaultyBlock(newTestBlock(t, 8), BlockFaults{}).ReadOnly())
	})
	t.Run("Close closes the inner device", func(t *testing.T) {
		inner := newTestBlock(t, 8)
		f := NewFaultyBlock(inner, BlockFaults{})
		require.NoError(t, f.Close())
		require.NoError(t, f.Close())
		assert.ErrorIs(t, inner.Sync(), hal.ErrClosed)
		assert.ErrorIs(t, f.Discard(0, 512), hal.ErrClosed)
	})
}

// blockTestClock fires every timer at once and records the delays asked.
type blockTestClock struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (c *blockTestClock) Now() time.Time           { return time.Time{} }
func (c *blockTestClock) Monotonic() time.Duration { return 0 }
func (c *blockTestClock) AfterFunc(d time.Duration, f func()) hal.Timer {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.mu.Unlock()
	go f()
	return nil
}

func TestFaultyBlockLatency(t *testing.T) {
	clk := &blockTestClock{}
	f := NewFaultyBlock(newTestBlock(t, 8), BlockFaults{Latency: 3 * time.Millisecond, Clock: clk})
	buf := make([]byte, 512)
	_, err := f.ReadAt(buf, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(buf, 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Discard(0, 512))
	f.SetLatency(time.Millisecond)
	_, err = f.WriteAtFUA(buf, 0)
	require.NoError(t, err)
	f.SetLatency(0)
	_, err = f.ReadAt(buf, 0)
	require.NoError(t, err)
	_, err = f.ReadAt(buf, 1) // rejected before any delay
	require.ErrorIs(t, err, hal.ErrMisaligned)
	clk.mu.Lock()
	defer clk.mu.Unlock()
	assert.Equal(t, []time.Duration{
		3 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond, time.Millisecond,
	}, clk.delays)
}

func TestFaultyBlockZeroLength(t *testing.T) {
	f := NewFaultyBlock(newTestBlock(t, 8), BlockFaults{ReadErrorRate: 1, WriteErrorRate: 1, BadSectors: []int64{0}})
	f.FailAll()
	n, err := f.ReadAt(nil, 0)
	assert.NoError(t, err)
	assert.Zero(t, n)
	n, err = f.WriteAt(nil, 512)
	assert.NoError(t, err)
	assert.Zero(t, n)
	assert.NoError(t, f.Discard(8*512, 0))
	assert.Zero(t, f.Stats())
}

// TestFaultyBlockLatencyManualClock checks that with a manual clock an
// operation completes only once the clock has advanced by the latency.
func TestFaultyBlockLatencyManualClock(t *testing.T) {
	clk := NewClock(time.Unix(0, 0))
	inner := newTestBlock(t, 8)
	f := NewFaultyBlock(inner, BlockFaults{Latency: 10 * time.Millisecond, Clock: clk})
	data := blockTestPattern(4, 512)
	done := make(chan error, 1)
	go func() {
		_, err := f.WriteAt(data, 0)
		done <- err
	}()
	require.NoError(t, clk.WaitForTimers(t.Context(), 1))
	clk.Advance(9 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("write completed before its latency elapsed: %v", err)
	default:
	}
	assert.Zero(t, inner.Stats().Writes, "the write waits before reaching the device")
	clk.Advance(time.Millisecond)
	require.NoError(t, <-done)
	assert.Equal(t, data, inner.Image()[:512])
}
