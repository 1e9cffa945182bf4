package host_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/host"
)

func TestClockConformance(t *testing.T) {
	haltest.TestClock(t, func(t *testing.T) (hal.Clock, func(time.Duration)) {
		return host.NewClock(), time.Sleep
	})
}

// TestClockSameDeadlineOrder creates many timers with identical and
// near-identical deadlines; they must run in deadline order, ties in
// creation order, even though they become due together.
func TestClockSameDeadlineOrder(t *testing.T) {
	c := host.NewClock()
	const n = 200
	var mu sync.Mutex
	var got []int
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		// Pairs share a deadline; each pair is 1µs after the previous.
		c.AfterFunc(time.Millisecond+time.Duration(i/2)*time.Microsecond, func() {
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	assert.Equal(t, want, got)
}

func TestClockStopAndReset(t *testing.T) {
	c := host.NewClock()
	fired := make(chan int, 4)
	a := c.AfterFunc(time.Hour, func() { fired <- 1 })
	b := c.AfterFunc(time.Hour, func() { fired <- 2 })
	assert.True(t, a.Stop())
	assert.False(t, a.Stop())
	assert.True(t, b.Reset(0))
	assert.Equal(t, 2, <-fired)
	assert.False(t, b.Stop(), "already fired")
	assert.False(t, a.Reset(time.Microsecond), "was stopped")
	assert.Equal(t, 1, <-fired)
}

func TestClockMonotonicFromCreation(t *testing.T) {
	before := time.Now()
	c := host.NewClock()
	time.Sleep(time.Millisecond)
	m := c.Monotonic()
	require.Positive(t, m)
	assert.LessOrEqual(t, m, time.Since(before))
	assert.WithinDuration(t, time.Now(), c.Now(), time.Minute)
}

func TestEntropy(t *testing.T) {
	haltest.TestEntropy(t, host.NewEntropy())
}

func TestEntropyLarge(t *testing.T) {
	// Larger than one getrandom call returns (32 MiB - 1).
	p := make([]byte, 33<<20)
	n, err := host.NewEntropy().Read(p)
	require.NoError(t, err)
	require.Equal(t, len(p), n)
	// The tail must have been filled too: 4 KiB of zeros from a CSPRNG
	// has probability 2^-32768.
	tail := p[len(p)-4096:]
	zero := true
	for _, b := range tail {
		zero = zero && b == 0
	}
	assert.False(t, zero, "tail of a large read left unfilled")
}
