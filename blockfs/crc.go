package blockfs

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c continues a crc32c computation the way the kernel's crc32c_le
// does: no inversion on entry or exit. ext4 and jbd2 seed it with ~0 and
// store the raw result.
func crc32c(crc uint32, p []byte) uint32 {
	return ^crc32.Update(^crc, castagnoli, p)
}

// crc16 is the reflected CRC-16 (polynomial 0x8005) used by uninit_bg group
// descriptor checksums.
func crc16(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc ^= uint16(b)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}
