package host

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
)

// refSum is a plain 16-bit-word one's complement sum, the RFC 1071 reference.
func refSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestOnesSum(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want uint16
	}{
		{"empty", nil, 0},
		{"one byte", []byte{0xab}, 0xab00},
		{"rfc1071 example", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0xddf2},
		{"carry", []byte{0xff, 0xff, 0x00, 0x01}, 0x0001},
		{"all ones", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0xffff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, onesSum(tc.in))
			assert.Equal(t, refSum(tc.in), onesSum(tc.in))
		})
	}
}

func TestFinishChecksum(t *testing.T) {
	// A UDP datagram after a 14-byte Ethernet and 20-byte IPv4 header,
	// whose checksum field holds a pseudo-header sum.
	frame := make([]byte, 14+20+8+5)
	copy(frame[14+20+8:], "hello")
	binary.BigEndian.PutUint16(frame[14+20+6:], 0x1234)
	hdr := hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 34, CsumOffset: 6}
	require.NoError(t, finishChecksum(&hdr, frame))
	// Verification: the sum over the range plus the pseudo-header sum that
	// was in the field is all ones.
	v := uint32(refSum(frame[34:])) + 0x1234
	v = v&0xffff + v>>16
	assert.Equal(t, uint32(0xffff), v)

	bad := []hal.NetHdr{
		{Flags: hal.NetHdrFNeedsCsum, CsumStart: 46, CsumOffset: 0},
		{Flags: hal.NetHdrFNeedsCsum, CsumStart: 40, CsumOffset: 6},
		{Flags: hal.NetHdrFNeedsCsum, CsumStart: 0xffff, CsumOffset: 0xffff},
	}
	for _, h := range bad {
		assert.ErrorIs(t, finishChecksum(&h, frame), hal.ErrFrameSize, "%+v", h)
	}
}

// FuzzFinishChecksum feeds arbitrary checksum locations and frames, as a
// misbehaving peer could send them: no panic, and a completed checksum
// always verifies.
func FuzzFinishChecksum(f *testing.F) {
	f.Add(uint16(34), uint16(6), []byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789"))
	f.Add(uint16(0), uint16(0), []byte{1, 2})
	f.Add(uint16(5), uint16(0xfff0), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, start, off uint16, frame []byte) {
		hdr := hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: start, CsumOffset: off}
		field := int(start) + int(off)
		var partial uint16
		if field+2 <= len(frame) {
			partial = binary.BigEndian.Uint16(frame[field:])
		}
		err := finishChecksum(&hdr, frame)
		if field+2 > len(frame) {
			if err == nil {
				t.Fatalf("checksum at %d+%d accepted in %d-byte frame", start, off, len(frame))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		// Replacing the field by the stored partial sum plus the result
		// must sum to all ones (or the 0xffff/0 ambiguity of one's
		// complement).
		c := binary.BigEndian.Uint16(frame[field:])
		binary.BigEndian.PutUint16(frame[field:], partial)
		s := uint32(refSum(frame[start:])) + uint32(c)
		for s > 0xffff {
			s = s&0xffff + s>>16
		}
		if s != 0xffff && !(c == 0xffff && s == 0) {
			t.Fatalf("completed checksum %#04x does not verify (sum %#04x)", c, s)
		}
	})
}
