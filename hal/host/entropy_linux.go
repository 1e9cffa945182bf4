package host

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/hal"
)

// Entropy reads the kernel's cryptographically secure random number
// generator with getrandom(2), blocking until it is seeded.
type Entropy struct{}

var _ hal.Entropy = (*Entropy)(nil)

// NewEntropy returns the getrandom(2) source.
func NewEntropy() *Entropy { return &Entropy{} }

// Read fills p; see hal.Entropy. Large requests take several calls (the
// kernel returns at most 32 MiB per call, less if interrupted by a signal).
func (e *Entropy) Read(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Getrandom(p[done:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("host: getrandom: %w", err)
		}
		if n <= 0 {
			return 0, fmt.Errorf("host: getrandom returned %d bytes", n)
		}
		done += n
	}
	return done, nil
}
