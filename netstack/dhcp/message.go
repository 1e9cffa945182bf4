package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrMalformed is wrapped by every error that reports bytes which are not a
// well-formed DHCP message or option.
var ErrMalformed = errors.New("dhcp: malformed message")

// ErrNoOption is wrapped by the errors of the typed option accessors when
// the option is absent.
var ErrNoOption = errors.New("dhcp: option not present")

func malformed(format string, args ...any) error {
	return fmt.Errorf("dhcp: "+format+": %w", append(args, ErrMalformed)...)
}

// Message is a DHCP message (RFC 2131 §2, figure 1). The zero value is an
// empty message; addresses that are not valid marshal as 0.0.0.0.
//
// ParseMessage applies option overloading (RFC 2132 §9.3): options found in
// the 'file' and 'sname' fields are merged into Options, those fields are
// zeroed and option 52 itself is dropped, so a parsed message never carries
// an overload that MarshalBinary would not honour.
type Message struct {
	Op     Op
	HType  uint8
	HLen   uint8
	Hops   uint8
	XID    uint32
	Secs   uint16
	Flags  uint16 // FlagBroadcast and reserved bits
	CIAddr netip.Addr
	YIAddr netip.Addr
	SIAddr netip.Addr
	GIAddr netip.Addr
	CHAddr [chaddrLen]byte // the client hardware address in the first HLen octets
	SName  [snameLen]byte  // optional server host name, NUL terminated
	File   [fileLen]byte   // boot file name, NUL terminated

	Options Options
}

// Broadcast reports whether the BROADCAST flag is set.
func (m *Message) Broadcast() bool { return m.Flags&FlagBroadcast != 0 }

// HardwareAddr returns the client hardware address: the first HLen octets
// of CHAddr (all 16 if HLen is larger, which ParseMessage rejects).
func (m *Message) HardwareAddr() net.HardwareAddr {
	n := min(int(m.HLen), chaddrLen)
	return net.HardwareAddr(append([]byte(nil), m.CHAddr[:n]...))
}

// SetHardwareAddr sets HType to Ethernet, HLen to 6 and CHAddr to mac.
func (m *Message) SetHardwareAddr(mac [6]byte) {
	m.HType = HTypeEthernet
	m.HLen = 6
	m.CHAddr = [chaddrLen]byte{}
	copy(m.CHAddr[:], mac[:])
}

// ServerName returns SName up to its first NUL.
func (m *Message) ServerName() string { return cstring(m.SName[:]) }

// BootFile returns File up to its first NUL.
func (m *Message) BootFile() string { return cstring(m.File[:]) }

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Type returns the DHCP message type (option 53). A message without it is
// a plain BOOTP message.
func (m *Message) Type() (MessageType, error) { return m.Options.MessageType() }

// String summarizes the message for logs.
func (m *Message) String() string {
	t, err := m.Type()
	name := "BOOTP"
	if err == nil {
		name = t.String()
	}
	return fmt.Sprintf("%s xid=%#08x chaddr=%s ciaddr=%s yiaddr=%s", name, m.XID, m.HardwareAddr(), addrOrZero(m.CIAddr), addrOrZero(m.YIAddr))
}

func addrOrZero(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.IPv4Unspecified()
	}
	return a
}

// MarshalBinary encodes m. It is AppendBinary to a nil slice.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 300))
}

// bootpMinLen is the smallest message BOOTP relays and old servers accept
// (RFC 1542 §2.1); shorter messages are padded with Pad options.
const bootpMinLen = 300

// AppendBinary appends the encoding of m to b: the fixed header, the magic
// cookie, the options (each longer than 255 octets split as RFC 3396
// describes), End, and Pad up to 300 octets. It fails for addresses that
// are not IPv4, an HLen above 16, and Pad or End in Options.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	if m.HLen > chaddrLen {
		return b, fmt.Errorf("dhcp: marshal: hlen %d exceeds %d", m.HLen, chaddrLen)
	}
	start := len(b)
	b = append(b, byte(m.Op), m.HType, m.HLen, m.Hops)
	b = binary.BigEndian.AppendUint32(b, m.XID)
	b = binary.BigEndian.AppendUint16(b, m.Secs)
	b = binary.BigEndian.AppendUint16(b, m.Flags)
	for _, f := range []struct {
		name string
		a    netip.Addr
	}{{"ciaddr", m.CIAddr}, {"yiaddr", m.YIAddr}, {"siaddr", m.SIAddr}, {"giaddr", m.GIAddr}} {
		a4, err := addr4(f.a)
		if err != nil {
			return b[:start], fmt.Errorf("dhcp: marshal %s: %w", f.name, err)
		}
		b = append(b, a4[:]...)
	}
	b = append(b, m.CHAddr[:]...)
	b = append(b, m.SName[:]...)
	b = append(b, m.File[:]...)
	b = append(b, MagicCookie[:]...)
	var err error
	if b, err = m.Options.appendTo(b); err != nil {
		return b[:start], err
	}
	b = append(b, byte(OptionEnd))
	for len(b)-start < bootpMinLen {
		b = append(b, byte(OptionPad))
	}
	return b, nil
}

// addr4 returns the four octets of a, 0.0.0.0 for the zero Addr.
func addr4(a netip.Addr) ([4]byte, error) {
	if !a.IsValid() {
		return [4]byte{}, nil
	}
	if !a.Is4() {
		return [4]byte{}, fmt.Errorf("%s is not an IPv4 address", a)
	}
	return a.As4(), nil
}

// ParseMessage decodes a DHCP message. It copies what it keeps, so b may
// be reused afterwards. Errors wrap [ErrMalformed].
//
// It requires the 236-octet fixed header, the magic cookie and an hlen of at
// most 16; options must lie within the message (a missing End is tolerated
// when the last option ends exactly at the end of its field). Repeated
// instances of an option are concatenated (RFC 3396 §7), and option
// overloading (option 52) is applied: see [Message].
func ParseMessage(b []byte) (*Message, error) {
	if len(b) < optionsOff {
		if len(b) >= headerLen {
			return nil, malformed("%d-octet message has no magic cookie (plain BOOTP?)", len(b))
		}
		return nil, malformed("message of %d octets is shorter than the %d-octet header", len(b), headerLen)
	}
	if [4]byte(b[headerLen:optionsOff]) != MagicCookie {
		return nil, malformed("bad magic cookie % x", b[headerLen:optionsOff])
	}
	m := &Message{
		Op:     Op(b[0]),
		HType:  b[1],
		HLen:   b[2],
		Hops:   b[3],
		XID:    binary.BigEndian.Uint32(b[4:]),
		Secs:   binary.BigEndian.Uint16(b[8:]),
		Flags:  binary.BigEndian.Uint16(b[10:]),
		CIAddr: netip.AddrFrom4([4]byte(b[12:16])),
		YIAddr: netip.AddrFrom4([4]byte(b[16:20])),
		SIAddr: netip.AddrFrom4([4]byte(b[20:24])),
		GIAddr: netip.AddrFrom4([4]byte(b[24:28])),
	}
	if m.HLen > chaddrLen {
		return nil, malformed("hlen %d exceeds %d", m.HLen, chaddrLen)
	}
	copy(m.CHAddr[:], b[28:snameOff])
	copy(m.SName[:], b[snameOff:fileOff])
	copy(m.File[:], b[fileOff:headerLen])

	var p optionParser
	if err := p.parse(b[optionsOff:], "options"); err != nil {
		return nil, err
	}
	if ov, ok := p.opts.Get(OptionOptionOverload); ok {
		p.opts.Del(OptionOptionOverload)
		if len(ov) != 1 || ov[0] < overloadFile || ov[0] > overloadBoth {
			return nil, malformed("option overload value % x, want one octet 1, 2 or 3", ov)
		}
		// RFC 3396 §5: options, then file, then sname.
		p.nested = true
		if ov[0]&overloadFile != 0 {
			if err := p.parse(m.File[:], "file"); err != nil {
				return nil, err
			}
			m.File = [fileLen]byte{}
		}
		if ov[0]&overloadSName != 0 {
			if err := p.parse(m.SName[:], "sname"); err != nil {
				return nil, err
			}
			m.SName = [snameLen]byte{}
		}
	}
	m.Options = p.opts
	return m, nil
}

// optionParser collects options, concatenating repeated codes.
type optionParser struct {
	opts   Options
	nested bool // parsing an overloaded field: option 52 is not allowed
}

func (p *optionParser) parse(b []byte, field string) error {
	for i := 0; i < len(b); {
		code := OptionCode(b[i])
		switch code {
		case OptionPad:
			i++
			continue
		case OptionEnd:
			return nil
		}
		if i+1 >= len(b) {
			return malformed("%s: option %d at offset %d has no length octet", field, code, i)
		}
		n := int(b[i+1])
		if i+2+n > len(b) {
			return malformed("%s: option %d at offset %d: length %d runs past the end (%d octets left)", field, code, i, n, len(b)-i-2)
		}
		if code == OptionOptionOverload && p.nested {
			return malformed("%s: option overload inside an overloaded field", field)
		}
		p.opts.add(code, b[i+2:i+2+n])
		i += 2 + n
	}
	return nil
}
