// Command anyk builds Go programs into bootable unikernel images and runs
// them in QEMU.
//
//	anyk build [-o IMAGE] [-tags TAGS] [-boot both|multiboot|pvh] PACKAGE
//	anyk run [-m SIZE] [-machine pc|q35|microvm] [-kvm] [-trace] [-summary] [-novdso] [-env NAME=VALUE]... [-device SPEC]... [-drive FILE]... [-hubnics N] [-timeout D] IMAGE [-- ARG...]
//	anyk measure [-boots N] IMAGE [-- ARG...]
//
// build compiles PACKAGE (which must import github.com/anykernel/anykernel/hal/pc)
// as a static GOOS=linux GOARCH=amd64 program with the platform's boot code
// as its entry, and writes a multiboot header into it: the result is both a
// valid ELF and an image QEMU boots with -kernel. It also carries a PVH
// entry note (Xen's direct boot ABI) for loaders that boot PVH: QEMU's
// microvm, Firecracker, cloud-hypervisor.
//
// run boots IMAGE under qemu-system-x86_64 (TCG unless -kvm) with the
// serial console on standard output, passes the arguments after "--" and
// the -env variables on the kernel command line, and exits with the
// program's exit status. Kernel register dumps are annotated with the
// function and line of each code address.
//
// measure reports an image's size, the guest time from kernel entry to
// main.main and to exit (median over several boots under TCG), and the
// smallest -m in which the program runs to exit status 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "anyk:", err)
		os.Exit(1)
	}
}

// exitError carries the booted program's exit status.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("program exited with status %d", e.code) }

const usage = `usage:
  anyk build [-o IMAGE] [-tags TAGS] [-boot both|multiboot|pvh] PACKAGE
  anyk run [-m SIZE] [-machine pc|q35|microvm] [-kvm] [-trace] [-summary] [-novdso] [-env NAME=VALUE]... [-device SPEC]... [-drive FILE]... [-hubnics N] [-timeout D] IMAGE [-- ARG...]
  anyk measure [-boots N] IMAGE [-- ARG...]`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "build":
		return cmdBuild(ctx, args[1:], stderr)
	case "run":
		return cmdRun(ctx, args[1:], stdin, stdout, stderr)
	case "measure":
		return cmdMeasure(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
