package netstack

import (
	"net/netip"
	"slices"
	"time"
)

// dnsSource says where a DNS server was learnt.
type dnsSource int

const (
	sourceRA dnsSource = iota
	sourceDHCP
)

type dnsEntry struct {
	src     dnsSource
	nic     NICID
	servers []netip.AddrPort
	expiry  time.Duration // on the stack's monotonic clock; 0 means never
}

// dnsServers are the dynamically learnt resolvers. Guarded by Stack.mu.
type dnsServers struct{ entries []dnsEntry }

func (d *dnsServers) set(src dnsSource, nic NICID, servers []netip.AddrPort, expiry time.Duration) {
	d.entries = slices.DeleteFunc(d.entries, func(e dnsEntry) bool { return e.src == src && e.nic == nic })
	if len(servers) > 0 {
		d.entries = append(d.entries, dnsEntry{src: src, nic: nic, servers: servers, expiry: expiry})
	}
}

func (d *dnsServers) list(now time.Duration) []netip.AddrPort {
	var out []netip.AddrPort
	for _, e := range d.entries {
		if e.expiry != 0 && now >= e.expiry {
			continue
		}
		for _, s := range e.servers {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// DNSServers returns the resolvers in use: Options.DNSServers first, then
// those learnt from DHCP and router advertisements that have not expired.
func (st *Stack) DNSServers() []netip.AddrPort {
	out := slices.Clone(st.opts.DNSServers)
	st.mu.Lock()
	learnt := st.dns.list(st.clock.Monotonic())
	st.mu.Unlock()
	for _, s := range learnt {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// zoneOf names a NIC for use as an IPv6 zone ("nic1" or its NICConfig.Name).
func (st *Stack) zoneOf(id NICID) string {
	if n := st.nics[id]; n != nil {
		return n.name
	}
	return ""
}
