package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Symbols the image builder needs from the linked program.
const (
	platformPkg = "github.com/anykernel/anykernel/hal/pc"
	entrySym    = platformPkg + ".multibootEntry"
	bootInfoSym = platformPkg + ".bootInfo"
	mainSym     = "main.main"
	bootMagic   = 0x746f6f626b796e61 // "anykboot", hal/pc.bootMagic
)

// Multiboot 1 header (Multiboot Specification 0.6.96 §3.1.1).
const (
	mbMagic      = 0x1BADB002
	mbPageAlign  = 1 << 0
	mbMemInfo    = 1 << 1
	mbAoutKludge = 1 << 16
	mbHeaderLen  = 32
	mbSearchLen  = 8192
)

// PVH entry note (Xen's direct boot ABI: xen/include/public/elfnote.h).
const (
	xenElfnotePhys32Entry = 18
	pvhNoteLen            = 20 // namesz, descsz, type, "Xen\0", entry
)

// Boot protocols an image can carry.
const (
	bootBoth      = "both"
	bootMultiboot = "multiboot"
	bootPVH       = "pvh"
)

func cmdBuild(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output image (default: the package's base name + .img)")
	tags := fs.String("tags", "", "build tags")
	bootProto := fs.String("boot", bootBoth, "boot protocols to carry: both, multiboot (QEMU -M pc/q35) or pvh (microvm, Firecracker, cloud-hypervisor; QEMU takes multiboot when both are present)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("build: want exactly one package")
	}
	pkg := fs.Arg(0)
	if *out == "" {
		*out = filepath.Base(pkg) + ".img"
	}
	return buildImage(ctx, pkg, *out, *tags, *bootProto, stderr)
}

// buildImage compiles pkg for the unikernel and writes the image to out.
func buildImage(ctx context.Context, pkg, out, tags, boot string, stderr io.Writer) error {
	if boot != bootBoth && boot != bootMultiboot && boot != bootPVH {
		return fmt.Errorf("build: unknown boot protocol %q", boot)
	}
	tmp, err := os.MkdirTemp("", "anyk-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	elfPath := filepath.Join(tmp, "prog")
	// -w drops DWARF; the symbol table (patched below) and the pclntab
	// (for symbolizing dumps) stay.
	args := []string{"build", "-o", elfPath, "-ldflags=-w -E=" + entrySym}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build: go build %s: %w", pkg, err)
	}
	raw, err := os.ReadFile(elfPath)
	if err != nil {
		return err
	}
	img, err := makeImage(raw, boot)
	if err != nil {
		return fmt.Errorf("build: %s: %w", pkg, err)
	}
	if err := os.WriteFile(out, img, 0o755); err != nil {
		return err
	}
	// Keep the kernel honest: reject images whose kernel code would call
	// into the runtime from the trap handler.
	if err := checkImage(ctx, out); err != nil {
		os.Remove(out)
		return fmt.Errorf("build: %s: %w", pkg, err)
	}
	return nil
}

// imageInfo describes a program's load layout.
type imageInfo struct {
	loadAddr, loadEnd, bssEnd uint64
	entry, bootInfo, main     uint64
	headerOff                 int // room for the multiboot header and the PVH note
	stackPhdr                 int // file offset of the PT_GNU_STACK header, or -1
}

// makeImage turns a linked program into a bootable image: it fills in the
// platform's bootInfo and writes, into zero padding of the first page, a
// multiboot header (with the a.out kludge load addresses, since QEMU
// refuses 64-bit ELF multiboot kernels) and a PVH entry note, which the
// program header of the unneeded PT_GNU_STACK is turned into a PT_NOTE to
// point at. The result is still a valid ELF.
func makeImage(raw []byte, boot string) ([]byte, error) {
	img := bytes.Clone(raw)
	info, err := inspect(img)
	if err != nil {
		return nil, err
	}
	off, err := fileOffset(img, info.bootInfo)
	if err != nil {
		return nil, fmt.Errorf("bootInfo: %w", err)
	}
	if off+32 > uint64(len(img)) || binary.LittleEndian.Uint64(img[off:]) != bootMagic {
		return nil, errors.New("bootInfo does not carry the boot magic")
	}
	binary.LittleEndian.PutUint64(img[off+8:], info.loadAddr)
	binary.LittleEndian.PutUint64(img[off+16:], info.bssEnd)
	binary.LittleEndian.PutUint64(img[off+24:], info.main)

	le := binary.LittleEndian
	if boot != bootPVH {
		h := img[info.headerOff:]
		flags := uint32(mbPageAlign | mbMemInfo | mbAoutKludge)
		le.PutUint32(h[0:], mbMagic)
		le.PutUint32(h[4:], flags)
		le.PutUint32(h[8:], -(mbMagic + flags))
		le.PutUint32(h[12:], uint32(info.loadAddr)+uint32(info.headerOff))
		le.PutUint32(h[16:], uint32(info.loadAddr))
		le.PutUint32(h[20:], uint32(info.loadEnd))
		le.PutUint32(h[24:], uint32(info.bssEnd))
		le.PutUint32(h[28:], uint32(info.entry))
	}
	if boot != bootMultiboot {
		if info.stackPhdr < 0 {
			return nil, errors.New("no PT_GNU_STACK program header to carry the PVH note")
		}
		noteOff := info.headerOff + mbHeaderLen
		n := img[noteOff:]
		le.PutUint32(n[0:], 4) // namesz
		le.PutUint32(n[4:], 4) // descsz
		le.PutUint32(n[8:], xenElfnotePhys32Entry)
		copy(n[12:], "Xen\x00")
		le.PutUint32(n[16:], uint32(info.entry))
		ph := img[info.stackPhdr:]
		le.PutUint32(ph[0:], uint32(elf.PT_NOTE))
		le.PutUint32(ph[4:], uint32(elf.PF_R))
		le.PutUint64(ph[8:], uint64(noteOff))
		le.PutUint64(ph[16:], info.loadAddr+uint64(noteOff))
		le.PutUint64(ph[24:], info.loadAddr+uint64(noteOff))
		le.PutUint64(ph[32:], pvhNoteLen)
		le.PutUint64(ph[40:], pvhNoteLen)
		le.PutUint64(ph[48:], 4)
	}
	if string(img[0x202:0x206]) == "HdrS" {
		return nil, errors.New("image would be taken for a Linux bzImage")
	}
	return img, nil
}

// inspect checks the ELF's layout and finds the symbols and header room.
func inspect(img []byte) (*imageInfo, error) {
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, err
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return nil, errors.New("not an x86-64 ELF")
	}
	info := &imageInfo{stackPhdr: -1}
	phoff := int(binary.LittleEndian.Uint64(img[0x20:]))
	for i, p := range f.Progs {
		if p.Type == elf.PT_GNU_STACK {
			info.stackPhdr = phoff + i*56
		}
	}
	first := true
	var delta uint64
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		if first {
			if p.Off != 0 {
				return nil, errors.New("first load segment does not start at file offset 0")
			}
			info.loadAddr, delta, first = p.Vaddr, p.Vaddr, false
		}
		if p.Vaddr-p.Off != delta {
			return nil, fmt.Errorf("segment at %#x is not loaded linearly from the file", p.Vaddr)
		}
		info.loadEnd = max(info.loadEnd, p.Vaddr+p.Filesz)
		info.bssEnd = max(info.bssEnd, p.Vaddr+p.Memsz)
	}
	if first {
		return nil, errors.New("no load segments")
	}
	if info.bssEnd > 1<<32 || info.loadAddr < 1<<20 {
		return nil, errors.New("image must load between 1 MiB and 4 GiB")
	}
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("symbols: %w", err)
	}
	for _, s := range syms {
		switch s.Name {
		case entrySym + ".abi0":
			info.entry = s.Value
		case entrySym:
			if info.entry == 0 {
				info.entry = s.Value
			}
		case bootInfoSym:
			info.bootInfo = s.Value
		case mainSym:
			info.main = s.Value
		}
	}
	if info.entry == 0 || info.bootInfo == 0 {
		return nil, fmt.Errorf("program does not import %s", platformPkg)
	}
	if f.Entry != info.entry {
		return nil, fmt.Errorf("ELF entry %#x is not %s (link with -E)", f.Entry, entrySym)
	}
	// Room for the header: zeros after the ELF, program and section headers.
	used := int(64 + uint64(len(f.Progs))*56)
	if shoff := int(binary.LittleEndian.Uint64(img[0x28:])); shoff < mbSearchLen {
		used = max(used, shoff+len(f.Sections)*64)
	}
	limit := min(mbSearchLen, len(img))
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Size > 0 && int(s.Offset) >= used && int(s.Offset) < limit {
			limit = int(s.Offset)
		}
	}
	const room = mbHeaderLen + pvhNoteLen
	for off := (used + 63) &^ 63; off+room <= limit; off += 4 {
		if allZero(img[off : off+room]) {
			info.headerOff = off
			return info, nil
		}
	}
	return nil, errors.New("no room for the multiboot header in the first 8 KiB")
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fileOffset maps a virtual address to its offset in the file.
func fileOffset(img []byte, va uint64) (uint64, error) {
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return 0, err
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && va >= p.Vaddr && va < p.Vaddr+p.Filesz {
			return va - p.Vaddr + p.Off, nil
		}
	}
	return 0, fmt.Errorf("address %#x is not in the file", va)
}

// encodeWord escapes a kernel command-line word: bytes that would split
// or confuse it (space, control characters, '%', quotes, non-ASCII) become
// %XX, which hal/pc.ParseCmdline decodes.
func encodeWord(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == '"' || c == '\'' || c == '\\' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
