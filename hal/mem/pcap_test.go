package mem

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/internal/testenv"
)

func TestCaptureConformance(t *testing.T) {
	haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
		a, b := NewNICPair(NICOptions{})
		var buf bytes.Buffer
		c, err := NewCapture(a, &buf, CaptureOptions{})
		require.NoError(t, err)
		return c, b
	})
}

// pcapWriteCapture captures a short exchange on a pair and returns the file
// and the frames in the order they crossed the capture.
func pcapWriteCapture(t *testing.T, opts CaptureOptions) ([]byte, [][]byte, *Capture) {
	t.Helper()
	a, b := NewNICPair(NICOptions{MAC: hal.MAC{0x02, 0xaa, 0, 0, 0, 0x10}})
	var file bytes.Buffer
	c, err := NewCapture(a, &file, opts)
	require.NoError(t, err)
	defer c.Close()
	defer b.Close()

	arp := testFrame(hal.Broadcast, a.MAC(), 1, 60)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	ip, _, _, _ := testPacket{payload: testPayload(200, 1)}.build()
	bm, am := b.MAC(), a.MAC()
	copy(ip[0:], bm[:])
	copy(ip[6:], am[:])
	reply := testFrame(a.MAC(), b.MAC(), 3, 1514)

	require.NoError(t, c.WriteFrame(arp))
	require.NoError(t, c.WriteFrame(ip))
	require.NoError(t, b.WriteFrame(reply))
	buf := make([]byte, 1514)
	n, err := c.ReadFrame(buf)
	require.NoError(t, err)
	require.Equal(t, reply, buf[:n])
	require.NoError(t, c.Err())
	return file.Bytes(), [][]byte{arp, ip, reply}, c
}

func TestCaptureRecords(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 678_912_000, time.UTC)
	tests := []struct {
		name    string
		snaplen int
	}{
		{"whole-frames", 0},
		{"snaplen-100", 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := NewClock(start)
			file, frames, _ := pcapWriteCapture(t, CaptureOptions{Snaplen: tc.snaplen, Clock: clk})
			assert.Equal(t, []byte{0xd4, 0xc3, 0xb2, 0xa1}, file[:4], "little-endian microsecond magic")
			link, recs, err := ReadPcap(bytes.NewReader(file))
			require.NoError(t, err)
			assert.Equal(t, uint32(1), link)
			require.Len(t, recs, len(frames))
			for i, r := range recs {
				want := frames[i]
				if tc.snaplen > 0 && len(want) > tc.snaplen {
					want = want[:tc.snaplen]
				}
				assert.Equal(t, want, r.Data, "record %d", i)
				assert.Equal(t, len(frames[i]), r.OrigLen)
				assert.True(t, start.Truncate(time.Microsecond).Equal(r.Time), "record %d at %v", i, r.Time)
			}
		})
	}
}

func TestCaptureTcpdump(t *testing.T) {
	tcpdump := testenv.NeedCommand(t, "tcpdump")
	file, _, c := pcapWriteCapture(t, CaptureOptions{})
	path := filepath.Join(t.TempDir(), "cap.pcap")
	require.NoError(t, os.WriteFile(path, file, 0o644))
	out, err := exec.Command(tcpdump, "-r", path, "-nn", "-e").CombinedOutput()
	require.NoError(t, err, "%s", out)
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " > ") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 3, "%s", out)
	peer := c.MAC()
	peer[5] ^= 1
	me := c.MAC().String()
	tests := []struct {
		line int
		want []string
	}{
		{0, []string{me + " > ff:ff:ff:ff:ff:ff", "ethertype ARP (0x0806)"}},
		{1, []string{me + " > " + peer.String(), "ethertype IPv4 (0x0800)", "10.0.0.1.40000 > 10.0.0.2.80"}},
		{2, []string{peer.String() + " > " + me, "0x88b5", "length 1514"}},
	}
	for _, tc := range tests {
		for _, w := range tc.want {
			assert.Contains(t, lines[tc.line], w)
		}
	}
}

type pcapFailWriter struct{ after int }

func (w *pcapFailWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestCaptureWriteErrors(t *testing.T) {
	a, b := NewNICPair(NICOptions{})
	defer b.Close()
	_, err := NewCapture(a, &pcapFailWriter{}, CaptureOptions{})
	require.Error(t, err)

	c, err := NewCapture(a, &pcapFailWriter{after: 1}, CaptureOptions{})
	require.NoError(t, err)
	defer c.Close()
	// The network keeps working; the capture reports its error.
	require.NoError(t, c.WriteFrame(testFrame(b.MAC(), a.MAC(), 1, 60)))
	require.NoError(t, c.WriteFrame(testFrame(b.MAC(), a.MAC(), 2, 60)))
	assert.ErrorContains(t, c.Err(), "disk full")
	assert.Equal(t, 2, nicQueued(b))
}

func TestReadPcapRejects(t *testing.T) {
	good, _, _ := pcapWriteCapture(t, CaptureOptions{})
	bigRecord := bytes.Clone(good[:24+16])
	binary.LittleEndian.PutUint32(bigRecord[24+8:], 1<<30)
	badFrac := bytes.Clone(good)
	binary.LittleEndian.PutUint32(badFrac[24+4:], 2_000_000)
	badVersion := bytes.Clone(good)
	badVersion[4] = 3
	tests := []struct {
		name string
		file []byte
	}{
		{"empty", nil},
		{"bad-magic", append([]byte{1, 2, 3, 4}, good[4:]...)},
		{"bad-version", badVersion},
		{"truncated-record-header", good[:24+10]},
		{"truncated-data", good[:24+16+5]},
		{"huge-record", bigRecord},
		{"bad-fraction", badFrac},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadPcap(bytes.NewReader(tc.file))
			assert.Error(t, err)
		})
	}
}

func TestReadPcapBigEndianNano(t *testing.T) {
	var f []byte
	f = binary.BigEndian.AppendUint32(f, 0xa1b23c4d)
	f = binary.BigEndian.AppendUint16(f, 2)
	f = binary.BigEndian.AppendUint16(f, 4)
	f = append(f, make([]byte, 8)...)
	f = binary.BigEndian.AppendUint32(f, 65535)
	f = binary.BigEndian.AppendUint32(f, 1)
	f = binary.BigEndian.AppendUint32(f, 1000)
	f = binary.BigEndian.AppendUint32(f, 123456789)
	f = binary.BigEndian.AppendUint32(f, 3)
	f = binary.BigEndian.AppendUint32(f, 60)
	f = append(f, 7, 8, 9)
	link, recs, err := ReadPcap(bytes.NewReader(f))
	require.NoError(t, err)
	assert.Equal(t, uint32(1), link)
	require.Len(t, recs, 1)
	assert.Equal(t, PcapRecord{Time: time.Unix(1000, 123456789), OrigLen: 60, Data: []byte{7, 8, 9}}, recs[0])
}

func FuzzReadPcap(f *testing.F) {
	a, b := NewNICPair(NICOptions{})
	var file bytes.Buffer
	c, err := NewCapture(a, &file, CaptureOptions{Snaplen: 64})
	require.NoError(f, err)
	require.NoError(f, c.WriteFrame(testFrame(b.MAC(), a.MAC(), 1, 100)))
	require.NoError(f, c.WriteFrame(testFrame(b.MAC(), a.MAC(), 2, 60)))
	_ = c.Close()
	_ = b.Close()
	f.Add(file.Bytes())
	f.Add(file.Bytes()[:30])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, recs, err := ReadPcap(bytes.NewReader(data))
		total := 0
		for _, r := range recs {
			total += pcapRecHdrLen + len(r.Data)
		}
		if err == nil {
			require.Equal(t, len(data), pcapFileHdrLen+total, "a clean parse accounts for every byte")
		}
		require.LessOrEqual(t, pcapFileHdrLen+total, max(len(data), pcapFileHdrLen))
	})
}

func TestCaptureOffload(t *testing.T) {
	a, b := NewNICPair(NICOptions{})
	defer b.Close()
	var file bytes.Buffer
	c, err := NewCapture(a, &file, CaptureOptions{})
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, a.SupportedOffload(), c.SupportedOffload())
	_, err = c.SetOffload(c.SupportedOffload())
	require.NoError(t, err)
	_, err = b.SetOffload(b.SupportedOffload())
	require.NoError(t, err)

	frame, _, l4, _ := testPacket{payload: testPayload(20000, 1)}.build()
	hdr := hal.NetHdr{GSOType: hal.GSOTCPv4, GSOSize: 1448, Flags: hal.NetHdrFNeedsCsum, CsumStart: uint16(l4), CsumOffset: 16}
	require.NoError(t, c.WriteFrameHdr(&hdr, frame))
	require.NoError(t, b.WriteFrameHdr(&hdr, frame))
	buf := make([]byte, hal.MaxOffloadFrame)
	n, got, err := c.ReadFrameHdr(buf)
	require.NoError(t, err)
	assert.Equal(t, hdr, got)
	assert.Equal(t, frame, buf[:n])

	_, recs, err := ReadPcap(&file)
	require.NoError(t, err)
	require.Len(t, recs, 2, "super-frames recorded whole, both directions")
	assert.Equal(t, frame, recs[0].Data)
	assert.Equal(t, frame, recs[1].Data)

	plain, err := NewCapture(faultPlainNIC{b}, io.Discard, CaptureOptions{})
	require.NoError(t, err)
	assert.Zero(t, plain.SupportedOffload())
	assert.ErrorIs(t, plain.WriteFrameHdr(&hdr, frame), errors.ErrUnsupported)
}
