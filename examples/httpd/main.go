// Httpd serves a directory over HTTP on netstack attached to a Linux TAP
// device: the host reaches it like a machine on a small private link.
//
// Run as root (make run does this):
//
//	go run ./examples/httpd
//
// creates the TAP device anyk0, gives the host side 192.168.77.1/24 (only on
// that device), answers on 192.168.77.2 and prints the curl command to try.
// With -dir it serves a directory instead of its built-in page; with
// -setup=false it uses an existing TAP device configured by someone else.
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

	"github.com/anykernel/anykernel/hal/host"
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
	dir := fl.String("dir", "", "directory to serve (default: the built-in page)")
	setup := fl.Bool("setup", true, "configure the host side of the TAP device with ip(8); needs root")
	offload := fl.Bool("offload", true, "use virtio-net header offload (TSO, checksums) on the TAP device")
	if err := fl.Parse(args); err != nil {
		return config{}, err
	}
	if fl.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	c := config{tap: *tap, port: *port, dir: *dir, setup: *setup, offload: *offload}
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
	var files fs.FS
	if cfg.dir != "" {
		files = os.DirFS(cfg.dir)
	} else if files, err = fs.Sub(content, "content"); err != nil {
		return err
	}

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
	srv := &http.Server{Handler: http.FileServerFS(files), ReadHeaderTimeout: 10 * time.Second}
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
