package haltest

import (
	"bytes"
	"testing"

	"github.com/anykernel/anykernel/hal"
)

// TestEntropy checks the hal.Entropy contract: full reads, no repeats, and a
// byte distribution no worse than a crude sanity bound (it is not a
// statistical test suite).
func TestEntropy(t *testing.T, e hal.Entropy) {
	t.Helper()
	t.Run("FullReads", func(t *testing.T) {
		for _, n := range []int{0, 1, 7, 32, 256, 4096, 1 << 20} {
			p := make([]byte, n)
			k, err := e.Read(p)
			if err != nil || k != n {
				t.Fatalf("Read(%d bytes) = %d, %v; want %d, nil", n, k, err, n)
			}
		}
	})
	t.Run("NoRepeats", func(t *testing.T) {
		a, b := make([]byte, 32), make([]byte, 32)
		if _, err := e.Read(a); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Read(b); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, b) {
			t.Fatalf("two 32-byte reads returned the same bytes")
		}
	})
	t.Run("Distribution", func(t *testing.T) {
		p := make([]byte, 1<<16)
		if _, err := e.Read(p); err != nil {
			t.Fatal(err)
		}
		var counts [256]int
		for _, b := range p {
			counts[b]++
		}
		// Expected 256 per value; a broken source (constant, counter, mostly
		// zero) lands far outside these bounds.
		for v, c := range counts {
			if c < 128 || c > 400 {
				t.Fatalf("byte value %#02x occurs %d times in 64 KiB (expected about 256)", v, c)
			}
		}
	})
}
