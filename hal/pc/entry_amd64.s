#include "textflag.h"

// Size of the kernel stack region (kstacks in kernel_amd64.go).
#define KSTACKS 393216

// multibootEntry is where a multiboot loader starts the image: 32-bit
// protected mode, paging off, EAX = 0x2BADB002, EBX = multiboot info. A
// PVH loader (Xen's direct boot ABI) starts it here too, with EBX pointing
// at an hvm_start_info. The
// Go assembler emits only 64-bit code, so the 32-bit part is hand-encoded.
// It is position independent and uses fixed scratch memory below 1 MiB:
//
//	0x10000 PML4, 0x11000 PDPT, 0x12000-0x15fff four page directories that
//	identity-map 4 GiB with 2 MiB pages, 0x16000 a GDT (null, 64-bit code
//	0x08, data 0x10), 0x80000 the initial stack.
//
// It enables PAE, OSFXSR/OSXMMEXCPT, long mode and SYSCALL (EFER.LME|SCE)
// and paging, and far-returns into the 64-bit code that follows.
TEXT ·multibootEntry(SB),NOSPLIT|NOFRAME,$0
	BYTE $0xFA                                     // cli
	BYTE $0xFC                                     // cld
	BYTE $0xBC; BYTE $0x00; BYTE $0x00; BYTE $0x08; BYTE $0x00 // mov esp, 0x80000
	BYTE $0x89; BYTE $0xC6                         // mov esi, eax
	BYTE $0xBF; BYTE $0x00; BYTE $0x00; BYTE $0x01; BYTE $0x00 // mov edi, 0x10000
	BYTE $0xB9; BYTE $0x00; BYTE $0x18; BYTE $0x00; BYTE $0x00 // mov ecx, 0x1800
	BYTE $0x31; BYTE $0xC0                         // xor eax, eax
	BYTE $0xF3; BYTE $0xAB                         // rep stosd
	// mov dword [0x10000], 0x11003
	BYTE $0xC7; BYTE $0x05; BYTE $0x00; BYTE $0x00; BYTE $0x01; BYTE $0x00; BYTE $0x03; BYTE $0x10; BYTE $0x01; BYTE $0x00
	// mov dword [0x11000 + 8*i], 0x12003 + 0x1000*i, i = 0..3
	BYTE $0xC7; BYTE $0x05; BYTE $0x00; BYTE $0x10; BYTE $0x01; BYTE $0x00; BYTE $0x03; BYTE $0x20; BYTE $0x01; BYTE $0x00
	BYTE $0xC7; BYTE $0x05; BYTE $0x08; BYTE $0x10; BYTE $0x01; BYTE $0x00; BYTE $0x03; BYTE $0x30; BYTE $0x01; BYTE $0x00
	BYTE $0xC7; BYTE $0x05; BYTE $0x10; BYTE $0x10; BYTE $0x01; BYTE $0x00; BYTE $0x03; BYTE $0x40; BYTE $0x01; BYTE $0x00
	BYTE $0xC7; BYTE $0x05; BYTE $0x18; BYTE $0x10; BYTE $0x01; BYTE $0x00; BYTE $0x03; BYTE $0x50; BYTE $0x01; BYTE $0x00
	BYTE $0xBF; BYTE $0x00; BYTE $0x20; BYTE $0x01; BYTE $0x00 // mov edi, 0x12000
	BYTE $0xB8; BYTE $0x83; BYTE $0x00; BYTE $0x00; BYTE $0x00 // mov eax, 0x83 (P|RW|PS)
	BYTE $0xB9; BYTE $0x00; BYTE $0x08; BYTE $0x00; BYTE $0x00 // mov ecx, 2048
	BYTE $0x89; BYTE $0x07                         // 1: mov [edi], eax
	BYTE $0x05; BYTE $0x00; BYTE $0x00; BYTE $0x20; BYTE $0x00 // add eax, 0x200000
	BYTE $0x83; BYTE $0xC7; BYTE $0x08             // add edi, 8
	BYTE $0x49                                     // dec ecx
	BYTE $0x75; BYTE $0xF3                         // jnz 1b
	// GDT at 0x16000 and its pseudo-descriptor at 0x16020.
	BYTE $0xC7; BYTE $0x05; BYTE $0x00; BYTE $0x60; BYTE $0x01; BYTE $0x00; BYTE $0x00; BYTE $0x00; BYTE $0x00; BYTE $0x00
	BYTE $0xC7; BYTE $0x05; BYTE $0x04; BYTE $0x60; BYTE $0x01; BYTE $0x00; BYTE $0x00; BYTE $0x00; BYTE $0x00; BYTE $0x00
	BYTE $0xC7; BYTE $0x05; BYTE $0x08; BYTE $0x60; BYTE $0x01; BYTE $0x00; BYTE $0xFF; BYTE $0xFF; BYTE $0x00; BYTE $0x00
	BYTE $0xC7; BYTE $0x05; BYTE $0x0C; BYTE $0x60; BYTE $0x01; BYTE $0x00; BYTE $0x00; BYTE $0x9A; BYTE $0xAF; BYTE $0x00
	BYTE $0xC7; BYTE $0x05; BYTE $0x10; BYTE $0x60; BYTE $0x01; BYTE $0x00; BYTE $0xFF; BYTE $0xFF; BYTE $0x00; BYTE $0x00
	BYTE $0xC7; BYTE $0x05; BYTE $0x14; BYTE $0x60; BYTE $0x01; BYTE $0x00; BYTE $0x00; BYTE $0x92; BYTE $0xCF; BYTE $0x00
	BYTE $0x66; BYTE $0xC7; BYTE $0x05; BYTE $0x20; BYTE $0x60; BYTE $0x01; BYTE $0x00; BYTE $0x17; BYTE $0x00 // mov word [0x16020], 23
	BYTE $0xC7; BYTE $0x05; BYTE $0x22; BYTE $0x60; BYTE $0x01; BYTE $0x00; BYTE $0x00; BYTE $0x60; BYTE $0x01; BYTE $0x00 // mov dword [0x16022], 0x16000
	BYTE $0x0F; BYTE $0x01; BYTE $0x15; BYTE $0x20; BYTE $0x60; BYTE $0x01; BYTE $0x00 // lgdt [0x16020]
	BYTE $0x0F; BYTE $0x20; BYTE $0xE0             // mov eax, cr4
	BYTE $0x0D; BYTE $0x20; BYTE $0x06; BYTE $0x00; BYTE $0x00 // or eax, PAE|OSFXSR|OSXMMEXCPT
	BYTE $0x0F; BYTE $0x22; BYTE $0xE0             // mov cr4, eax
	BYTE $0xB8; BYTE $0x00; BYTE $0x00; BYTE $0x01; BYTE $0x00 // mov eax, 0x10000
	BYTE $0x0F; BYTE $0x22; BYTE $0xD8             // mov cr3, eax
	BYTE $0xB9; BYTE $0x80; BYTE $0x00; BYTE $0x00; BYTE $0xC0 // mov ecx, 0xC0000080 (EFER)
	BYTE $0x0F; BYTE $0x32                         // rdmsr
	BYTE $0x0D; BYTE $0x01; BYTE $0x01; BYTE $0x00; BYTE $0x00 // or eax, LME|SCE
	BYTE $0x0F; BYTE $0x30                         // wrmsr
	BYTE $0x0F; BYTE $0x20; BYTE $0xC0             // mov eax, cr0
	BYTE $0x25; BYTE $0xFB; BYTE $0xFF; BYTE $0xFF; BYTE $0xFF // and eax, ~EM
	BYTE $0x0D; BYTE $0x03; BYTE $0x00; BYTE $0x01; BYTE $0x80 // or eax, PG|WP|MP|PE
	BYTE $0x0F; BYTE $0x22; BYTE $0xC0             // mov cr0, eax
	BYTE $0xE8; BYTE $0x00; BYTE $0x00; BYTE $0x00; BYTE $0x00 // call 1f
	BYTE $0x58                                     // 1: pop eax
	BYTE $0x05; BYTE $0x0A; BYTE $0x00; BYTE $0x00; BYTE $0x00 // add eax, 2f-1b
	BYTE $0x6A; BYTE $0x08                         // push 0x08
	BYTE $0x50                                     // push eax
	BYTE $0xCB                                     // retf
	// 2: 64-bit mode.
	MOVL $0x10, AX
	MOVW AX, DS
	MOVW AX, ES
	MOVW AX, SS
	MOVW AX, FS
	MOVW AX, GS
	MOVL BX, BX
	MOVQ BX, ·mbiAddr(SB)
	MOVL SI, SI
	MOVQ SI, ·bootEAX(SB)
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ·tscEntry(SB)
	// Kernel g: stack bounds cover every kernel stack.
	LEAQ ·kstacks(SB), AX
	MOVQ AX, ·kernelG+0(SB)
	LEAQ 2048(AX), BX
	MOVQ BX, ·kernelG+16(SB)
	MOVQ BX, ·kernelG+24(SB)
	ADDQ $KSTACKS, AX
	MOVQ AX, ·kernelG+8(SB)
	MOVQ AX, ·kstackTop(SB)
	// Boot below the top, which holds the first thread's frame later.
	SUBQ $4096, AX
	MOVQ AX, SP
	// Kernel TLS: FS:-8 holds the kernel g.
	LEAQ ·kernelG(SB), AX
	MOVQ AX, ·kernelTLS(SB)
	LEAQ ·kernelTLS+8(SB), AX
	MOVQ AX, ·kernelFS(SB)
	MOVQ AX, DX
	SHRQ $32, DX
	MOVL $0xC0000100, CX
	WRMSR
	// The program's own entry point. Referencing it here is also what
	// keeps the runtime and main.main in the link.
	LEAQ _rt0_amd64_linux(SB), AX
	MOVQ AX, ·userEntry(SB)
	XORPS X15, X15
	CALL ·kmain(SB)
hang:
	CLI
	HLT
	JMP hang

// syscallEntry is the LSTAR target. SYSCALL left RIP in CX and RFLAGS in
// R11, masked IF, and did not switch stacks: switch to the kernel stack
// and build the same frame an interrupt would, with vector 256.
TEXT ·syscallEntry(SB),NOSPLIT|NOFRAME,$0
	MOVQ SP, ·scratchSP(SB)
	MOVQ ·kstackTop(SB), SP
	SUBQ $40, SP
	MOVQ CX, 0(SP)
	MOVQ $0x08, 8(SP)
	MOVQ R11, 16(SP)
	MOVQ ·scratchSP(SB), R11
	MOVQ R11, 24(SP)
	MOVQ $0x10, 32(SP)
	MOVQ 16(SP), R11
	SUBQ $16, SP
	MOVQ $0, 8(SP)
	MOVQ $256, 0(SP)
	JMP ·trapCommon(SB)

// trapCommon saves the general registers below the vector, error code and
// interrupt frame (the layout of linux.Regs), switches FS_BASE to the
// kernel TLS block, saves the FPU state and calls trap. trap may replace
// the frame with another thread's; trapReturn resumes whatever it holds.
TEXT ·trapCommon(SB),NOSPLIT|NOFRAME,$0
	SUBQ $120, SP
	MOVQ R15, 0(SP)
	MOVQ R14, 8(SP)
	MOVQ R13, 16(SP)
	MOVQ R12, 24(SP)
	MOVQ R11, 32(SP)
	MOVQ R10, 40(SP)
	MOVQ R9, 48(SP)
	MOVQ R8, 56(SP)
	MOVQ BP, 64(SP)
	MOVQ DI, 72(SP)
	MOVQ SI, 80(SP)
	MOVQ DX, 88(SP)
	MOVQ CX, 96(SP)
	MOVQ BX, 104(SP)
	MOVQ AX, 112(SP)
	MOVQ ·curFX(SB), AX
	FXSAVE64 (AX)
	MOVQ ·kernelFS(SB), AX
	MOVQ AX, DX
	SHRQ $32, DX
	MOVL $0xC0000100, CX
	WRMSR
	MOVQ SP, AX
	SUBQ $16, SP
	MOVQ AX, 0(SP)
	CALL ·trap(SB)
	ADDQ $16, SP
	JMP ·trapReturn(SB)

TEXT ·trapReturn(SB),NOSPLIT|NOFRAME,$0
	// BP (the interrupted code's frame pointer) is reloaded from the frame
	// below, deliberately; reading it first tells go vet's frame-pointer
	// check so.
	MOVQ BP, AX
	MOVQ ·curFX(SB), AX
	FXRSTOR64 (AX)
	MOVQ ·curFS(SB), AX
	MOVQ AX, DX
	SHRQ $32, DX
	MOVL $0xC0000100, CX
	WRMSR
	MOVQ 0(SP), R15
	MOVQ 8(SP), R14
	MOVQ 16(SP), R13
	MOVQ 24(SP), R12
	MOVQ 32(SP), R11
	MOVQ 40(SP), R10
	MOVQ 48(SP), R9
	MOVQ 56(SP), R8
	MOVQ 64(SP), BP
	MOVQ 72(SP), DI
	MOVQ 80(SP), SI
	MOVQ 88(SP), DX
	MOVQ 96(SP), CX
	MOVQ 104(SP), BX
	MOVQ 112(SP), AX
	ADDQ $136, SP
	IRETQ

// enterFrame resumes the frame at f (laid out as linux.Regs).
TEXT ·enterFrame(SB),NOSPLIT|NOFRAME,$0-8
	MOVQ f+0(FP), AX
	MOVQ AX, SP
	JMP ·trapReturn(SB)

// idleLoop is the body of the idle context: halt until an interrupt.
TEXT ·idleLoop(SB),NOSPLIT|NOFRAME,$0
again:
	STI
	HLT
	JMP again

#define NOERR(name, n) \
	TEXT name(SB),NOSPLIT|NOFRAME,$0; \
	SUBQ $16, SP; \
	MOVQ $0, 8(SP); \
	MOVQ $n, 0(SP); \
	JMP ·trapCommon(SB)

#define ERR(name, n) \
	TEXT name(SB),NOSPLIT|NOFRAME,$0; \
	SUBQ $8, SP; \
	MOVQ $n, 0(SP); \
	JMP ·trapCommon(SB)

NOERR(·vec0, 0)
NOERR(·vec1, 1)
NOERR(·vec2, 2)
NOERR(·vec3, 3)
NOERR(·vec4, 4)
NOERR(·vec5, 5)
NOERR(·vec6, 6)
NOERR(·vec7, 7)
ERR(·vec8, 8)
NOERR(·vec9, 9)
ERR(·vec10, 10)
ERR(·vec11, 11)
ERR(·vec12, 12)
ERR(·vec13, 13)
ERR(·vec14, 14)
NOERR(·vec15, 15)
NOERR(·vec16, 16)
ERR(·vec17, 17)
NOERR(·vec18, 18)
NOERR(·vec19, 19)
NOERR(·vec20, 20)
ERR(·vec21, 21)
NOERR(·vec22, 22)
NOERR(·vec23, 23)
NOERR(·vec24, 24)
NOERR(·vec25, 25)
NOERR(·vec26, 26)
NOERR(·vec27, 27)
NOERR(·vec28, 28)
ERR(·vec29, 29)
ERR(·vec30, 30)
NOERR(·vec31, 31)
NOERR(·vec32, 32)
NOERR(·vec33, 33)
NOERR(·vec34, 34)
NOERR(·vec35, 35)
NOERR(·vec36, 36)
NOERR(·vec37, 37)
NOERR(·vec38, 38)
NOERR(·vec39, 39)
NOERR(·vec40, 40)
NOERR(·vec41, 41)
NOERR(·vec42, 42)
NOERR(·vec43, 43)
NOERR(·vec44, 44)
NOERR(·vec45, 45)
NOERR(·vec46, 46)
NOERR(·vec47, 47)

DATA ·vecTable+0(SB)/8, $·vec0(SB)
DATA ·vecTable+8(SB)/8, $·vec1(SB)
DATA ·vecTable+16(SB)/8, $·vec2(SB)
DATA ·vecTable+24(SB)/8, $·vec3(SB)
DATA ·vecTable+32(SB)/8, $·vec4(SB)
DATA ·vecTable+40(SB)/8, $·vec5(SB)
DATA ·vecTable+48(SB)/8, $·vec6(SB)
DATA ·vecTable+56(SB)/8, $·vec7(SB)
DATA ·vecTable+64(SB)/8, $·vec8(SB)
DATA ·vecTable+72(SB)/8, $·vec9(SB)
DATA ·vecTable+80(SB)/8, $·vec10(SB)
DATA ·vecTable+88(SB)/8, $·vec11(SB)
DATA ·vecTable+96(SB)/8, $·vec12(SB)
DATA ·vecTable+104(SB)/8, $·vec13(SB)
DATA ·vecTable+112(SB)/8, $·vec14(SB)
DATA ·vecTable+120(SB)/8, $·vec15(SB)
DATA ·vecTable+128(SB)/8, $·vec16(SB)
DATA ·vecTable+136(SB)/8, $·vec17(SB)
DATA ·vecTable+144(SB)/8, $·vec18(SB)
DATA ·vecTable+152(SB)/8, $·vec19(SB)
DATA ·vecTable+160(SB)/8, $·vec20(SB)
DATA ·vecTable+168(SB)/8, $·vec21(SB)
DATA ·vecTable+176(SB)/8, $·vec22(SB)
DATA ·vecTable+184(SB)/8, $·vec23(SB)
DATA ·vecTable+192(SB)/8, $·vec24(SB)
DATA ·vecTable+200(SB)/8, $·vec25(SB)
DATA ·vecTable+208(SB)/8, $·vec26(SB)
DATA ·vecTable+216(SB)/8, $·vec27(SB)
DATA ·vecTable+224(SB)/8, $·vec28(SB)
DATA ·vecTable+232(SB)/8, $·vec29(SB)
DATA ·vecTable+240(SB)/8, $·vec30(SB)
DATA ·vecTable+248(SB)/8, $·vec31(SB)
DATA ·vecTable+256(SB)/8, $·vec32(SB)
DATA ·vecTable+264(SB)/8, $·vec33(SB)
DATA ·vecTable+272(SB)/8, $·vec34(SB)
DATA ·vecTable+280(SB)/8, $·vec35(SB)
DATA ·vecTable+288(SB)/8, $·vec36(SB)
DATA ·vecTable+296(SB)/8, $·vec37(SB)
DATA ·vecTable+304(SB)/8, $·vec38(SB)
DATA ·vecTable+312(SB)/8, $·vec39(SB)
DATA ·vecTable+320(SB)/8, $·vec40(SB)
DATA ·vecTable+328(SB)/8, $·vec41(SB)
DATA ·vecTable+336(SB)/8, $·vec42(SB)
DATA ·vecTable+344(SB)/8, $·vec43(SB)
DATA ·vecTable+352(SB)/8, $·vec44(SB)
DATA ·vecTable+360(SB)/8, $·vec45(SB)
DATA ·vecTable+368(SB)/8, $·vec46(SB)
DATA ·vecTable+376(SB)/8, $·vec47(SB)
GLOBL ·vecTable(SB), RODATA|NOPTR, $384
