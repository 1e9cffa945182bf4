package dhcp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	testMAC    = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}
	testServer = netip.MustParseAddr("10.0.2.1")
	testYour   = netip.MustParseAddr("10.0.2.15")
)

// sampleMessages returns messages shaped like a real exchange between a
// client and a server: DISCOVER, OFFER, REQUEST, ACK and NAK.
func sampleMessages(t testing.TB) map[string]*Message {
	t.Helper()
	base := func(op Op, typ MessageType) *Message {
		m := &Message{Op: op, XID: 0x3903f326, Secs: 3, Flags: FlagBroadcast}
		m.SetHardwareAddr(testMAC)
		m.Options.SetMessageType(typ)
		return m
	}
	discover := base(BOOTREQUEST, DHCPDISCOVER)
	discover.Options.SetClientIdentifier(append([]byte{1}, testMAC[:]...))
	discover.Options.SetParameterRequestList(OptionSubnetMask, OptionRouter, OptionDomainNameServer, OptionDomainName, OptionInterfaceMTU, OptionClasslessStaticRoute)
	discover.Options.SetMaximumMessageSize(1500)
	discover.Options.SetHostName("guest")

	offer := base(BOOTREPLY, DHCPOFFER)
	offer.YIAddr = testYour
	offer.SIAddr = testServer
	require.NoError(t, offer.Options.SetServerIdentifier(testServer))
	offer.Options.SetLeaseTime(time.Hour)
	offer.Options.SetRenewalTime(30 * time.Minute)
	offer.Options.SetRebindingTime(52*time.Minute + 30*time.Second)
	require.NoError(t, offer.Options.SetSubnetMask(24))
	require.NoError(t, offer.Options.SetRouters(testServer))
	require.NoError(t, offer.Options.SetDomainNameServers(netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("9.9.9.9")))
	offer.Options.SetDomainName("example.internal")
	require.NoError(t, offer.Options.SetBroadcastAddress(netip.MustParseAddr("10.0.2.255")))
	offer.Options.SetInterfaceMTU(1500)

	request := base(BOOTREQUEST, DHCPREQUEST)
	require.NoError(t, request.Options.SetRequestedIPAddress(testYour))
	require.NoError(t, request.Options.SetServerIdentifier(testServer))
	request.Options.SetClientIdentifier(append([]byte{1}, testMAC[:]...))
	request.Options.SetParameterRequestList(OptionSubnetMask, OptionRouter, OptionDomainNameServer)

	ack := base(BOOTREPLY, DHCPACK)
	ack.YIAddr, ack.SIAddr = testYour, testServer
	ack.Options = append(Options(nil), offer.Options...)
	ack.Options.SetMessageType(DHCPACK)
	require.NoError(t, ack.Options.SetClasslessStaticRoutes(
		Route{Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: testServer},
		Route{Dest: netip.MustParsePrefix("192.168.128.0/17"), Gateway: netip.MustParseAddr("10.0.2.2")},
	))

	nak := base(BOOTREPLY, DHCPNAK)
	require.NoError(t, nak.Options.SetServerIdentifier(testServer))
	nak.Options.SetMessage("wrong network")

	return map[string]*Message{"DISCOVER": discover, "OFFER": offer, "REQUEST": request, "ACK": ack, "NAK": nak}
}

func TestRoundTrip(t *testing.T) {
	for name, m := range sampleMessages(t) {
		t.Run(name, func(t *testing.T) {
			b, err := m.MarshalBinary()
			require.NoError(t, err)
			assert.GreaterOrEqual(t, len(b), bootpMinLen)
			assert.Equal(t, MagicCookie[:], b[headerLen:optionsOff])
			got, err := ParseMessage(b)
			require.NoError(t, err)
			want := *m
			for _, a := range []*netip.Addr{&want.CIAddr, &want.YIAddr, &want.SIAddr, &want.GIAddr} {
				*a = addrOrZero(*a)
			}
			assert.Equal(t, &want, got)

			// AppendBinary appends after existing bytes.
			prefix := []byte("prefix")
			b2, err := m.AppendBinary(bytes.Clone(prefix))
			require.NoError(t, err)
			assert.Equal(t, prefix, b2[:len(prefix)])
			assert.Equal(t, b, b2[len(prefix):])
		})
	}
}

func TestFixedHeaderLayout(t *testing.T) {
	m := sampleMessages(t)["OFFER"]
	m.CIAddr = netip.MustParseAddr("1.2.3.4")
	m.GIAddr = netip.MustParseAddr("5.6.7.8")
	m.Hops = 2
	copy(m.SName[:], "server")
	copy(m.File[:], "pxelinux.0")
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, []byte{2, 1, 6, 2, 0x39, 0x03, 0xf3, 0x26, 0, 3, 0x80, 0}, b[:12])
	assert.Equal(t, []byte{1, 2, 3, 4}, b[12:16])
	assert.Equal(t, []byte{10, 0, 2, 15}, b[16:20])
	assert.Equal(t, []byte{10, 0, 2, 1}, b[20:24])
	assert.Equal(t, []byte{5, 6, 7, 8}, b[24:28])
	assert.Equal(t, testMAC[:], b[28:34])
	assert.Equal(t, "server", string(b[44:50]))
	assert.Equal(t, "pxelinux.0", string(b[108:118]))
	// The first option follows the cookie: message type OFFER.
	assert.Equal(t, []byte{53, 1, 2}, b[240:243])

	got, err := ParseMessage(b)
	require.NoError(t, err)
	assert.Equal(t, "server", got.ServerName())
	assert.Equal(t, "pxelinux.0", got.BootFile())
	assert.True(t, got.Broadcast())
	assert.Equal(t, "02:00:5e:10:20:30", got.HardwareAddr().String())
}

// rawMessage builds a message with the given bytes after the cookie.
func rawMessage(opts ...byte) []byte {
	b := make([]byte, optionsOff, optionsOff+len(opts))
	b[0], b[1], b[2] = byte(BOOTREPLY), HTypeEthernet, 6
	copy(b[headerLen:], MagicCookie[:])
	return append(b, opts...)
}

func TestParseErrors(t *testing.T) {
	badHLen := rawMessage(255)
	badHLen[2] = 17
	badCookie := rawMessage(255)
	badCookie[headerLen] = 0
	overload := func(v byte, file []byte) []byte {
		b := rawMessage(52, 1, v, 255)
		copy(b[fileOff:], file)
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "shorter than the 236-octet header"},
		{"short header", make([]byte, 100), "shorter than the 236-octet header"},
		{"no cookie", make([]byte, headerLen), "no magic cookie"},
		{"bad cookie", badCookie, "bad magic cookie"},
		{"hlen too large", badHLen, "hlen 17 exceeds 16"},
		{"option without length", rawMessage(53), "has no length octet"},
		{"length past end", rawMessage(53, 5, 1), "runs past the end"},
		{"length past end after pad", rawMessage(0, 0, 6, 200, 1, 2, 3), "runs past the end"},
		{"overload bad value", rawMessage(52, 1, 4, 255), "option overload value"},
		{"overload bad length", rawMessage(52, 2, 1, 1, 255), "option overload value"},
		{"overload truncated file", overload(1, append(make([]byte, fileLen-1), 3)), "file: option 3 at offset 127 has no length octet"},
		{"overload nested", overload(1, []byte{52, 1, 2, 255}), "inside an overloaded field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage(tc.in)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestParseOptions(t *testing.T) {
	long := bytes.Repeat([]byte{'a'}, 300)
	for _, tc := range []struct {
		name  string
		in    []byte
		setup func(b []byte)
		want  Options
	}{
		{"end only", rawMessage(255), nil, nil},
		{"no end", rawMessage(53, 1, 5), nil, Options{{OptionDHCPMessageType, []byte{5}}}},
		{"pads and trailing garbage", rawMessage(0, 0, 53, 1, 5, 0, 255, 1, 2, 3), nil, Options{{OptionDHCPMessageType, []byte{5}}}},
		{"zero length option", rawMessage(80, 0, 255), nil, Options{{80, []byte{}}}},
		{"concatenation", rawMessage(15, 3, 'a', 'b', 'c', 53, 1, 2, 15, 2, 'd', 'e', 255), nil,
			Options{{OptionDomainName, []byte("abcde")}, {OptionDHCPMessageType, []byte{2}}}},
		{"overload file", rawMessage(52, 1, 1, 53, 1, 5, 255), func(b []byte) {
			copy(b[fileOff:], []byte{15, 4, 't', 'e', 's', 't', 255})
		}, Options{{OptionDHCPMessageType, []byte{5}}, {OptionDomainName, []byte("test")}}},
		{"overload both in RFC 3396 order", rawMessage(52, 1, 3, 12, 1, 'x', 255), func(b []byte) {
			copy(b[snameOff:], []byte{12, 1, 'z', 255})
			copy(b[fileOff:], []byte{12, 1, 'y', 255})
		}, Options{{OptionHostName, []byte("xyz")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(tc.in)
			}
			m, err := ParseMessage(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, m.Options)
			if len(tc.in) > optionsOff+2 && tc.in[optionsOff] == 52 {
				assert.Equal(t, [fileLen]byte{}, m.File, "overloaded file field is cleared")
				assert.False(t, m.Options.Has(OptionOptionOverload))
			}
		})
	}

	t.Run("long option split and rejoined", func(t *testing.T) {
		var m Message
		m.Options.SetHostName(string(long))
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		assert.Equal(t, []byte{12, 255}, b[optionsOff:optionsOff+2])
		assert.Equal(t, []byte{12, 45}, b[optionsOff+257:optionsOff+259])
		got, err := ParseMessage(b)
		require.NoError(t, err)
		h, err := got.Options.HostName()
		require.NoError(t, err)
		assert.Equal(t, string(long), h)
	})
}

func TestMarshalErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
		msg  string
	}{
		{"ipv6 ciaddr", Message{CIAddr: netip.MustParseAddr("::1")}, "ciaddr"},
		{"hlen", Message{HLen: 20}, "hlen 20"},
		{"pad option", Message{Options: Options{{OptionPad, nil}}}, "Pad"},
		{"end option", Message{Options: Options{{OptionEnd, nil}}}, "End"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.m.AppendBinary([]byte{1, 2})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Equal(t, []byte{1, 2}, b, "b is returned unchanged")
		})
	}
}

func TestOptionAccessors(t *testing.T) {
	ack := sampleMessages(t)["ACK"]
	o := ack.Options
	mt, err := o.MessageType()
	require.NoError(t, err)
	assert.Equal(t, DHCPACK, mt)
	sid, err := o.ServerIdentifier()
	require.NoError(t, err)
	assert.Equal(t, testServer, sid)
	lt, err := o.LeaseTime()
	require.NoError(t, err)
	assert.Equal(t, time.Hour, lt)
	t1, err := o.RenewalTime()
	require.NoError(t, err)
	assert.Equal(t, 30*time.Minute, t1)
	t2, err := o.RebindingTime()
	require.NoError(t, err)
	assert.Equal(t, 52*time.Minute+30*time.Second, t2)
	bits, err := o.SubnetMask()
	require.NoError(t, err)
	assert.Equal(t, 24, bits)
	r, err := o.Routers()
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{testServer}, r)
	dns, err := o.DomainNameServers()
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("9.9.9.9")}, dns)
	dn, err := o.DomainName()
	require.NoError(t, err)
	assert.Equal(t, "example.internal", dn)
	bc, err := o.BroadcastAddress()
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("10.0.2.255"), bc)
	mtu, err := o.InterfaceMTU()
	require.NoError(t, err)
	assert.Equal(t, uint16(1500), mtu)
	routes, err := o.ClasslessStaticRoutes()
	require.NoError(t, err)
	assert.Equal(t, []Route{
		{netip.MustParsePrefix("0.0.0.0/0"), testServer},
		{netip.MustParsePrefix("192.168.128.0/17"), netip.MustParseAddr("10.0.2.2")},
	}, routes)
	v, _ := o.Get(OptionClasslessStaticRoute)
	assert.Equal(t, []byte{0, 10, 0, 2, 1, 17, 192, 168, 128, 10, 0, 2, 2}, v, "RFC 3442 encoding")

	disc := sampleMessages(t)["DISCOVER"].Options
	prl, err := disc.ParameterRequestList()
	require.NoError(t, err)
	assert.Equal(t, []OptionCode{1, 3, 6, 15, 26, 121}, prl)
	mms, err := disc.MaximumMessageSize()
	require.NoError(t, err)
	assert.Equal(t, uint16(1500), mms)
	cid, err := disc.ClientIdentifier()
	require.NoError(t, err)
	assert.Equal(t, append([]byte{1}, testMAC[:]...), cid)
	hn, err := disc.HostName()
	require.NoError(t, err)
	assert.Equal(t, "guest", hn)
	_, err = disc.ServerIdentifier()
	assert.ErrorIs(t, err, ErrNoOption)

	req := sampleMessages(t)["REQUEST"].Options
	ri, err := req.RequestedIPAddress()
	require.NoError(t, err)
	assert.Equal(t, testYour, ri)
	nak := sampleMessages(t)["NAK"].Options
	text, err := nak.Message()
	require.NoError(t, err)
	assert.Equal(t, "wrong network", text)
}

func TestOptionAccessorErrors(t *testing.T) {
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	for _, tc := range []struct {
		name string
		opts Options
		get  func(Options) error
		msg  string
	}{
		{"message type long", Options{{OptionDHCPMessageType, []byte{1, 2}}}, func(o Options) error { _, err := o.MessageType(); return err }, "length 2, want 1"},
		{"server id short", Options{{OptionServerIdentifier, []byte{1, 2, 3}}}, func(o Options) error { _, err := o.ServerIdentifier(); return err }, "length 3, want 4"},
		{"routers not multiple of 4", Options{{OptionRouter, make([]byte, 6)}}, func(o Options) error { _, err := o.Routers(); return err }, "multiple of 4"},
		{"dns empty", Options{{OptionDomainNameServer, []byte{}}}, func(o Options) error { _, err := o.DomainNameServers(); return err }, "multiple of 4"},
		{"mask not contiguous", Options{{OptionSubnetMask, u32(0xff00ff00)}}, func(o Options) error { _, err := o.SubnetMask(); return err }, "not a contiguous mask"},
		{"lease short", Options{{OptionIPAddressLeaseTime, []byte{0, 1}}}, func(o Options) error { _, err := o.LeaseTime(); return err }, "length 2"},
		{"domain empty", Options{{OptionDomainName, []byte{}}}, func(o Options) error { _, err := o.DomainName(); return err }, "length 0"},
		{"client id one octet", Options{{OptionClientIdentifier, []byte{1}}}, func(o Options) error { _, err := o.ClientIdentifier(); return err }, "length 1"},
		{"max size too small", Options{{OptionMaximumMessageSize, []byte{1, 0}}}, func(o Options) error { _, err := o.MaximumMessageSize(); return err }, "below the minimum 576"},
		{"mtu too small", Options{{OptionInterfaceMTU, []byte{0, 10}}}, func(o Options) error { _, err := o.InterfaceMTU(); return err }, "below the minimum 68"},
		{"route width", Options{{OptionClasslessStaticRoute, []byte{33, 1, 2, 3, 4, 5, 6, 7, 8}}}, func(o Options) error { _, err := o.ClasslessStaticRoutes(); return err }, "prefix length 33"},
		{"route truncated", Options{{OptionClasslessStaticRoute, []byte{24, 10, 0, 0, 10, 0, 0, 1, 8, 10}}}, func(o Options) error { _, err := o.ClasslessStaticRoutes(); return err }, "truncated"},
		{"prl empty", Options{{OptionParameterRequestList, []byte{}}}, func(o Options) error { _, err := o.ParameterRequestList(); return err }, "length 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.get(tc.opts)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestOptionValues(t *testing.T) {
	t.Run("infinite lease", func(t *testing.T) {
		var o Options
		o.SetLeaseTime(Infinite)
		v, _ := o.Get(OptionIPAddressLeaseTime)
		assert.Equal(t, []byte{0xff, 0xff, 0xff, 0xff}, v)
		d, err := o.LeaseTime()
		require.NoError(t, err)
		assert.Equal(t, Infinite, d)
	})
	t.Run("masks", func(t *testing.T) {
		for _, bits := range []int{0, 1, 8, 17, 24, 31, 32} {
			var o Options
			require.NoError(t, o.SetSubnetMask(bits))
			got, err := o.SubnetMask()
			require.NoError(t, err)
			assert.Equal(t, bits, got)
		}
		var o Options
		assert.Error(t, o.SetSubnetMask(33))
	})
	t.Run("NUL-terminated strings", func(t *testing.T) {
		o := Options{{OptionDomainName, []byte("lan\x00")}}
		s, err := o.DomainName()
		require.NoError(t, err)
		assert.Equal(t, "lan", s)
	})
	t.Run("route host bits cleared", func(t *testing.T) {
		o := Options{{OptionClasslessStaticRoute, []byte{8, 10, 1, 2, 3, 4}}}
		r, err := o.ClasslessStaticRoutes()
		require.NoError(t, err)
		assert.Equal(t, []Route{{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParseAddr("1.2.3.4")}}, r)
	})
	t.Run("set replaces in place and del removes", func(t *testing.T) {
		var o Options
		o.SetMessageType(DHCPDISCOVER)
		o.SetHostName("a")
		o.SetMessageType(DHCPREQUEST)
		assert.Equal(t, Options{{OptionDHCPMessageType, []byte{3}}, {OptionHostName, []byte("a")}}, o)
		o.Del(OptionDHCPMessageType)
		assert.Equal(t, Options{{OptionHostName, []byte("a")}}, o)
	})
	t.Run("strings", func(t *testing.T) {
		assert.Equal(t, "DHCPOFFER", DHCPOFFER.String())
		assert.Equal(t, "message-type-99", MessageType(99).String())
		assert.Equal(t, "Server Identifier", OptionServerIdentifier.String())
		assert.Equal(t, "option-200", OptionCode(200).String())
		assert.Equal(t, "BOOTREPLY", BOOTREPLY.String())
		assert.Contains(t, sampleMessages(t)["ACK"].String(), "DHCPACK xid=0x3903f326")
	})
}

// readSeed decodes one file of the fuzz corpus.
func readSeed(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParseMessage", name))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 2)
	lit, ok := strings.CutPrefix(lines[1], "[]byte(")
	require.True(t, ok)
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	require.NoError(t, err)
	return []byte(s)
}

// TestDnsmasqCaptures parses replies captured from dnsmasq 2.90 by
// TestDnsmasq (configured with a 2m lease on 10.77.0.0/24).
func TestDnsmasqCaptures(t *testing.T) {
	mac := "02:a7:00:00:00:42"
	for _, tc := range []struct {
		file string
		typ  MessageType
		nak  string
	}{
		{"dnsmasq-offer", DHCPOFFER, ""},
		{"dnsmasq-ack", DHCPACK, ""},
		{"dnsmasq-ack-renew", DHCPACK, ""},
		{"dnsmasq-nak", DHCPNAK, "wrong network"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			m, err := ParseMessage(readSeed(t, tc.file))
			require.NoError(t, err)
			assert.Equal(t, BOOTREPLY, m.Op)
			assert.Equal(t, mac, m.HardwareAddr().String())
			typ, err := m.Type()
			require.NoError(t, err)
			assert.Equal(t, tc.typ, typ)
			sid, err := m.Options.ServerIdentifier()
			require.NoError(t, err)
			assert.Equal(t, netip.MustParseAddr("10.77.0.1"), sid)
			if tc.typ == DHCPNAK {
				text, err := m.Options.Message()
				require.NoError(t, err)
				assert.Equal(t, tc.nak, text)
				return
			}
			l, err := leaseFromAck(m, 0)
			require.NoError(t, err)
			assert.Equal(t, 24, l.Addr.Bits())
			assert.Equal(t, netip.MustParseAddr("10.77.0.1"), l.Router)
			assert.Equal(t, "aktest.internal", l.Domain)
			assert.Equal(t, 2*time.Minute, l.Lease)
			assert.Equal(t, netip.MustParseAddr("10.77.0.255"), l.Broadcast)
		})
	}
}
