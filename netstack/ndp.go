package netstack

import (
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ndpDispatcher receives gVisor's NDP events (RFC 4861 router discovery,
// RFC 4862 SLAAC, RFC 8106 DNS options) and turns them into routes and DNS
// servers. gVisor forbids calling into the stack from these callbacks, so
// changes are posted to the stack's event goroutine.
type ndpDispatcher Stack

var _ ipv6.NDPDispatcher = (*ndpDispatcher)(nil)

func (d *ndpDispatcher) st() *Stack { return (*Stack)(d) }

func (d *ndpDispatcher) OnDuplicateAddressDetectionResult(tcpip.NICID, tcpip.Address, stack.DADResult) {
}

func (d *ndpDispatcher) OnOffLinkRouteUpdated(nic tcpip.NICID, sub tcpip.Subnet, gw tcpip.Address, _ header.NDPRoutePreference) {
	r := tcpip.Route{Destination: sub, Gateway: gw, NIC: nic}
	st := d.st()
	st.post(func() {
		st.s.RemoveRoutes(func(x tcpip.Route) bool { return x == r })
		st.s.AddRoute(r)
	})
}

func (d *ndpDispatcher) OnOffLinkRouteInvalidated(nic tcpip.NICID, sub tcpip.Subnet, gw tcpip.Address) {
	r := tcpip.Route{Destination: sub, Gateway: gw, NIC: nic}
	st := d.st()
	st.post(func() { st.s.RemoveRoutes(func(x tcpip.Route) bool { return x == r }) })
}

func (d *ndpDispatcher) OnOnLinkPrefixDiscovered(nic tcpip.NICID, sub tcpip.Subnet) {
	r := tcpip.Route{Destination: sub, NIC: nic}
	st := d.st()
	st.post(func() {
		st.s.RemoveRoutes(func(x tcpip.Route) bool { return x == r })
		st.s.AddRoute(r)
	})
}

func (d *ndpDispatcher) OnOnLinkPrefixInvalidated(nic tcpip.NICID, sub tcpip.Subnet) {
	r := tcpip.Route{Destination: sub, NIC: nic}
	st := d.st()
	st.post(func() { st.s.RemoveRoutes(func(x tcpip.Route) bool { return x == r }) })
}

func (d *ndpDispatcher) OnAutoGenAddress(tcpip.NICID, tcpip.AddressWithPrefix) stack.AddressDispatcher {
	return nil
}

func (d *ndpDispatcher) OnAutoGenAddressDeprecated(tcpip.NICID, tcpip.AddressWithPrefix) {}

func (d *ndpDispatcher) OnAutoGenAddressInvalidated(tcpip.NICID, tcpip.AddressWithPrefix) {}

func (d *ndpDispatcher) OnRecursiveDNSServerOption(nic tcpip.NICID, addrs []tcpip.Address, life time.Duration) {
	st := d.st()
	st.mu.Lock()
	defer st.mu.Unlock()
	var list []netip.AddrPort
	for _, a := range addrs {
		na, ok := netip.AddrFromSlice(a.AsSlice())
		if !ok {
			continue
		}
		if na.IsLinkLocalUnicast() {
			na = na.WithZone(st.zoneOf(NICID(nic)))
		}
		list = append(list, netip.AddrPortFrom(na, 53))
	}
	st.dns.set(sourceRA, NICID(nic), list, st.clock.Monotonic()+life)
}

func (d *ndpDispatcher) OnDNSSearchListOption(tcpip.NICID, []string, time.Duration) {}

func (d *ndpDispatcher) OnDHCPv6Configuration(tcpip.NICID, ipv6.DHCPv6ConfigurationFromNDPRA) {}
