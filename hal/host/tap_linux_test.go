package host_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/host"
	"github.com/anykernel/anykernel/internal/netns"
	"github.com/anykernel/anykernel/internal/testenv"
)

// waitLimit bounds waits for the kernel's answers, so that a missing answer
// fails the test instead of hanging it.
const waitLimit = 10 * time.Second

func mustExec(t testing.TB, ns *netns.NS, args ...string) string {
	t.Helper()
	out, err := ns.Exec(args...)
	require.NoError(t, err)
	return string(out)
}

// quietNS makes a namespace in which the kernel sends no IPv6 traffic of its
// own (router solicitations, MLD) on interfaces created afterwards.
func quietNS(t testing.TB) *netns.NS {
	t.Helper()
	testenv.NeedFile(t, "/dev/net/tun")
	ns := netns.New(t)
	mustExec(t, ns, "sh", "-c",
		"echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
	return ns
}

// openTAP opens a TAP device inside ns and closes it when t ends.
func openTAP(t testing.TB, ns *netns.NS, name string, opts host.TAPOptions) *host.TAP {
	t.Helper()
	var tap *host.TAP
	require.NoError(t, ns.Run(func() error {
		var err error
		tap, err = host.OpenTAP(name, opts)
		return err
	}))
	t.Cleanup(func() { tap.Close() })
	require.Equal(t, name, tap.Name())
	return tap
}

// bridgedPair returns two TAP devices joined by a Linux bridge in a fresh
// namespace: frames written to one are forwarded by the kernel to the other.
func bridgedPair(t testing.TB, opts host.TAPOptions) (*host.TAP, *host.TAP) {
	t.Helper()
	ns := quietNS(t)
	a := openTAP(t, ns, "tapa", opts)
	b := openTAP(t, ns, "tapb", opts)
	mustExec(t, ns, "ip", "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0")
	for _, dev := range []string{"tapa", "tapb"} {
		// A long transmit queue keeps bursts from the suite lossless.
		mustExec(t, ns, "ip", "link", "set", dev, "master", "br0", "txqueuelen", "10000", "up")
	}
	mustExec(t, ns, "ip", "link", "set", "br0", "up")
	return a, b
}

func TestTAPConformance(t *testing.T) {
	tests := []struct {
		name string
		opts host.TAPOptions
	}{
		{"plain", host.TAPOptions{}},
		{"vnet-hdr", host.TAPOptions{VNetHdr: true}},
		{"mtu-9000", host.TAPOptions{MTU: 9000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
				a, b := bridgedPair(t, tc.opts)
				return a, b
			})
		})
	}
}

func TestOpenTAPOptions(t *testing.T) {
	ns := quietNS(t)
	mac := hal.MAC{0x02, 0, 0, 0, 0, 0x42}
	tests := []struct {
		name    string
		tap     string
		opts    host.TAPOptions
		wantMTU int
		wantMAC hal.MAC
		wantErr bool
	}{
		{name: "defaults", tap: "tapdef", wantMTU: hal.DefaultMTU},
		{name: "kernel-named", tap: "", wantMTU: hal.DefaultMTU},
		{name: "mtu-set", tap: "tapmtu", opts: host.TAPOptions{MTU: 4000}, wantMTU: 4000},
		{name: "mac-given", tap: "tapmac", opts: host.TAPOptions{MAC: mac}, wantMTU: hal.DefaultMTU, wantMAC: mac},
		{name: "multicast-mac", tap: "tapbad", opts: host.TAPOptions{MAC: hal.MAC{1, 0, 0, 0, 0, 1}}, wantErr: true},
		{name: "mtu-too-small", tap: "tapbad", opts: host.TAPOptions{MTU: 40}, wantErr: true},
		{name: "name-too-long", tap: "a-very-long-interface-name", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tap *host.TAP
			err := ns.Run(func() error {
				var err error
				tap, err = host.OpenTAP(tc.tap, tc.opts)
				return err
			})
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			defer tap.Close()
			if tc.tap == "" {
				assert.True(t, strings.HasPrefix(tap.Name(), "tap"), tap.Name())
			} else {
				assert.Equal(t, tc.tap, tap.Name())
			}
			assert.Equal(t, tc.wantMTU, tap.MTU())
			out := mustExec(t, ns, "cat", "/sys/class/net/"+tap.Name()+"/mtu")
			assert.Equal(t, strconv.Itoa(tc.wantMTU), strings.TrimSpace(out), "interface MTU")
			m := tap.MAC()
			assert.False(t, m.IsMulticast())
			if tc.wantMAC != (hal.MAC{}) {
				assert.Equal(t, tc.wantMAC, m)
			} else {
				assert.True(t, m.IsLocal(), "random MAC %v must be locally administered", m)
			}
			// Our address is not forced on the kernel's side.
			out = mustExec(t, ns, "cat", "/sys/class/net/"+tap.Name()+"/address")
			assert.NotEqual(t, m.String(), strings.TrimSpace(out))
		})
	}
}

func TestTAPOffloadNeedsVNetHdr(t *testing.T) {
	ns := quietNS(t)
	tap := openTAP(t, ns, "tapnv", host.TAPOptions{})
	assert.Equal(t, hal.Offload(0), tap.SupportedOffload())
	got, err := tap.SetOffload(hal.OffloadTxCsum | hal.OffloadRxCsum)
	require.NoError(t, err)
	assert.Equal(t, hal.Offload(0), got)
	err = tap.WriteFrameHdr(&hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 14, CsumOffset: 6}, make([]byte, 60))
	assert.ErrorIs(t, err, errors.ErrUnsupported)

	v := openTAP(t, ns, "tapv", host.TAPOptions{VNetHdr: true})
	all := hal.OffloadTxCsum | hal.OffloadTxTSO4 | hal.OffloadTxTSO6 | hal.OffloadRxCsum | hal.OffloadRxTSO4 | hal.OffloadRxTSO6
	assert.Equal(t, all, v.SupportedOffload())
	tests := []struct {
		name string
		want hal.Offload
		got  hal.Offload
	}{
		{"all", all, all},
		{"tso-without-csum", hal.OffloadTxTSO4 | hal.OffloadRxTSO6, 0},
		{"rx-csum", hal.OffloadRxCsum, hal.OffloadRxCsum},
		{"uso-unsupported", hal.OffloadTxCsum | hal.OffloadTxUSO, hal.OffloadTxCsum},
		{"none", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.SetOffload(tc.want)
			require.NoError(t, err)
			assert.Equal(t, tc.got, got)
		})
	}
}

// ---- talking to the host kernel ----

var (
	ourIP    = netip.MustParseAddr("10.0.0.2")
	kernelIP = netip.MustParseAddr("10.0.0.1")
)

// kernelPeer is a TAP device whose host side has address 10.0.0.1/24 in a
// private namespace, with frames read into a channel.
type kernelPeer struct {
	ns        *netns.NS
	tap       *host.TAP
	kernelMAC hal.MAC
	frames    chan rxFrame
}

type rxFrame struct {
	b   []byte
	hdr hal.NetHdr
	err error
}

func newKernelPeer(t *testing.T, opts host.TAPOptions, offload hal.Offload) *kernelPeer {
	t.Helper()
	ns := quietNS(t)
	tap := openTAP(t, ns, "tapk", opts)
	if offload != 0 {
		got, err := tap.SetOffload(offload)
		require.NoError(t, err)
		require.Equal(t, offload, got)
	}
	mustExec(t, ns, "ip", "addr", "add", kernelIP.String()+"/24", "dev", "tapk")
	mustExec(t, ns, "ip", "link", "set", "tapk", "up")
	kmac, err := hal.ParseMAC(strings.TrimSpace(mustExec(t, ns, "cat", "/sys/class/net/tapk/address")))
	require.NoError(t, err)
	p := &kernelPeer{ns: ns, tap: tap, kernelMAC: kmac, frames: make(chan rxFrame, 256)}
	go func() {
		for {
			buf := make([]byte, hal.MaxOffloadFrame)
			n, hdr, err := tap.ReadFrameHdr(buf)
			if err != nil {
				p.frames <- rxFrame{err: err}
				return
			}
			p.frames <- rxFrame{b: buf[:n], hdr: hdr}
		}
	}()
	return p
}

// next returns the next frame for which match is true, skipping others.
func (p *kernelPeer) next(t *testing.T, what string, match func([]byte) bool) rxFrame {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case f := <-p.frames:
			require.NoError(t, f.err, "reading %s", what)
			if match(f.b) {
				return f
			}
		case <-deadline:
			t.Fatalf("no %s from the kernel within %v", what, waitLimit)
		}
	}
}

func etherType(f []byte) uint16 {
	if len(f) < hal.EthernetHeaderLen {
		return 0
	}
	return binary.BigEndian.Uint16(f[12:])
}

// ethernet builds an Ethernet II frame, padded to the 60-byte minimum.
func ethernet(dst, src hal.MAC, typ uint16, payload []byte) []byte {
	f := make([]byte, max(hal.EthernetHeaderLen+len(payload), 60))
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], typ)
	copy(f[14:], payload)
	return f
}

// checksum is the Internet checksum (RFC 1071) of b with initial sum.
func checksum(b []byte, initial uint32) uint16 {
	s := initial
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// ipv4 builds an IPv4 header (RFC 791, no options) with a correct checksum
// followed by payload.
func ipv4(proto byte, src, dst netip.Addr, id uint16, payload []byte) []byte {
	p := make([]byte, 20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], id)
	p[6] = 0x40 // DF
	p[8] = 64
	p[9] = proto
	s4, d4 := src.As4(), dst.As4()
	copy(p[12:], s4[:])
	copy(p[16:], d4[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20], 0))
	copy(p[20:], payload)
	return p
}

// pseudoSum is the unfolded sum of the IPv4 pseudo-header (RFC 768, RFC 793).
func pseudoSum(src, dst netip.Addr, proto byte, length int) uint32 {
	s4, d4 := src.As4(), dst.As4()
	var s uint32
	for _, a := range [][4]byte{s4, d4} {
		s += uint32(a[0])<<8 | uint32(a[1])
		s += uint32(a[2])<<8 | uint32(a[3])
	}
	return s + uint32(proto) + uint32(length)
}

// resolve sends an ARP request for the kernel's address (RFC 826) and checks
// the reply, which also teaches the kernel our address.
func (p *kernelPeer) resolve(t *testing.T) {
	t.Helper()
	arp := make([]byte, 28)
	binary.BigEndian.PutUint16(arp[0:], 1)      // htype Ethernet
	binary.BigEndian.PutUint16(arp[2:], 0x0800) // ptype IPv4
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:], 1) // request
	our := p.tap.MAC()
	copy(arp[8:], our[:])
	o4, k4 := ourIP.As4(), kernelIP.As4()
	copy(arp[14:], o4[:])
	copy(arp[24:], k4[:])
	require.NoError(t, p.tap.WriteFrame(ethernet(hal.Broadcast, our, 0x0806, arp)))

	reply := p.next(t, "ARP reply", func(f []byte) bool {
		return etherType(f) == 0x0806 && len(f) >= 42 && binary.BigEndian.Uint16(f[20:]) == 2
	}).b
	a := reply[14:]
	assert.Equal(t, our[:], reply[0:6], "reply addressed to our MAC")
	assert.Equal(t, p.kernelMAC[:], reply[6:12], "reply from the interface's MAC")
	assert.Equal(t, []byte{0, 1, 8, 0, 6, 4}, a[0:6], "ARP hardware/protocol fields")
	assert.Equal(t, p.kernelMAC[:], a[8:14], "sender hardware address")
	assert.Equal(t, k4[:], a[14:18], "sender protocol address")
	assert.Equal(t, our[:], a[18:24], "target hardware address")
	assert.Equal(t, o4[:], a[24:28], "target protocol address")
}

// echoRequest builds an ICMP echo request (RFC 792) frame to the kernel.
// With partial, the ICMP checksum is left for the device (NEEDS_CSUM).
func (p *kernelPeer) echoRequest(id, seq uint16, payload []byte, partial bool) ([]byte, *hal.NetHdr) {
	icmp := make([]byte, 8+len(payload))
	icmp[0] = 8
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	copy(icmp[8:], payload)
	var hdr *hal.NetHdr
	if partial {
		// ICMP has no pseudo-header: the partial sum is zero.
		hdr = &hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 14 + 20, CsumOffset: 2}
	} else {
		binary.BigEndian.PutUint16(icmp[2:], checksum(icmp, 0))
	}
	return ethernet(p.kernelMAC, p.tap.MAC(), 0x0800, ipv4(1, ourIP, kernelIP, id, icmp)), hdr
}

// checkEchoReply waits for the echo reply matching id and seq and checks it.
func (p *kernelPeer) checkEchoReply(t *testing.T, id, seq uint16, payload []byte) {
	t.Helper()
	f := p.next(t, "ICMP echo reply", func(f []byte) bool {
		return etherType(f) == 0x0800 && len(f) >= 14+20+8 && f[14+9] == 1 && f[14+20] == 0 &&
			binary.BigEndian.Uint16(f[14+20+4:]) == id && binary.BigEndian.Uint16(f[14+20+6:]) == seq
	})
	b := f.b
	our := p.tap.MAC()
	assert.Equal(t, our[:], b[0:6])
	assert.Equal(t, p.kernelMAC[:], b[6:12])
	ip := b[14:]
	ihl := int(ip[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	require.LessOrEqual(t, total, len(ip))
	assert.Equal(t, uint16(0), checksum(ip[:ihl], 0), "IPv4 header checksum")
	k4, o4 := kernelIP.As4(), ourIP.As4()
	assert.Equal(t, k4[:], ip[12:16])
	assert.Equal(t, o4[:], ip[16:20])
	icmp := ip[ihl:total]
	if f.hdr.Flags&hal.NetHdrFNeedsCsum == 0 {
		assert.Equal(t, uint16(0), checksum(icmp, 0), "ICMP checksum")
	}
	assert.Equal(t, payload, icmp[8:], "echo payload")
}

func TestTAPKernelPeer(t *testing.T) {
	tests := []struct {
		name    string
		opts    host.TAPOptions
		offload hal.Offload
	}{
		{"plain", host.TAPOptions{}, 0},
		{"vnet-hdr-off", host.TAPOptions{VNetHdr: true}, 0},
		{"vnet-hdr-offload", host.TAPOptions{VNetHdr: true}, hal.OffloadTxCsum | hal.OffloadRxCsum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newKernelPeer(t, tc.opts, tc.offload)
			p.resolve(t)
			for seq := uint16(1); seq <= 3; seq++ {
				payload := bytes.Repeat([]byte{byte(seq), 0xa5}, 28*int(seq))
				f, _ := p.echoRequest(0x4242, seq, payload, false)
				require.NoError(t, p.tap.WriteFrame(f))
				p.checkEchoReply(t, 0x4242, seq, payload)
			}
		})
	}
}

// udpFrame builds a UDP datagram (RFC 768) frame to the kernel. With
// partial, the checksum field holds only the pseudo-header sum and the
// returned header asks the device to finish it.
func (p *kernelPeer) udpFrame(srcPort, dstPort uint16, payload []byte, csum string) ([]byte, *hal.NetHdr) {
	u := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], srcPort)
	binary.BigEndian.PutUint16(u[2:], dstPort)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	ps := pseudoSum(ourIP, kernelIP, 17, len(u))
	var hdr *hal.NetHdr
	switch csum {
	case "full":
		binary.BigEndian.PutUint16(u[6:], checksum(u, ps))
	case "partial":
		// The field holds the folded, uncomplemented pseudo-header sum.
		binary.BigEndian.PutUint16(u[6:], ^checksum(nil, ps))
		hdr = &hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 14 + 20, CsumOffset: 6}
	}
	return ethernet(p.kernelMAC, p.tap.MAC(), 0x0800, ipv4(17, ourIP, kernelIP, 7, u)), hdr
}

// udpInCsumErrors reads the kernel's UDP InCsumErrors counter in the namespace.
func udpInCsumErrors(ns *netns.NS) (int, error) {
	out, err := ns.Exec("cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, n := range names {
			if n == "InCsumErrors" && i < len(fields) {
				return strconv.Atoi(fields[i])
			}
		}
	}
	return 0, fmt.Errorf("no Udp InCsumErrors in /proc/net/snmp:\n%s", out)
}

func TestTAPKernelPeerChecksumOffload(t *testing.T) {
	p := newKernelPeer(t, host.TAPOptions{VNetHdr: true}, hal.OffloadTxCsum|hal.OffloadRxCsum)
	p.resolve(t)

	// A socket of the kernel's own, inside the namespace.
	var conn *net.UDPConn
	require.NoError(t, p.ns.Run(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9000})
		return err
	}))
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(waitLimit)))

	t.Run("tx-partial-checksum", func(t *testing.T) {
		before, err := udpInCsumErrors(p.ns)
		require.NoError(t, err)
		// Control: the same partial checksum without NEEDS_CSUM is wrong
		// on the wire, and the kernel must drop it as a checksum error.
		bad, _ := p.udpFrame(4000, 9000, []byte("not-finished"), "partial")
		require.NoError(t, p.tap.WriteFrame(bad))
		good, hdr := p.udpFrame(4000, 9000, []byte("finished-by-kernel"), "partial")
		require.NoError(t, p.tap.WriteFrameHdr(hdr, good))

		buf := make([]byte, 2048)
		n, from, err := conn.ReadFromUDP(buf)
		require.NoError(t, err)
		assert.Equal(t, "finished-by-kernel", string(buf[:n]), "the first datagram delivered is the one with NEEDS_CSUM")
		assert.Equal(t, 4000, from.Port)
		// The two frames may be processed on different CPUs, so the drop
		// may be counted a little after the good datagram is delivered.
		assert.Eventually(t, func() bool { n, err := udpInCsumErrors(p.ns); return err == nil && n == before+1 }, waitLimit, 5*time.Millisecond,
			"the datagram without NEEDS_CSUM must count as one checksum error")
	})

	t.Run("tx-partial-icmp", func(t *testing.T) {
		payload := []byte("partial icmp checksum")
		f, hdr := p.echoRequest(0x5151, 9, payload, true)
		require.NoError(t, p.tap.WriteFrameHdr(hdr, f))
		p.checkEchoReply(t, 0x5151, 9, payload)
	})

	t.Run("rx-partial-checksum", func(t *testing.T) {
		// The kernel sends to us; with rx-csum granted it leaves the UDP
		// checksum partial and says so in the header.
		msg := []byte("from the kernel's socket")
		_, err := conn.WriteToUDP(msg, &net.UDPAddr{IP: net.IP(ourIP.AsSlice()), Port: 5000})
		require.NoError(t, err)
		f := p.next(t, "UDP datagram", func(f []byte) bool {
			return etherType(f) == 0x0800 && len(f) >= 42 && f[14+9] == 17 && binary.BigEndian.Uint16(f[14+20+2:]) == 5000
		})
		require.NotZero(t, f.hdr.Flags&hal.NetHdrFNeedsCsum, "header %+v: expected a partial checksum", f.hdr)
		assert.Equal(t, uint16(14+20), f.hdr.CsumStart)
		assert.Equal(t, uint16(6), f.hdr.CsumOffset)
		u := f.b[14+20:]
		ulen := int(binary.BigEndian.Uint16(u[4:]))
		require.LessOrEqual(t, ulen, len(u))
		u = u[:ulen]
		assert.Equal(t, msg, u[8:])
		// Finishing the checksum as the header says gives a valid datagram.
		fin := checksum(u, 0) // over a field holding the pseudo-header sum
		binary.BigEndian.PutUint16(u[6:], fin)
		assert.Equal(t, uint16(0), checksum(u, pseudoSum(kernelIP, ourIP, 17, ulen)), "completed checksum verifies")
	})
}

func TestTAPPlainReadCompletesChecksum(t *testing.T) {
	// With receive offload on, ReadFrame (which has no header to report a
	// partial checksum) must complete it.
	ns := quietNS(t)
	tap := openTAP(t, ns, "tapc", host.TAPOptions{VNetHdr: true})
	got, err := tap.SetOffload(hal.OffloadRxCsum)
	require.NoError(t, err)
	require.Equal(t, hal.OffloadRxCsum, got)
	mustExec(t, ns, "ip", "addr", "add", "10.0.0.1/24", "dev", "tapc")
	mustExec(t, ns, "ip", "link", "set", "tapc", "up")
	// Tell the kernel where 10.0.0.2 is without ARP traffic.
	mustExec(t, ns, "ip", "neigh", "add", "10.0.0.2", "lladdr", tap.MAC().String(), "dev", "tapc")

	var conn *net.UDPConn
	require.NoError(t, ns.Run(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9001})
		return err
	}))
	defer conn.Close()
	msg := []byte("complete me")
	_, err = conn.WriteToUDP(msg, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 5001})
	require.NoError(t, err)

	frames := make(chan []byte, 16)
	go func() {
		defer close(frames)
		for {
			buf := make([]byte, hal.MaxFrameLen(tap))
			n, err := tap.ReadFrame(buf)
			if err != nil {
				return
			}
			frames <- buf[:n]
		}
	}()
	deadline := time.After(waitLimit)
	for {
		select {
		case f, ok := <-frames:
			require.True(t, ok, "TAP read failed")
			if etherType(f) != 0x0800 || len(f) < 42 || f[14+9] != 17 {
				continue
			}
			u := f[14+20:]
			ulen := int(binary.BigEndian.Uint16(u[4:]))
			require.LessOrEqual(t, ulen, len(u))
			assert.Equal(t, msg, u[8:ulen])
			assert.Equal(t, uint16(0), checksum(u[:ulen], pseudoSum(kernelIP, ourIP, 17, ulen)), "UDP checksum complete")
			return
		case <-deadline:
			t.Fatalf("no UDP datagram within %v", waitLimit)
		}
	}
}

func TestTAPWriteFrameHdrRejects(t *testing.T) {
	ns := quietNS(t)
	tap := openTAP(t, ns, "tapr", host.TAPOptions{VNetHdr: true})
	_, err := tap.SetOffload(hal.OffloadTxCsum | hal.OffloadTxTSO4)
	require.NoError(t, err)
	f := make([]byte, 100)
	tests := []struct {
		name string
		hdr  hal.NetHdr
		size int
		want error
	}{
		{"data-valid-on-tx", hal.NetHdr{Flags: hal.NetHdrFDataValid}, 100, errors.ErrUnsupported},
		{"tso6-not-enabled", hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, GSOType: hal.GSOTCPv6, GSOSize: 1000, HdrLen: 74, CsumStart: 54, CsumOffset: 16}, 100, errors.ErrUnsupported},
		{"udp-gso", hal.NetHdr{GSOType: hal.GSOUDPL4, GSOSize: 100}, 100, errors.ErrUnsupported},
		{"csum-outside-frame", hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 90, CsumOffset: 16}, 100, nil},
		{"oversized-without-gso", hal.NetHdr{}, hal.MaxFrameLen(tap) + 1, hal.ErrFrameSize},
		{"oversized-gso", hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, GSOType: hal.GSOTCPv4, GSOSize: 1400, HdrLen: 54, CsumStart: 34, CsumOffset: 16}, hal.MaxOffloadFrame + 1, hal.ErrFrameSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.size != len(f) {
				f = make([]byte, tc.size)
			}
			err := tap.WriteFrameHdr(&tc.hdr, f)
			require.Error(t, err)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
}

func TestTAPCloseUnblocksBatchRead(t *testing.T) {
	ns := quietNS(t)
	tap := openTAP(t, ns, "tapx", host.TAPOptions{})
	done := make(chan error, 1)
	go func() {
		bufs := [][]byte{make([]byte, 1514), make([]byte, 1514)}
		_, err := tap.ReadFrames(bufs, make([]int, 2))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it block; the result does not depend on it
	require.NoError(t, tap.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, hal.ErrClosed)
	case <-time.After(waitLimit):
		t.Fatal("Close did not unblock ReadFrames")
	}
	_, err := tap.ReadFrames([][]byte{make([]byte, 100)}, []int{0})
	assert.ErrorIs(t, err, hal.ErrClosed)
}

// rawTAP opens a plain blocking TAP descriptor with bare system calls, the
// reference for the cost of our write path.
func rawTAP(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// BenchmarkTAPWriteFrame measures frames written into the kernel (which
// drops them: the interface is up but has no addresses), beside write(2)
// on a raw TAP descriptor.
func BenchmarkTAPWriteFrame(b *testing.B) {
	for _, size := range []int{64, 1514} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			ns := quietNS(b)
			tap := openTAP(b, ns, "tapbench", host.TAPOptions{})
			var raw int
			require.NoError(b, ns.Run(func() error {
				var err error
				raw, err = rawTAP("tapraw")
				return err
			}))
			b.Cleanup(func() { unix.Close(raw) })
			mustExec(b, ns, "ip", "link", "set", "tapbench", "up")
			mustExec(b, ns, "ip", "link", "set", "tapraw", "up")
			f := ethernet(hal.MAC{0x02, 0, 0, 0, 0, 9}, tap.MAC(), 0x88B5, make([]byte, size-14))
			b.Run("host-tap", func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if err := tap.WriteFrame(f); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("ref-raw-write", func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := unix.Write(raw, f); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkTAPBridged measures a frame's trip from one TAP through the
// kernel's bridge to another: write on a, read on b, one at a time.
func BenchmarkTAPBridged(b *testing.B) {
	a, c := bridgedPair(b, host.TAPOptions{})
	f := ethernet(c.MAC(), a.MAC(), 0x88B5, make([]byte, 1500))
	buf := make([]byte, hal.MaxFrameLen(c))
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		if err := a.WriteFrame(f); err != nil {
			b.Fatal(err)
		}
		for {
			n, err := c.ReadFrame(buf)
			if err != nil {
				b.Fatal(err)
			}
			if n == len(f) && etherType(buf[:n]) == 0x88B5 {
				break
			}
		}
	}
}

func TestTAPReadFramesShortBuffer(t *testing.T) {
	a, b := bridgedPair(t, host.TAPOptions{})
	big := ethernet(b.MAC(), a.MAC(), 0x88B5, bytes.Repeat([]byte{1}, 586))
	small := ethernet(b.MAC(), a.MAC(), 0x88B5, bytes.Repeat([]byte{2}, 86))
	n, err := a.WriteFrames([][]byte{big, small})
	require.NoError(t, err)
	require.Equal(t, 2, n)

	bufs := [][]byte{make([]byte, 300), make([]byte, 300)}
	sizes := make([]int, 2)
	var seen []int
	for len(seen) < 2 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			n, err = b.ReadFrames(bufs, sizes)
		}()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Fatal("ReadFrames hung")
		}
		require.NoError(t, err)
		for i := range n {
			if sizes[i] >= 0 && etherType(bufs[i][:sizes[i]]) != 0x88B5 {
				continue // the kernel's own traffic
			}
			seen = append(seen, sizes[i])
			if sizes[i] >= 0 {
				assert.Equal(t, small, bufs[i][:sizes[i]])
			}
		}
	}
	assert.Equal(t, []int{-1, len(small)}, seen, "oversized frame flagged with -1, the next one intact")
}
