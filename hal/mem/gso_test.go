package mem

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
)

// refChecksum is a deliberately plain RFC 1071 checksum (complemented),
// independent of the package's implementation.
func refChecksum(chunks ...[]byte) uint16 {
	var all []byte
	for _, c := range chunks {
		all = append(all, c...)
	}
	var sum uint32
	for i := 0; i+1 < len(all); i += 2 {
		sum += uint32(all[i])<<8 | uint32(all[i+1])
	}
	if len(all)%2 == 1 {
		sum += uint32(all[len(all)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// testPacket describes an Ethernet/IP/TCP-or-UDP frame for the tests.
type testPacket struct {
	v6      bool
	udp     bool
	vlan    bool
	tcpOpts int // bytes of TCP options (multiple of 4)
	seq     uint32
	flags   byte
	id      uint16
	payload []byte
}

var (
	testSrcIP4 = []byte{10, 0, 0, 1}
	testDstIP4 = []byte{10, 0, 0, 2}
	testSrcIP6 = []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	testDstIP6 = []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
)

// build returns the frame, the offsets of the IP and transport headers and
// the transport header length. Checksums are left zero.
func (tp testPacket) build() (frame []byte, l3, l4, l4hdr int) {
	frame = append(frame, 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1)
	if tp.vlan {
		frame = append(frame, 0x81, 0x00, 0x00, 0x05)
	}
	if tp.v6 {
		frame = append(frame, 0x86, 0xdd)
	} else {
		frame = append(frame, 0x08, 0x00)
	}
	l3 = len(frame)
	l4hdr = 20 + tp.tcpOpts
	proto := byte(6)
	if tp.udp {
		l4hdr, proto = 8, 17
	}
	l4len := l4hdr + len(tp.payload)
	if tp.v6 {
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4len))
		ip[6], ip[7] = proto, 64
		copy(ip[8:], testSrcIP6)
		copy(ip[24:], testDstIP6)
		frame = append(frame, ip...)
	} else {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len))
		binary.BigEndian.PutUint16(ip[4:], tp.id)
		ip[6] = 0x40 // DF
		ip[8], ip[9] = 64, proto
		copy(ip[12:], testSrcIP4)
		copy(ip[16:], testDstIP4)
		frame = append(frame, ip...)
	}
	l4 = len(frame)
	h := make([]byte, l4hdr)
	binary.BigEndian.PutUint16(h[0:], 40000)
	binary.BigEndian.PutUint16(h[2:], 80)
	if tp.udp {
		binary.BigEndian.PutUint16(h[4:], uint16(l4len))
	} else {
		binary.BigEndian.PutUint32(h[4:], tp.seq)
		binary.BigEndian.PutUint32(h[8:], 777)
		h[12] = byte(l4hdr/4) << 4
		h[13] = tp.flags
		binary.BigEndian.PutUint16(h[14:], 65535)
		for i := 20; i < l4hdr; i++ {
			h[i] = 1 // NOP options
		}
	}
	frame = append(frame, h...)
	frame = append(frame, tp.payload...)
	return frame, l3, l4, l4hdr
}

// refPseudo builds the pseudo-header bytes of the packet in frame.
func refPseudo(frame []byte, l3, l4 int, v6 bool) []byte {
	l4len := len(frame) - l4
	var ph []byte
	if v6 {
		ph = append(ph, frame[l3+8:l3+40]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(l4len))
		ph = append(ph, 0, 0, 0, frame[l3+6])
	} else {
		ph = append(ph, frame[l3+12:l3+20]...)
		ph = append(ph, 0, frame[l3+9])
		ph = binary.BigEndian.AppendUint16(ph, uint16(l4len))
	}
	return ph
}

// refL4Valid reports whether the transport checksum of frame verifies.
func refL4Valid(t *testing.T, frame []byte, l3, l4 int, v6, udp bool) bool {
	t.Helper()
	at := l4 + 16
	if udp {
		at = l4 + 6
	}
	got := binary.BigEndian.Uint16(frame[at:])
	c := bytes.Clone(frame)
	c[at], c[at+1] = 0, 0
	want := refChecksum(refPseudo(c, l3, l4, v6), c[l4:])
	if udp && want == 0 {
		want = 0xffff
	}
	// 0 and 0xffff are the same one's complement value for TCP.
	if !udp && (got == 0xffff && want == 0 || got == 0 && want == 0xffff) {
		return true
	}
	return got == want
}

func testPayload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func TestGSOChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, n := range []int{0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 1499, 1500, 65535} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		assert.Equal(t, refChecksum(b), ^gsoChecksumFold(gsoChecksumAdd(0, b)), "length %d", n)
		all := bytes.Repeat([]byte{0xff}, n)
		assert.Equal(t, refChecksum(all), ^gsoChecksumFold(gsoChecksumAdd(0, all)), "all ones, length %d", n)
	}
}

func TestGSOFinishChecksum(t *testing.T) {
	tests := []struct {
		name string
		pkt  testPacket
	}{
		{"tcp4", testPacket{payload: testPayload(1000, 1), flags: 0x18}},
		{"tcp6", testPacket{v6: true, payload: testPayload(999, 2)}},
		{"udp4", testPacket{udp: true, payload: testPayload(33, 3)}},
		{"udp6-empty", testPacket{v6: true, udp: true}},
		{"tcp4-vlan-options", testPacket{vlan: true, tcpOpts: 12, payload: testPayload(77, 4)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame, l3, l4, _ := tc.pkt.build()
			off := 16
			if tc.pkt.udp {
				off = 6
			}
			// As a stack does: the folded, uncomplemented pseudo-header sum.
			ps := ^refChecksum(refPseudo(frame, l3, l4, tc.pkt.v6))
			binary.BigEndian.PutUint16(frame[l4+off:], ps)
			hdr := hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: uint16(l4), CsumOffset: uint16(off)}
			require.NoError(t, hdr.Validate(len(frame)))
			require.NoError(t, gsoFinishChecksum(&hdr, frame))
			assert.True(t, refL4Valid(t, frame, l3, l4, tc.pkt.v6, tc.pkt.udp))
		})
	}
}

func TestGSOSegment(t *testing.T) {
	const allFlags = 0x80 | 0x10 | 0x08 | 0x01 // CWR ACK PSH FIN
	tests := []struct {
		name     string
		gsoType  uint8
		mss      int
		pkt      testPacket
		wantSegs int
	}{
		{"tcp4", hal.GSOTCPv4, 1448, testPacket{seq: 1000, id: 7, flags: allFlags, payload: testPayload(5000, 1)}, 4},
		{"tcp4-exact", hal.GSOTCPv4, 1000, testPacket{seq: 5, flags: allFlags, payload: testPayload(3000, 2)}, 3},
		{"tcp4-one", hal.GSOTCPv4, 1460, testPacket{flags: allFlags, payload: testPayload(100, 3)}, 1},
		{"tcp4-empty", hal.GSOTCPv4, 1460, testPacket{flags: 0x10}, 1},
		{"tcp4-seq-wraps", hal.GSOTCPv4, 1000, testPacket{seq: 0xffffff00, id: 0xffff, flags: 0x18, payload: testPayload(2500, 4)}, 3},
		{"tcp4-options-vlan", hal.GSOTCPv4, 1436, testPacket{vlan: true, tcpOpts: 12, flags: allFlags, payload: testPayload(10000, 5)}, 7},
		{"tcp4-ecn", hal.GSOTCPv4 | hal.GSOECN, 500, testPacket{flags: allFlags, payload: testPayload(1200, 6)}, 3},
		{"tcp4-max", hal.GSOTCPv4, 1448, testPacket{flags: allFlags, payload: testPayload(65535-40, 7)}, 46},
		{"tcp6", hal.GSOTCPv6, 1440, testPacket{v6: true, seq: 9, flags: allFlags, payload: testPayload(6000, 8)}, 5},
		{"udp4", hal.GSOUDPL4, 1200, testPacket{udp: true, id: 100, payload: testPayload(3000, 9)}, 3},
		{"udp6", hal.GSOUDPL4, 1000, testPacket{v6: true, udp: true, payload: testPayload(1001, 10)}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame, l3, l4, l4hdr := tc.pkt.build()
			orig := bytes.Clone(frame)
			hdr := hal.NetHdr{GSOType: tc.gsoType, GSOSize: uint16(tc.mss), HdrLen: uint16(l4 + l4hdr)}
			plan, err := gsoMakePlan(&hdr, frame)
			require.NoError(t, err)
			require.Equal(t, tc.wantSegs, plan.segs)
			var payload []byte
			for i := range plan.segs {
				buf := make([]byte, plan.maxSegLen())
				n := plan.segment(buf, frame, i)
				seg := buf[:n]
				require.Equal(t, orig, frame, "input changed")
				require.Equal(t, frame[:l3], seg[:l3], "link header")
				body := seg[l4+l4hdr:]
				assert.LessOrEqual(t, len(body), tc.mss)
				payload = append(payload, body...)
				if tc.pkt.v6 {
					assert.Equal(t, len(seg)-l3-40, int(binary.BigEndian.Uint16(seg[l3+4:])), "payload length")
				} else {
					assert.Equal(t, len(seg)-l3, int(binary.BigEndian.Uint16(seg[l3+2:])), "total length")
					assert.Equal(t, tc.pkt.id+uint16(i), binary.BigEndian.Uint16(seg[l3+4:]), "IP ID")
					assert.Equal(t, byte(0x40), seg[l3+6], "DF kept")
					ipc := bytes.Clone(seg[l3 : l3+20])
					got := binary.BigEndian.Uint16(ipc[10:])
					ipc[10], ipc[11] = 0, 0
					assert.Equal(t, refChecksum(ipc), got, "IP header checksum")
				}
				if tc.pkt.udp {
					assert.Equal(t, len(seg)-l4, int(binary.BigEndian.Uint16(seg[l4+4:])), "UDP length")
				} else {
					assert.Equal(t, tc.pkt.seq+uint32(i*tc.mss), binary.BigEndian.Uint32(seg[l4+4:]), "sequence")
					f := seg[l4+13]
					want := tc.pkt.flags
					if i > 0 {
						want &^= 0x80
					}
					if i < plan.segs-1 {
						want &^= 0x09
					}
					assert.Equal(t, want, f, "flags of segment %d", i)
				}
				assert.True(t, refL4Valid(t, seg, l3, l4, tc.pkt.v6, tc.pkt.udp), "L4 checksum of segment %d", i)
			}
			assert.Equal(t, tc.pkt.payload, payload[:len(payload):len(payload)], "reassembled payload")
			if len(tc.pkt.payload) == 0 {
				assert.Empty(t, payload)
			}
		})
	}
}

func TestGSOMakePlanRejects(t *testing.T) {
	tcp4, _, _, _ := testPacket{payload: testPayload(100, 1)}.build()
	tcp6, _, _, _ := testPacket{v6: true, payload: testPayload(100, 1)}.build()
	udp4, _, _, _ := testPacket{udp: true, payload: testPayload(100, 1)}.build()
	badIHL := bytes.Clone(tcp4)
	badIHL[14] = 0x44
	badDoff := bytes.Clone(tcp4)
	badDoff[14+20+12] = 0x40
	hugeDoff := bytes.Clone(tcp4)
	hugeDoff[14+20+12] = 0xf0
	arp := bytes.Clone(tcp4)
	arp[12], arp[13] = 0x08, 0x06
	icmp := bytes.Clone(tcp4)
	icmp[14+9] = 1
	tests := []struct {
		name    string
		gsoType uint8
		mss     uint16
		frame   []byte
	}{
		{"short", hal.GSOTCPv4, 1000, tcp4[:13]},
		{"truncated-ip", hal.GSOTCPv4, 1000, tcp4[:20]},
		{"truncated-tcp", hal.GSOTCPv4, 1000, tcp4[:40]},
		{"zero-mss", hal.GSOTCPv4, 0, tcp4},
		{"v4-type-on-v6", hal.GSOTCPv4, 1000, tcp6},
		{"v6-type-on-v4", hal.GSOTCPv6, 1000, tcp4},
		{"tcp-type-on-udp", hal.GSOTCPv4, 1000, udp4},
		{"udp-type-on-tcp", hal.GSOUDPL4, 1000, tcp4},
		{"ufo", hal.GSOUDP, 1000, udp4},
		{"bad-ihl", hal.GSOTCPv4, 1000, badIHL},
		{"bad-doff", hal.GSOTCPv4, 1000, badDoff},
		{"doff-beyond-frame", hal.GSOTCPv4, 1000, hugeDoff[:60]},
		{"not-ip", hal.GSOTCPv4, 1000, arp},
		{"not-tcp", hal.GSOTCPv4, 1000, icmp},
		{"too-long", hal.GSOTCPv4, 1000, make([]byte, hal.MaxOffloadFrame+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := hal.NetHdr{GSOType: tc.gsoType, GSOSize: tc.mss}
			_, err := gsoMakePlan(&hdr, tc.frame)
			assert.Error(t, err)
		})
	}
}

func FuzzGSOSegment(f *testing.F) {
	tcp4, _, _, _ := testPacket{flags: 0x19, payload: testPayload(3000, 1)}.build()
	tcp6, _, _, _ := testPacket{v6: true, payload: testPayload(2000, 2)}.build()
	udp4, _, _, _ := testPacket{udp: true, payload: testPayload(1500, 3)}.build()
	f.Add(tcp4, uint8(hal.GSOTCPv4), uint16(1448))
	f.Add(tcp6, uint8(hal.GSOTCPv6), uint16(1000))
	f.Add(udp4, uint8(hal.GSOUDPL4), uint16(500))
	f.Add(tcp4[:60], uint8(hal.GSOTCPv4), uint16(1))
	f.Fuzz(func(t *testing.T, frame []byte, gsoType uint8, mss uint16) {
		hdr := hal.NetHdr{GSOType: gsoType, GSOSize: mss}
		orig := bytes.Clone(frame)
		plan, err := gsoMakePlan(&hdr, frame)
		if err != nil {
			return
		}
		if plan.segs > 256 {
			plan.segs = 256 // keep the run short; every index is independent
		}
		var payload []byte
		// A guard band after the buffer catches writes out of bounds.
		limit := plan.maxSegLen()
		buf := make([]byte, limit+16)
		guard := make([]byte, 16)
		for i := range plan.segs {
			n := plan.segment(buf[:limit], frame, i)
			if n > limit || !bytes.Equal(buf[limit:], guard) {
				t.Fatalf("segment %d: length %d, buffer %d, guard %x", i, n, limit, buf[limit:])
			}
			payload = append(payload, buf[plan.hdrEnd:n]...)
		}
		require.Equal(t, orig, frame, "input changed")
		want := frame[plan.hdrEnd:]
		require.True(t, bytes.Equal(want[:min(len(want), len(payload))], payload), "reassembled payload")
	})
}
