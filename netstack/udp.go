package netstack

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// UDPConn is a UDP socket of a Stack. It implements net.PacketConn, and
// net.Conn when it was made by Dial (connected to one peer).
type UDPConn struct {
	sock
	st    *Stack
	laddr *net.UDPAddr
	raddr *net.UDPAddr // nil unless connected

	readMu sync.Mutex
}

var (
	_ net.Conn       = (*UDPConn)(nil)
	_ net.PacketConn = (*UDPConn)(nil)
)

func newUDPConn(st *Stack, ep tcpip.Endpoint, wq *waiter.Queue) *UDPConn {
	c := &UDPConn{st: st}
	c.sock.init(st, ep, wq)
	if a, err := ep.GetLocalAddress(); err == nil {
		c.laddr = udpAddrOf(a)
	}
	if a, err := ep.GetRemoteAddress(); err == nil {
		c.raddr = udpAddrOf(a)
	}
	return c
}

func udpAddrOf(a tcpip.FullAddress) *net.UDPAddr {
	ip := fromTCPAddr(a.Addr)
	if !ip.IsValid() {
		return &net.UDPAddr{Port: int(a.Port)}
	}
	return &net.UDPAddr{IP: ip.AsSlice(), Port: int(a.Port)}
}

func (c *UDPConn) opErr(op string, dst net.Addr, err error) error {
	if dst == nil && c.raddr != nil {
		dst = c.raddr
	}
	return opErr(op, "udp", c.laddr, dst, err)
}

// Read implements net.Conn: it reads one datagram from the connected peer.
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.readFrom(b)
	return n, err
}

// ReadFrom implements net.PacketConn. A datagram longer than b is
// truncated, as recvfrom(2) does.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.readFrom(b)
	if err != nil {
		return n, nil, err
	}
	return n, a, nil
}

// ReadFromUDPAddrPort is ReadFrom returning a netip.AddrPort.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, a, err := c.readFrom(b)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	return n, a.AddrPort(), nil
}

func (c *UDPConn) readFrom(b []byte) (int, *net.UDPAddr, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	var notify chan struct{}
	for {
		if c.isClosed() {
			return 0, nil, c.opErr("read", nil, net.ErrClosed)
		}
		if c.rd.passed() {
			return 0, nil, c.opErr("read", nil, errTimeout)
		}
		w := tcpip.SliceWriter(b)
		res, terr := c.ep.Read(&w, tcpip.ReadOptions{NeedRemoteAddr: true})
		switch terr.(type) {
		case nil:
			return res.Count, udpAddrOf(res.RemoteAddr), nil
		case *tcpip.ErrWouldBlock:
			// A connected socket reports an ICMP error (port
			// unreachable) on its next receive, as Linux does.
			if lerr := c.ep.LastError(); lerr != nil {
				return 0, nil, c.opErr("read", nil, sysErr("recvfrom", lerr))
			}
			if notify == nil {
				var e waiter.Entry
				e, notify = waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventErr)
				c.wq.EventRegister(&e)
				defer c.wq.EventUnregister(&e)
				continue
			}
			select {
			case <-notify:
			case <-c.rd.done():
			case <-c.closed:
			}
		default:
			if c.isClosed() {
				return 0, nil, c.opErr("read", nil, net.ErrClosed)
			}
			return 0, nil, c.opErr("read", nil, sysErr("recvfrom", terr))
		}
	}
}

// Write implements net.Conn: it sends b as one datagram to the connected
// peer.
func (c *UDPConn) Write(b []byte) (int, error) {
	return c.writeTo(b, nil, nil)
}

// WriteTo implements net.PacketConn. addr must be a *net.UDPAddr.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, c.opErr("write", addr, net.InvalidAddrError("not a *net.UDPAddr"))
	}
	ap := ua.AddrPort()
	return c.writeTo(b, &ap, addr)
}

// WriteToUDPAddrPort is WriteTo with a netip.AddrPort.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, ap netip.AddrPort) (int, error) {
	return c.writeTo(b, &ap, net.UDPAddrFromAddrPort(ap))
}

func (c *UDPConn) writeTo(b []byte, to *netip.AddrPort, addr net.Addr) (int, error) {
	if c.isClosed() {
		return 0, c.opErr("write", addr, net.ErrClosed)
	}
	var opts tcpip.WriteOptions
	if to != nil {
		full, err := c.st.fullAddr(to.Addr(), to.Port())
		if err != nil {
			return 0, c.opErr("write", addr, err)
		}
		opts.To = &full
	}
	var (
		r      bytes.Reader
		notify chan struct{}
	)
	for {
		if c.wd.passed() {
			return 0, c.opErr("write", addr, errTimeout)
		}
		r.Reset(b)
		n, terr := c.ep.Write(&r, opts)
		switch terr.(type) {
		case nil:
			return int(n), nil
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
				return 0, c.opErr("write", addr, net.ErrClosed)
			}
		default:
			if c.isClosed() {
				return 0, c.opErr("write", addr, net.ErrClosed)
			}
			return 0, c.opErr("write", addr, sysErr("sendto", terr))
		}
	}
}

// SetBroadcast allows or forbids sending to broadcast addresses.
func (c *UDPConn) SetBroadcast(on bool) error {
	c.ep.SocketOptions().SetBroadcast(on)
	return nil
}

// Close implements net.Conn.
func (c *UDPConn) Close() error {
	if !c.sock.close() {
		return c.opErr("close", nil, net.ErrClosed)
	}
	return nil
}

// LocalAddr implements net.Conn.
func (c *UDPConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr implements net.Conn; it is nil for an unconnected socket.
func (c *UDPConn) RemoteAddr() net.Addr {
	if c.raddr == nil {
		return nil
	}
	return c.raddr
}

// SetDeadline implements net.Conn.
func (c *UDPConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *UDPConn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return nil
}

// SetWriteDeadline implements net.Conn.
func (c *UDPConn) SetWriteDeadline(t time.Time) error {
	c.wd.set(t)
	return nil
}
