package netstack

import (
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// sock is what TCPConn and UDPConn share: the gVisor endpoint and its wait
// queue, the read and write deadlines, and the closed signal.
type sock struct {
	ep     tcpip.Endpoint
	wq     *waiter.Queue
	rd, wd deadline

	closeOnce sync.Once
	closed    chan struct{}
}

func (s *sock) init(st *Stack, ep tcpip.Endpoint, wq *waiter.Queue) {
	s.ep, s.wq = ep, wq
	s.closed = make(chan struct{})
	s.rd.init(st.clock)
	s.wd.init(st.clock)
}

func (s *sock) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// close signals pending calls, stops the deadlines and closes the endpoint.
// It reports false if the socket was already closed.
func (s *sock) close() bool {
	did := false
	s.closeOnce.Do(func() {
		did = true
		close(s.closed)
		s.rd.stop()
		s.wd.stop()
		s.ep.Close()
	})
	return did
}
