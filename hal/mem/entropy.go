package mem

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"

	"github.com/anykernel/anykernel/hal"
)

// Entropy is a deterministic [hal.Entropy]: a ChaCha8 stream from
// math/rand/v2 keyed by a 64-bit seed, so a test or simulation that draws
// random bytes (TCP initial sequence numbers, DHCP transaction IDs, UUIDs)
// behaves the same on every run with the same seed.
//
// It is for simulation only. Anyone who knows the seed can predict every
// byte, so it deliberately breaks the hal.Entropy promise of unpredictable
// bytes: never give it to code that protects real secrets.
//
// Read is safe for concurrent use; concurrent readers share one stream, so
// which reader gets which bytes depends on scheduling.
type Entropy struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

var _ hal.Entropy = (*Entropy)(nil)

// NewEntropy returns the stream for seed. Equal seeds give equal streams.
func NewEntropy(seed uint64) *Entropy {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return &Entropy{r: rand.NewChaCha8(key)}
}

// Read fills p with the next len(p) bytes of the stream. It never fails.
func (e *Entropy) Read(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.r.Read(p)
}
