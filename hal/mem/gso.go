package mem

import (
	"encoding/binary"
	"fmt"

	"github.com/anykernel/anykernel/hal"
)

// Software offload: what a device does for a frame written with a
// virtio-net header when the receiver cannot take the frame as it is.
//
// Checksum completion follows virtio 1.2 §5.1.6.2: the sender has stored the
// pseudo-header sum in the checksum field, the device sums from CsumStart to
// the end of the frame and stores the complement at CsumStart+CsumOffset.
//
// Segmentation (TSO for TCP over IPv4/IPv6, USO for UDP) parses the headers
// itself rather than trusting HdrLen, splits the payload into GSOSize pieces
// and writes complete frames with correct lengths, IPv4 identification,
// sequence numbers, flags and checksums (RFC 791, RFC 8200, RFC 9293).

const (
	gsoEtherTypeIPv4 = 0x0800
	gsoEtherTypeIPv6 = 0x86dd
	gsoEtherTypeVLAN = 0x8100

	gsoProtoTCP = 6
	gsoProtoUDP = 17

	gsoTCPFlagFIN = 0x01
	gsoTCPFlagPSH = 0x08
	gsoTCPFlagCWR = 0x80
)

// gsoChecksumAdd adds the big-endian 16-bit words of b to the one's
// complement accumulator sum and returns the new, unfolded accumulator.
// An odd trailing byte is padded with zero as RFC 1071 requires.
func gsoChecksumAdd(sum uint64, b []byte) uint64 {
	// 32-bit words summed into 64 bits cannot overflow for any frame; the
	// carries are folded back in by gsoChecksumFold.
	for len(b) >= 16 {
		x, y := binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
		sum += x>>32 + x&0xffffffff + y>>32 + y&0xffffffff
		b = b[16:]
	}
	for len(b) >= 4 {
		sum += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}

// gsoChecksumFold folds a 64-bit accumulator to 16 bits (not complemented).
func gsoChecksumFold(sum uint64) uint16 {
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 16) + (sum & 0xffff)
	sum = (sum >> 16) + (sum & 0xffff)
	sum = (sum >> 16) + (sum & 0xffff)
	return uint16(sum)
}

// gsoFinishChecksum completes a NetHdrFNeedsCsum frame in place. The header
// must have passed Validate for len(frame).
func gsoFinishChecksum(hdr *hal.NetHdr, frame []byte) error {
	start, at := int(hdr.CsumStart), int(hdr.CsumStart)+int(hdr.CsumOffset)
	if at+2 > len(frame) {
		return fmt.Errorf("mem: checksum at %d+%d outside %d-byte frame", hdr.CsumStart, hdr.CsumOffset, len(frame))
	}
	c := ^gsoChecksumFold(gsoChecksumAdd(0, frame[start:]))
	if c == 0 {
		// Zero means "no checksum" in UDP; 0xffff is the same value in
		// one's complement and valid for every protocol.
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[at:], c)
	return nil
}

// gsoPlan is a validated description of a super-frame to segment.
type gsoPlan struct {
	l3, l4  int  // offsets of the IP and transport headers
	hdrEnd  int  // offset of the payload
	mss     int  // payload bytes per segment
	payload int  // total payload bytes
	segs    int  // number of segments (at least 1)
	v6, tcp bool // IPv6 rather than IPv4; TCP rather than UDP
}

// maxSegLen returns the length of the largest segment the plan produces.
func (p *gsoPlan) maxSegLen() int { return p.hdrEnd + min(p.mss, p.payload) }

// gsoMakePlan parses frame's Ethernet, IP and transport headers and checks
// them against the GSO type of hdr.
func gsoMakePlan(hdr *hal.NetHdr, frame []byte) (gsoPlan, error) {
	var p gsoPlan
	if len(frame) < hal.EthernetHeaderLen {
		return p, fmt.Errorf("mem: gso: %d-byte frame: %w", len(frame), hal.ErrFrameSize)
	}
	if len(frame) > hal.MaxOffloadFrame {
		return p, fmt.Errorf("mem: gso: %d-byte frame exceeds %d: %w", len(frame), hal.MaxOffloadFrame, hal.ErrFrameSize)
	}
	if hdr.GSOSize == 0 {
		return p, fmt.Errorf("mem: gso: zero segment size")
	}
	p.mss = int(hdr.GSOSize)
	et := binary.BigEndian.Uint16(frame[12:])
	p.l3 = hal.EthernetHeaderLen
	if et == gsoEtherTypeVLAN {
		if len(frame) < 18 {
			return p, fmt.Errorf("mem: gso: truncated VLAN header")
		}
		et = binary.BigEndian.Uint16(frame[16:])
		p.l3 = 18
	}
	var proto byte
	switch et {
	case gsoEtherTypeIPv4:
		if len(frame) < p.l3+20 || frame[p.l3]>>4 != 4 {
			return p, fmt.Errorf("mem: gso: bad IPv4 header")
		}
		ihl := int(frame[p.l3]&0xf) * 4
		if ihl < 20 || len(frame) < p.l3+ihl {
			return p, fmt.Errorf("mem: gso: bad IPv4 header length %d", ihl)
		}
		proto = frame[p.l3+9]
		p.l4 = p.l3 + ihl
	case gsoEtherTypeIPv6:
		if len(frame) < p.l3+40 || frame[p.l3]>>4 != 6 {
			return p, fmt.Errorf("mem: gso: bad IPv6 header")
		}
		proto = frame[p.l3+6]
		p.l4 = p.l3 + 40
		p.v6 = true
	default:
		return p, fmt.Errorf("mem: gso: EtherType %#04x is not IP", et)
	}
	switch proto {
	case gsoProtoTCP:
		if len(frame) < p.l4+20 {
			return p, fmt.Errorf("mem: gso: truncated TCP header")
		}
		doff := int(frame[p.l4+12]>>4) * 4
		if doff < 20 || len(frame) < p.l4+doff {
			return p, fmt.Errorf("mem: gso: bad TCP data offset %d", doff)
		}
		p.hdrEnd = p.l4 + doff
		p.tcp = true
	case gsoProtoUDP:
		if len(frame) < p.l4+8 {
			return p, fmt.Errorf("mem: gso: truncated UDP header")
		}
		p.hdrEnd = p.l4 + 8
	default:
		return p, fmt.Errorf("mem: gso: IP protocol %d (extension headers are not supported)", proto)
	}
	switch hdr.GSOType &^ hal.GSOECN {
	case hal.GSOTCPv4:
		if p.v6 || !p.tcp {
			return p, fmt.Errorf("mem: gso: GSO type TCPv4 on a frame that is not TCP over IPv4")
		}
	case hal.GSOTCPv6:
		if !p.v6 || !p.tcp {
			return p, fmt.Errorf("mem: gso: GSO type TCPv6 on a frame that is not TCP over IPv6")
		}
	case hal.GSOUDPL4:
		if p.tcp {
			return p, fmt.Errorf("mem: gso: GSO type UDP_L4 on a TCP frame")
		}
	default:
		return p, fmt.Errorf("mem: gso: GSO type %#x: %w", hdr.GSOType, errUnsupportedGSO)
	}
	p.payload = len(frame) - p.hdrEnd
	p.segs = (p.payload + p.mss - 1) / p.mss
	if p.segs == 0 {
		p.segs = 1
	}
	return p, nil
}

// segment writes segment i of frame into dst, which must hold
// p.maxSegLen() bytes, and returns its length.
func (p *gsoPlan) segment(dst, frame []byte, i int) int {
	off := i * p.mss
	n := min(p.mss, p.payload-off)
	if n < 0 {
		n = 0
	}
	copy(dst[:p.hdrEnd], frame[:p.hdrEnd])
	copy(dst[p.hdrEnd:], frame[p.hdrEnd+off:p.hdrEnd+off+n])
	segLen := p.hdrEnd + n
	seg := dst[:segLen]
	ip := seg[p.l3:p.l4]
	l4len := segLen - p.l4

	// Network header and the pseudo-header sum (RFC 9293 §3.1, RFC 8200 §8.1).
	var pseudo uint64
	proto := byte(gsoProtoUDP)
	if p.tcp {
		proto = gsoProtoTCP
	}
	if p.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(segLen-p.l3-40))
		pseudo = gsoChecksumAdd(0, ip[8:40])
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(segLen-p.l3))
		id := binary.BigEndian.Uint16(frame[p.l3+4:])
		binary.BigEndian.PutUint16(ip[4:], id+uint16(i))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^gsoChecksumFold(gsoChecksumAdd(0, ip)))
		pseudo = gsoChecksumAdd(0, ip[12:20])
	}
	pseudo += uint64(proto) + uint64(l4len)

	l4 := seg[p.l4:]
	var csumAt int
	if p.tcp {
		seq := binary.BigEndian.Uint32(frame[p.l4+4:])
		binary.BigEndian.PutUint32(l4[4:], seq+uint32(off))
		if i > 0 {
			l4[13] &^= gsoTCPFlagCWR
		}
		if i < p.segs-1 {
			l4[13] &^= gsoTCPFlagFIN | gsoTCPFlagPSH
		}
		csumAt = 16
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
		csumAt = 6
	}
	l4[csumAt], l4[csumAt+1] = 0, 0
	c := ^gsoChecksumFold(gsoChecksumAdd(pseudo, l4))
	if c == 0 && !p.tcp {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[csumAt:], c)
	return segLen
}
