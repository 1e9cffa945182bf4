package netstack

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// TCPConn is a TCP connection of a Stack. It implements net.Conn with
// deadlines, plus CloseRead and CloseWrite like *net.TCPConn. Errors are
// *net.OpError values wrapping an *os.SyscallError with the errno Linux
// would report, so errors.Is(err, syscall.ECONNRESET) works.
type TCPConn struct {
	sock
	laddr *net.TCPAddr
	raddr *net.TCPAddr

	readMu, writeMu sync.Mutex
}

var _ net.Conn = (*TCPConn)(nil)

func newTCPConn(st *Stack, ep tcpip.Endpoint, wq *waiter.Queue) *TCPConn {
	c := &TCPConn{}
	c.sock.init(st, ep, wq)
	if a, err := ep.GetLocalAddress(); err == nil {
		c.laddr = tcpAddrOf(a)
	}
	if a, err := ep.GetRemoteAddress(); err == nil {
		c.raddr = tcpAddrOf(a)
	}
	return c
}

func tcpAddrOf(a tcpip.FullAddress) *net.TCPAddr {
	ip := fromTCPAddr(a.Addr)
	if !ip.IsValid() {
		return &net.TCPAddr{Port: int(a.Port)}
	}
	return &net.TCPAddr{IP: ip.AsSlice(), Port: int(a.Port)}
}

func (c *TCPConn) opErr(op string, err error) error {
	return opErr(op, "tcp", c.laddr, c.raddr, err)
}

// Read implements net.Conn. It returns io.EOF once the peer has closed its
// side and all data has been read.
func (c *TCPConn) Read(b []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.isClosed() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if len(b) == 0 {
		return 0, nil // as package net: no wait for data that cannot be stored
	}
	var notify chan struct{}
	for {
		if c.isClosed() {
			return 0, c.opErr("read", net.ErrClosed)
		}
		if c.rd.passed() {
			return 0, c.opErr("read", errTimeout)
		}
		w := tcpip.SliceWriter(b)
		res, terr := c.ep.Read(&w, tcpip.ReadOptions{})
		switch terr.(type) {
		case nil:
			if res.Count > 0 {
				c.ep.ModerateRecvBuf(res.Count)
			}
			return res.Count, nil
		case *tcpip.ErrWouldBlock:
			if notify == nil {
				var e waiter.Entry
				e, notify = waiter.NewChannelEntry(waiter.ReadableEvents)
				c.wq.EventRegister(&e)
				defer c.wq.EventUnregister(&e)
				continue // recheck: data may have come before registering
			}
			select {
			case <-notify:
			case <-c.rd.done():
			case <-c.closed:
			}
		case *tcpip.ErrClosedForReceive:
			if c.isClosed() {
				return 0, c.opErr("read", net.ErrClosed)
			}
			return 0, io.EOF
		default:
			if c.isClosed() {
				return 0, c.opErr("read", net.ErrClosed)
			}
			return 0, c.opErr("read", sysErr("read", terr))
		}
	}
}

// Write implements net.Conn. It blocks until all of b is queued for
// sending, the write deadline passes or the connection fails.
func (c *TCPConn) Write(b []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.isClosed() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	var (
		n      int
		r      bytes.Reader
		notify chan struct{}
	)
	for n < len(b) {
		if c.wd.passed() {
			return n, c.opErr("write", errTimeout)
		}
		r.Reset(b[n:])
		m, terr := c.ep.Write(&r, tcpip.WriteOptions{})
		n += int(m)
		switch terr.(type) {
		case nil:
		case *tcpip.ErrWouldBlock:
			if notify == nil {
				var e waiter.Entry
				e, notify = waiter.NewChannelEntry(waiter.WritableEvents)
				c.wq.EventRegister(&e)
				defer c.wq.EventUnregister(&e)
				continue
			}
			select {
			case <-notify:
			case <-c.wd.done():
			case <-c.closed:
				return n, c.opErr("write", net.ErrClosed)
			}
		default:
			if c.isClosed() {
				return n, c.opErr("write", net.ErrClosed)
			}
			return n, c.opErr("write", sysErr("write", terr))
		}
	}
	return n, nil
}

// Close closes the connection: unsent data is still delivered, as with a
// socket closed without SO_LINGER. Pending Read and Write calls return.
func (c *TCPConn) Close() error {
	if !c.sock.close() {
		return c.opErr("close", net.ErrClosed)
	}
	return nil
}

// CloseRead shuts down the reading side.
func (c *TCPConn) CloseRead() error {
	if c.isClosed() {
		return c.opErr("close", net.ErrClosed)
	}
	if terr := c.ep.Shutdown(tcpip.ShutdownRead); terr != nil {
		return c.opErr("close", sysErr("shutdown", terr))
	}
	return nil
}

// CloseWrite shuts down the writing side: the peer reads io.EOF after the
// data already written.
func (c *TCPConn) CloseWrite() error {
	if c.isClosed() {
		return c.opErr("close", net.ErrClosed)
	}
	if terr := c.ep.Shutdown(tcpip.ShutdownWrite); terr != nil {
		return c.opErr("close", sysErr("shutdown", terr))
	}
	return nil
}

// SetNoDelay turns Nagle's algorithm off (true, the default) or on.
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	c.ep.SocketOptions().SetDelayOption(!noDelay)
	return nil
}

// SetKeepAlive turns TCP keep-alive probes on or off.
func (c *TCPConn) SetKeepAlive(on bool) error {
	c.ep.SocketOptions().SetKeepAlive(on)
	return nil
}

// LocalAddr implements net.Conn.
func (c *TCPConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr implements net.Conn.
func (c *TCPConn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline implements net.Conn.
func (c *TCPConn) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *TCPConn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline implements net.Conn.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

// TCPListener accepts TCP connections on a Stack. It implements
// net.Listener.
type TCPListener struct {
	st        *Stack
	ep        tcpip.Endpoint
	wq        *waiter.Queue
	addr      *net.TCPAddr
	dl        deadline
	closeOnce sync.Once
	closed    chan struct{}
}

var _ net.Listener = (*TCPListener)(nil)

// Accept waits for and returns the next connection.
func (l *TCPListener) Accept() (net.Conn, error) { return l.AcceptTCP() }

// AcceptTCP is Accept returning the concrete type.
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	var notify chan struct{}
	for {
		select {
		case <-l.closed:
			return nil, opErr("accept", "tcp", nil, l.addr, net.ErrClosed)
		default:
		}
		if l.dl.passed() {
			return nil, opErr("accept", "tcp", nil, l.addr, errTimeout)
		}
		ep, wq, terr := l.ep.Accept(nil)
		switch terr.(type) {
		case nil:
			return newTCPConn(l.st, ep, wq), nil
		case *tcpip.ErrWouldBlock:
			if notify == nil {
				var e waiter.Entry
				e, notify = waiter.NewChannelEntry(waiter.ReadableEvents)
				l.wq.EventRegister(&e)
				defer l.wq.EventUnregister(&e)
				continue
			}
			select {
			case <-notify:
			case <-l.closed:
			case <-l.dl.done():
			}
		default:
			select {
			case <-l.closed:
				return nil, opErr("accept", "tcp", nil, l.addr, net.ErrClosed)
			default:
			}
			return nil, opErr("accept", "tcp", nil, l.addr, sysErr("accept", terr))
		}
	}
}

// SetDeadline sets the deadline for Accept.
func (l *TCPListener) SetDeadline(t time.Time) error {
	l.dl.set(t)
	return nil
}

// Close stops listening; pending Accept calls return net.ErrClosed.
func (l *TCPListener) Close() error {
	var err error = opErr("close", "tcp", nil, l.addr, net.ErrClosed)
	l.closeOnce.Do(func() {
		err = nil
		close(l.closed)
		l.dl.stop()
		l.ep.Close()
	})
	return err
}

// Addr implements net.Listener.
func (l *TCPListener) Addr() net.Addr { return l.addr }
