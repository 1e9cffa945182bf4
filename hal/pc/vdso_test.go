package pc

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sysvHash(s string) uint32 {
	var h uint32
	for i := 0; i < len(s); i++ {
		h = h<<4 + uint32(s[i])
		g := h & 0xf0000000
		if g != 0 {
			h ^= g >> 24
		}
		h &^= g
	}
	return h
}

// lookupVDSO resolves name@version in an image at base the way the Go
// runtime does (runtime/vdso_linux.go).
func lookupVDSO(t *testing.T, img []byte, base uint64, name, version string) uint64 {
	le := binary.LittleEndian
	require.Equal(t, "\x7fELF", string(img[:4]))
	phoff, phnum := le.Uint64(img[32:]), int(le.Uint16(img[56:]))
	var loadOffset, dynOff uint64
	found := false
	for i := 0; i < phnum; i++ {
		ph := img[phoff+uint64(56*i):]
		switch le.Uint32(ph) {
		case elfPTLoad:
			if !found {
				found = true
				loadOffset = base + le.Uint64(ph[8:]) - le.Uint64(ph[16:])
			}
		case elfPTDynamic:
			dynOff = le.Uint64(ph[8:])
		}
	}
	require.True(t, found)
	require.NotZero(t, dynOff)
	off := func(v uint64) uint64 { return loadOffset + v - base }
	var strtab, symtab, hash, versym, verdef uint64
	for d := img[dynOff:]; le.Uint64(d) != dtNull; d = d[16:] {
		v := off(le.Uint64(d[8:]))
		switch le.Uint64(d) {
		case dtStrtab:
			strtab = v
		case dtSymtab:
			symtab = v
		case dtHash:
			hash = v
		case dtVersym:
			versym = v
		case dtVerdef:
			verdef = v
		}
	}
	require.NotZero(t, strtab*symtab*hash*versym*verdef)
	str := func(o uint64) string {
		e := o
		for img[e] != 0 {
			e++
		}
		return string(img[o:e])
	}
	// Version index.
	vd := img[verdef:]
	require.Equal(t, sysvHash(version), le.Uint32(vd[8:]))
	require.Equal(t, version, str(strtab+uint64(le.Uint32(vd[le.Uint32(vd[12:])+0:]))))
	ndx := le.Uint16(vd[4:])
	// Symbol through the hash table.
	nbucket := le.Uint32(img[hash:])
	chain := func(i uint32) uint32 { return le.Uint32(img[hash+8+4*uint64(nbucket)+4*uint64(i):]) }
	for i := le.Uint32(img[hash+8+4*uint64(sysvHash(name)%nbucket):]); i != 0; i = chain(i) {
		sym := img[symtab+24*uint64(i):]
		if sym[4] != 1<<4|2 || le.Uint16(sym[6:]) == 0 || str(strtab+uint64(le.Uint32(sym))) != name {
			continue
		}
		require.Equal(t, ndx, le.Uint16(img[versym+2*uint64(i):])&0x7fff)
		return loadOffset + le.Uint64(sym[8:])
	}
	return 0
}

func TestVDSOImage(t *testing.T) {
	assert.Equal(t, uint32(0xd35ec75), sysvHash("__vdso_clock_gettime"), "the runtime's precomputed hash")
	assert.Equal(t, uint32(vdsoVerHash), sysvHash("LINUX_2.6"))
	tests := []struct {
		name     string
		base, fn uint64
	}{
		{"function after the image", 0x600000, 0x480123},
		{"function before the image", 0x400000, 0x5ff000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := make([]byte, 1024)
			n := buildVDSO(img, tc.base, tc.fn)
			require.Equal(t, vdsoSize, n)
			assert.Equal(t, tc.fn, lookupVDSO(t, img, tc.base, "__vdso_clock_gettime", "LINUX_2.6"))
			assert.Zero(t, lookupVDSO(t, img, tc.base, "__vdso_gettimeofday", "LINUX_2.6"))
		})
	}
}
