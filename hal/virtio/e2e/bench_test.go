package e2e

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
	"github.com/anykernel/anykernel/netstack"
)

// BenchmarkNetstackTCP sends one TCP stream, in 1 MiB writes, between two
// stacks. In "virtio" each stack sits on a virtio-net driver over the
// device model (virtio-mmio), the two devices joined by a mem NIC pair, so
// every byte crosses both drivers, both device models and both stacks; the
// reference "ref-mem" puts the stacks straight on the mem NIC pair.
func BenchmarkNetstackTCP(b *testing.B) {
	b.Run("virtio", func(b *testing.B) { benchNetstackTCP(b, true) })
	b.Run("ref-mem", func(b *testing.B) { benchNetstackTCP(b, false) })
}

func benchNetstackTCP(b *testing.B, overVirtio bool) {
	x, y := mem.NewNICPair(mem.NICOptions{})
	open := transports[0].open
	stack := func(end hal.NIC, addr string) *netstack.Stack {
		nic := end
		if overVirtio {
			be := model.NewNet(end, model.NetOptions{})
			b.Cleanup(func() { _ = be.Close() })
			n, err := virtio.NewNet(open(b, be), virtio.NetOptions{})
			require.NoError(b, err)
			b.Cleanup(func() { _ = n.Close() })
			nic = n
		}
		s, err := netstack.New(netstack.Options{})
		require.NoError(b, err)
		b.Cleanup(func() { _ = s.Close() })
		_, err = s.AddNIC(nic, netstack.NICConfig{Addresses: []netip.Prefix{netip.MustParsePrefix(addr)}})
		require.NoError(b, err)
		return s
	}
	sa := stack(x, "10.0.0.1/24")
	sb := stack(y, "10.0.0.2/24")

	ln, err := sb.Listen("tcp4", "10.0.0.2:0")
	require.NoError(b, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c)
		done <- err
	}()
	c, err := sa.Dial("tcp4", fmt.Sprintf("10.0.0.2:%d", ln.Addr().(*net.TCPAddr).Port))
	require.NoError(b, err)

	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, c.Close())
	require.NoError(b, <-done)
}
