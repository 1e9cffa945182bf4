package hal

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// NetHdr is the per-frame offload metadata that accompanies a frame on an
// [OffloadNIC]. It is the virtio-net header (virtio 1.2 §5.1.6,
// struct virtio_net_hdr), which Linux TAP devices also use (IFF_VNET_HDR), so
// a stack that speaks it gets checksum and segmentation offload from TAP,
// virtio-net and the in-memory NICs alike.
type NetHdr struct {
	Flags      uint8  // NetHdrF* bits
	GSOType    uint8  // GSO* value, possibly ORed with GSOECN
	HdrLen     uint16 // length of the headers to copy into each segment
	GSOSize    uint16 // maximum segment payload (MSS) when GSOType != GSONone
	CsumStart  uint16 // offset from frame start where checksumming starts
	CsumOffset uint16 // offset after CsumStart where the checksum is stored
}

// NetHdr flags and GSO types (virtio 1.2 §5.1.6).
const (
	NetHdrFNeedsCsum = 1 // checksum from CsumStart to the end is still to be computed
	NetHdrFDataValid = 2 // the device has validated the frame's checksums
	NetHdrFRSCInfo   = 4 // receive segment coalescing information present

	GSONone  = 0
	GSOTCPv4 = 1
	GSOUDP   = 3
	GSOTCPv6 = 4
	GSOUDPL4 = 5
	GSOECN   = 0x80
)

// NetHdrLen is the wire length of the legacy/TAP header without the
// num_buffers field. With VIRTIO_F_VERSION_1 devices the header carries a
// trailing 16-bit num_buffers field (NetHdrLenV1).
const (
	NetHdrLen   = 10
	NetHdrLenV1 = 12
)

// Encode writes h in wire format (little endian) into b, which must hold at
// least NetHdrLen bytes. It returns NetHdrLen.
func (h *NetHdr) Encode(b []byte) int {
	_ = b[NetHdrLen-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
	return NetHdrLen
}

// DecodeNetHdr parses the first NetHdrLen bytes of b. It checks only that b
// is long enough; [NetHdr.Validate] checks the header against a frame.
func DecodeNetHdr(b []byte) (NetHdr, error) {
	if len(b) < NetHdrLen {
		return NetHdr{}, fmt.Errorf("hal: virtio-net header: %d bytes, need %d: %w", len(b), NetHdrLen, ErrFrameSize)
	}
	return NetHdr{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}, nil
}

// Validate checks that h is self-consistent for a frame of frameLen bytes:
// known flags and GSO type, a checksum location inside the frame, and a
// non-zero segment size when segmentation is requested. Devices use it on
// headers they receive from untrusted peers. It accepts the receive-side
// flags (NetHdrFDataValid, NetHdrFRSCInfo), which a sender must not set
// (virtio 1.2 §5.1.6.2): transmit paths refuse those themselves.
func (h *NetHdr) Validate(frameLen int) error {
	if h.Flags&^(NetHdrFNeedsCsum|NetHdrFDataValid|NetHdrFRSCInfo) != 0 {
		return fmt.Errorf("hal: virtio-net header: unknown flags %#x", h.Flags)
	}
	if h.Flags&NetHdrFNeedsCsum != 0 {
		if int(h.CsumStart)+int(h.CsumOffset)+2 > frameLen {
			return fmt.Errorf("hal: virtio-net header: checksum at %d+%d outside %d-byte frame", h.CsumStart, h.CsumOffset, frameLen)
		}
	}
	switch h.GSOType &^ GSOECN {
	case GSONone:
	case GSOTCPv4, GSOTCPv6, GSOUDP, GSOUDPL4:
		if h.GSOSize == 0 {
			return fmt.Errorf("hal: virtio-net header: GSO type %d with zero segment size", h.GSOType)
		}
		if int(h.HdrLen) > frameLen {
			return fmt.Errorf("hal: virtio-net header: header length %d beyond %d-byte frame", h.HdrLen, frameLen)
		}
	default:
		return fmt.Errorf("hal: virtio-net header: unknown GSO type %#x", h.GSOType)
	}
	return nil
}

// Offload is a set of offload abilities of an [OffloadNIC]. "Tx" abilities
// concern frames the host stack writes (the device finishes checksums or
// segments them; virtio calls these HOST_* features); "Rx" abilities concern
// frames the stack reads (the device may deliver partial checksums, validated
// checksums or coalesced super-frames; virtio's GUEST_* features).
type Offload uint32

const (
	// OffloadTxCsum: written frames may carry NetHdrFNeedsCsum.
	OffloadTxCsum Offload = 1 << iota
	// OffloadTxTSO4: written frames may carry GSOTCPv4 (needs OffloadTxCsum).
	OffloadTxTSO4
	// OffloadTxTSO6: written frames may carry GSOTCPv6 (needs OffloadTxCsum).
	OffloadTxTSO6
	// OffloadTxUSO: written frames may carry GSOUDPL4 (needs OffloadTxCsum).
	OffloadTxUSO
	// OffloadRxCsum: read frames may carry NetHdrFNeedsCsum (checksum not yet
	// computed, as when the peer is on the same host) or NetHdrFDataValid.
	OffloadRxCsum
	// OffloadRxTSO4: read frames may be TCPv4 super-frames up to
	// MaxOffloadFrame with GSOTCPv4 (needs OffloadRxCsum).
	OffloadRxTSO4
	// OffloadRxTSO6: as OffloadRxTSO4 for TCPv6.
	OffloadRxTSO6
)

var offloadNames = []string{"tx-csum", "tx-tso4", "tx-tso6", "tx-uso", "rx-csum", "rx-tso4", "rx-tso6"}

// String lists the abilities in o, separated by '|'.
func (o Offload) String() string {
	if o == 0 {
		return "none"
	}
	var parts []string
	for i, n := range offloadNames {
		if o&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if rest := o &^ (1<<len(offloadNames) - 1); rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	return strings.Join(parts, "|")
}

// OffloadNIC is a NIC that can carry a [NetHdr] with every frame, so that
// checksum computation and TCP segmentation can be left to the device (or,
// on TAP, to the host kernel).
//
// Offload starts disabled: until SetOffload succeeds, the NIC behaves as a
// plain NIC and ReadFrameHdr/WriteFrameHdr behave as ReadFrame/WriteFrame
// with an all-zero header. SetOffload must be called before the NIC is in
// use by concurrent readers and writers.
type OffloadNIC interface {
	NIC

	// SupportedOffload returns the abilities SetOffload can grant.
	SupportedOffload() Offload

	// SetOffload enables the abilities in want that the device supports and
	// returns those it enabled (want & SupportedOffload(), possibly less if
	// dependencies are missing). Asking for zero disables offload.
	SetOffload(want Offload) (Offload, error)

	// ReadFrameHdr is ReadFrame that also returns the frame's header. With Rx
	// offloads enabled, frames may be up to MaxOffloadFrame long and the
	// header says what the stack must still do (NetHdrFNeedsCsum) or need not
	// do (NetHdrFDataValid). Without them the header is all zero.
	ReadFrameHdr(p []byte) (n int, hdr NetHdr, err error)

	// WriteFrameHdr is WriteFrame with a header. A header that asks for an
	// ability not enabled, or that fails NetHdr.Validate for p, is rejected
	// with an error and nothing is sent. Frames with GSO may be up to
	// MaxOffloadFrame long.
	WriteFrameHdr(hdr *NetHdr, p []byte) error
}
