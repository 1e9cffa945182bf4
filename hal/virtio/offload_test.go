package virtio_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

func csumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func csumFold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// tcp4Frame builds an Ethernet/IPv4/TCP frame carrying payload, with the
// TCP checksum field holding the pseudo-header sum as an offloading sender
// leaves it (NEEDS_CSUM).
func tcp4Frame(dst, src hal.MAC, payload []byte) []byte {
	f := make([]byte, 14+20+20+len(payload))
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+len(payload)))
	copy(ip[12:], []byte{10, 0, 0, 1})
	copy(ip[16:], []byte{10, 0, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], ^csumFold(csumAdd(0, ip)))
	tcp := f[34:54]
	binary.BigEndian.PutUint16(tcp[0:], 4000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	binary.BigEndian.PutUint32(tcp[4:], 1000)
	tcp[12], tcp[13] = 5<<4, 0x18 // PSH|ACK
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(f[54:], payload)
	var pseudo [12]byte
	copy(pseudo[:], ip[12:20])
	pseudo[9] = 6
	binary.BigEndian.PutUint16(pseudo[10:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(tcp[16:], csumFold(csumAdd(0, pseudo[:])))
	return f
}

// tcp4Valid checks the IPv4 and TCP checksums of a complete frame.
func tcp4Valid(f []byte) bool {
	ip := f[14:34]
	if csumFold(csumAdd(0, ip)) != 0xffff {
		return false
	}
	l := int(binary.BigEndian.Uint16(ip[2:])) - 20
	var pseudo [12]byte
	copy(pseudo[:], ip[12:20])
	pseudo[9] = 6
	binary.BigEndian.PutUint16(pseudo[10:], uint16(l))
	return csumFold(csumAdd(csumAdd(0, pseudo[:]), f[34:34+l])) == 0xffff
}

// TestNetOffload sends a 30000-byte TCP super-frame each way: from the
// virtio driver with TSO to a mem NIC without offload (the device
// segments it into valid MSS-sized frames), and from a mem NIC with TSO to
// the virtio driver with receive TSO (it arrives whole, over many merged
// receive buffers, with its header).
func TestNetOffload(t *testing.T) {
	const mss = 1460
	payload := make([]byte, 30000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	hdr := hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, GSOType: hal.GSOTCPv4, HdrLen: 54, GSOSize: mss, CsumStart: 34, CsumOffset: 16}

	t.Run("tx-tso", func(t *testing.T) {
		x, y := mem.NewNICPair(mem.NICOptions{})
		defer y.Close()
		n, _, _ := newNet(t, x, model.NetOptions{}, model.Options{}, virtio.NetOptions{})
		defer n.Close()
		require.NotZero(t, n.SupportedOffload()&hal.OffloadTxTSO4)
		got, err := n.SetOffload(hal.OffloadTxCsum | hal.OffloadTxTSO4)
		require.NoError(t, err)
		require.Equal(t, hal.OffloadTxCsum|hal.OffloadTxTSO4, got)
		f := tcp4Frame(y.MAC(), n.MAC(), payload)
		require.NoError(t, n.WriteFrameHdr(&hdr, f))
		buf := make([]byte, 2048)
		total := 0
		for total < len(payload) {
			k, err := y.ReadFrame(buf)
			require.NoError(t, err)
			require.True(t, tcp4Valid(buf[:k]), "segment with bad checksums")
			seg := buf[54:k]
			require.LessOrEqual(t, len(seg), mss)
			require.Equal(t, payload[total:total+len(seg)], seg)
			total += len(seg)
		}
	})
	for _, mo := range []model.NetOptions{{}, {NoMergeable: true}} {
		name := "rx-tso-mergeable"
		if mo.NoMergeable {
			name = "rx-tso-whole-buffers"
		}
		t.Run(name, func(t *testing.T) {
			x, y := mem.NewNICPair(mem.NICOptions{})
			defer y.Close()
			n, _, _ := newNet(t, x, mo, model.Options{}, virtio.NetOptions{})
			defer n.Close()
			want := hal.OffloadRxCsum | hal.OffloadRxTSO4
			got, err := n.SetOffload(want)
			require.NoError(t, err)
			require.Equal(t, want, got)
			_, err = y.SetOffload(hal.OffloadTxCsum | hal.OffloadTxTSO4)
			require.NoError(t, err)
			f := tcp4Frame(n.MAC(), y.MAC(), payload)
			require.NoError(t, y.WriteFrameHdr(&hdr, f))
			buf := make([]byte, hal.MaxOffloadFrame)
			k, h, err := n.ReadFrameHdr(buf)
			require.NoError(t, err)
			require.Equal(t, f, buf[:k], "super-frame altered")
			require.Equal(t, uint8(hal.GSOTCPv4), h.GSOType)
			require.Equal(t, uint16(mss), h.GSOSize)
			require.NotZero(t, h.Flags&(hal.NetHdrFNeedsCsum|hal.NetHdrFDataValid))
		})
	}
	t.Run("refused-without-offload", func(t *testing.T) {
		x, y := mem.NewNICPair(mem.NICOptions{})
		defer y.Close()
		n, _, _ := newNet(t, x, model.NetOptions{NoOffload: true}, model.Options{}, virtio.NetOptions{})
		defer n.Close()
		require.Zero(t, n.SupportedOffload())
		got, err := n.SetOffload(hal.OffloadTxCsum | hal.OffloadTxTSO4)
		require.NoError(t, err)
		require.Zero(t, got)
		require.Error(t, n.WriteFrameHdr(&hdr, tcp4Frame(y.MAC(), n.MAC(), payload)))
	})
}
