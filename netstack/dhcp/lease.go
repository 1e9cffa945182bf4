package dhcp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Lease is what a DHCPACK granted: an address and the configuration that
// came with it.
type Lease struct {
	// Addr is the assigned address with the prefix length of the subnet
	// mask (option 1), or of the address's class when the server sent none.
	Addr netip.Prefix

	// Router is the default gateway: the default route of option 121 when
	// the server sent classless routes (RFC 3442 §3 says option 3 is then
	// ignored), otherwise the first router of option 3. It is the zero Addr
	// when there is none.
	Router netip.Addr

	// Routes are the classless static routes of option 121, default route
	// included.
	Routes []Route

	// DNS lists the domain name servers of option 6, in order of preference.
	DNS []netip.Addr

	// Domain is the domain name of option 15.
	Domain string

	// Server is the server identifier (option 54): renewals go to it.
	Server netip.Addr

	// Broadcast is the broadcast address of option 28, if sent.
	Broadcast netip.Addr

	// MTU is the interface MTU of option 26, 0 if not sent.
	MTU uint16

	// Lease is the lease duration (option 51), [Infinite] for a lease that
	// never expires; T1 and T2 are the renewal and rebinding times (options
	// 58 and 59, or 0.5 and 0.875 of Lease, RFC 2131 §4.4.5), all counted
	// from Acquired.
	Lease, T1, T2 time.Duration

	// Acquired is the clock's Monotonic time at which the client sent the
	// request this lease answers; the lease runs from then (RFC 2131 §4.4.1).
	Acquired time.Duration
}

// clone returns l with its own copies of the slices.
func (l Lease) clone() Lease {
	l.Routes = slices.Clone(l.Routes)
	l.DNS = slices.Clone(l.DNS)
	return l
}

// Expiry returns the Monotonic time at which the lease ends, [Infinite]
// for an infinite lease.
func (l Lease) Expiry() time.Duration { return addSat(l.Acquired, l.Lease) }

// RenewAt and RebindAt return the Monotonic times of T1 and T2.
func (l Lease) RenewAt() time.Duration { return addSat(l.Acquired, l.T1) }

// RebindAt returns the Monotonic time of T2.
func (l Lease) RebindAt() time.Duration { return addSat(l.Acquired, l.T2) }

// addSat adds d to t, saturating at Infinite.
func addSat(t, d time.Duration) time.Duration {
	if d >= Infinite-t {
		return Infinite
	}
	return t + d
}

// leaseFromAck extracts the lease a DHCPACK grants, the request for it
// having been sent at acquired.
func leaseFromAck(m *Message, acquired time.Duration) (Lease, error) {
	l := Lease{Acquired: acquired}
	if !m.YIAddr.Is4() || m.YIAddr.IsUnspecified() || m.YIAddr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return l, malformed("ack: unusable yiaddr %v", m.YIAddr)
	}
	o := m.Options
	var err error
	if l.Server, err = o.ServerIdentifier(); err != nil {
		return l, fmt.Errorf("dhcp: ack: %w", err)
	}
	if l.Lease, err = o.LeaseTime(); err != nil {
		return l, fmt.Errorf("dhcp: ack: %w", err)
	}
	if l.Lease == 0 {
		return l, malformed("ack: lease time 0")
	}
	bits, err := o.SubnetMask()
	if err != nil {
		bits = naturalBits(m.YIAddr)
	}
	l.Addr = netip.PrefixFrom(m.YIAddr, bits)

	l.T1, l.T2 = defaultTimes(l.Lease)
	t1, err1 := o.RenewalTime()
	t2, err2 := o.RebindingTime()
	// Zero times are ignored: they would make the client renew in a loop.
	if err2 == nil && t2 > 0 && t2 <= l.Lease {
		l.T2 = t2
	}
	if err1 == nil && t1 > 0 && t1 <= l.T2 {
		l.T1 = t1
	}
	if l.T1 > l.T2 {
		l.T1, l.T2 = defaultTimes(l.Lease)
	}

	if rs, err := o.ClasslessStaticRoutes(); err == nil {
		l.Routes = rs
		for _, r := range rs {
			if r.Dest.Bits() == 0 {
				l.Router = r.Gateway
				break
			}
		}
	} else if rs, err := o.Routers(); err == nil {
		l.Router = rs[0]
	}
	l.DNS, _ = o.DomainNameServers()
	l.Domain, _ = o.DomainName()
	l.Broadcast, _ = o.BroadcastAddress()
	l.MTU, _ = o.InterfaceMTU()
	return l, nil
}

// defaultTimes returns T1 and T2 for a lease (RFC 2131 §4.4.5).
func defaultTimes(lease time.Duration) (t1, t2 time.Duration) {
	if lease == Infinite {
		return Infinite, Infinite
	}
	return lease / 2, lease / 8 * 7
}

// naturalBits returns the prefix length of a's address class (RFC 791).
func naturalBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}
