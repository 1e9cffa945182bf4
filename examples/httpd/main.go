// Httpd serves a directory over HTTP on netstack attached to a Linux TAP
// device: the host reaches it like a machine on a small private link.
//
// Run as root (make run does this):
//
//	go run ./examples/httpd
//
// creates the TAP device anyk0, gives the host side 192.168.77.1/24 (only on
// that device), answers on 192.168.77.2 and prints the curl command to try.
// The site is served from a blockfs (ext4) file system: by default an image
// made at start, in memory, by blockfs.Mkfs from the built-in page (or from
// the directory given with -dir); with -image, an existing ext4 image file
// mounted read-only. With -setup=false it uses an existing TAP device
// configured by someone else.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/anykernel/anykernel/blockfs"
	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/host"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/netstack"
)

//go:embed content
var content embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "httpd:", err)
		os.Exit(1)
	}
}

// config is what the command line says.
type config struct {
	tap     string
	addr    netip.Prefix
	host    netip.Prefix
	port    int
	dir     string
	image   string
	setup   bool
	offload bool
}

func parseArgs(args []string, stderr io.Writer) (config, error) {
	fl := flag.NewFlagSet("httpd", flag.ContinueOnError)
	fl.SetOutput(stderr)
	tap := fl.String("tap", "anyk0", "TAP device to attach to (created if missing)")
	addr := fl.String("addr", "192.168.77.2/24", "netstack's address on the link")
	hostAddr := fl.String("host", "192.168.77.1/24", "host side's address, assigned to the TAP device with -setup")
	port := fl.Int("port", 80, "HTTP port")
	dir := fl.String("dir", "", "directory copied into the in-memory blockfs image (default: the built-in page)")
	image := fl.String("image", "", "serve this ext4 image file (mounted read-only) instead of building one")
	setup := fl.Bool("setup", true, "configure the host side of the TAP device with ip(8); needs root")
	offload := fl.Bool("offload", true, "use virtio-net header offload (TSO, checksums) on the TAP device")
	if err := fl.Parse(args); err != nil {
		return config{}, err
	}
	if fl.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	c := config{tap: *tap, port: *port, dir: *dir, image: *image, setup: *setup, offload: *offload}
	if c.dir != "" && c.image != "" {
		return c, errors.New("-dir and -image exclude each other")
	}
	var err error
	if c.addr, err = netip.ParsePrefix(*addr); err != nil {
		return c, fmt.Errorf("-addr: %w", err)
	}
	if c.host, err = netip.ParsePrefix(*hostAddr); err != nil {
		return c, fmt.Errorf("-host: %w", err)
	}
	if c.port <= 0 || c.port > 65535 {
		return c, fmt.Errorf("-port %d out of range", c.port)
	}
	return c, nil
}

// run serves until ctx is done. stdin is unused; the thin main passes it
// for symmetry with the other examples.
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	_ = stdin
	cfg, err := parseArgs(args, stdout)
	if err != nil {
		return err
	}
	site, err := openSite(cfg)
	if err != nil {
		return err
	}
	defer site.Close()
	fmt.Fprintf(stdout, "httpd: site on blockfs: %s\n", site.desc)

	tap, err := host.OpenTAP(cfg.tap, host.TAPOptions{VNetHdr: cfg.offload})
	if err != nil {
		return fmt.Errorf("open TAP %s (root needed): %w", cfg.tap, err)
	}
	if cfg.setup {
		if err := setupHost(ctx, cfg); err != nil {
			tap.Close()
			return err
		}
	}
	st, err := netstack.New(netstack.Options{DisableSLAAC: true})
	if err != nil {
		tap.Close()
		return err
	}
	defer st.Close()
	if _, err := st.AddNIC(tap, netstack.NICConfig{Name: cfg.tap, Addresses: []netip.Prefix{cfg.addr}}); err != nil {
		return err
	}
	ln, err := st.Listen("tcp", fmt.Sprintf(":%d", cfg.port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.FileServerFS(site.fs), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	url := "http://" + cfg.addr.Addr().String()
	if cfg.port != 80 {
		url += fmt.Sprintf(":%d", cfg.port)
	}
	fmt.Fprintf(stdout, "httpd: serving on netstack at %s via TAP %s (host side %s)\n", url, cfg.tap, cfg.host)
	fmt.Fprintf(stdout, "try:\n  curl %s/\n", url)

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// site is the mounted file system the server reads from.
type site struct {
	fs   *blockfs.FS
	dev  hal.BlockDevice
	desc string
}

func (s *site) Close() error {
	return errors.Join(s.fs.Close(), s.dev.Close())
}

// openSite mounts the image given with -image, or builds one in memory with
// blockfs.Mkfs from -dir or the built-in page.
func openSite(cfg config) (*site, error) {
	if cfg.image != "" {
		dev, err := host.OpenFile(cfg.image, host.FileOptions{ReadOnly: true})
		if err != nil {
			return nil, err
		}
		fsys, err := blockfs.Mount(dev, blockfs.Options{ReadOnly: true})
		if err != nil {
			dev.Close()
			return nil, fmt.Errorf("mount %s: %w", cfg.image, err)
		}
		return &site{fs: fsys, dev: dev, desc: "image " + cfg.image + " (read-only)"}, nil
	}
	var root fs.FS
	from := "the built-in page"
	if cfg.dir != "" {
		root, from = os.DirFS(cfg.dir), cfg.dir
	} else {
		var err error
		if root, err = fs.Sub(content, "content"); err != nil {
			return nil, err
		}
	}
	total, err := treeSize(root)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", from, err)
	}
	// Room for the data twice over plus metadata and the journal; the RAM
	// disk only allocates what is written.
	size := max(32<<20, (2*total+16<<20+1<<20-1)&^(1<<20-1))
	dev, err := mem.NewBlock(size, mem.BlockOptions{})
	if err != nil {
		return nil, err
	}
	if err := blockfs.Mkfs(dev, blockfs.MkfsOptions{Label: "httpd", Root: root}); err != nil {
		return nil, fmt.Errorf("mkfs from %s: %w", from, err)
	}
	fsys, err := blockfs.Mount(dev, blockfs.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return &site{fs: fsys, dev: dev, desc: fmt.Sprintf("%d MiB in-memory image made by Mkfs from %s", size>>20, from)}, nil
}

// treeSize adds up the sizes of the regular files in root.
func treeSize(root fs.FS) (int64, error) {
	var total int64
	err := fs.WalkDir(root, ".", func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// setupHost gives the host side of the TAP device its address and brings
// the link up. Nothing else on the host is touched.
func setupHost(ctx context.Context, cfg config) error {
	for _, args := range [][]string{
		{"addr", "replace", cfg.host.String(), "dev", cfg.tap},
		{"link", "set", cfg.tap, "up"},
	} {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
