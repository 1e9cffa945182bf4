package hal

import (
	"fmt"
)

// Ethernet framing constants. Frames crossing a NIC are Ethernet II frames:
// destination MAC, source MAC, EtherType, payload. They carry no preamble and
// no frame check sequence (FCS); devices add and strip those.
const (
	// EthernetHeaderLen is the length of an Ethernet II header without VLAN tag.
	EthernetHeaderLen = 14

	// MinMTU is the smallest MTU a NIC may report (the IPv4 minimum, RFC 791).
	MinMTU = 68

	// DefaultMTU is the MTU of ordinary Ethernet.
	DefaultMTU = 1500

	// MaxOffloadFrame is the largest frame that may cross an [OffloadNIC]
	// when segmentation offload is in use: an Ethernet header plus a 64 KiB
	// IP packet.
	MaxOffloadFrame = EthernetHeaderLen + 65535
)

// MAC is an IEEE 802 MAC-48 address.
type MAC [6]byte

// String formats m as six colon-separated hexadecimal octets.
func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// IsMulticast reports whether m is a group address (including broadcast).
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// IsLocal reports whether m is a locally administered address.
func (m MAC) IsLocal() bool { return m[0]&2 == 2 }

// Broadcast is the Ethernet broadcast address.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ParseMAC parses six colon-separated hexadecimal octets ("02:00:00:00:00:01").
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return m, fmt.Errorf("hal: invalid MAC %q", s)
	}
	for i := range 6 {
		if i > 0 && s[3*i-1] != ':' {
			return m, fmt.Errorf("hal: invalid MAC %q", s)
		}
		hi, ok1 := unhex(s[3*i])
		lo, ok2 := unhex(s[3*i+1])
		if !ok1 || !ok2 {
			return m, fmt.Errorf("hal: invalid MAC %q", s)
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// NIC is a network interface that sends and receives whole Ethernet frames.
//
// A frame is an Ethernet II frame as defined above: at least
// [EthernetHeaderLen] bytes and at most MaxFrameLen(nic) = MTU() +
// EthernetHeaderLen bytes, without FCS.
//
// All methods are safe for concurrent use by multiple goroutines. Frames
// written by one goroutine leave the device in the order written; frames
// are delivered to ReadFrame in the order the device received them. A NIC
// may drop frames, as real links do (a full receive queue, a lossy medium),
// but never delivers a frame altered or truncated without saying so.
type NIC interface {
	// ReadFrame blocks until a frame has been received, copies it into p and
	// returns its length. p is the caller's: the NIC neither keeps it nor
	// touches it after ReadFrame returns.
	//
	// If p is shorter than the frame, the frame is consumed and discarded and
	// ReadFrame returns 0 and an error wrapping io.ErrShortBuffer; a buffer of
	// MaxFrameLen(nic) bytes is always large enough.
	//
	// Close unblocks a pending ReadFrame, which then returns 0 and an error
	// wrapping [ErrClosed]. Frames still queued when Close is called may be
	// discarded.
	ReadFrame(p []byte) (n int, err error)

	// WriteFrame sends the frame p. It returns once the NIC no longer needs p:
	// the caller may reuse p immediately. A nil error means the frame was
	// accepted for transmission, not that it was delivered.
	//
	// A frame shorter than EthernetHeaderLen or longer than MaxFrameLen(nic)
	// is rejected with an error wrapping [ErrFrameSize] and nothing is sent.
	// After Close, WriteFrame returns an error wrapping [ErrClosed]. WriteFrame
	// may block while the device's transmit queue is full; Close unblocks it.
	WriteFrame(p []byte) error

	// MTU returns the largest IP packet (Ethernet payload) the NIC carries,
	// at least [MinMTU]. It does not change during the NIC's life.
	MTU() int

	// MAC returns the NIC's own unicast hardware address. It does not change
	// during the NIC's life.
	MAC() MAC

	// Close shuts the NIC down, unblocks pending ReadFrame and WriteFrame
	// calls and releases the device. Calling Close again returns nil.
	Close() error
}

// MaxFrameLen returns the length of the largest frame n accepts and
// delivers in plain (non-offload) mode: its MTU plus an Ethernet header.
func MaxFrameLen(n NIC) int { return n.MTU() + EthernetHeaderLen }

// BatchNIC is a NIC that can move several frames in one call, saving a
// system call or a device notification per frame.
//
// Batched calls carry no NetHdr. On an OffloadNIC with Rx offloads enabled,
// ReadFrames delivers only finished frames: the device completes partial
// checksums and may drop super-frames it cannot deliver whole, so a stack
// using Rx offload reads with ReadFrameHdr.
type BatchNIC interface {
	NIC

	// ReadFrames blocks until at least one frame is available, then copies up
	// to len(bufs) frames, frame i into bufs[i] with its length in sizes[i],
	// and returns the number of frames read. len(sizes) must be at least
	// len(bufs). A frame too long for its buffer is discarded and sizes[i]
	// set to -1; the other frames are unaffected. Close unblocks it as it does
	// ReadFrame.
	ReadFrames(bufs [][]byte, sizes []int) (n int, err error)

	// WriteFrames sends frames in order, with WriteFrame's rules for each,
	// and returns how many were accepted. If n < len(frames), err says why
	// frames[n] was not.
	WriteFrames(frames [][]byte) (n int, err error)
}

// LinkStateNIC is a NIC that knows whether its link is up.
type LinkStateNIC interface {
	NIC
	// LinkUp reports whether the link is up now.
	LinkUp() bool
}
