package netstack

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/anykernel/anykernel/netstack/dhcp"
)

// DHCPOptions configures RunDHCP. The zero value asks for any address,
// keeps the lease when RunDHCP returns and logs nothing.
type DHCPOptions struct {
	// Hostname, if set, is sent to the server (option 12).
	Hostname string

	// ReleaseOnExit releases the lease (DHCPRELEASE) when ctx ends and
	// removes the configuration it applied.
	ReleaseOnExit bool

	// OnLease and OnExpire, if set, are called after the stack has applied
	// or removed a lease.
	OnLease, OnExpire func(dhcp.Lease)

	// Logger receives the client's debug and warning records.
	Logger *slog.Logger
}

// RunDHCP configures a NIC with DHCPv4 (RFC 2131) until ctx is done: it
// obtains a lease, assigns its address with an on-link route, installs the
// default route and classless static routes, uses its DNS servers, and
// renews, rebinds or starts over as the lease requires. It returns nil when
// ctx ends, or an error if the client cannot run.
func (st *Stack) RunDHCP(ctx context.Context, id NICID, opts DHCPOptions) error {
	st.mu.Lock()
	n := st.nics[id]
	st.mu.Unlock()
	if n == nil || n.link == nil {
		return fmt.Errorf("netstack: dhcp: NIC %d: %w", id, errNoNIC)
	}
	conn, err := st.dhcpSocket(id)
	if err != nil {
		return err
	}
	defer conn.Close()

	a := &dhcpApplier{st: st, id: id}
	defer a.unspecified(false)
	a.unspecified(true)
	c := dhcp.NewClient(dhcp.Config{
		MAC:           n.link.nic.MAC(),
		Hostname:      opts.Hostname,
		Clock:         st.clock,
		Transport:     dhcp.NewConnTransport(conn),
		Broadcast:     true,
		ReleaseOnExit: opts.ReleaseOnExit,
		Logger:        opts.Logger,
		OnLease: func(l dhcp.Lease) {
			a.apply(l)
			if opts.OnLease != nil {
				opts.OnLease(l)
			}
		},
		OnExpire: func(l dhcp.Lease) {
			a.remove(l)
			if opts.OnExpire != nil {
				opts.OnExpire(l)
			}
		},
	})
	err = c.Run(ctx)
	if opts.ReleaseOnExit {
		if l, ok := c.Lease(); ok {
			a.remove(l)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netstack: dhcp on %s: %w", n.name, err)
	}
	return nil
}

// dhcpSocket opens UDP port 68 on the NIC alone, with broadcast allowed.
func (st *Stack) dhcpSocket(id NICID) (*UDPConn, error) {
	wq := new(waiter.Queue)
	ep, terr := st.s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, wq)
	if terr != nil {
		return nil, fmt.Errorf("netstack: dhcp socket: %w", sysErr("socket", terr))
	}
	ep.SocketOptions().SetBroadcast(true)
	ep.SocketOptions().SetReuseAddress(true)
	if terr := ep.SocketOptions().SetBindToDevice(int32(id)); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack: dhcp socket: %w", sysErr("setsockopt", terr))
	}
	if terr := ep.Bind(tcpip.FullAddress{Port: dhcp.ClientPort}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack: dhcp socket: %w", sysErr("bind", terr))
	}
	return newUDPConn(st, ep, wq), nil
}

// dhcpApplier applies leases to one NIC.
type dhcpApplier struct {
	st *Stack
	id NICID

	mu     sync.Mutex
	hasAny bool
}

// unspecified adds (or removes) 0.0.0.0 on the NIC: until it has an
// address, that is what lets gVisor send from 0.0.0.0 and accept the
// server's broadcast replies (RFC 2131 §4.1).
func (a *dhcpApplier) unspecified(add bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if add == a.hasAny {
		return
	}
	any := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{
		Address: tcpip.AddrFrom4([4]byte{}), PrefixLen: 0,
	}}
	if add {
		if a.st.s.AddProtocolAddress(tcpip.NICID(a.id), any, stack.AddressProperties{}) == nil {
			a.hasAny = true
		}
		return
	}
	_ = a.st.s.RemoveAddress(tcpip.NICID(a.id), any.AddressWithPrefix.Address)
	a.hasAny = false
}

func (a *dhcpApplier) apply(l dhcp.Lease) {
	st := a.st
	_ = st.AddAddress(a.id, l.Addr)
	a.unspecified(false)
	for _, r := range a.routes(l) {
		st.RemoveRoute(r)
		_ = st.AddRoute(r)
	}
	var dns []netip.AddrPort
	for _, d := range l.DNS {
		dns = append(dns, netip.AddrPortFrom(d, 53))
	}
	st.mu.Lock()
	st.dns.set(sourceDHCP, a.id, dns, 0)
	st.mu.Unlock()
}

func (a *dhcpApplier) remove(l dhcp.Lease) {
	st := a.st
	for _, r := range a.routes(l) {
		st.RemoveRoute(r)
	}
	_ = st.RemoveAddress(a.id, l.Addr)
	st.mu.Lock()
	st.dns.set(sourceDHCP, a.id, nil, 0)
	st.mu.Unlock()
	a.unspecified(true)
}

// routes lists the gateway routes a lease asks for.
func (a *dhcpApplier) routes(l dhcp.Lease) []Route {
	var out []Route
	if len(l.Routes) > 0 {
		for _, r := range l.Routes {
			if r.Gateway.IsValid() && !r.Gateway.IsUnspecified() {
				out = append(out, Route{Destination: r.Dest, Gateway: r.Gateway, NIC: a.id})
			} else {
				out = append(out, Route{Destination: r.Dest, NIC: a.id})
			}
		}
		return out
	}
	if l.Router.IsValid() {
		out = append(out, Route{Destination: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: l.Router, NIC: a.id})
	}
	return out
}
