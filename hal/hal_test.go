package hal_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
)

func TestParseMAC(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    hal.MAC
		wantErr bool
	}{
		{"lower", "02:00:5e:10:ab:cd", hal.MAC{2, 0, 0x5e, 0x10, 0xab, 0xcd}, false},
		{"upper", "FF:FF:FF:FF:FF:FF", hal.Broadcast, false},
		{"short", "02:00:5e:10:ab", hal.MAC{}, true},
		{"bad separator", "02-00-5e-10-ab-cd", hal.MAC{}, true},
		{"bad digit", "02:00:5g:10:ab:cd", hal.MAC{}, true},
		{"empty", "", hal.MAC{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := hal.ParseMAC(c.in)
			if c.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			again, err := hal.ParseMAC(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again, "String and ParseMAC round trip")
		})
	}
}

func TestMACBits(t *testing.T) {
	assert.True(t, hal.Broadcast.IsMulticast())
	assert.True(t, hal.MAC{0x01, 0, 0x5e, 0, 0, 1}.IsMulticast())
	assert.False(t, hal.MAC{0x02, 0, 0, 0, 0, 1}.IsMulticast())
	assert.True(t, hal.MAC{0x02, 0, 0, 0, 0, 1}.IsLocal())
	assert.False(t, hal.MAC{0x00, 0x1b, 0x21, 0, 0, 1}.IsLocal())
	assert.Equal(t, "02:00:00:00:00:01", hal.MAC{2, 0, 0, 0, 0, 1}.String())
}

func TestNetHdrRoundTrip(t *testing.T) {
	h := hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, GSOType: hal.GSOTCPv4, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	b := make([]byte, hal.NetHdrLen)
	require.Equal(t, hal.NetHdrLen, h.Encode(b))
	// Wire layout is little endian in the order of virtio 1.2 §5.1.6.
	assert.Equal(t, []byte{1, 1, 54, 0, 0xa8, 0x05, 34, 0, 16, 0}, b)
	got, err := hal.DecodeNetHdr(b)
	require.NoError(t, err)
	assert.Equal(t, h, got)

	_, err = hal.DecodeNetHdr(b[:9])
	assert.ErrorIs(t, err, hal.ErrFrameSize)
}

func TestNetHdrValidate(t *testing.T) {
	cases := []struct {
		name     string
		h        hal.NetHdr
		frameLen int
		ok       bool
	}{
		{"zero", hal.NetHdr{}, 60, true},
		{"csum inside", hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 34, CsumOffset: 16}, 60, true},
		{"csum field ends at frame end", hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 34, CsumOffset: 24}, 60, true},
		{"csum field past end", hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 34, CsumOffset: 25}, 60, false},
		{"csum start huge", hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 65535, CsumOffset: 65535}, 60, false},
		{"unknown flag", hal.NetHdr{Flags: 0x10}, 60, false},
		{"data valid", hal.NetHdr{Flags: hal.NetHdrFDataValid}, 60, true},
		{"tso4", hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, GSOType: hal.GSOTCPv4, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}, 9000, true},
		{"tso6 with ecn", hal.NetHdr{GSOType: hal.GSOTCPv6 | hal.GSOECN, HdrLen: 74, GSOSize: 1428}, 9000, true},
		{"gso zero size", hal.NetHdr{GSOType: hal.GSOTCPv4, HdrLen: 54}, 9000, false},
		{"gso header beyond frame", hal.NetHdr{GSOType: hal.GSOTCPv4, HdrLen: 100, GSOSize: 1000}, 60, false},
		{"unknown gso", hal.NetHdr{GSOType: 2, GSOSize: 1000}, 9000, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.h.Validate(c.frameLen)
			if c.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestOffloadString(t *testing.T) {
	assert.Equal(t, "none", hal.Offload(0).String())
	assert.Equal(t, "tx-csum|tx-tso4", (hal.OffloadTxCsum | hal.OffloadTxTSO4).String())
	assert.Equal(t, "rx-tso6|0x100", (hal.OffloadRxTSO6 | 0x100).String())
}

// geometry is a BlockDevice stub exposing only sector size and capacity, for
// CheckRange.
type geometry struct {
	hal.BlockDevice
	ss   int
	size int64
}

func (g geometry) SectorSize() int { return g.ss }
func (g geometry) Size() int64     { return g.size }

func TestCheckRange(t *testing.T) {
	d := geometry{ss: 512, size: 512 * 100}
	cases := []struct {
		name string
		off  int64
		n    int64
		want error
	}{
		{"first", 0, 512, nil},
		{"whole", 0, 512 * 100, nil},
		{"last", 512 * 99, 512, nil},
		{"empty at end", 512 * 100, 0, nil},
		{"misaligned off", 1, 512, hal.ErrMisaligned},
		{"misaligned len", 0, 100, hal.ErrMisaligned},
		{"negative", -512, 512, hal.ErrOutOfRange},
		{"past end", 512 * 100, 512, hal.ErrOutOfRange},
		{"straddle", 512 * 99, 1024, hal.ErrOutOfRange},
		{"overflow", 1<<63 - 511, 1024, hal.ErrMisaligned},
		{"overflow aligned", 1<<62 + 1<<61, 1 << 62, hal.ErrOutOfRange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := hal.CheckRange(d, "read", c.off, c.n)
			if c.want == nil {
				assert.NoError(t, err)
			} else {
				assert.True(t, errors.Is(err, c.want), "got %v, want %v", err, c.want)
			}
		})
	}
}

func FuzzDecodeNetHdr(f *testing.F) {
	f.Add([]byte{1, 1, 54, 0, 0xa8, 0x05, 34, 0, 16, 0}, 1500)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, b []byte, frameLen int) {
		h, err := hal.DecodeNetHdr(b)
		if err != nil {
			if len(b) >= hal.NetHdrLen {
				t.Fatalf("decode of %d bytes failed: %v", len(b), err)
			}
			return
		}
		out := make([]byte, hal.NetHdrLen)
		h.Encode(out)
		if string(out) != string(b[:hal.NetHdrLen]) {
			t.Fatalf("encode(decode(b)) != b")
		}
		if err := h.Validate(frameLen); err == nil && h.Flags&hal.NetHdrFNeedsCsum != 0 {
			if int(h.CsumStart)+int(h.CsumOffset)+2 > frameLen {
				t.Fatalf("Validate accepted a checksum outside the frame")
			}
		}
	})
}
