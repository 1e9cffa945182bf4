// Nettcp runs two TCP/IP stacks (netstack, gVisor's tcpip) inside one
// unikernel, each on its own virtio-net NIC, the NICs joined by a QEMU hub,
// and moves data over TCP from one to the other, checking its SHA-256:
//
//	go run ./cmd/anyk build -o nettcp.img ./examples/nettcp
//	go run ./cmd/anyk run -hubnics 2 nettcp.img -- 4194304
//
// Hosted (or without two NICs) it reports what is missing and exits 1.
package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"time"

	_ "github.com/anykernel/anykernel/hal/pc"
	"github.com/anykernel/anykernel/hal/pc/dev"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/netstack"
)

func main() {
	size := 4 << 20
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n <= 0 {
			fmt.Fprintln(os.Stderr, "nettcp: bad size", os.Args[1])
			os.Exit(2)
		}
		size = n
	}
	if err := run(os.Stdout, size); err != nil {
		fmt.Fprintln(os.Stderr, "nettcp:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, size int) error {
	devs, err := dev.FindVirtioPCI()
	if err != nil {
		return err
	}
	var nics []*virtio.Net
	for _, d := range devs {
		if d.ID != virtio.DeviceNet {
			continue
		}
		n, err := virtio.NewNet(d.Transport, virtio.NetOptions{})
		if err != nil {
			return err
		}
		nics = append(nics, n)
	}
	if len(nics) < 2 {
		return fmt.Errorf("found %d virtio-net NICs, need 2 (anyk run -hubnics 2)", len(nics))
	}
	var stacks [2]*netstack.Stack
	for i := range stacks {
		st, err := netstack.New(netstack.Options{})
		if err != nil {
			return err
		}
		defer st.Close()
		addr := netip.MustParsePrefix(fmt.Sprintf("10.0.0.%d/24", i+1))
		if _, err := st.AddNIC(nics[i], netstack.NICConfig{Addresses: []netip.Prefix{addr}}); err != nil {
			return err
		}
		stacks[i] = st
	}
	ln, err := stacks[0].Listen("tcp", "10.0.0.1:7000")
	if err != nil {
		return err
	}
	defer ln.Close()
	sent := make(chan [32]byte, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for left := size; left > 0; {
			n := min(left, len(buf))
			for i := range buf[:n] {
				buf[i] = byte(left - i)
			}
			if _, err := c.Write(buf[:n]); err != nil {
				errc <- err
				return
			}
			h.Write(buf[:n])
			left -= n
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		sent <- sum
	}()
	start := time.Now()
	c, err := stacks[1].Dial("tcp", "10.0.0.1:7000")
	if err != nil {
		return err
	}
	defer c.Close()
	h := sha256.New()
	n, err := io.CopyN(h, c, int64(size))
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	el := time.Since(start)
	var want [32]byte
	select {
	case want = <-sent:
	case err := <-errc:
		return err
	case <-time.After(time.Minute):
		return errors.New("sender never finished")
	}
	var got [32]byte
	copy(got[:], h.Sum(nil))
	if got != want {
		return errors.New("sha256 mismatch")
	}
	fmt.Fprintf(w, "tcp: %d bytes over two virtio-net NICs, sha256 ok\n", size)
	fmt.Fprintf(os.Stderr, "nettcp: %.1f MB/s\n", float64(size)/el.Seconds()/1e6)
	return nil
}
