package ring

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func aligned(n int) []byte {
	w := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), n)
}

// TestFieldAccess: the atomic accessors read and write the same bytes as
// plain little-endian accesses, leave the neighbouring field alone, and
// refuse misplaced fields instead of touching memory outside the slice.
func TestFieldAccess(t *testing.T) {
	b := aligned(16)
	for _, off := range []int{0, 2, 4, 6, 12, 14} {
		require.NoError(t, Store16(b, off, 0xa55a+uint16(off)))
	}
	for _, off := range []int{0, 2, 4, 6, 12, 14} {
		require.Equal(t, 0xa55a+uint16(off), binary.LittleEndian.Uint16(b[off:]))
		v, err := Load16(b, off)
		require.NoError(t, err)
		require.Equal(t, 0xa55a+uint16(off), v)
	}
	require.NoError(t, Store32(b, 8, 0x01020304))
	require.Equal(t, []byte{4, 3, 2, 1}, b[8:12])
	v, err := Load32(b, 8)
	require.NoError(t, err)
	require.Equal(t, uint32(0x01020304), v)

	cases := []struct {
		name string
		err  func() error
	}{
		{"odd offset", func() error { return Store16(b, 3, 1) }},
		{"past the end", func() error { _, err := Load16(b, 16); return err }},
		{"negative", func() error { _, err := Load16(b, -2); return err }},
		{"word beyond a short slice", func() error { _, err := Load16(b[:2], 0); return err }},
		{"word before a shifted slice", func() error { _, err := Load16(b[2:4], 0); return err }},
		{"unaligned 32", func() error { return Store32(b, 2, 1) }},
		{"32 past the end", func() error { _, err := Load32(b, 16); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.err(), ErrLayout)
		})
	}
}

func TestNeedEvent(t *testing.T) {
	cases := []struct {
		name         string
		ev, new, old uint16
		want         bool
	}{
		{"crossed", 5, 6, 5, true},
		{"reached but not crossed", 5, 5, 4, false},
		{"well past", 5, 9, 7, false},
		{"batch over event", 5, 10, 2, true},
		{"wraps", 0xffff, 1, 0xfffe, true},
		{"no movement", 3, 3, 3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, NeedEvent(tc.ev, tc.new, tc.old))
		})
	}
}

func TestLayout(t *testing.T) {
	for _, n := range []int{2, 4, 256, 32768} {
		availOff, usedOff, size := Layout(n)
		require.Equal(t, DescBytes(n), availOff)
		require.Zero(t, usedOff%8)
		require.GreaterOrEqual(t, usedOff, availOff+AvailBytes(n)+2, "room for the used_event word")
		require.GreaterOrEqual(t, size, usedOff+UsedBytes(n)+2, "room for the avail_event word")
	}
}
