#include "textflag.h"

// func vecAddr(i int) uintptr
TEXT ·vecAddr(SB),NOSPLIT,$0-16
	MOVQ i+0(FP), AX
	LEAQ ·vecTable(SB), BX
	MOVQ (BX)(AX*8), AX
	MOVQ AX, ret+8(FP)
	RET

// func syscallEntryAddr() uintptr
TEXT ·syscallEntryAddr(SB),NOSPLIT,$0-8
	LEAQ ·syscallEntry(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// func idleLoopAddr() uintptr
TEXT ·idleLoopAddr(SB),NOSPLIT,$0-8
	LEAQ ·idleLoop(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// func outb(port uint16, v uint8)
TEXT ·outb(SB),NOSPLIT,$0-3
	MOVW port+0(FP), DX
	MOVB v+2(FP), AX
	OUTB
	RET

// func outl(port uint16, v uint32)
TEXT ·outl(SB),NOSPLIT,$0-8
	MOVW port+0(FP), DX
	MOVL v+4(FP), AX
	OUTL
	RET

// func inb(port uint16) uint8
TEXT ·inb(SB),NOSPLIT,$0-9
	MOVW port+0(FP), DX
	XORL AX, AX
	INB
	MOVB AX, ret+8(FP)
	RET

// func inl(port uint16) uint32
TEXT ·inl(SB),NOSPLIT,$0-12
	MOVW port+0(FP), DX
	INL
	MOVL AX, ret+8(FP)
	RET

// func wrmsr(msr uint32, v uint64)
TEXT ·wrmsr(SB),NOSPLIT,$0-16
	MOVL msr+0(FP), CX
	MOVQ v+8(FP), AX
	MOVQ AX, DX
	SHRQ $32, DX
	WRMSR
	RET

// func rdmsr(msr uint32) uint64
TEXT ·rdmsr(SB),NOSPLIT,$0-16
	MOVL msr+0(FP), CX
	RDMSR
	SHLQ $32, DX
	MOVL AX, AX
	ORQ DX, AX
	MOVQ AX, ret+8(FP)
	RET

// func rdtsc() uint64
TEXT ·rdtsc(SB),NOSPLIT,$0-8
	RDTSC
	SHLQ $32, DX
	MOVL AX, AX
	ORQ DX, AX
	MOVQ AX, ret+0(FP)
	RET

// func readCR2() uint64
TEXT ·readCR2(SB),NOSPLIT,$0-8
	MOVQ CR2, AX
	MOVQ AX, ret+0(FP)
	RET

// func readCR3() uint64
TEXT ·readCR3(SB),NOSPLIT,$0-8
	MOVQ CR3, AX
	MOVQ AX, ret+0(FP)
	RET

// func writeCR3(v uint64)
TEXT ·writeCR3(SB),NOSPLIT,$0-8
	MOVQ v+0(FP), AX
	MOVQ AX, CR3
	RET

// func invlpg(addr uint64)
TEXT ·invlpg(SB),NOSPLIT,$0-8
	MOVQ addr+0(FP), AX
	INVLPG (AX)
	RET

// func lgdt(addr uintptr)
TEXT ·lgdt(SB),NOSPLIT,$0-8
	MOVQ addr+0(FP), AX
	BYTE $0x0F; BYTE $0x01; BYTE $0x10 // lgdt (AX)
	RET

// func lidt(addr uintptr)
TEXT ·lidt(SB),NOSPLIT,$0-8
	MOVQ addr+0(FP), AX
	BYTE $0x0F; BYTE $0x01; BYTE $0x18 // lidt (AX)
	RET

// func ltr(sel uint16)
TEXT ·ltr(SB),NOSPLIT,$0-2
	MOVW sel+0(FP), AX
	BYTE $0x0F; BYTE $0x00; BYTE $0xD8 // ltr ax
	RET

// func fpuInit(area uintptr)
// Resets the x87/SSE state to its defaults and saves it at area.
TEXT ·fpuInit(SB),NOSPLIT,$0-8
	BYTE $0xDB; BYTE $0xE3 // fninit
	MOVQ area+0(FP), AX
	MOVL $0x1F80, BX
	MOVL BX, 0(AX)
	LDMXCSR 0(AX)
	FXSAVE64 (AX)
	XORPS X15, X15
	RET

// func rdrand() (v uint64, ok bool)
TEXT ·rdrand(SB),NOSPLIT,$0-9
	BYTE $0x48; BYTE $0x0F; BYTE $0xC7; BYTE $0xF0 // rdrand rax
	SETCS BX
	MOVQ AX, v+0(FP)
	MOVB BX, ok+8(FP)
	RET

// func rdseed() (v uint64, ok bool)
TEXT ·rdseed(SB),NOSPLIT,$0-9
	BYTE $0x48; BYTE $0x0F; BYTE $0xC7; BYTE $0xF8 // rdseed rax
	SETCS BX
	MOVQ AX, v+0(FP)
	MOVB BX, ok+8(FP)
	RET

// func cpuid(fn, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB),NOSPLIT,$0-24
	MOVL fn+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func setDebug(dr0, dr7 uint64)
TEXT ·setDebug(SB),NOSPLIT,$0-16
	MOVQ dr0+0(FP), AX
	BYTE $0x0F; BYTE $0x23; BYTE $0xC0 // mov dr0, rax
	MOVQ dr7+8(FP), AX
	BYTE $0x0F; BYTE $0x23; BYTE $0xF8 // mov dr7, rax
	RET

// func readDR6() uint64
TEXT ·readDR6(SB),NOSPLIT,$0-8
	BYTE $0x0F; BYTE $0x21; BYTE $0xF0 // mov rax, dr6
	MOVQ AX, ret+0(FP)
	RET

// func writeDR6(v uint64)
TEXT ·writeDR6(SB),NOSPLIT,$0-8
	MOVQ v+0(FP), AX
	BYTE $0x0F; BYTE $0x23; BYTE $0xF0 // mov dr6, rax
	RET

// func halt()
TEXT ·halt(SB),NOSPLIT,$0-0
again:
	CLI
	HLT
	JMP again

// vdsoClockGettime is the vDSO's __vdso_clock_gettime, called by the
// program with the C ABI: DI = clock id, SI = struct timespec *, result in
// AX. It runs in the program's context (its stack and TLS) and touches only
// constants the kernel set at boot, computing what the kernel's own
// nanotime and walltime would; other clocks fall back to the system call.
TEXT ·vdsoClockGettime(SB),NOSPLIT|NOFRAME,$0
	XORQ R8, R8
	CMPQ DI, $1 // CLOCK_MONOTONIC
	JEQ tsc
	CMPQ DI, $4 // CLOCK_MONOTONIC_RAW
	JEQ tsc
	CMPQ DI, $6 // CLOCK_MONOTONIC_COARSE
	JEQ tsc
	CMPQ DI, $7 // CLOCK_BOOTTIME
	JEQ tsc
	MOVQ ·wall0(SB), R8
	CMPQ DI, $0 // CLOCK_REALTIME
	JEQ tsc
	CMPQ DI, $5 // CLOCK_REALTIME_COARSE
	JEQ tsc
	MOVL $228, AX // SYS_clock_gettime
	SYSCALL
	RET
tsc:
	RDTSC
	SHLQ $32, DX
	MOVL AX, AX
	ORQ DX, AX
	SUBQ ·tsc0(SB), AX
	MULQ ·tscMult(SB)
	SHRQ $32, AX
	SHLQ $32, DX
	ORQ DX, AX
	ADDQ R8, AX
	MOVQ $1000000000, CX
	XORL DX, DX
	DIVQ CX
	MOVQ AX, 0(SI)
	MOVQ DX, 8(SI)
	XORL AX, AX
	RET

// func vdsoClockGettimeAddr() uintptr
TEXT ·vdsoClockGettimeAddr(SB),NOSPLIT,$0-8
	LEAQ ·vdsoClockGettime(SB), AX
	MOVQ AX, ret+0(FP)
	RET
