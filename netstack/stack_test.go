package netstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
)

var (
	addrA4 = netip.MustParsePrefix("10.0.0.1/24")
	addrB4 = netip.MustParsePrefix("10.0.0.2/24")
	addrA6 = netip.MustParsePrefix("fd00::1/64")
	addrB6 = netip.MustParsePrefix("fd00::2/64")
)

// checkGoroutines fails t if, after cleanup, more goroutines run than
// before the test started. It waits a while for stragglers to exit.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf)
		}
	})
}

// newStackPair connects two stacks over a NIC pair made by mk.
func newStackPair(t testing.TB, a, b hal.NIC, opts Options, cfg NICConfig) (*Stack, *Stack) {
	t.Helper()
	sa, err := New(opts)
	require.NoError(t, err)
	sb, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, sa.Close())
		assert.NoError(t, sb.Close())
	})
	ca, cb := cfg, cfg
	ca.Name, ca.Addresses = "eth0", []netip.Prefix{addrA4, addrA6}
	cb.Name, cb.Addresses = "eth0", []netip.Prefix{addrB4, addrB6}
	_, err = sa.AddNIC(a, ca)
	require.NoError(t, err)
	_, err = sb.AddNIC(b, cb)
	require.NoError(t, err)
	return sa, sb
}

// testPair connects two stacks over an in-memory NIC pair with offload.
func testPair(t *testing.T) (*Stack, *Stack) {
	a, b := mem.NewNICPair(mem.NICOptions{})
	return newStackPair(t, a, b, Options{}, NICConfig{})
}

func TestTCPEcho(t *testing.T) {
	modes := []struct {
		name string
		cfg  NICConfig
		mtu  int
	}{
		{"offload", NICConfig{}, 1500},
		{"plain", NICConfig{DisableOffload: true}, 1500},
		{"plain jumbo", NICConfig{DisableOffload: true}, 9000},
		{"offload minimum IPv6 mtu", NICConfig{}, 1280},
		{"offload scatter receive", NICConfig{}, 1500},
		{"offload synchronous transmit", NICConfig{SyncTx: true}, 1500},
		{"plain synchronous transmit", NICConfig{DisableOffload: true, SyncTx: true}, 1500},
		{"offload one-packet transmit queue", NICConfig{TxQueue: 1}, 1500},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			checkGoroutines(t)
			a, b := mem.NewNICPair(mem.NICOptions{MTU: m.mtu})
			var na, nb hal.NIC = a, b
			var va, vb *scatterNIC
			if m.name == "offload scatter receive" {
				va, vb = &scatterNIC{OffloadNIC: a}, &scatterNIC{OffloadNIC: b}
				na, nb = va, vb
			}
			sa, sb := newStackPair(t, na, nb, Options{}, m.cfg)
			testTCPEcho(t, sa, sb)
			if va != nil {
				assert.NotZero(t, va.vecReads.Load(), "scatter receive path not used")
				assert.NotZero(t, vb.vecReads.Load(), "scatter receive path not used")
				assert.NotZero(t, va.vecWrites.Load(), "gather send path not used")
				assert.NotZero(t, vb.vecWrites.Load(), "gather send path not used")
			}
			st, err := sa.NICStats(LoopbackNIC + 1)
			require.NoError(t, err)
			if m.cfg.DisableOffload {
				assert.Zero(t, st.TxSuperFrames)
				assert.Equal(t, hal.Offload(0), st.Offload)
			} else {
				assert.NotZero(t, st.TxSuperFrames, "offload on, yet no super-frames sent")
			}
			assert.Zero(t, st.RxDropped)
		})
	}
}

func testTCPEcho(t *testing.T, sa, sb *Stack) {
	tests := []struct {
		name, network, listen, dial string
	}{
		{"ipv4", "tcp4", "10.0.0.2:0", "10.0.0.2"},
		{"ipv6", "tcp6", "[fd00::2]:0", "fd00::2"},
		{"dual-stack listener, ipv4 client", "tcp", ":0", "10.0.0.2"},
		{"dual-stack listener, ipv6 client", "tcp", ":0", "fd00::2"},
		{"loopback", "tcp", "127.0.0.1:0", "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server, client := sb, sa
			if tc.name == "loopback" {
				client = sb
			}
			ln, err := server.Listen(tc.network, tc.listen)
			require.NoError(t, err)
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
			c, err := client.Dial(tc.network, net.JoinHostPort(tc.dial, itoa(port)))
			require.NoError(t, err)
			defer c.Close()
			msg := make([]byte, 300_000)
			_, _ = rand.Read(msg)
			go func() {
				_, _ = c.Write(msg)
				_ = c.(*TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			require.True(t, bytes.Equal(msg, got), "echoed bytes differ")
			assert.Equal(t, tc.dial, c.RemoteAddr().(*net.TCPAddr).IP.String())
		})
	}
}

func itoa(n int) string { return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(n)).String()[8:] }

func TestPing(t *testing.T) {
	checkGoroutines(t)
	sa, _ := testPair(t)
	for _, dst := range []string{"10.0.0.2", "fd00::2", "127.0.0.1"} {
		t.Run(dst, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := sa.Ping(ctx, netip.MustParseAddr(dst), 7, []byte("hello"))
			require.NoError(t, err)
		})
	}
}

func TestErrors(t *testing.T) {
	checkGoroutines(t)
	sa, sb := testPair(t)
	ln, err := sb.Listen("tcp", ":8080")
	require.NoError(t, err)
	defer ln.Close()

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"refused", func() error {
			_, err := sa.Dial("tcp", "10.0.0.2:9")
			return err
		}, syscall.ECONNREFUSED},
		{"address in use", func() error {
			l, err := sb.Listen("tcp", ":8080")
			if err == nil {
				l.Close()
			}
			return err
		}, syscall.EADDRINUSE},
		{"dial timeout", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := sa.DialContext(ctx, "tcp", "10.0.0.99:80")
			return err
		}, os.ErrDeadlineExceeded},
		{"no route", func() error {
			_, err := sa.Dial("tcp", "192.0.2.1:80")
			return err
		}, syscall.ENETUNREACH},
		{"unknown network", func() error {
			_, err := sa.Dial("sctp", "10.0.0.2:80")
			return err
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			require.Error(t, err)
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
}

func TestReset(t *testing.T) {
	checkGoroutines(t)
	sa, sb := testPair(t)
	ln, err := sb.Listen("tcp", ":80")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := sa.Dial("tcp", "10.0.0.2:80")
	require.NoError(t, err)
	defer c.Close()
	s := <-accepted
	// Unread data at close makes the peer send RST (RFC 9293 §3.6.1).
	_, err = c.Write([]byte("unread"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		n, terr := s.(*TCPConn).ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
		return terr == nil && n > 0
	}, 10*time.Second, time.Millisecond, "data never reached the server")
	require.NoError(t, s.Close())
	_, err = c.Read(make([]byte, 10))
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNRESET)
}

func TestCloseUnblocks(t *testing.T) {
	checkGoroutines(t)
	sa, sb := testPair(t)
	ln, err := sb.Listen("tcp", ":80")
	require.NoError(t, err)
	acceptErr := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		acceptErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, ln.Close())
	err = <-acceptErr
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = sa.Dial("tcp", "10.0.0.2:80")
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
}

func TestStackCloseReleasesNIC(t *testing.T) {
	checkGoroutines(t)
	a, b := mem.NewNICPair(mem.NICOptions{})
	st, err := New(Options{})
	require.NoError(t, err)
	_, err = st.AddNIC(a, NICConfig{Addresses: []netip.Prefix{addrA4}})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NoError(t, st.Close())
	assert.ErrorIs(t, a.WriteFrame(make([]byte, 60)), hal.ErrClosed)
	_, err = st.AddNIC(b, NICConfig{})
	assert.ErrorIs(t, err, hal.ErrClosed)
	b.Close()
}

func TestUnreachableSurfacesAsError(t *testing.T) {
	sa, _ := testPair(t)
	_, err := sa.ListenPacket("udp", "10.0.0.99:53")
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRNOTAVAIL), "got %v", err)
}

// countGoroutines counts goroutines, leaving out the signal watcher that
// the fuzzing engine starts.
func countGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if g != "" && !strings.Contains(g, "os/signal.loop") {
			count++
		}
	}
	return count
}

// TestStackCloseAbortsConnections closes a stack under a blocked Read, a
// blocked Accept and a blocked ReadFrom: all return, and nothing leaks.
func TestStackCloseAbortsConnections(t *testing.T) {
	checkGoroutines(t)
	a, b := mem.NewNICPair(mem.NICOptions{})
	sa, err := New(Options{})
	require.NoError(t, err)
	sb, err := New(Options{})
	require.NoError(t, err)
	defer sb.Close()
	_, err = sa.AddNIC(a, NICConfig{Addresses: []netip.Prefix{addrA4}})
	require.NoError(t, err)
	_, err = sb.AddNIC(b, NICConfig{Addresses: []netip.Prefix{addrB4}})
	require.NoError(t, err)

	ln, err := sb.Listen("tcp", ":80")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := sa.Dial("tcp", "10.0.0.2:80")
	require.NoError(t, err)
	defer c.Close()
	ln2, err := sa.Listen("tcp", ":81")
	require.NoError(t, err)
	pc, err := sa.ListenPacket("udp", ":53")
	require.NoError(t, err)

	errs := make(chan error, 3)
	go func() { _, err := c.Read(make([]byte, 10)); errs <- err }()
	go func() { _, err := ln2.Accept(); errs <- err }()
	go func() { _, _, err := pc.ReadFrom(make([]byte, 10)); errs <- err }()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, sa.Close())
	for range 3 {
		select {
		case err := <-errs:
			require.Error(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a blocked call did not return when the stack closed")
		}
	}
	ln2.Close()
	pc.Close()
}

// TestMultipleNICsAndGateway gives one stack two NICs on different links
// and reaches a host behind a gateway route on the second.
func TestMultipleNICsAndGateway(t *testing.T) {
	checkGoroutines(t)
	ab1, ab2 := mem.NewNICPair(mem.NICOptions{})
	ac1, ac2 := mem.NewNICPair(mem.NICOptions{})
	sa, err := New(Options{})
	require.NoError(t, err)
	defer sa.Close()
	sb, err := New(Options{})
	require.NoError(t, err)
	defer sb.Close()
	sc, err := New(Options{})
	require.NoError(t, err)
	defer sc.Close()

	nicB, err := sa.AddNIC(ab1, NICConfig{Name: "toB", Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	require.NoError(t, err)
	nicC, err := sa.AddNIC(ac1, NICConfig{Name: "toC", Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}})
	require.NoError(t, err)
	_, err = sb.AddNIC(ab2, NICConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	require.NoError(t, err)
	cNIC, err := sc.AddNIC(ac2, NICConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/24")}})
	require.NoError(t, err)
	// C also owns 10.2.0.5, reachable from A only through C as gateway.
	require.NoError(t, sc.AddAddress(cNIC, netip.MustParsePrefix("10.2.0.5/32")))
	require.NoError(t, sa.AddRoute(Route{Destination: netip.MustParsePrefix("10.2.0.0/16"), Gateway: netip.MustParseAddr("10.1.0.2"), NIC: nicC}))
	assert.Contains(t, sa.Routes(), Route{Destination: netip.MustParsePrefix("10.2.0.0/16"), Gateway: netip.MustParseAddr("10.1.0.2"), NIC: nicC})
	assert.Contains(t, sa.Routes(), Route{Destination: netip.MustParsePrefix("10.0.0.0/24"), NIC: nicB})

	for _, tc := range []struct {
		name string
		st   *Stack
		dial string
	}{
		{"first NIC", sb, "10.0.0.2:7"},
		{"second NIC", sc, "10.1.0.2:7"},
		{"via gateway", sc, "10.2.0.5:7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := tc.st.Listen("tcp4", tc.dial)
			require.NoError(t, err)
			defer ln.Close()
			go func() {
				if c, err := ln.Accept(); err == nil {
					_, _ = c.Write([]byte(tc.name))
					c.Close()
				}
			}()
			c, err := sa.Dial("tcp4", tc.dial)
			require.NoError(t, err)
			got, err := io.ReadAll(c)
			c.Close()
			require.NoError(t, err)
			assert.Equal(t, tc.name, string(got))
		})
	}
	assert.Equal(t, 1, sa.RemoveRoute(Route{Destination: netip.MustParsePrefix("10.2.0.0/16"), Gateway: netip.MustParseAddr("10.1.0.2"), NIC: nicC}))
	_, err = sa.Dial("tcp4", "10.2.0.5:7")
	assert.ErrorIs(t, err, syscall.ENETUNREACH)
	assert.Error(t, sa.AddRoute(Route{Destination: netip.MustParsePrefix("10.3.0.0/16"), NIC: 99}))
}

// TestTxQueue checks the transmit queue's limits: a device that stops taking
// frames fills the queue, then the sender waits (nothing is dropped), and
// Close releases both the sender and the transmit goroutine.
func TestTxQueue(t *testing.T) {
	checkGoroutines(t)
	st, err := New(Options{DisableSLAAC: true})
	require.NoError(t, err)
	x, y := mem.NewNICPair(mem.NICOptions{})
	_, err = st.AddNIC(x, NICConfig{TxQueue: -1})
	require.Error(t, err, "negative TxQueue accepted")
	x.Close()
	y.Close()

	// Nobody reads b: once its receive queue is full, writes to a block.
	a, b := mem.NewNICPair(mem.NICOptions{QueueLen: 8})
	defer b.Close()
	id, err := st.AddNIC(a, NICConfig{Name: "eth0", TxQueue: 4})
	require.NoError(t, err)
	c, err := st.ListenPacket("udp6", "[::]:0")
	require.NoError(t, err)
	dst := &net.UDPAddr{IP: net.ParseIP("ff02::1"), Port: 9, Zone: "eth0"}
	const total = 200
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() {
		for range total {
			if _, err := c.WriteTo([]byte("anykernel"), dst); err != nil {
				done <- err
				return
			}
			sent.Add(1)
		}
		done <- nil
	}()
	// The sender stalls once the device and the queue are full.
	deadline := time.Now().Add(10 * time.Second)
	last := int64(-1)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		n := sent.Load()
		if n == last {
			break
		}
		last = n
	}
	select {
	case err := <-done:
		t.Fatalf("all %d datagrams accepted by a stalled device and a 4-packet queue (err %v): something dropped them", total, err)
	default:
	}
	stats, err := st.NICStats(id)
	require.NoError(t, err)
	assert.LessOrEqual(t, stats.TxFrames, uint64(8+1), "more frames written than the device holds")
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung behind a stalled device")
	}
	select {
	case err := <-done:
		require.Error(t, err, "the blocked sender finished without an error")
	case <-time.After(10 * time.Second):
		t.Fatal("sender still blocked after Close")
	}
	c.Close()
}
