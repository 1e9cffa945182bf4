package netstack

import (
	"fmt"
	"io"
	"sync"

	"github.com/anykernel/anykernel/hal"
)

// testNIC is one end of a minimal lossless in-process link used until the
// shared in-memory backend can be imported here.
type testNIC struct {
	mac  hal.MAC
	mtu  int
	rx   chan []byte
	peer *testNIC
	once sync.Once
	done chan struct{}
}

func newTestPair(mtu int) (*testNIC, *testNIC) {
	a := &testNIC{mac: hal.MAC{2, 0, 0, 0, 0, 1}, mtu: mtu, rx: make(chan []byte, 1024), done: make(chan struct{})}
	b := &testNIC{mac: hal.MAC{2, 0, 0, 0, 0, 2}, mtu: mtu, rx: make(chan []byte, 1024), done: make(chan struct{})}
	a.peer, b.peer = b, a
	return a, b
}

func (n *testNIC) ReadFrame(p []byte) (int, error) {
	select {
	case f := <-n.rx:
		if len(f) > len(p) {
			return 0, io.ErrShortBuffer
		}
		return copy(p, f), nil
	case <-n.done:
		return 0, fmt.Errorf("test nic: %w", hal.ErrClosed)
	}
}

func (n *testNIC) WriteFrame(p []byte) error {
	if len(p) < hal.EthernetHeaderLen || len(p) > n.mtu+hal.EthernetHeaderLen {
		return hal.ErrFrameSize
	}
	select {
	case <-n.done:
		return hal.ErrClosed
	default:
	}
	f := append([]byte(nil), p...)
	select {
	case n.peer.rx <- f:
	case <-n.peer.done:
	case <-n.done:
		return hal.ErrClosed
	}
	return nil
}

func (n *testNIC) MTU() int     { return n.mtu }
func (n *testNIC) MAC() hal.MAC { return n.mac }
func (n *testNIC) Close() error {
	n.once.Do(func() { close(n.done) })
	return nil
}
