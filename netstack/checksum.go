package netstack

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// Protocol numbers and EtherTypes used by the software checksum check
// (IEEE 802 numbers; IANA protocol numbers, RFC 790 and RFC 8200 §4).
const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	protoHopByHop = 0
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoDestOpts = 60

	tcpChecksumOffset = 16 // RFC 9293 §3.1
	udpChecksumOffset = 6  // RFC 768
)

// checksumsValid verifies in software what a checksum-offloading device
// would have: the IPv4 header checksum (RFC 791) and the TCP or UDP checksum
// over the pseudo-header (RFC 9293 §3.1, RFC 768, RFC 8200 §8.1). Frames it
// cannot parse far enough are left to the stack (true); frames it can parse
// and whose checksums are wrong are rejected (false). Fragments are not
// checked here: their transport checksum covers the reassembled datagram.
func checksumsValid(frame []byte) bool {
	if len(frame) < 14 {
		return false
	}
	et := binary.BigEndian.Uint16(frame[12:])
	ip := frame[14:]
	switch et {
	case etherTypeIPv4:
		if len(ip) < 20 {
			return false
		}
		ihl := int(ip[0]&0xf) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ip[0]>>4 != 4 || ihl < 20 || total < ihl || total > len(ip) {
			return false
		}
		if checksum.Checksum(ip[:ihl], 0) != 0xffff {
			return false
		}
		if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // MF or offset: a fragment
			return true
		}
		var ph [12]byte
		copy(ph[0:8], ip[12:20])
		ph[9] = ip[9]
		binary.BigEndian.PutUint16(ph[10:], uint16(total-ihl))
		return transportValid(ip[9], ph[:], ip[ihl:total], true)
	case etherTypeIPv6:
		if len(ip) < 40 || ip[0]>>4 != 6 {
			return false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+plen > len(ip) {
			return false
		}
		next, payload := ip[6], ip[40:40+plen]
		for next == protoHopByHop || next == protoRouting || next == protoDestOpts {
			if len(payload) < 8 {
				return false
			}
			l := (int(payload[1]) + 1) * 8
			if l > len(payload) {
				return false
			}
			next, payload = payload[0], payload[l:]
		}
		var ph [40]byte
		copy(ph[0:32], ip[8:40])
		binary.BigEndian.PutUint32(ph[32:], uint32(len(payload)))
		ph[39] = next
		return transportValid(next, ph[:], payload, false)
	}
	return true
}

// transportValid checks a TCP or UDP checksum given the pseudo-header bytes.
// Other protocols are left to the stack, which checks ICMP itself.
func transportValid(proto byte, pseudo, seg []byte, v4 bool) bool {
	switch proto {
	case protoTCP:
		if len(seg) < 20 {
			return false
		}
	case protoUDP:
		if len(seg) < 8 {
			return false
		}
		if v4 && binary.BigEndian.Uint16(seg[udpChecksumOffset:]) == 0 {
			return true // no checksum (RFC 768)
		}
	default:
		return true
	}
	return checksum.Checksum(seg, checksum.Checksum(pseudo, 0)) == 0xffff
}
