// Package haltest holds conformance suites for implementations of the hal
// device contracts, in the spirit of testing/fstest.TestFS and
// golang.org/x/net/nettest.TestConn.
//
// Any backend — ours (hal/mem, hal/host, hal/virtio) or a user's own — checks
// itself against the contract in one line:
//
//	func TestMyNIC(t *testing.T) {
//		haltest.TestNIC(t, func(t *testing.T) (a, b hal.NIC) { return myPair(t) })
//	}
//
// Each suite runs named subtests; a failure names the clause of the contract
// that was broken. The suites use only the public hal interfaces and the
// standard library, finish in well under a second on in-memory devices, and
// never depend on wall-clock timing beyond generous timeouts for detecting
// hangs.
package haltest
