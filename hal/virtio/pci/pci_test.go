package pci

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/virtio"
)

// space is a configuration space in memory.
type space [256]byte

func (s *space) Read8(off uint32) uint8 {
	if off >= 256 {
		return 0xff
	}
	return s[off]
}
func (s *space) Read16(off uint32) uint16 {
	if off+2 > 256 {
		return 0xffff
	}
	return binary.LittleEndian.Uint16(s[off:])
}
func (s *space) Read32(off uint32) uint32 {
	if off+4 > 256 {
		return 0xffffffff
	}
	return binary.LittleEndian.Uint32(s[off:])
}
func (s *space) Write8(uint32, uint8)   {}
func (s *space) Write16(uint32, uint16) {}
func (s *space) Write32(uint32, uint32) {}

// capSpec is one capability to lay out.
type capSpec struct {
	at, next   uint8
	id, length uint8
	typ, bar   uint8
	off, size  uint32
	mult       uint32
}

func build(ptr uint8, caps ...capSpec) *space {
	var s space
	binary.LittleEndian.PutUint16(s[0:], VirtioVendorID)
	binary.LittleEndian.PutUint16(s[2:], 0x1041)
	binary.LittleEndian.PutUint16(s[StatusOff:], StatusCapList)
	s[CapabilitiesOff] = ptr
	for _, c := range caps {
		p := int(c.at)
		for i, v := range []uint8{c.id, c.next, c.length, c.typ, c.bar} {
			if p+i < 256 {
				s[p+i] = v
			}
		}
		if p+16 <= 256 {
			binary.LittleEndian.PutUint32(s[p+8:], c.off)
			binary.LittleEndian.PutUint32(s[p+12:], c.size)
		}
		if p+20 <= 256 {
			binary.LittleEndian.PutUint32(s[p+16:], c.mult)
		}
	}
	return &s
}

func TestParseCaps(t *testing.T) {
	common := capSpec{at: 0x40, next: 0x54, id: CapIDVendor, length: 16, typ: VIRTIO_PCI_CAP_COMMON_CFG, bar: 4, off: 0, size: 0x3c}
	notify := capSpec{at: 0x54, next: 0x70, id: CapIDVendor, length: 20, typ: VIRTIO_PCI_CAP_NOTIFY_CFG, bar: 4, off: 0x3000, size: 0x1000, mult: 4}
	isr := capSpec{at: 0x70, next: 0x80, id: CapIDVendor, length: 16, typ: VIRTIO_PCI_CAP_ISR_CFG, bar: 4, off: 0x1000, size: 1}
	msix := capSpec{at: 0x80, next: 0, id: CapIDMSIX, length: 7} // length byte is message control low: table size 8
	cases := []struct {
		name    string
		s       *space
		wantErr bool
		check   func(t *testing.T, c Caps)
	}{
		{name: "complete", s: build(0x40, common, notify, isr, msix), check: func(t *testing.T, c Caps) {
			require.True(t, c.Has[VIRTIO_PCI_CAP_COMMON_CFG] && c.Has[VIRTIO_PCI_CAP_NOTIFY_CFG] && c.Has[VIRTIO_PCI_CAP_ISR_CFG])
			require.False(t, c.Has[VIRTIO_PCI_CAP_DEVICE_CFG])
			require.Equal(t, uint32(4), c.Notify.Multiplier)
			require.Equal(t, uint32(0x3000), c.Notify.Offset)
			require.Equal(t, 8, c.MSIXTableSize)
		}},
		{name: "no-capability-list", s: func() *space { s := build(0x40, common); s[StatusOff] = 0; return s }(), wantErr: true},
		{name: "loop", s: build(0x40, capSpec{at: 0x40, next: 0x40, id: CapIDVendor, length: 16, typ: 9}), wantErr: true},
		{name: "pointer-into-header", s: build(0x10), wantErr: true},
		{name: "reserved-bar-skipped", s: build(0x40, capSpec{at: 0x40, next: 0x54, id: CapIDVendor, length: 16, typ: 1, bar: 6}, notify), check: func(t *testing.T, c Caps) {
			require.False(t, c.Has[VIRTIO_PCI_CAP_COMMON_CFG])
		}},
		{name: "first-of-type-wins", s: build(0x40, capSpec{at: 0x40, next: 0x54, id: CapIDVendor, length: 16, typ: 1, bar: 2, off: 0x100, size: 0x3c},
			capSpec{at: 0x54, next: 0, id: CapIDVendor, length: 16, typ: 1, bar: 4, size: 0x3c}), check: func(t *testing.T, c Caps) {
			require.Equal(t, uint8(2), c.Common.BAR)
		}},
		{name: "short-notify-skipped", s: build(0x40, capSpec{at: 0x40, next: 0, id: CapIDVendor, length: 16, typ: 2, bar: 4}), check: func(t *testing.T, c Caps) {
			require.False(t, c.Has[VIRTIO_PCI_CAP_NOTIFY_CFG])
		}},
		{name: "at-end-of-space", s: build(0x40, capSpec{at: 0x40, next: 0xfc, id: CapIDVendor, length: 16, typ: 1, bar: 4, size: 0x3c},
			capSpec{at: 0xfc, id: CapIDVendor, length: 16, typ: 4}), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCaps(tc.s)
			if tc.wantErr {
				require.ErrorIs(t, err, virtio.ErrDevice)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestNewRefuses(t *testing.T) {
	common := capSpec{at: 0x40, next: 0x54, id: CapIDVendor, length: 16, typ: VIRTIO_PCI_CAP_COMMON_CFG, bar: 4, size: 0x3c}
	notify := capSpec{at: 0x54, next: 0, id: CapIDVendor, length: 20, typ: VIRTIO_PCI_CAP_NOTIFY_CFG, bar: 4, off: 0x3000, size: 0x1000, mult: 4}
	noBAR := func(int) (virtio.Regs, error) { return &space{}, nil }
	cases := []struct {
		name string
		s    *space
	}{
		{name: "other-vendor", s: func() *space { s := build(0x40, common, notify); s[0] = 0x86; return s }()},
		{name: "not-virtio-device", s: func() *space { s := build(0x40, common, notify); s[2], s[3] = 0x00, 0x20; return s }()},
		{name: "no-common", s: build(0x54, notify)},
		{name: "no-notify", s: build(0x40, capSpec{at: 0x40, next: 0, id: CapIDVendor, length: 16, typ: 1, bar: 4, size: 0x3c})},
		{name: "short-common", s: build(0x40, capSpec{at: 0x40, next: 0x54, id: CapIDVendor, length: 16, typ: 1, bar: 4, size: 0x10}, notify)},
		{name: "no-interrupt", s: build(0x40, common, notify)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.s, noBAR, nil, Options{})
			require.Error(t, err)
		})
	}
}

// FuzzParseCaps walks arbitrary configuration spaces: it must end, and
// every capability it keeps must be well formed.
func FuzzParseCaps(f *testing.F) {
	s := build(0x40,
		capSpec{at: 0x40, next: 0x54, id: CapIDVendor, length: 16, typ: 1, bar: 4, size: 0x3c},
		capSpec{at: 0x54, next: 0, id: CapIDVendor, length: 20, typ: 2, bar: 4, off: 0x3000, size: 0x1000, mult: 4})
	f.Add(s[:])
	f.Add(build(0x40, capSpec{at: 0x40, next: 0x40, id: CapIDVendor, length: 16, typ: 1})[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		var s space
		copy(s[:], b)
		c, err := ParseCaps(&s)
		if err != nil {
			require.ErrorIs(t, err, virtio.ErrDevice)
			return
		}
		for typ, cp := range []Cap{c.Common, c.Notify, c.ISR, c.Device} {
			if c.Has[typ+1] {
				require.LessOrEqual(t, cp.BAR, uint8(5))
				require.LessOrEqual(t, uint64(cp.Offset)+uint64(cp.Length), uint64(1)<<32)
			}
		}
	})
}
