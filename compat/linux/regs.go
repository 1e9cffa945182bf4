package linux

import "unsafe"

// Regs is a thread's saved integer register file in the order the
// platform's trap entry stores it: general registers, then the vector and
// error code, then the hardware interrupt frame (RIP, CS, RFLAGS, RSP, SS)
// that IRETQ consumes. The platform's assembly depends on this layout.
type Regs struct {
	R15, R14, R13, R12, R11, R10, R9, R8 uint64
	RBP, RDI, RSI, RDX, RCX, RBX, RAX    uint64
	Vector, ErrCode                      uint64
	RIP, CS, RFLAGS, RSP, SS             uint64
}

// RegsSize is the size of Regs in bytes; the assembly assumes it.
const RegsSize = 22 * 8

// Compile-time layout checks.
var (
	_ [RegsSize - unsafe.Sizeof(Regs{})]byte
	_ [unsafe.Sizeof(Regs{}) - RegsSize]byte
	_ [unsafe.Offsetof(Regs{}.RAX) - 112]byte
	_ [112 - unsafe.Offsetof(Regs{}.RAX)]byte
	_ [unsafe.Offsetof(Regs{}.RIP) - 136]byte
	_ [136 - unsafe.Offsetof(Regs{}.RIP)]byte
)

// RFLAGS bits.
const (
	FlagTF = 1 << 8
	FlagIF = 1 << 9
	FlagDF = 1 << 10
	FlagAC = 1 << 18
)

// FXSize is the size of the FXSAVE area that holds x87/SSE state.
const FXSize = 512
