package mem_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/mem"
)

func TestEntropyConformance(t *testing.T) {
	haltest.TestEntropy(t, mem.NewEntropy(1))
}

func TestEntropyDeterministic(t *testing.T) {
	tests := []struct {
		name     string
		a, b     uint64
		wantSame bool
	}{
		{name: "same seed same stream", a: 42, b: 42, wantSame: true},
		{name: "zero seed is a valid seed", a: 0, b: 0, wantSame: true},
		{name: "different seeds differ", a: 1, b: 2, wantSame: false},
		{name: "high bits of the seed matter", a: 1, b: 1 | 1<<63, wantSame: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, y := make([]byte, 64), make([]byte, 64)
			n, err := mem.NewEntropy(tt.a).Read(x)
			require.NoError(t, err)
			require.Equal(t, len(x), n)
			_, err = mem.NewEntropy(tt.b).Read(y)
			require.NoError(t, err)
			assert.Equal(t, tt.wantSame, bytes.Equal(x, y))
			assert.NotEqual(t, make([]byte, 64), x, "stream must not be all zeros")
		})
	}
}

func TestEntropyChunkingDoesNotChangeStream(t *testing.T) {
	whole := make([]byte, 1000)
	_, err := mem.NewEntropy(7).Read(whole)
	require.NoError(t, err)

	e := mem.NewEntropy(7)
	var pieces []byte
	for _, n := range []int{1, 7, 8, 9, 31, 0, 200, 744} {
		b := make([]byte, n)
		got, err := e.Read(b)
		require.NoError(t, err)
		require.Equal(t, n, got)
		pieces = append(pieces, b...)
	}
	assert.Equal(t, whole, pieces)
}

func TestEntropyConcurrentReaders(t *testing.T) {
	e := mem.NewEntropy(99)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			b := make([]byte, 33)
			for range 100 {
				n, err := e.Read(b)
				assert.NoError(t, err)
				assert.Equal(t, len(b), n)
			}
		})
	}
	wg.Wait()
}
