package dhcp

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"sync"
	"time"
)

// PacketConn is the part of a UDP socket that [ConnTransport] needs. Both
// *net.UDPConn and the UDP sockets of this module's netstack have it.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	SetReadDeadline(t time.Time) error
}

// ConnTransport is a [Transport] over a UDP socket that the caller has
// already bound to port 68 on the interface being configured, with
// broadcast sending allowed. It interrupts a Receive whose context ends by
// moving the read deadline into the past, so it owns the socket's read
// deadline. It does not close the socket.
type ConnTransport struct {
	conn PacketConn
	mu   sync.Mutex // one Receive at a time, so deadlines do not interleave
}

var _ Transport = (*ConnTransport)(nil)

// NewConnTransport returns a Transport over conn.
func NewConnTransport(conn PacketConn) *ConnTransport {
	return &ConnTransport{conn: conn}
}

// pastDeadline is a read deadline before any clock's present, even that of
// a simulated clock started at the zero time.
var pastDeadline = time.Time{}.AddDate(-1, 0, 0)

// Send writes pkt to dst.
func (t *ConnTransport) Send(ctx context.Context, pkt []byte, dst netip.AddrPort) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := t.conn.WriteToUDPAddrPort(pkt, dst)
	return err
}

// Receive reads the next datagram, returning ctx's error once ctx is done.
func (t *ConnTransport) Receive(ctx context.Context, buf []byte) (int, netip.AddrPort, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		if err := t.conn.SetReadDeadline(time.Time{}); err != nil {
			return 0, netip.AddrPort{}, err
		}
		stop := context.AfterFunc(ctx, func() { _ = t.conn.SetReadDeadline(pastDeadline) })
		if err := ctx.Err(); err != nil {
			stop()
			return 0, netip.AddrPort{}, err
		}
		n, src, err := t.conn.ReadFromUDPAddrPort(buf)
		if !stop() {
			// The deadline may have been moved after the read returned: the
			// next Receive clears it again.
			if ctx.Err() != nil {
				return 0, netip.AddrPort{}, ctx.Err()
			}
		}
		if err == nil {
			return n, src, nil
		}
		if ctx.Err() != nil {
			return 0, netip.AddrPort{}, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// A deadline left by a callback of an earlier Receive that ran
			// late: read again.
			continue
		}
		return 0, netip.AddrPort{}, err
	}
}
