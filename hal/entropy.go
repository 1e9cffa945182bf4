package hal

// Entropy is a source of cryptographically secure random bytes (getrandom,
// RDRAND/RDSEED, virtio-rng).
//
// Read fills all of p and returns len(p), nil, or returns an error; it never
// returns a short count without an error. It may block until the source is
// seeded. It is safe for concurrent use. A backend with no good source of
// randomness must fail rather than return predictable bytes — with one
// exception: a simulation source for tests (such as hal/mem's seeded
// entropy) is predictable by design and must say so in its documentation.
type Entropy interface {
	Read(p []byte) (n int, err error)
}
