package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"debug/gosym"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Exit statuses hal/pc reports for itself.
const (
	exitKernelPanic = 125
)

type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }
func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("-env %q: want NAME=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

type deviceList []string

func (d *deviceList) String() string     { return strings.Join(*d, " ") }
func (d *deviceList) Set(v string) error { *d = append(*d, v); return nil }

// runOptions configures one boot.
type runOptions struct {
	Image   string
	Args    []string
	Env     []string
	Memory  string // QEMU -m; "256M" if empty
	Machine string // QEMU -M: pc (default), q35 or microvm
	KVM     bool
	Trace   bool
	Summary bool
	NoVDSO  bool          // every clock read a system call (for comparison)
	Timeout time.Duration // 0: none
	QEMU    string        // qemu-system-x86_64 if empty
	Devices []string      // extra QEMU -device specifications
	Drives  []string      // raw image files attached as modern virtio-blk PCI devices
	HubNICs int           // modern virtio-net PCI NICs, all on one QEMU hub
}

func cmdRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o runOptions
	var env envList
	fs.StringVar(&o.Memory, "m", "256M", "guest memory (QEMU -m)")
	fs.StringVar(&o.Machine, "machine", "pc", "QEMU machine: pc, q35 or microvm")
	fs.BoolVar(&o.KVM, "kvm", false, "use KVM instead of TCG (needs hardware virtualisation)")
	fs.BoolVar(&o.Trace, "trace", false, "log every system call")
	fs.BoolVar(&o.Summary, "summary", false, "print kernel counters at exit")
	fs.BoolVar(&o.NoVDSO, "novdso", false, "give the program no vDSO: every clock read is a system call")
	fs.Var(&env, "env", "NAME=VALUE for the program's environment (repeatable)")
	var devices, drives deviceList
	fs.Var(&devices, "device", "extra QEMU -device specification (repeatable)")
	fs.Var(&drives, "drive", "raw image file to attach as a virtio-blk PCI device (repeatable)")
	fs.IntVar(&o.HubNICs, "hubnics", 0, "virtio-net PCI NICs to attach, all connected to one QEMU hub")
	fs.DurationVar(&o.Timeout, "timeout", 0, "kill the machine after this long (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return errors.New("run: no image")
	}
	o.Image, rest = rest[0], rest[1:]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	o.Args, o.Env, o.Devices, o.Drives = rest, env, devices, drives
	code, err := boot(ctx, o, stdin, stdout, stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code}
	}
	return nil
}

// kernelCmdline builds the command line hal/pc parses.
func kernelCmdline(o runOptions) string {
	var w []string
	if o.Trace {
		w = append(w, "anyk.trace")
	}
	if o.Summary {
		w = append(w, "anyk.summary")
	}
	if o.NoVDSO {
		w = append(w, "anyk.novdso")
	}
	for _, e := range o.Env {
		w = append(w, encodeWord(e))
	}
	w = append(w, "--")
	for _, a := range o.Args {
		w = append(w, encodeWord(a))
	}
	return strings.Join(w, " ")
}

// qemuArgs returns the QEMU command line for o.
func qemuArgs(o runOptions) []string {
	accel := "tcg"
	cpu := "max"
	if o.KVM {
		accel, cpu = "kvm", "host"
	}
	mem := o.Memory
	if mem == "" {
		mem = "256M"
	}
	machine := o.Machine
	if machine == "" {
		machine = "pc"
	}
	args := []string{
		"-M", machine, "-accel", accel, "-cpu", cpu, "-m", mem,
		"-nodefaults", "-no-reboot", "-display", "none",
		"-serial", "stdio",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-kernel", o.Image,
		"-append", kernelCmdline(o),
	}
	for _, d := range o.Devices {
		args = append(args, "-device", d)
	}
	for i := 0; i < o.HubNICs; i++ {
		id := fmt.Sprintf("anyknet%d", i)
		args = append(args,
			"-netdev", "hubport,hubid=0,id="+id,
			"-device", "virtio-net-pci,disable-legacy=on,netdev="+id)
	}
	for i, f := range o.Drives {
		id := fmt.Sprintf("anykdrive%d", i)
		args = append(args,
			"-drive", "file="+strings.ReplaceAll(f, ",", ",,")+",if=none,format=raw,id="+id,
			"-device", "virtio-blk-pci,disable-legacy=on,drive="+id)
	}
	return args
}

// boot runs the image and returns the program's exit status.
func boot(ctx context.Context, o runOptions, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if _, err := os.Stat(o.Image); err != nil {
		return 0, err
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	if err := checkMemory(o); err != nil {
		return 0, err
	}
	qemu := o.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	cmd := exec.CommandContext(ctx, qemu, qemuArgs(o)...)
	cmd.Stdin = stdin
	cmd.Stderr = stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	sym := newSymbolizer(o.Image)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("run: %w", err)
	}
	var announced int
	copyErr := make(chan error, 1)
	go func() { copyErr <- annotate(stdout, pipe, sym, &announced) }()
	<-copyErr
	err = cmd.Wait()
	if ctx.Err() != nil {
		return 0, fmt.Errorf("run: %s: %w", o.Image, ctx.Err())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, fmt.Errorf("run: %w", err)
	}
	status := cmd.ProcessState.ExitCode()
	// isa-debug-exit makes QEMU exit with code*2+1.
	if status&1 == 0 {
		return 0, fmt.Errorf("run: machine stopped without an exit status (QEMU status %d; a triple fault resets and -no-reboot stops it)", status)
	}
	code := status >> 1
	if code == 127 && announced > 127 {
		code = announced
	}
	if code == exitKernelPanic {
		return code, errors.New("run: kernel panic")
	}
	return code, nil
}

var codeAddr = regexp.MustCompile(`\b(?:pc|rip) (0x[0-9a-f]+)`)

var exitLine = regexp.MustCompile(`^anyk: exit status (\d+)\s*$`)

// annotate copies the console to w, appending function and line to the
// code addresses in kernel register dumps. It stores in status an exit
// status above 127 that the kernel announced (QEMU's own status cannot
// carry it).
func annotate(w io.Writer, r io.Reader, sym *symbolizer, status *int) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if m := exitLine.FindSubmatch(line); m != nil {
			fmt.Sscanf(string(m[1]), "%d", status)
		}
		if len(line) > 0 {
			if sym != nil && bytes.HasPrefix(line, []byte("anyk:")) {
				line = sym.annotate(line)
			}
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

type symbolizer struct{ tab *gosym.Table }

func newSymbolizer(path string) *symbolizer {
	f, err := elf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		return nil
	}
	data, err := pcln.Data()
	if err != nil {
		return nil
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil
	}
	return &symbolizer{tab}
}

func (s *symbolizer) annotate(line []byte) []byte {
	ms := codeAddr.FindAllSubmatch(line, -1)
	if len(ms) == 0 {
		return line
	}
	var notes []string
	for _, m := range ms {
		var pc uint64
		if _, err := fmt.Sscanf(string(m[1]), "0x%x", &pc); err != nil {
			continue
		}
		file, ln, fn := s.tab.PCToLine(pc)
		if fn == nil {
			continue
		}
		notes = append(notes, fmt.Sprintf("%s (%s:%d)", fn.Name, file, ln))
	}
	if len(notes) == 0 {
		return line
	}
	trimmed := bytes.TrimRight(line, "\r\n")
	return []byte(fmt.Sprintf("%s  [%s]\n", trimmed, strings.Join(notes, "; ")))
}

// parseMemory reads a QEMU -m size (default unit MiB; suffixes K, M, G)
// as bytes.
func parseMemory(s string) (uint64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := uint64(1 << 20)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		s = s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	var n uint64
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n == 0 {
		return 0, fmt.Errorf("bad memory size %q", s)
	}
	return n * mult, nil
}

// checkMemory refuses a machine too small to hold the image: QEMU would
// load it anyway and the program would find its data missing.
func checkMemory(o runOptions) error {
	mem := o.Memory
	if mem == "" {
		mem = "256M"
	}
	size, err := parseMemory(mem)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	raw, err := os.ReadFile(o.Image)
	if err != nil {
		return err
	}
	info, err := inspect(raw)
	if err != nil {
		return fmt.Errorf("run: %s: %w", o.Image, err)
	}
	// The image, the loader's information after it, and room to run.
	need := info.bssEnd + 1<<20
	if size < need {
		return fmt.Errorf("run: %s needs at least %d MiB of memory (-m), not %d MiB", o.Image, (need+1<<20-1)>>20, size>>20)
	}
	return nil
}
