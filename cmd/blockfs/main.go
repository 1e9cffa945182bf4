// Command blockfs makes, checks, inspects and mounts ext4 images with the
// blockfs library.
//
//	blockfs mkfs [-b bs] [-N inodes] [-L label] [-J blocks] [-d dir] [-size bytes] IMAGE
//	blockfs check IMAGE
//	blockfs ls IMAGE [PATH]
//	blockfs cat IMAGE PATH
//	blockfs put IMAGE SRC|- DST
//	blockfs get IMAGE SRC DST|-
//	blockfs mount [-ro] [-debug] IMAGE DIR
//
// mount serves the image over FUSE in the foreground until SIGINT or
// SIGTERM, then unmounts and closes the image cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/anykernel/anykernel/blockfs"
	"github.com/anykernel/anykernel/blockfs/fusefs"
	"github.com/anykernel/anykernel/hal/host"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "blockfs:", err)
		os.Exit(1)
	}
}

const usage = `usage: blockfs COMMAND ...
  mkfs [-b bs] [-N inodes] [-L label] [-J blocks] [-d dir] [-size bytes] IMAGE
  check IMAGE
  ls IMAGE [PATH]
  cat IMAGE PATH
  put IMAGE SRC|- DST
  get IMAGE SRC DST|-
  mount [-ro] [-debug] IMAGE DIR`

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "mkfs":
		return cmdMkfs(args)
	case "check":
		return cmdCheck(args, stdout)
	case "ls":
		return cmdLs(args, stdout)
	case "cat":
		return cmdCat(args, stdout)
	case "put":
		return cmdPut(args, stdin)
	case "get":
		return cmdGet(args, stdout)
	case "mount":
		return cmdMount(ctx, args, stdout)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func newFlags(name string) *flag.FlagSet {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	return fl
}

// openImage mounts the image file.
func openImage(p string, ro bool) (*blockfs.FS, func() error, error) {
	dev, err := host.OpenFile(p, host.FileOptions{ReadOnly: ro})
	if err != nil {
		return nil, nil, err
	}
	fsys, err := blockfs.Mount(dev, blockfs.Options{ReadOnly: ro})
	if err != nil {
		dev.Close()
		return nil, nil, err
	}
	closer := func() error {
		err := fsys.Close()
		if cerr := dev.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return fsys, closer, nil
}

func cmdMkfs(args []string) error {
	fl := newFlags("mkfs")
	bs := fl.Int("b", 0, "block size")
	inodes := fl.Uint("N", 0, "inode count")
	label := fl.String("L", "", "volume label")
	journal := fl.Int("J", 0, "journal blocks (negative: none)")
	dir := fl.String("d", "", "copy this directory into the file system")
	size := fl.Int64("size", 0, "create the image with this size in bytes")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return errors.New("mkfs: want one IMAGE argument")
	}
	dev, err := host.OpenFile(fl.Arg(0), host.FileOptions{Create: *size})
	if err != nil {
		return err
	}
	opts := blockfs.MkfsOptions{BlockSize: *bs, InodeCount: uint32(*inodes), Label: *label, JournalBlocks: *journal}
	if *dir != "" {
		opts.Root = os.DirFS(*dir)
	}
	err = blockfs.Mkfs(dev, opts)
	if cerr := dev.Close(); err == nil {
		err = cerr
	}
	return err
}

func cmdCheck(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("check: want one IMAGE argument")
	}
	fsys, closer, err := openImage(args[0], true)
	if err != nil {
		return err
	}
	defer closer()
	problems, err := fsys.Check()
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("check: %d problems", len(problems))
	}
	fmt.Fprintln(stdout, "clean")
	return nil
}

func cmdLs(args []string, stdout io.Writer) error {
	if len(args) < 1 || len(args) > 2 {
		return errors.New("ls: want IMAGE [PATH]")
	}
	fsys, closer, err := openImage(args[0], true)
	if err != nil {
		return err
	}
	defer closer()
	p := "."
	if len(args) == 2 {
		p = cleanArg(args[1])
	}
	ents, err := fsys.ReadDir(p)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 1, ' ', tabwriter.AlignRight)
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			return err
		}
		name := e.Name()
		if fi.Mode()&fs.ModeSymlink != 0 {
			if t, err := fsys.Readlink(path.Join(p, name)); err == nil {
				name += " -> " + t
			}
		}
		fmt.Fprintf(tw, "%v\t %d\t %s\t %s\n", fi.Mode(), fi.Size(), fi.ModTime().UTC().Format("2006-01-02 15:04"), name)
	}
	return tw.Flush()
}

// cleanArg turns a user path ("/a/b", "a/b/") into an io/fs name.
func cleanArg(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

func cmdCat(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return errors.New("cat: want IMAGE PATH")
	}
	fsys, closer, err := openImage(args[0], true)
	if err != nil {
		return err
	}
	defer closer()
	f, err := fsys.Open(cleanArg(args[1]))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(stdout, f)
	return err
}

func cmdGet(args []string, stdout io.Writer) error {
	if len(args) != 3 {
		return errors.New("get: want IMAGE SRC DST|-")
	}
	fsys, closer, err := openImage(args[0], true)
	if err != nil {
		return err
	}
	defer closer()
	f, err := fsys.Open(cleanArg(args[1]))
	if err != nil {
		return err
	}
	defer f.Close()
	if args[2] == "-" {
		_, err = io.Copy(stdout, f)
		return err
	}
	out, err := os.Create(args[2])
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, f); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func cmdPut(args []string, stdin io.Reader) (err error) {
	if len(args) != 3 {
		return errors.New("put: want IMAGE SRC|- DST")
	}
	var src io.Reader = stdin
	mode := fs.FileMode(0o644)
	if args[1] != "-" {
		f, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			mode = fi.Mode().Perm()
		}
		src = f
	}
	fsys, closer, err := openImage(args[0], false)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closer(); err == nil {
			err = cerr
		}
	}()
	out, err := fsys.OpenFile(cleanArg(args[2]), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func cmdMount(ctx context.Context, args []string, stdout io.Writer) error {
	fl := newFlags("mount")
	ro := fl.Bool("ro", false, "mount read-only")
	debug := fl.Bool("debug", false, "log FUSE requests")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 2 {
		return errors.New("mount: want IMAGE DIR")
	}
	fsys, closer, err := openImage(fl.Arg(0), *ro)
	if err != nil {
		return err
	}
	srv, err := fusefs.Mount(fl.Arg(1), fsys, fusefs.Options{Debug: *debug})
	if err != nil {
		closer()
		return err
	}
	fmt.Fprintf(stdout, "mounted %s on %s\n", fl.Arg(0), fl.Arg(1))
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	select {
	case <-ctx.Done():
		if err := srv.Unmount(); err != nil {
			closer()
			return fmt.Errorf("unmount: %w", err)
		}
		<-done
	case <-done:
	}
	return closer()
}
