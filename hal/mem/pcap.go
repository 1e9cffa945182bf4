package mem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// Classic libpcap file format (https://www.tcpdump.org/manpages/pcap-savefile.5.html).
const (
	pcapMagicMicro   = 0xa1b2c3d4
	pcapMagicNano    = 0xa1b23c4d
	pcapLinkEthernet = 1 // LINKTYPE_ETHERNET
	pcapFileHdrLen   = 24
	pcapRecHdrLen    = 16
	// pcapMaxRecord bounds the records ReadPcap accepts (tcpdump's limit).
	pcapMaxRecord = 262144
)

// CaptureOptions configures a [Capture]. The zero value captures whole
// frames with timestamps from the real clock.
type CaptureOptions struct {
	// Snaplen is the most bytes of each frame recorded; 0 means
	// [hal.MaxOffloadFrame], which records every frame whole.
	Snaplen int
	// Clock stamps the records (its Now); nil means real time.
	Clock hal.Clock
}

// Capture decorates a [hal.NIC], recording every frame read or written to a
// libpcap file (microsecond timestamps, LINKTYPE_ETHERNET) that tcpdump and
// Wireshark read. Classic pcap has no direction field: both directions are
// interleaved in the order they crossed the decorator.
//
// Capture implements [hal.OffloadNIC], passing headers through when the
// inner NIC is one. Frames written with NetHdrFNeedsCsum are recorded before
// the device fills in their checksum, and GSO super-frames are recorded
// whole, as tcpdump shows them on a Linux host with offload.
//
// A write error of the capture file does not disturb the network: the
// first one is kept, recording stops and [Capture.Err] returns it.
type Capture struct {
	inner   hal.NIC
	off     hal.OffloadNIC
	clock   hal.Clock
	snaplen int

	mu  sync.Mutex
	w   io.Writer
	rec [pcapRecHdrLen]byte
	err error
}

var _ hal.OffloadNIC = (*Capture)(nil)

// NewCapture writes the pcap file header to w and returns inner decorated
// with capture to w.
func NewCapture(inner hal.NIC, w io.Writer, opts CaptureOptions) (*Capture, error) {
	c := &Capture{inner: inner, clock: opts.Clock, snaplen: opts.Snaplen, w: w}
	if c.snaplen <= 0 {
		c.snaplen = hal.MaxOffloadFrame
	}
	c.off, _ = inner.(hal.OffloadNIC)
	var h [pcapFileHdrLen]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagicMicro)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(c.snaplen))
	binary.LittleEndian.PutUint32(h[20:], pcapLinkEthernet)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("mem: capture: write pcap header: %w", err)
	}
	return c, nil
}

// Err returns the first error writing the capture file, or nil.
func (c *Capture) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Capture) record(frame []byte) {
	var now time.Time
	if c.clock != nil {
		now = c.clock.Now()
	} else {
		now = time.Now()
	}
	incl := min(len(frame), c.snaplen)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	binary.LittleEndian.PutUint32(c.rec[0:], uint32(now.Unix()))
	binary.LittleEndian.PutUint32(c.rec[4:], uint32(now.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(c.rec[8:], uint32(incl))
	binary.LittleEndian.PutUint32(c.rec[12:], uint32(len(frame)))
	if _, err := c.w.Write(c.rec[:]); err != nil {
		c.err = fmt.Errorf("mem: capture: %w", err)
		return
	}
	if _, err := c.w.Write(frame[:incl]); err != nil {
		c.err = fmt.Errorf("mem: capture: %w", err)
	}
}

// MTU implements [hal.NIC].
func (c *Capture) MTU() int { return c.inner.MTU() }

// MAC implements [hal.NIC].
func (c *Capture) MAC() hal.MAC { return c.inner.MAC() }

// Close implements [hal.NIC] by closing the inner NIC. It does not close
// the capture file's writer.
func (c *Capture) Close() error { return c.inner.Close() }

// ReadFrame implements [hal.NIC].
func (c *Capture) ReadFrame(p []byte) (int, error) {
	n, err := c.inner.ReadFrame(p)
	if err == nil {
		c.record(p[:n])
	}
	return n, err
}

// WriteFrame implements [hal.NIC].
func (c *Capture) WriteFrame(p []byte) error {
	if err := c.inner.WriteFrame(p); err != nil {
		return err
	}
	c.record(p)
	return nil
}

// SupportedOffload implements [hal.OffloadNIC].
func (c *Capture) SupportedOffload() hal.Offload {
	if c.off == nil {
		return 0
	}
	return c.off.SupportedOffload()
}

// SetOffload implements [hal.OffloadNIC].
func (c *Capture) SetOffload(want hal.Offload) (hal.Offload, error) {
	if c.off == nil {
		return 0, nil
	}
	return c.off.SetOffload(want)
}

// ReadFrameHdr implements [hal.OffloadNIC].
func (c *Capture) ReadFrameHdr(p []byte) (int, hal.NetHdr, error) {
	if c.off == nil {
		n, err := c.ReadFrame(p)
		return n, hal.NetHdr{}, err
	}
	n, hdr, err := c.off.ReadFrameHdr(p)
	if err == nil {
		c.record(p[:n])
	}
	return n, hdr, err
}

// WriteFrameHdr implements [hal.OffloadNIC].
func (c *Capture) WriteFrameHdr(hdr *hal.NetHdr, p []byte) error {
	if c.off == nil {
		if hdr != nil && *hdr != (hal.NetHdr{}) {
			return fmt.Errorf("mem: capture: write with offload header: %w", errors.ErrUnsupported)
		}
		return c.WriteFrame(p)
	}
	if err := c.off.WriteFrameHdr(hdr, p); err != nil {
		return err
	}
	c.record(p)
	return nil
}

// PcapRecord is one frame of a pcap file.
type PcapRecord struct {
	Time    time.Time
	OrigLen int    // length of the frame on the wire
	Data    []byte // the recorded bytes, at most OrigLen and the snaplen
}

// ReadPcap parses a classic libpcap file (either byte order, microsecond
// or nanosecond timestamps) and returns its link type and records. It
// rejects records longer than 256 KiB.
func ReadPcap(r io.Reader) (linkType uint32, recs []PcapRecord, err error) {
	var h [pcapFileHdrLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, fmt.Errorf("mem: pcap: file header: %w", err)
	}
	var bo binary.ByteOrder
	nano := false
	switch {
	case binary.LittleEndian.Uint32(h[:]) == pcapMagicMicro:
		bo = binary.LittleEndian
	case binary.BigEndian.Uint32(h[:]) == pcapMagicMicro:
		bo = binary.BigEndian
	case binary.LittleEndian.Uint32(h[:]) == pcapMagicNano:
		bo, nano = binary.LittleEndian, true
	case binary.BigEndian.Uint32(h[:]) == pcapMagicNano:
		bo, nano = binary.BigEndian, true
	default:
		return 0, nil, fmt.Errorf("mem: pcap: bad magic %#x", h[:4])
	}
	if v := bo.Uint16(h[4:]); v != 2 {
		return 0, nil, fmt.Errorf("mem: pcap: unsupported version %d", v)
	}
	linkType = bo.Uint32(h[20:]) & 0x0fffffff
	var rh [pcapRecHdrLen]byte
	for {
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return linkType, recs, nil
			}
			return linkType, recs, fmt.Errorf("mem: pcap: record %d header: %w", len(recs), err)
		}
		sec, frac := bo.Uint32(rh[0:]), uint64(bo.Uint32(rh[4:]))
		incl, orig := bo.Uint32(rh[8:]), bo.Uint32(rh[12:])
		if incl > pcapMaxRecord {
			return linkType, recs, fmt.Errorf("mem: pcap: record %d of %d bytes exceeds %d", len(recs), incl, pcapMaxRecord)
		}
		if !nano {
			frac *= 1000
		}
		if frac >= 1e9 {
			return linkType, recs, fmt.Errorf("mem: pcap: record %d: bad timestamp fraction %d", len(recs), frac)
		}
		data := make([]byte, incl)
		if _, err := io.ReadFull(r, data); err != nil {
			return linkType, recs, fmt.Errorf("mem: pcap: record %d data: %w", len(recs), err)
		}
		recs = append(recs, PcapRecord{Time: time.Unix(int64(sec), int64(frac)), OrigLen: int(orig), Data: data})
	}
}
