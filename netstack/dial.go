package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// listenBacklog is the accept queue length of listeners (Linux's somaxconn
// default).
const listenBacklog = 4096

// Dial connects to address on the named network ("tcp", "tcp4", "tcp6",
// "udp", "udp4", "udp6"), as net.Dial does. The address may name a host,
// which is resolved with the stack's DNS servers.
func (st *Stack) Dial(network, address string) (net.Conn, error) {
	return st.DialContext(context.Background(), network, address)
}

// DialContext is Dial with a context; it fits http.Transport.DialContext.
func (st *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	kind, fam, err := parseNetwork(network)
	if err != nil {
		return nil, opErr("dial", network, nil, nil, err)
	}
	addrs, err := st.resolve(ctx, network, fam, address, false)
	if err != nil {
		return nil, opErr("dial", network, nil, nil, err)
	}
	var first error
	for _, ap := range addrs {
		var c net.Conn
		if kind == "tcp" {
			c, err = st.dialTCP(ctx, network, ap)
		} else {
			c, err = st.dialUDP(network, ap)
		}
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// DialTCP connects to a TCP address.
func (st *Stack) DialTCP(ctx context.Context, raddr netip.AddrPort) (*TCPConn, error) {
	return st.dialTCP(ctx, "tcp", raddr)
}

func (st *Stack) dialTCP(ctx context.Context, network string, ap netip.AddrPort) (*TCPConn, error) {
	dst := net.TCPAddrFromAddrPort(ap)
	fail := func(err error) (*TCPConn, error) { return nil, opErr("dial", network, nil, dst, err) }
	full, err := st.fullAddr(ap.Addr(), ap.Port())
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctxErr(err))
	}
	wq := new(waiter.Queue)
	ep, terr := st.s.NewEndpoint(tcp.ProtocolNumber, protoOf(ap.Addr().Unmap()), wq)
	if terr != nil {
		return fail(sysErr("socket", terr))
	}
	ep.SocketOptions().SetDelayOption(st.opts.TCP.Delay)
	e, notify := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
	wq.EventRegister(&e)
	defer wq.EventUnregister(&e)
	terr = ep.Connect(full)
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return fail(ctxErr(ctx.Err()))
		case <-notify:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return fail(sysErr("connect", terr))
	}
	return newTCPConn(st, ep, wq), nil
}

func (st *Stack) dialUDP(network string, ap netip.AddrPort) (*UDPConn, error) {
	dst := net.UDPAddrFromAddrPort(ap)
	fail := func(err error) (*UDPConn, error) { return nil, opErr("dial", network, nil, dst, err) }
	full, err := st.fullAddr(ap.Addr(), ap.Port())
	if err != nil {
		return fail(err)
	}
	wq := new(waiter.Queue)
	ep, terr := st.s.NewEndpoint(udp.ProtocolNumber, protoOf(ap.Addr().Unmap()), wq)
	if terr != nil {
		return fail(sysErr("socket", terr))
	}
	if terr := ep.Connect(full); terr != nil {
		ep.Close()
		return fail(sysErr("connect", terr))
	}
	return newUDPConn(st, ep, wq), nil
}

// Listen listens for TCP connections, as net.Listen does. An empty or
// unspecified host with network "tcp" listens on every IPv4 and IPv6
// address; port 0 picks a free port.
func (st *Stack) Listen(network, address string) (net.Listener, error) {
	return st.ListenTCP(network, address)
}

// ListenTCP is Listen returning the concrete type.
func (st *Stack) ListenTCP(network, address string) (*TCPListener, error) {
	kind, fam, err := parseNetwork(network)
	if err == nil && kind != "tcp" {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, opErr("listen", network, nil, nil, err)
	}
	ep, wq, laddr, err := st.bind(tcp.ProtocolNumber, network, fam, address)
	if err != nil {
		return nil, err
	}
	if terr := ep.Listen(listenBacklog); terr != nil {
		ep.Close()
		return nil, opErr("listen", network, nil, laddr, sysErr("listen", terr))
	}
	l := &TCPListener{st: st, ep: ep, wq: wq, closed: make(chan struct{})}
	l.dl.init(st.clock)
	if a, terr := ep.GetLocalAddress(); terr == nil {
		l.addr = tcpAddrOf(a)
	}
	return l, nil
}

// ListenPacket opens a UDP socket, as net.ListenPacket does.
func (st *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	return st.ListenUDP(network, address)
}

// ListenUDP is ListenPacket returning the concrete type.
func (st *Stack) ListenUDP(network, address string) (*UDPConn, error) {
	kind, fam, err := parseNetwork(network)
	if err == nil && kind != "udp" {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, opErr("listen", network, nil, nil, err)
	}
	ep, wq, _, err := st.bind(udp.ProtocolNumber, network, fam, address)
	if err != nil {
		return nil, err
	}
	return newUDPConn(st, ep, wq), nil
}

// bind makes an endpoint bound to address.
func (st *Stack) bind(proto tcpip.TransportProtocolNumber, network string, fam int, address string) (tcpip.Endpoint, *waiter.Queue, net.Addr, error) {
	addrs, err := st.resolve(context.Background(), network, fam, address, true)
	if err != nil {
		return nil, nil, nil, opErr("listen", network, nil, nil, err)
	}
	ap := addrs[0]
	var laddr net.Addr = net.TCPAddrFromAddrPort(ap)
	if proto == udp.ProtocolNumber {
		laddr = net.UDPAddrFromAddrPort(ap)
	}
	netProto := ipv6.ProtocolNumber
	any := !ap.Addr().IsValid() || ap.Addr().IsUnspecified()
	switch {
	case any && fam == 4, !any && ap.Addr().Unmap().Is4():
		netProto = ipv4.ProtocolNumber
	}
	wq := new(waiter.Queue)
	ep, terr := st.s.NewEndpoint(proto, netProto, wq)
	if terr != nil {
		return nil, nil, nil, opErr("listen", network, nil, laddr, sysErr("socket", terr))
	}
	if netProto == ipv6.ProtocolNumber {
		ep.SocketOptions().SetV6Only(fam == 6)
	}
	ep.SocketOptions().SetReuseAddress(true) // as package net sets SO_REUSEADDR
	full := tcpip.FullAddress{Port: ap.Port()}
	if !any {
		full, err = st.fullAddr(ap.Addr(), ap.Port())
		if err != nil {
			ep.Close()
			return nil, nil, nil, opErr("listen", network, nil, laddr, err)
		}
	}
	if terr := ep.Bind(full); terr != nil {
		ep.Close()
		return nil, nil, nil, opErr("listen", network, nil, laddr, sysErr("bind", terr))
	}
	return ep, wq, laddr, nil
}

// parseNetwork splits "tcp4" into ("tcp", 4); family 0 means either.
func parseNetwork(network string) (kind string, fam int, err error) {
	switch network {
	case "tcp", "udp":
		return network, 0, nil
	case "tcp4", "udp4":
		return network[:3], 4, nil
	case "tcp6", "udp6":
		return network[:3], 6, nil
	}
	return "", 0, net.UnknownNetworkError(network)
}

var wellKnownPorts = map[string]uint16{
	"domain": 53, "http": 80, "https": 443, "bootps": 67, "bootpc": 68, "ntp": 123,
}

// resolve turns "host:port" into candidate addresses of the wanted family.
// For listening, an empty host yields the unspecified address.
func (st *Stack) resolve(ctx context.Context, network string, fam int, address string, listen bool) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := parsePort(portStr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		if listen {
			return []netip.AddrPort{netip.AddrPortFrom(netip.Addr{}, port)}, nil
		}
		host = "localhost"
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !familyOK(a, fam) {
			return nil, &net.AddrError{Err: "address family mismatch", Addr: host}
		}
		return []netip.AddrPort{netip.AddrPortFrom(a, port)}, nil
	}
	ips, err := st.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	for _, a := range ips {
		if familyOK(a, fam) {
			out = append(out, netip.AddrPortFrom(a, port))
		}
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	return out, nil
}

func familyOK(a netip.Addr, fam int) bool {
	switch fam {
	case 4:
		return a.Unmap().Is4()
	case 6:
		return a.Is6() && !a.Is4In6()
	}
	return true
}

func parsePort(s string) (uint16, error) {
	if p, ok := wellKnownPorts[s]; ok {
		return p, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, &net.AddrError{Err: "invalid port", Addr: s}
	}
	return uint16(n), nil
}

// fullAddr converts an address and port, resolving an IPv6 zone (a NIC
// name or number) to its NIC.
func (st *Stack) fullAddr(a netip.Addr, port uint16) (tcpip.FullAddress, error) {
	full := tcpip.FullAddress{Addr: tcpAddr(a), Port: port}
	if z := a.Zone(); z != "" {
		id, err := st.nicByName(z)
		if err != nil {
			return full, err
		}
		full.NIC = tcpip.NICID(id)
	}
	return full, nil
}

func (st *Stack) nicByName(name string) (NICID, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, n := range st.nics {
		if n.name == name {
			return id, nil
		}
	}
	if n, err := strconv.Atoi(name); err == nil {
		if _, ok := st.nics[NICID(n)]; ok {
			return NICID(n), nil
		}
	}
	return 0, &net.AddrError{Err: "unknown zone", Addr: name}
}

// Resolver returns a resolver that sends its queries over this stack to
// DNSServers. Host files of the process are still consulted first, as
// package net does.
func (st *Stack) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			servers := st.DNSServers()
			if len(servers) == 0 {
				return nil, opErr("dial", network, nil, nil, errNoDNS)
			}
			s := servers[int(st.dnsNext.Add(1))%len(servers)]
			if network == "tcp" || network == "tcp4" || network == "tcp6" {
				return st.dialTCP(ctx, network, s)
			}
			return st.dialUDP(network, s)
		},
	}
}

var errNoDNS = errors.New("no DNS servers configured")

// LookupHost resolves a host name to addresses: "localhost" to the
// loopback addresses, anything else through Resolver.
func (st *Stack) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if host == "localhost" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, nil
	}
	ips, err := st.Resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", host, err)
	}
	return ips, nil
}
