package host

import (
	"encoding/binary"
	"fmt"

	"github.com/anykernel/anykernel/hal"
)

// finishChecksum completes the partial checksum a frame carries when its
// header has hal.NetHdrFNeedsCsum: the 16-bit field at CsumStart+CsumOffset
// holds the (uncomplemented) pseudo-header sum, and the Internet checksum
// (RFC 1071) over everything from CsumStart to the end of the frame, that
// field included, goes into it.
func finishChecksum(hdr *hal.NetHdr, frame []byte) error {
	start := int(hdr.CsumStart)
	field := start + int(hdr.CsumOffset)
	if start > len(frame) || field+2 > len(frame) {
		return fmt.Errorf("partial checksum at %d+%d outside %d-byte frame: %w", hdr.CsumStart, hdr.CsumOffset, len(frame), hal.ErrFrameSize)
	}
	c := ^onesSum(frame[start:])
	if c == 0 {
		// Zero and 0xffff are the same number in one's complement; UDP
		// reserves zero for "no checksum" (RFC 768), so send 0xffff.
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[field:], c)
	return nil
}

// onesSum returns the folded 16-bit one's complement sum of b (RFC 1071),
// an odd trailing byte padded with zero.
func onesSum(b []byte) uint16 {
	var s uint64
	for len(b) >= 8 {
		s += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
