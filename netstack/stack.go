package netstack

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/anykernel/anykernel/hal"
)

// Options configures a Stack. The zero value is a working stack on the
// operating system's clock and random source, with gVisor's TCP defaults and
// IPv6 stateless address autoconfiguration on.
type Options struct {
	// Clock drives every timer of the stack. Nil means the operating
	// system's clock. A manual clock (hal/mem) makes TCP's timers
	// deterministic.
	Clock hal.Clock

	// Entropy seeds initial sequence numbers, port choice and the other
	// randomness the stack needs. Nil means crypto/rand.
	Entropy hal.Entropy

	// TCP holds the TCP tuning knobs.
	TCP TCPOptions

	// DisableSLAAC turns off IPv6 router discovery and stateless address
	// autoconfiguration (RFC 4861, RFC 4862). Link-local addresses are
	// always generated from the MAC.
	DisableSLAAC bool

	// DNSServers are the resolvers Resolver and Dial use for host names, in
	// addition to any learnt through DHCP or router advertisements.
	DNSServers []netip.AddrPort
}

// TCPOptions are the TCP knobs. Zero values keep gVisor's defaults, noted
// beside each field.
type TCPOptions struct {
	// CongestionControl is "reno" or "cubic". Empty means "reno".
	CongestionControl string

	// DisableSACK turns off selective acknowledgements (RFC 2018), which
	// are on by default.
	DisableSACK bool

	// DisableRACK turns off RACK-TLP loss detection (RFC 8985), which is
	// on by default.
	DisableRACK bool

	// SendBuffer and ReceiveBuffer bound the per-connection buffers. Zero
	// fields mean a 4 KiB minimum and, for sending, a 4 MiB default and
	// 16 MiB maximum, for receiving a 1 MiB default and 16 MiB maximum.
	//
	// The send buffer holds what the application wrote and the peer has
	// not acknowledged; it takes memory only while that much is
	// outstanding, and (unlike Linux's) it does not grow by itself, so its
	// default is what a bulk sender gets: 4 MiB keeps a TAP device busy
	// while acknowledgements travel (1 MiB sent a quarter less). The
	// receive buffer starts at its default and grows towards its maximum as
	// a fast reader keeps up (see DisableReceiveBufferTuning); the maximum
	// bounds the window and so the rate of one stream: at 16 MiB a kernel
	// sender over TAP stays ahead of the receiving stack instead of waiting
	// on each window update, which at 4 MiB halved bulk receive throughput.
	SendBuffer, ReceiveBuffer BufferSizes

	// DisableReceiveBufferTuning turns off automatic growth of the receive
	// buffer towards its maximum as the application reads.
	DisableReceiveBufferTuning bool

	// MinRTO is the smallest retransmission timeout. Zero means 200 ms.
	MinRTO time.Duration

	// Delay enables Nagle's algorithm on new connections. By default, as
	// in package net, it is off (TCP_NODELAY).
	Delay bool
}

// BufferSizes are the minimum, default and maximum sizes of a buffer in
// bytes.
type BufferSizes struct {
	Min, Default, Max int
}

// NICID identifies a NIC within a Stack.
type NICID int32

// NICConfig configures one NIC added with AddNIC. The zero value brings the
// NIC up with an IPv6 link-local address only, using whatever offload the
// device supports.
type NICConfig struct {
	// Name is the NIC's name, for diagnostics. Empty means "nicN".
	Name string

	// Addresses are assigned at once; each also installs an on-link route
	// for its subnet, as Linux does.
	Addresses []netip.Prefix

	// DisableOffload keeps a hal.OffloadNIC in plain mode: every frame is
	// at most MTU bytes and every checksum is computed by the stack.
	DisableOffload bool

	// TxQueue is how many outgoing packets may wait for the NIC's transmit
	// goroutine, which writes them to the device while the goroutines that
	// produced them go on. Zero means DefaultTxQueue. A sender finding the
	// queue full waits for the transmit goroutine to empty it, as it would
	// wait for the device itself with SyncTx: nothing is dropped.
	TxQueue int

	// SyncTx writes each packet to the device on the goroutine that sends
	// it, with no queue and no transmit goroutine. That saves a goroutine
	// hand-off per packet, which suits request/response traffic, but the
	// sender then also waits for the device. Over TAP (medians of five
	// interleaved runs on two CPUs): 2-3% more HTTP requests per second,
	// 7% less bulk send and 12% less bulk receive throughput; on receive,
	// gVisor's TCP processor then writes each ACK itself, and the kernel
	// processes the ACK inside that write.
	SyncTx bool
}

// DefaultTxQueue is NICConfig.TxQueue's default, the txqueuelen Linux gives
// Ethernet devices.
const DefaultTxQueue = 1000

// Route sends packets for Destination through NIC, to Gateway if it is
// valid and directly on the link otherwise.
type Route struct {
	Destination netip.Prefix
	Gateway     netip.Addr
	NIC         NICID
}

// Stack is a TCP/IP stack over one or more hal.NICs. Its methods are safe
// for concurrent use.
type Stack struct {
	s     *stack.Stack
	clock hal.Clock
	opts  Options

	mu     sync.Mutex
	nics   map[NICID]*nicState
	nextID NICID
	dns    dnsServers
	closed bool

	dnsNext       atomic.Uint32 // rotates through DNS servers between resolver dials
	droppedEvents atomic.Uint64 // NDP events lost to a full queue

	events chan func()
	done   chan struct{}
	wg     sync.WaitGroup
}

type nicState struct {
	id   NICID
	name string
	link *link
}

// New builds a stack with no NICs.
func New(opts Options) (*Stack, error) {
	clk := opts.Clock
	if clk == nil {
		clk = newOSClock()
	}
	var ent io.Reader = crand.Reader
	if opts.Entropy != nil {
		ent = opts.Entropy
	}
	var seed [8]byte
	if _, err := io.ReadFull(ent, seed[:]); err != nil {
		return nil, fmt.Errorf("netstack: entropy: %w", err)
	}
	st := &Stack{
		clock:  clk,
		opts:   opts,
		nics:   make(map[NICID]*nicState),
		nextID: LoopbackNIC + 1,
		events: make(chan func(), 1024),
		done:   make(chan struct{}),
	}
	ndp := ipv6.NDPConfigurations{}
	if !opts.DisableSLAAC {
		ndp = ipv6.NDPConfigurations{
			MaxRtrSolicitations:     3,
			RtrSolicitationInterval: 4 * time.Second,
			MaxRtrSolicitationDelay: time.Second,
			HandleRAs:               ipv6.HandlingRAsEnabledWhenForwardingDisabled,
			DiscoverDefaultRouters:  true,
			DiscoverOnLinkPrefixes:  true,
			AutoGenGlobalAddresses:  true,
		}
	}
	st.s = stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocol,
			ipv6.NewProtocolWithOptions(ipv6.Options{
				NDPConfigs:       ndp,
				AutoGenLinkLocal: true,
				NDPDisp:          (*ndpDispatcher)(st),
			}),
			arp.NewProtocol,
		},
		TransportProtocols: []stack.TransportProtocolFactory{
			tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6,
		},
		Clock:      clock{clk},
		RandSource: &lockedSource{src: rand.NewSource(int64(binary.LittleEndian.Uint64(seed[:])))},
		SecureRNG:  ent,
	})
	if err := st.applyTCP(opts.TCP); err != nil {
		st.s.Close()
		st.s.Wait()
		return nil, err
	}
	if err := st.addLoopback(); err != nil {
		st.s.Close()
		st.s.Wait()
		return nil, err
	}
	st.wg.Add(1)
	go st.runEvents()
	return st, nil
}

// lockedSource makes a math/rand source safe for the concurrent use gVisor
// makes of it.
type lockedSource struct {
	mu  sync.Mutex
	src rand.Source
}

func (s *lockedSource) Int63() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src.Int63()
}

func (s *lockedSource) Seed(seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src.Seed(seed)
}

// LoopbackNIC is the NIC every stack has: "lo", with 127.0.0.1/8 and ::1.
// NICs added with AddNIC are numbered from LoopbackNIC+1.
const LoopbackNIC NICID = 1

func (st *Stack) addLoopback() error {
	if terr := st.s.CreateNICWithOptions(tcpip.NICID(LoopbackNIC), loopback.New(), stack.NICOptions{Name: "lo"}); terr != nil {
		return fmt.Errorf("netstack: loopback: %w", sysErr("ioctl", terr))
	}
	st.nics[LoopbackNIC] = &nicState{id: LoopbackNIC, name: "lo"}
	for _, p := range []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")} {
		if err := st.AddAddress(LoopbackNIC, p); err != nil {
			return err
		}
	}
	st.s.AddRoute(tcpip.Route{Destination: mustSubnet(netip.MustParsePrefix("::1/128")), NIC: tcpip.NICID(LoopbackNIC)})
	return nil
}

// applyTCP sets the TCP protocol options.
func (st *Stack) applyTCP(o TCPOptions) error {
	set := func(what string, opt tcpip.SettableTransportProtocolOption) error {
		if err := st.s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return fmt.Errorf("netstack: TCP %s: %w", what, sysErr("setsockopt", err))
		}
		return nil
	}
	if o.CongestionControl != "" {
		cc := tcpip.CongestionControlOption(o.CongestionControl)
		if err := set("congestion control "+o.CongestionControl, &cc); err != nil {
			return err
		}
	}
	sack := tcpip.TCPSACKEnabled(!o.DisableSACK)
	if err := set("SACK", &sack); err != nil {
		return err
	}
	if o.DisableRACK {
		rec := tcpip.TCPRecovery(0)
		if err := set("RACK", &rec); err != nil {
			return err
		}
	}
	snd := bufRange(o.SendBuffer, defaultSendBuffer)
	if err := set("send buffer", &snd); err != nil {
		return err
	}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption(bufRange(o.ReceiveBuffer, defaultReceiveBuffer))
	if err := set("receive buffer", &rcv); err != nil {
		return err
	}
	mod := tcpip.TCPModerateReceiveBufferOption(!o.DisableReceiveBufferTuning)
	if err := set("receive buffer tuning", &mod); err != nil {
		return err
	}
	if o.MinRTO > 0 {
		v := tcpip.TCPMinRTOOption(o.MinRTO)
		if err := set("minimum RTO", &v); err != nil {
			return err
		}
	}
	return nil
}

// Default buffer sizes; see TCPOptions.SendBuffer.
var (
	defaultSendBuffer    = BufferSizes{Min: 4 << 10, Default: 4 << 20, Max: 16 << 20}
	defaultReceiveBuffer = BufferSizes{Min: 4 << 10, Default: 1 << 20, Max: 16 << 20}
)

// bufRange fills b's zero fields from def. A default taken from def gives
// way to an explicit minimum or maximum; an explicit default stretches the
// range around it.
func bufRange(b BufferSizes, def BufferSizes) tcpip.TCPSendBufferSizeRangeOption {
	r := tcpip.TCPSendBufferSizeRangeOption{Min: def.Min, Default: def.Default, Max: def.Max}
	if b.Min > 0 {
		r.Min = b.Min
	}
	if b.Default > 0 {
		r.Default = b.Default
	}
	if b.Max > 0 {
		r.Max = b.Max
	}
	if b.Default == 0 {
		r.Default = min(max(r.Default, r.Min), r.Max)
	}
	if r.Default < r.Min {
		r.Default = r.Min
	}
	if r.Max < r.Default {
		r.Max = r.Default
	}
	return r
}

// runEvents applies, outside the stack's locks, the configuration changes
// that stack callbacks (NDP) may not make themselves.
func (st *Stack) runEvents() {
	defer st.wg.Done()
	for {
		select {
		case f := <-st.events:
			f()
		case <-st.done:
			return
		}
	}
}

// post queues f for runEvents without blocking the caller (a stack
// callback holding stack locks). Once the stack is closing, or if a burst
// overflows the queue, the event is dropped: NDP repeats its information in
// every router advertisement.
func (st *Stack) post(f func()) {
	select {
	case <-st.done:
		return
	default:
	}
	select {
	case st.events <- f:
	default:
		st.droppedEvents.Add(1)
	}
}

// AddNIC attaches nic to the stack, brings it up and assigns cfg's
// addresses. The stack owns nic from then on: Close closes it.
func (st *Stack) AddNIC(nic hal.NIC, cfg NICConfig) (NICID, error) {
	want := hal.Offload(0)
	if !cfg.DisableOffload {
		want = hal.OffloadTxCsum | hal.OffloadTxTSO4 | hal.OffloadTxTSO6 |
			hal.OffloadRxCsum | hal.OffloadRxTSO4 | hal.OffloadRxTSO6
	}
	queue := cfg.TxQueue
	switch {
	case queue < 0:
		return 0, fmt.Errorf("netstack: add NIC: TxQueue %d is negative", queue)
	case cfg.SyncTx:
		queue = 0
	case queue == 0:
		queue = DefaultTxQueue
	}
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return 0, fmt.Errorf("netstack: add NIC: %w", hal.ErrClosed)
	}
	id := st.nextID
	st.nextID++
	st.mu.Unlock()

	l, err := newLink(nic, want, queue)
	if err != nil {
		return 0, fmt.Errorf("netstack: add NIC: offload: %w", err)
	}
	name := cfg.Name
	if name == "" {
		name = fmt.Sprintf("nic%d", id)
	}
	if terr := st.s.CreateNICWithOptions(tcpip.NICID(id), ethernet.New(l), stack.NICOptions{Name: name}); terr != nil {
		return 0, fmt.Errorf("netstack: add NIC %s: %w", name, sysErr("ioctl", terr))
	}
	st.mu.Lock()
	st.nics[id] = &nicState{id: id, name: name, link: l}
	st.mu.Unlock()
	// Link-local IPv6 traffic stays on its link (RFC 4291 §2.5.6).
	st.s.AddRoute(tcpip.Route{Destination: mustSubnet(netip.MustParsePrefix("fe80::/64")), NIC: tcpip.NICID(id)})
	for _, p := range cfg.Addresses {
		if err := st.AddAddress(id, p); err != nil {
			return id, err
		}
	}
	return id, nil
}

// AddAddress assigns p's address to the NIC and adds an on-link route for
// p's subnet.
func (st *Stack) AddAddress(id NICID, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("netstack: add address: invalid prefix %v", p)
	}
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
	pa := tcpip.ProtocolAddress{
		Protocol: protoOf(p.Addr()),
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpAddr(p.Addr()),
			PrefixLen: p.Bits(),
		},
	}
	if terr := st.s.AddProtocolAddress(tcpip.NICID(id), pa, stack.AddressProperties{}); terr != nil {
		return fmt.Errorf("netstack: add address %v: %w", p, sysErr("ioctl", terr))
	}
	if p.Bits() < p.Addr().BitLen() {
		st.s.AddRoute(tcpip.Route{Destination: mustSubnet(p.Masked()), NIC: tcpip.NICID(id)})
	}
	return nil
}

// RemoveAddress removes an address and the on-link route added with it.
func (st *Stack) RemoveAddress(id NICID, p netip.Prefix) error {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
	if terr := st.s.RemoveAddress(tcpip.NICID(id), tcpAddr(p.Addr())); terr != nil {
		return fmt.Errorf("netstack: remove address %v: %w", p, sysErr("ioctl", terr))
	}
	if p.Bits() < p.Addr().BitLen() {
		sub := mustSubnet(p.Masked())
		st.s.RemoveRoutes(func(r tcpip.Route) bool {
			return r.NIC == tcpip.NICID(id) && r.Destination == sub && r.Gateway.Len() == 0
		})
	}
	return nil
}

// Addresses lists the addresses assigned to a NIC, including generated
// IPv6 link-local and SLAAC addresses.
func (st *Stack) Addresses(id NICID) []netip.Prefix {
	var out []netip.Prefix
	for _, pa := range st.s.AllAddresses()[tcpip.NICID(id)] {
		a, ok := netip.AddrFromSlice(pa.AddressWithPrefix.Address.AsSlice())
		if !ok {
			continue
		}
		out = append(out, netip.PrefixFrom(a, pa.AddressWithPrefix.PrefixLen))
	}
	return out
}

// AddRoute adds r to the routing table. Longer prefixes win; between routes
// of equal length the earlier one wins.
func (st *Stack) AddRoute(r Route) error {
	if !r.Destination.IsValid() {
		return fmt.Errorf("netstack: add route: invalid destination %v", r.Destination)
	}
	dst := netip.PrefixFrom(r.Destination.Addr().Unmap(), r.Destination.Bits()).Masked()
	tr := tcpip.Route{Destination: mustSubnet(dst), NIC: tcpip.NICID(r.NIC)}
	if r.Gateway.IsValid() {
		gw := r.Gateway.Unmap()
		if gw.Is4() != dst.Addr().Is4() {
			return fmt.Errorf("netstack: add route %v via %v: address families differ", dst, gw)
		}
		tr.Gateway = tcpAddr(gw)
	}
	if !st.s.HasNIC(tcpip.NICID(r.NIC)) {
		return fmt.Errorf("netstack: add route %v: no NIC %d", dst, r.NIC)
	}
	st.s.AddRoute(tr)
	return nil
}

// RemoveRoute removes routes equal to r and reports how many it removed.
func (st *Stack) RemoveRoute(r Route) int {
	dst := netip.PrefixFrom(r.Destination.Addr().Unmap(), r.Destination.Bits()).Masked()
	sub := mustSubnet(dst)
	var gw tcpip.Address
	if r.Gateway.IsValid() {
		gw = tcpAddr(r.Gateway.Unmap())
	}
	return st.s.RemoveRoutes(func(tr tcpip.Route) bool {
		return tr.Destination == sub && tr.Gateway == gw && tr.NIC == tcpip.NICID(r.NIC)
	})
}

// Routes returns the routing table in lookup order.
func (st *Stack) Routes() []Route {
	var out []Route
	for _, tr := range st.s.GetRouteTable() {
		id := tr.Destination.ID()
		a, _ := netip.AddrFromSlice(id.AsSlice())
		r := Route{Destination: netip.PrefixFrom(a, tr.Destination.Prefix()), NIC: NICID(tr.NIC)}
		if tr.Gateway.Len() > 0 {
			r.Gateway, _ = netip.AddrFromSlice(tr.Gateway.AsSlice())
		}
		out = append(out, r)
	}
	return out
}

// NICStats are counters of one NIC's link endpoint.
type NICStats struct {
	RxFrames       uint64 // frames read from the device
	RxDropped      uint64 // frames dropped before the stack: runts, bad checksums, bad headers
	RxErrors       uint64 // device read errors other than close
	TxFrames       uint64 // frames written
	TxSuperFrames  uint64 // of which segmentation-offload super-frames
	TxErrors       uint64 // frames the device refused
	Offload        hal.Offload
	ChecksumErrors uint64 // of RxDropped, frames with bad checksums
}

// NICStats returns the counters of a NIC.
func (st *Stack) NICStats(id NICID) (NICStats, error) {
	st.mu.Lock()
	n := st.nics[id]
	st.mu.Unlock()
	if n == nil || n.link == nil {
		return NICStats{}, fmt.Errorf("netstack: NIC %d: %w", id, errNoNIC)
	}
	s := n.link.stats
	return NICStats{
		RxFrames:       s.rxFrames.Load(),
		RxDropped:      s.rxDropShort.Load() + s.rxDropCsum.Load() + s.rxDropHdr.Load(),
		RxErrors:       s.rxErrors.Load(),
		TxFrames:       s.txFrames.Load(),
		TxSuperFrames:  s.txSuperFrames.Load(),
		TxErrors:       s.txErrors.Load(),
		Offload:        n.link.ol,
		ChecksumErrors: s.rxDropCsum.Load(),
	}, nil
}

var errNoNIC = errors.New("no such NIC")

// TCPStats are stack-wide TCP counters.
type TCPStats struct {
	SegmentsSent, SegmentsReceived, Retransmits, Timeouts, FastRecovery, SACKRecovery uint64
	ChecksumErrors, ResetsSent, ResetsReceived, ActiveOpens, PassiveOpens             uint64
}

// TCPStats returns the stack's TCP counters.
func (st *Stack) TCPStats() TCPStats {
	s := st.s.Stats().TCP
	return TCPStats{
		SegmentsSent:     s.SegmentsSent.Value(),
		SegmentsReceived: s.ValidSegmentsReceived.Value(),
		Retransmits:      s.Retransmits.Value(),
		Timeouts:         s.Timeouts.Value(),
		FastRecovery:     s.FastRecovery.Value(),
		SACKRecovery:     s.SACKRecovery.Value(),
		ChecksumErrors:   s.ChecksumErrors.Value(),
		ResetsSent:       s.ResetsSent.Value(),
		ResetsReceived:   s.ResetsReceived.Value(),
		ActiveOpens:      s.ActiveConnectionOpenings.Value(),
		PassiveOpens:     s.PassiveConnectionOpenings.Value(),
	}
}

// Close shuts the stack down: it aborts every connection, closes every NIC
// and waits for all of the stack's goroutines to finish. Calling Close again
// returns nil.
func (st *Stack) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	links := make([]*link, 0, len(st.nics))
	for _, n := range st.nics {
		if n.link != nil {
			links = append(links, n.link)
		}
	}
	st.mu.Unlock()
	close(st.done)
	st.s.Close() // aborts the connections
	// gVisor waits for link endpoints before closing them: close the
	// devices first so that the receive goroutines return.
	for _, l := range links {
		l.Close()
	}
	st.s.Wait()
	st.wg.Wait()
	return nil
}

// Clock returns the clock the stack runs on.
func (st *Stack) Clock() hal.Clock { return st.clock }

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

// tcpAddr converts an address; IPv4-mapped IPv6 addresses become IPv4.
func tcpAddr(a netip.Addr) tcpip.Address {
	a = a.Unmap()
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	if a.Is6() {
		return tcpip.AddrFrom16(a.As16())
	}
	return tcpip.Address{}
}

// fromTCPAddr converts back; the unspecified (empty) address becomes the
// zero netip.Addr.
func fromTCPAddr(a tcpip.Address) netip.Addr {
	na, ok := netip.AddrFromSlice(a.AsSlice())
	if !ok {
		return netip.Addr{}
	}
	return na.Unmap()
}

func mustSubnet(p netip.Prefix) tcpip.Subnet {
	p = p.Masked()
	addr := tcpAddr(p.Addr())
	bits := p.Addr().BitLen()
	mask := make([]byte, bits/8)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	sub, err := tcpip.NewSubnet(addr, tcpip.MaskFromBytes(mask))
	if err != nil {
		// p is masked, so the address has no bits outside the mask.
		panic(fmt.Sprintf("netstack: subnet %v: %v", p, err))
	}
	return sub
}
