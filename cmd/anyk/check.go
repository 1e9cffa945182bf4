package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
)

// kernelPkgs are the packages whose code runs beneath the Go runtime, in
// the trap handler, with the kernel g: they must not allocate, take write
// barriers or call into the runtime beyond the few functions below.
var kernelPkgs = []string{
	"github.com/anykernel/anykernel/hal/pc.",
	"github.com/anykernel/anykernel/compat/linux.",
	"github.com/anykernel/anykernel/sched/threads.",
}

// allowedRuntime lists the runtime functions kernel code may call: the
// stack-check prologue (never taken: the kernel g's bounds cover the
// kernel stacks), memory copy and clear without heap pointers, and the
// panics of bounds and shift checks (bugs, which fault on the kernel g's
// nil m and end in the kernel's panic dump).
var allowedRuntime = map[string]bool{
	"morestack_noctxt":     true,
	"memmove":              true,
	"memclrNoHeapPointers": true,
	"duffzero":             true,
	"duffcopy":             true,
}

// violation is one forbidden instruction in kernel code.
type violation struct {
	fn, insn string
}

func (v violation) String() string { return v.fn + ": " + v.insn }

var (
	textLine = regexp.MustCompile(`^TEXT (\S+)\(SB\)`)
	callSym  = regexp.MustCompile(`\bCALL ([^\s(]+)\(SB\)`)
	callAbs  = regexp.MustCompile(`\bCALL 0x[0-9a-f]+\s*$`)
)

func isKernel(sym string) bool {
	for _, p := range kernelPkgs {
		if strings.HasPrefix(sym, p) {
			return true
		}
	}
	return false
}

// checkKernelCode scans go tool objdump output and returns the forbidden
// calls and write-barrier references made by kernel functions.
func checkKernelCode(r io.Reader) ([]violation, int, error) {
	var out []violation
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	fn := ""
	funcs := 0
	for sc.Scan() {
		line := sc.Text()
		if m := textLine.FindStringSubmatch(line); m != nil {
			fn = ""
			if isKernel(m[1]) {
				fn = m[1]
				funcs++
			}
			continue
		}
		if fn == "" {
			continue
		}
		insn := strings.TrimSpace(line)
		if f := strings.Fields(insn); len(f) >= 3 {
			insn = strings.Join(f[3:], " ")
		}
		if strings.Contains(line, "writeBarrier") {
			out = append(out, violation{fn, insn})
			continue
		}
		if m := callSym.FindStringSubmatch(line); m != nil {
			target := strings.TrimSuffix(m[1], ".abi0")
			switch {
			case isKernel(target):
			case strings.HasPrefix(target, "runtime."):
				name := strings.TrimPrefix(target, "runtime.")
				if !allowedRuntime[name] && !strings.HasPrefix(name, "panic") {
					out = append(out, violation{fn, insn})
				}
			default:
				out = append(out, violation{fn, insn})
			}
			continue
		}
		if callAbs.MatchString(line) && !strings.HasSuffix(fn, ".multibootEntry.abi0") {
			out = append(out, violation{fn, insn})
		}
	}
	return out, funcs, sc.Err()
}

// checkImage disassembles the image's kernel functions and reports any
// violation as an error.
func checkImage(ctx context.Context, path string) error {
	cmd := exec.CommandContext(ctx, "go", "tool", "objdump", "-s", `anykernel/(hal/pc|compat/linux|sched/threads)\.`, path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	vs, funcs, scanErr := checkKernelCode(out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("check: go tool objdump: %w: %s", err, stderr.String())
	}
	if scanErr != nil {
		return fmt.Errorf("check: %w", scanErr)
	}
	if funcs == 0 {
		return fmt.Errorf("check: no kernel functions found in %s", path)
	}
	if len(vs) > 0 {
		var b strings.Builder
		for _, v := range vs {
			fmt.Fprintf(&b, "\n\t%s", v)
		}
		return fmt.Errorf("check: kernel code calls into the runtime or takes write barriers:%s", b.String())
	}
	return nil
}
