package pc

// A minimal vDSO: an ELF image, passed to the program as AT_SYSINFO_EHDR,
// whose one symbol __vdso_clock_gettime (version LINUX_2.6) points at the
// platform's TSC clock, so the Go runtime reads time without a system call.
// Its layout is what the runtime's parser (runtime/vdso_linux.go) and the
// ELF specification require: an ELF header, a PT_LOAD and a PT_DYNAMIC
// header, the dynamic table, a SysV hash table, symbols, symbol versions
// (DT_VERSYM, DT_VERDEF) and strings.

// ELF constants (System V ABI, ELF-64 Object File Format 1.5).
const (
	elfPTLoad    = 1
	elfPTDynamic = 2
	dtNull       = 0
	dtHash       = 4
	dtStrtab     = 5
	dtSymtab     = 6
	dtStrsz      = 10
	dtSyment     = 11
	dtVersym     = 0x6ffffff0
	dtVerdef     = 0x6ffffffc
	dtVerdefnum  = 0x6ffffffd
)

// Offsets within the image.
const (
	vdsoPhdrs   = 64
	vdsoDynamic = vdsoPhdrs + 2*56
	vdsoDynLen  = 9 * 16
	vdsoHash    = vdsoDynamic + vdsoDynLen
	vdsoSymtab  = vdsoHash + 24
	vdsoVersym  = vdsoSymtab + 2*24
	vdsoVerdef  = vdsoVersym + 4
	vdsoStrtab  = vdsoVerdef + 28
	vdsoStrings = "\x00__vdso_clock_gettime\x00LINUX_2.6\x00"
	vdsoSize    = vdsoStrtab + len(vdsoStrings)

	vdsoSymName  = 1
	vdsoVerName  = 22
	vdsoVerHash  = 0x3ae75f6 // SysV ELF hash of "LINUX_2.6"
	vdsoVerIndex = 2
)

func put32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// buildVDSO writes the vDSO image into b (at least vdsoSize bytes), which
// the program will see at address base, with __vdso_clock_gettime at fn.
// It returns the image's length.
func buildVDSO(b []byte, base, fn uint64) int {
	_ = b[vdsoSize-1]
	clear(b[:vdsoSize])
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // 64-bit, little endian, version 1
	putU16(b[16:], 3)          // ET_DYN
	putU16(b[18:], 62)         // EM_X86_64
	put32(b[20:], 1)
	putU64(b[32:], vdsoPhdrs)
	putU16(b[52:], 64)
	putU16(b[54:], 56)
	putU16(b[56:], 2)

	ph := b[vdsoPhdrs:]
	put32(ph[0:], elfPTLoad)
	put32(ph[4:], 5) // R+X
	putU64(ph[32:], uint64(vdsoSize))
	putU64(ph[40:], uint64(vdsoSize))
	putU64(ph[48:], 4096)
	ph = b[vdsoPhdrs+56:]
	put32(ph[0:], elfPTDynamic)
	put32(ph[4:], 4) // R
	putU64(ph[8:], vdsoDynamic)
	putU64(ph[16:], vdsoDynamic)
	putU64(ph[24:], vdsoDynamic)
	putU64(ph[32:], vdsoDynLen)
	putU64(ph[40:], vdsoDynLen)
	putU64(ph[48:], 8)

	dyn := b[vdsoDynamic:]
	for i, e := range [...][2]uint64{
		{dtHash, vdsoHash}, {dtStrtab, vdsoStrtab}, {dtSymtab, vdsoSymtab},
		{dtStrsz, uint64(len(vdsoStrings))}, {dtSyment, 24}, {dtVersym, vdsoVersym},
		{dtVerdef, vdsoVerdef}, {dtVerdefnum, 1}, {dtNull, 0},
	} {
		putU64(dyn[16*i:], e[0])
		putU64(dyn[16*i+8:], e[1])
	}

	// One bucket holding symbol 1.
	h := b[vdsoHash:]
	put32(h[0:], 1)  // nbucket
	put32(h[4:], 2)  // nchain
	put32(h[8:], 1)  // bucket[0]
	put32(h[12:], 0) // chain[0]
	put32(h[16:], 0) // chain[1]

	sym := b[vdsoSymtab+24:]
	put32(sym[0:], vdsoSymName)
	sym[4] = 1<<4 | 2 // STB_GLOBAL, STT_FUNC
	putU16(sym[6:], 1)
	putU64(sym[8:], fn-base)

	putU16(b[vdsoVersym+2:], vdsoVerIndex)

	vd := b[vdsoVerdef:]
	putU16(vd[0:], 1) // vd_version
	putU16(vd[4:], vdsoVerIndex)
	putU16(vd[6:], 1) // vd_cnt
	put32(vd[8:], vdsoVerHash)
	put32(vd[12:], 20) // vd_aux
	put32(vd[20:], vdsoVerName)

	copy(b[vdsoStrtab:], vdsoStrings)
	return vdsoSize
}
