package dhcp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Option is one DHCP option: its code and its value, without the code and
// length octets. A value longer than 255 octets is carried as several
// instances of the option (RFC 3396).
type Option struct {
	Code OptionCode
	Data []byte
}

// Options is the options of a message in the order they are sent, each
// code at most once. The typed accessors report an absent option with an
// error wrapping [ErrNoOption] and a malformed value with one wrapping
// [ErrMalformed]; the setters replace any previous value.
type Options []Option

// Get returns the value of the option with the given code.
func (o Options) Get(code OptionCode) ([]byte, bool) {
	for _, opt := range o {
		if opt.Code == code {
			return opt.Data, true
		}
	}
	return nil, false
}

// Has reports whether the option is present.
func (o Options) Has(code OptionCode) bool {
	_, ok := o.Get(code)
	return ok
}

// Set sets the option's value to a copy of data, keeping its position if it
// was present and appending it otherwise.
func (o *Options) Set(code OptionCode, data []byte) {
	data = bytes.Clone(data)
	if data == nil {
		data = []byte{}
	}
	for i := range *o {
		if (*o)[i].Code == code {
			(*o)[i].Data = data
			return
		}
	}
	*o = append(*o, Option{Code: code, Data: data})
}

// Del removes the option.
func (o *Options) Del(code OptionCode) {
	*o = slices.DeleteFunc(*o, func(opt Option) bool { return opt.Code == code })
}

// add appends data to the option's value (RFC 3396 §7 concatenation).
func (o *Options) add(code OptionCode, data []byte) {
	for i := range *o {
		if (*o)[i].Code == code {
			(*o)[i].Data = append((*o)[i].Data, data...)
			return
		}
	}
	*o = append(*o, Option{Code: code, Data: bytes.Clone(data)})
	if (*o)[len(*o)-1].Data == nil {
		(*o)[len(*o)-1].Data = []byte{}
	}
}

// appendTo encodes the options (without End).
func (o Options) appendTo(b []byte) ([]byte, error) {
	for _, opt := range o {
		if opt.Code == OptionPad || opt.Code == OptionEnd {
			return b, fmt.Errorf("dhcp: marshal: %v is not an option with a value", opt.Code)
		}
		data := opt.Data
		for {
			n := min(len(data), 255)
			b = append(b, byte(opt.Code), byte(n))
			b = append(b, data[:n]...)
			data = data[n:]
			if len(data) == 0 {
				break
			}
		}
	}
	return b, nil
}

// get returns the option's value, checking its length against
// [minLen, maxLen] and, if multiple > 0, that it is a multiple of it.
func (o Options) get(code OptionCode, minLen, maxLen, multiple int) ([]byte, error) {
	v, ok := o.Get(code)
	if !ok {
		return nil, fmt.Errorf("dhcp: %v (option %d): %w", code, code, ErrNoOption)
	}
	if len(v) < minLen || len(v) > maxLen || (multiple > 0 && len(v)%multiple != 0) {
		want := fmt.Sprintf("%d", minLen)
		switch {
		case minLen == maxLen:
		case multiple > 0:
			want = fmt.Sprintf("a non-zero multiple of %d", multiple)
		default:
			want = fmt.Sprintf("%d to %d", minLen, maxLen)
		}
		return nil, malformed("%v (option %d): length %d, want %s", code, code, len(v), want)
	}
	return v, nil
}

func (o Options) addr(code OptionCode) (netip.Addr, error) {
	v, err := o.get(code, 4, 4, 0)
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom4([4]byte(v)), nil
}

func (o Options) addrs(code OptionCode) ([]netip.Addr, error) {
	v, err := o.get(code, 4, math.MaxInt, 4)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(v)/4)
	for i := 0; i < len(v); i += 4 {
		out = append(out, netip.AddrFrom4([4]byte(v[i:i+4])))
	}
	return out, nil
}

func (o Options) u16(code OptionCode) (uint16, error) {
	v, err := o.get(code, 2, 2, 0)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(v), nil
}

func (o Options) seconds(code OptionCode) (time.Duration, error) {
	v, err := o.get(code, 4, 4, 0)
	if err != nil {
		return 0, err
	}
	s := binary.BigEndian.Uint32(v)
	if s == infiniteSeconds {
		return Infinite, nil
	}
	return time.Duration(s) * time.Second, nil
}

func (o Options) str(code OptionCode) (string, error) {
	v, err := o.get(code, 1, math.MaxInt, 0)
	if err != nil {
		return "", err
	}
	// Some servers count a terminating NUL in the length (RFC 2132 §2
	// says they should not).
	return strings.TrimRight(string(v), "\x00"), nil
}

func (o *Options) setAddr(code OptionCode, a netip.Addr) error {
	a4, err := addr4(a)
	if err != nil {
		return fmt.Errorf("dhcp: set %v: %w", code, err)
	}
	o.Set(code, a4[:])
	return nil
}

func (o *Options) setAddrs(code OptionCode, as []netip.Addr) error {
	b := make([]byte, 0, 4*len(as))
	for _, a := range as {
		if !a.Is4() {
			return fmt.Errorf("dhcp: set %v: %s is not an IPv4 address", code, a)
		}
		a4 := a.As4()
		b = append(b, a4[:]...)
	}
	o.Set(code, b)
	return nil
}

func (o *Options) setSeconds(code OptionCode, d time.Duration) {
	var s uint32
	switch {
	case d == Infinite || d >= infiniteSeconds*time.Second:
		s = infiniteSeconds
	case d > 0:
		s = uint32(d / time.Second)
	}
	o.Set(code, binary.BigEndian.AppendUint32(nil, s))
}

// MessageType returns option 53 (RFC 2132 §9.6).
func (o Options) MessageType() (MessageType, error) {
	v, err := o.get(OptionDHCPMessageType, 1, 1, 0)
	if err != nil {
		return 0, err
	}
	return MessageType(v[0]), nil
}

// SetMessageType sets option 53.
func (o *Options) SetMessageType(t MessageType) { o.Set(OptionDHCPMessageType, []byte{byte(t)}) }

// ServerIdentifier returns option 54 (RFC 2132 §9.7).
func (o Options) ServerIdentifier() (netip.Addr, error) { return o.addr(OptionServerIdentifier) }

// SetServerIdentifier sets option 54.
func (o *Options) SetServerIdentifier(a netip.Addr) error {
	return o.setAddr(OptionServerIdentifier, a)
}

// RequestedIPAddress returns option 50 (RFC 2132 §9.1).
func (o Options) RequestedIPAddress() (netip.Addr, error) {
	return o.addr(OptionRequestedIPAddress)
}

// SetRequestedIPAddress sets option 50.
func (o *Options) SetRequestedIPAddress(a netip.Addr) error {
	return o.setAddr(OptionRequestedIPAddress, a)
}

// LeaseTime returns option 51 (RFC 2132 §9.2); 0xffffffff is [Infinite].
func (o Options) LeaseTime() (time.Duration, error) { return o.seconds(OptionIPAddressLeaseTime) }

// SetLeaseTime sets option 51 in whole seconds ([Infinite] and anything
// beyond 2³²-1 s encode as infinity, negative durations as 0).
func (o *Options) SetLeaseTime(d time.Duration) { o.setSeconds(OptionIPAddressLeaseTime, d) }

// RenewalTime returns option 58, T1 (RFC 2132 §9.11).
func (o Options) RenewalTime() (time.Duration, error) { return o.seconds(OptionRenewalTimeValue) }

// SetRenewalTime sets option 58.
func (o *Options) SetRenewalTime(d time.Duration) { o.setSeconds(OptionRenewalTimeValue, d) }

// RebindingTime returns option 59, T2 (RFC 2132 §9.12).
func (o Options) RebindingTime() (time.Duration, error) {
	return o.seconds(OptionRebindingTimeValue)
}

// SetRebindingTime sets option 59.
func (o *Options) SetRebindingTime(d time.Duration) { o.setSeconds(OptionRebindingTimeValue, d) }

// SubnetMask returns option 1 (RFC 2132 §3.3) as a prefix length. A mask
// whose one bits are not contiguous is malformed.
func (o Options) SubnetMask() (int, error) {
	a, err := o.addr(OptionSubnetMask)
	if err != nil {
		return 0, err
	}
	m := binary.BigEndian.Uint32(a.AsSlice())
	ones := 0
	for m&(1<<31) != 0 {
		ones++
		m <<= 1
	}
	if m != 0 {
		return 0, malformed("%v (option %d): %s is not a contiguous mask", OptionSubnetMask, OptionSubnetMask, a)
	}
	return ones, nil
}

// SetSubnetMask sets option 1 to the mask of a prefix of the given length
// (0 to 32).
func (o *Options) SetSubnetMask(bits int) error {
	if bits < 0 || bits > 32 {
		return fmt.Errorf("dhcp: set %v: prefix length %d out of range", OptionSubnetMask, bits)
	}
	var m uint32
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	o.Set(OptionSubnetMask, binary.BigEndian.AppendUint32(nil, m))
	return nil
}

// Routers returns option 3 (RFC 2132 §3.5), in order of preference.
func (o Options) Routers() ([]netip.Addr, error) { return o.addrs(OptionRouter) }

// SetRouters sets option 3.
func (o *Options) SetRouters(as ...netip.Addr) error { return o.setAddrs(OptionRouter, as) }

// DomainNameServers returns option 6 (RFC 2132 §3.8), in order of
// preference.
func (o Options) DomainNameServers() ([]netip.Addr, error) {
	return o.addrs(OptionDomainNameServer)
}

// SetDomainNameServers sets option 6.
func (o *Options) SetDomainNameServers(as ...netip.Addr) error {
	return o.setAddrs(OptionDomainNameServer, as)
}

// DomainName returns option 15 (RFC 2132 §3.17).
func (o Options) DomainName() (string, error) { return o.str(OptionDomainName) }

// SetDomainName sets option 15.
func (o *Options) SetDomainName(s string) { o.Set(OptionDomainName, []byte(s)) }

// HostName returns option 12 (RFC 2132 §3.14).
func (o Options) HostName() (string, error) { return o.str(OptionHostName) }

// SetHostName sets option 12.
func (o *Options) SetHostName(s string) { o.Set(OptionHostName, []byte(s)) }

// Message returns option 56 (RFC 2132 §9.9): a server's explanation, as in
// a DHCPNAK.
func (o Options) Message() (string, error) { return o.str(OptionMessage) }

// SetMessage sets option 56.
func (o *Options) SetMessage(s string) { o.Set(OptionMessage, []byte(s)) }

// ClientIdentifier returns option 61 (RFC 2132 §9.14): a type octet then
// the identifier (type 1 and a MAC address, for Ethernet).
func (o Options) ClientIdentifier() ([]byte, error) {
	return o.get(OptionClientIdentifier, 2, math.MaxInt, 0)
}

// SetClientIdentifier sets option 61.
func (o *Options) SetClientIdentifier(id []byte) { o.Set(OptionClientIdentifier, id) }

// ParameterRequestList returns option 55 (RFC 2132 §9.8).
func (o Options) ParameterRequestList() ([]OptionCode, error) {
	v, err := o.get(OptionParameterRequestList, 1, math.MaxInt, 0)
	if err != nil {
		return nil, err
	}
	out := make([]OptionCode, len(v))
	for i, c := range v {
		out[i] = OptionCode(c)
	}
	return out, nil
}

// SetParameterRequestList sets option 55.
func (o *Options) SetParameterRequestList(codes ...OptionCode) {
	b := make([]byte, len(codes))
	for i, c := range codes {
		b[i] = byte(c)
	}
	o.Set(OptionParameterRequestList, b)
}

// MaximumMessageSize returns option 57 (RFC 2132 §9.10); values below 576
// are malformed.
func (o Options) MaximumMessageSize() (uint16, error) {
	v, err := o.u16(OptionMaximumMessageSize)
	if err == nil && v < MinMessageSize {
		return 0, malformed("%v (option %d): %d is below the minimum %d", OptionMaximumMessageSize, OptionMaximumMessageSize, v, MinMessageSize)
	}
	return v, err
}

// SetMaximumMessageSize sets option 57.
func (o *Options) SetMaximumMessageSize(n uint16) {
	o.Set(OptionMaximumMessageSize, binary.BigEndian.AppendUint16(nil, n))
}

// InterfaceMTU returns option 26 (RFC 2132 §5.1); values below 68 are
// malformed.
func (o Options) InterfaceMTU() (uint16, error) {
	v, err := o.u16(OptionInterfaceMTU)
	if err == nil && v < 68 {
		return 0, malformed("%v (option %d): %d is below the minimum 68", OptionInterfaceMTU, OptionInterfaceMTU, v)
	}
	return v, err
}

// SetInterfaceMTU sets option 26.
func (o *Options) SetInterfaceMTU(mtu uint16) {
	o.Set(OptionInterfaceMTU, binary.BigEndian.AppendUint16(nil, mtu))
}

// BroadcastAddress returns option 28 (RFC 2132 §5.3).
func (o Options) BroadcastAddress() (netip.Addr, error) { return o.addr(OptionBroadcastAddress) }

// SetBroadcastAddress sets option 28.
func (o *Options) SetBroadcastAddress(a netip.Addr) error {
	return o.setAddr(OptionBroadcastAddress, a)
}

// Route is a static route: packets for Dest go to Gateway, or directly on
// the link when Gateway is 0.0.0.0.
type Route struct {
	Dest    netip.Prefix
	Gateway netip.Addr
}

// ClasslessStaticRoutes returns option 121 (RFC 3442 §2). Destination bits
// beyond the prefix length are cleared.
func (o Options) ClasslessStaticRoutes() ([]Route, error) {
	v, err := o.get(OptionClasslessStaticRoute, 5, math.MaxInt, 0)
	if err != nil {
		return nil, err
	}
	var out []Route
	for i := 0; i < len(v); {
		width := int(v[i])
		if width > 32 {
			return nil, malformed("%v (option %d): prefix length %d at offset %d", OptionClasslessStaticRoute, OptionClasslessStaticRoute, width, i)
		}
		sig := (width + 7) / 8
		if i+1+sig+4 > len(v) {
			return nil, malformed("%v (option %d): route at offset %d is truncated", OptionClasslessStaticRoute, OptionClasslessStaticRoute, i)
		}
		var dst [4]byte
		copy(dst[:], v[i+1:i+1+sig])
		gw := netip.AddrFrom4([4]byte(v[i+1+sig : i+1+sig+4]))
		p := netip.PrefixFrom(netip.AddrFrom4(dst), width).Masked()
		out = append(out, Route{Dest: p, Gateway: gw})
		i += 1 + sig + 4
	}
	return out, nil
}

// SetClasslessStaticRoutes sets option 121.
func (o *Options) SetClasslessStaticRoutes(routes ...Route) error {
	var b []byte
	for _, r := range routes {
		if !r.Dest.Addr().Is4() || !r.Gateway.Is4() {
			return fmt.Errorf("dhcp: set %v: route %v via %v is not IPv4", OptionClasslessStaticRoute, r.Dest, r.Gateway)
		}
		d := r.Dest.Masked()
		a := d.Addr().As4()
		gw := r.Gateway.As4()
		b = append(b, byte(d.Bits()))
		b = append(b, a[:(d.Bits()+7)/8]...)
		b = append(b, gw[:]...)
	}
	o.Set(OptionClasslessStaticRoute, b)
	return nil
}
