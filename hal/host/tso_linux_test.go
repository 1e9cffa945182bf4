package host_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/host"
)

// ipv6 builds an IPv6 header (RFC 8200) followed by payload.
func ipv6(next byte, src, dst netip.Addr, payload []byte) []byte {
	p := make([]byte, 40+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(payload)))
	p[6] = next
	p[7] = 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	copy(p[40:], payload)
	return p
}

// pseudoSum6 is the unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1).
func pseudoSum6(src, dst netip.Addr, next byte, length int) uint32 {
	var s uint32
	for _, a := range [][16]byte{src.As16(), dst.As16()} {
		for i := 0; i < 16; i += 2 {
			s += uint32(a[i])<<8 | uint32(a[i+1])
		}
	}
	return s + uint32(length>>16) + uint32(length&0xffff) + uint32(next)
}

type tsoCase struct {
	v6      bool
	payload []byte
	mss     int
}

func (c tsoCase) addrs() (src, dst netip.Addr) {
	if c.v6 {
		return netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1")
	}
	return ourIP, kernelIP
}

func (c tsoCase) pseudo(length int) uint32 {
	src, dst := c.addrs()
	if c.v6 {
		return pseudoSum6(src, dst, 6, length)
	}
	return pseudoSum(src, dst, 6, length)
}

// superFrame builds a TCP segment carrying the whole payload, with its
// checksum left partial and a header asking for segmentation into mss-byte
// segments (what a stack using TSO writes).
func (c tsoCase) superFrame(dst, src hal.MAC) ([]byte, *hal.NetHdr) {
	tcp := make([]byte, 20+len(c.payload))
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	binary.BigEndian.PutUint32(tcp[4:], 1000) // seq
	binary.BigEndian.PutUint32(tcp[8:], 1)    // ack
	tcp[12] = 5 << 4
	tcp[13] = 0x10 // ACK
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], c.payload)
	// The checksum field holds the folded pseudo-header sum over the full
	// length; segmentation adjusts it per segment.
	binary.BigEndian.PutUint16(tcp[16:], ^checksum(nil, c.pseudo(len(tcp))))
	src4, dst4 := c.addrs()
	var ip []byte
	typ := uint16(0x0800)
	gso := uint8(hal.GSOTCPv4)
	if c.v6 {
		ip, typ, gso = ipv6(6, src4, dst4, tcp), 0x86DD, hal.GSOTCPv6
	} else {
		ip = ipv4(6, src4, dst4, 1, tcp)
	}
	iphl := len(ip) - len(tcp)
	return ethernet(dst, src, typ, ip), &hal.NetHdr{
		Flags:      hal.NetHdrFNeedsCsum,
		GSOType:    gso,
		HdrLen:     uint16(14 + iphl + 20),
		GSOSize:    uint16(c.mss),
		CsumStart:  uint16(14 + iphl),
		CsumOffset: 16,
	}
}

// tcpOf returns the IP header length and the TCP segment of a frame built
// by superFrame (or a segment of it), or ok false for other frames.
func (c tsoCase) tcpOf(f []byte) (ip, tcp []byte, ok bool) {
	if c.v6 {
		if etherType(f) != 0x86DD || len(f) < 14+40+20 || f[14+6] != 6 {
			return nil, nil, false
		}
		ip = f[14:]
		n := 40 + int(binary.BigEndian.Uint16(ip[4:]))
		if n > len(ip) {
			return nil, nil, false
		}
		return ip[:40], ip[40:n], true
	}
	if etherType(f) != 0x0800 || len(f) < 14+20+20 || f[14+9] != 6 {
		return nil, nil, false
	}
	ip = f[14:]
	n := int(binary.BigEndian.Uint16(ip[2:]))
	if n > len(ip) || n < 40 {
		return nil, nil, false
	}
	return ip[:20], ip[20:n], true
}

// TestTAPSegmentationOffload writes TCP super-frames with a GSO header on
// one TAP of a bridged pair. Linux forwards them to the other TAP, and
// either segments them itself (the reader did not ask for receive TSO) or
// hands the super-frame over unchanged (it did).
func TestTAPSegmentationOffload(t *testing.T) {
	payload := make([]byte, 5000)
	for i := range payload {
		payload[i] = byte(i*13 + i/256)
	}
	for _, v6 := range []bool{false, true} {
		for _, rxTSO := range []bool{false, true} {
			name := fmt.Sprintf("ipv4/rx-tso=%v", rxTSO)
			if v6 {
				name = fmt.Sprintf("ipv6/rx-tso=%v", rxTSO)
			}
			t.Run(name, func(t *testing.T) {
				c := tsoCase{v6: v6, payload: payload, mss: 1000}
				a, b := bridgedPair(t, host.TAPOptions{VNetHdr: true})
				_, err := a.SetOffload(hal.OffloadTxCsum | hal.OffloadTxTSO4 | hal.OffloadTxTSO6)
				require.NoError(t, err)
				if rxTSO {
					want := hal.OffloadRxCsum | hal.OffloadRxTSO4 | hal.OffloadRxTSO6
					got, err := b.SetOffload(want)
					require.NoError(t, err)
					require.Equal(t, want, got)
				}
				f, hdr := c.superFrame(b.MAC(), a.MAC())
				require.NoError(t, a.WriteFrameHdr(hdr, f))

				type seg struct {
					f   []byte
					hdr hal.NetHdr
				}
				segs := make(chan seg, 64)
				go func() {
					defer close(segs)
					for {
						buf := make([]byte, hal.MaxOffloadFrame)
						n, h, err := b.ReadFrameHdr(buf)
						if err != nil {
							return
						}
						if _, _, ok := c.tcpOf(buf[:n]); ok {
							segs <- seg{buf[:n], h}
						}
					}
				}()
				next := func() seg {
					select {
					case s, ok := <-segs:
						require.True(t, ok, "reader stopped")
						return s
					case <-time.After(waitLimit):
						t.Fatalf("no TCP frame within %v", waitLimit)
					}
					return seg{}
				}

				if rxTSO {
					s := next()
					assert.Equal(t, len(f), len(s.f), "super-frame delivered whole")
					assert.Equal(t, hdr.GSOType, s.hdr.GSOType&^hal.GSOECN)
					assert.Equal(t, uint16(c.mss), s.hdr.GSOSize)
					_, tcp, _ := c.tcpOf(s.f)
					assert.Equal(t, payload, tcp[20:])
					if s.hdr.Flags&hal.NetHdrFNeedsCsum != 0 {
						binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, 0))
					}
					assert.Equal(t, uint16(0), checksum(tcp, c.pseudo(len(tcp))), "TCP checksum of super-frame")
					return
				}

				got := 0
				for got < len(payload) {
					s := next()
					assert.Equal(t, hal.NetHdr{}, s.hdr, "no offload granted: plain frames")
					ip, tcp, _ := c.tcpOf(s.f)
					if !c.v6 {
						assert.Equal(t, uint16(0), checksum(ip, 0), "IPv4 header checksum")
					}
					data := tcp[20:]
					require.LessOrEqual(t, len(data), c.mss, "segment larger than MSS")
					assert.Equal(t, uint32(1000+got), binary.BigEndian.Uint32(tcp[4:]), "sequence number")
					assert.Equal(t, uint16(0), checksum(tcp, c.pseudo(len(tcp))), "TCP checksum of segment at %d", got)
					require.True(t, bytes.Equal(payload[got:got+len(data)], data), "segment at %d altered", got)
					got += len(data)
				}
				assert.Equal(t, len(payload), got)
			})
		}
	}
}
