package dhcp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/internal/netns"
	"github.com/anykernel/anykernel/internal/testenv"
)

// listenDHCPClient opens the client's socket in the calling thread's
// namespace.
func listenDHCPClient(dev string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			for _, o := range []int{syscall.SO_REUSEADDR, syscall.SO_BROADCAST} {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, o, 1); serr != nil {
					return
				}
			}
			serr = syscall.BindToDevice(int(fd), dev)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:68")
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// lossyTransport can drop the client's unicast datagrams.
type lossyTransport struct {
	Transport
	dropUnicast atomic.Bool
	dropped     atomic.Int32
}

func (l *lossyTransport) Send(ctx context.Context, pkt []byte, dst netip.AddrPort) error {
	if l.dropUnicast.Load() && dst != broadcastDst {
		l.dropped.Add(1)
		return nil
	}
	return l.Transport.Send(ctx, pkt, dst)
}

// syncBuffer collects a process's output for inspection while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDnsmasq runs the client against Debian's dnsmasq across a veth pair
// between two network namespaces: INIT-REBOOT refused, acquire, renew at
// T1, rebind at T2 when the server is unreachable by unicast, release. The client's datagrams travel over a kernel UDP socket bound
// to 0.0.0.0:68 on its end of the pair (SO_BINDTODEVICE, SO_BROADCAST);
// that socket is only the carrier, the protocol is the Client's.
func TestDnsmasq(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "dnsmasq", "ip")
	srv, cli := netns.New(t), netns.New(t)

	const (
		srvDev, cliDev = "dsrv0", "dcli0"
		domain         = "aktest.internal"
	)
	mac := hal.MAC{0x02, 0xa7, 0x00, 0x00, 0x00, 0x42}
	run := func(ns *netns.NS, args ...string) {
		t.Helper()
		_, err := ns.Exec(args...)
		require.NoError(t, err)
	}
	run(srv, "ip", "link", "add", srvDev, "type", "veth", "peer", "name", cliDev, "netns", cli.Name())
	run(srv, "ip", "addr", "add", "10.77.0.1/24", "dev", srvDev)
	run(srv, "ip", "link", "set", srvDev, "up")
	run(cli, "ip", "link", "set", cliDev, "address", mac.String())
	run(cli, "ip", "link", "set", cliDev, "up")

	dir := t.TempDir()
	leaseFile := filepath.Join(dir, "leases")
	var logs syncBuffer
	cmd := exec.Command("ip", "netns", "exec", srv.Name(), "dnsmasq",
		"--no-daemon", "--conf-file=/dev/null", "--pid-file=", "--port=0", "--user=root",
		"--interface="+srvDev, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,2m",
		"--dhcp-option=option:router,10.77.0.1",
		"--dhcp-option=option:dns-server,10.77.0.53,10.77.0.54",
		"--dhcp-option=option:domain-name,"+domain,
		"--dhcp-leasefile="+leaseFile, "--dhcp-authoritative",
		"--log-dhcp", "--log-facility=-",
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("dnsmasq output:\n%s", logs.String())
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "DHCP, IP range") },
		hangGuard, 10*time.Millisecond, "dnsmasq did not start: %s", logs.String())

	var conn *net.UDPConn
	require.NoError(t, cli.Run(func() (err error) {
		conn, err = listenDHCPClient(cliDev)
		return err
	}))
	t.Cleanup(func() { conn.Close() })

	// A manual clock: the test decides when T1 comes, while real packets
	// flow. While acquiring, a ticker moves it at five times real speed, so
	// retransmissions happen (dnsmasq answers a DISCOVER only after a
	// ping check of about 3 s) and INIT-REBOOT would give up in ~12 s if
	// dnsmasq did not refuse it.
	clock := mem.NewClock(time.Now())
	tr := &lossyTransport{Transport: NewConnTransport(conn)}
	leases := make(chan Lease, 4)
	expired := make(chan Lease, 4)
	c := NewClient(Config{
		MAC:       mac,
		Hostname:  "akclient",
		Clock:     clock,
		Transport: tr,
		Broadcast: true, // the kernel drops unicast to an address it lacks
		// An address from elsewhere, as after a move to another network:
		// dnsmasq refuses it and the client starts over with a DISCOVER.
		RequestedIP: netip.MustParseAddr("192.168.200.7"),
		OnLease: func(l Lease) {
			// Configure the address so that the renewal's unicast works.
			if _, err := cli.Exec("ip", "addr", "replace", l.Addr.String(), "dev", cliDev); err != nil {
				t.Errorf("configure %v: %v", l.Addr, err)
			}
			leases <- l
		},
		OnExpire: func(l Lease) { expired <- l },
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tickDone := make(chan struct{})
	tickCtx, stopTick := context.WithCancel(ctx)
	go func() {
		defer close(tickDone)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-tickCtx.Done():
				return
			case <-tk.C:
				clock.Advance(250 * time.Millisecond)
			}
		}
	}()
	l, err := c.Acquire(ctx)
	stopTick()
	<-tickDone
	require.NoError(t, err)
	assert.Equal(t, l, recv(t, leases, "OnLease"))

	// What dnsmasq was told to hand out.
	assert.True(t, l.Addr.Addr().Compare(netip.MustParseAddr("10.77.0.50")) >= 0 &&
		l.Addr.Addr().Compare(netip.MustParseAddr("10.77.0.99")) <= 0, "address %v outside the range", l.Addr)
	assert.Equal(t, 24, l.Addr.Bits())
	assert.Equal(t, netip.MustParseAddr("10.77.0.1"), l.Router)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.77.0.53"), netip.MustParseAddr("10.77.0.54")}, l.DNS)
	assert.Equal(t, domain, l.Domain)
	assert.Equal(t, netip.MustParseAddr("10.77.0.1"), l.Server)
	assert.Equal(t, 2*time.Minute, l.Lease)
	assert.Equal(t, time.Minute, l.T1)
	assert.Equal(t, 105*time.Second, l.T2)
	addr := l.Addr.Addr().String()
	assert.Contains(t, logs.String(), "DHCPNAK("+srvDev+") 192.168.200.7 "+mac.String()+" wrong network")
	assert.Contains(t, logs.String(), "DHCPACK("+srvDev+") "+addr+" "+mac.String()+" akclient")
	leaseLine, err := os.ReadFile(leaseFile)
	require.NoError(t, err)
	assert.Contains(t, string(leaseLine), mac.String()+" "+addr+" akclient")

	// Keep the lease with Run; move the clock to T1: the renewal is unicast
	// from the leased address and dnsmasq acknowledges it.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(runCtx) }()
	require.NoError(t, clock.WaitForTimers(ctx, 1))
	next, ok := clock.NextDeadline()
	require.True(t, ok)
	require.Equal(t, l.RenewAt(), next)
	requests := strings.Count(logs.String(), "DHCPREQUEST("+srvDev+") "+addr)
	clock.AdvanceTo(next)
	l2 := recv(t, leases, "renewed lease")
	assert.Equal(t, l.Addr, l2.Addr)
	assert.Equal(t, next, l2.Acquired)
	assert.Equal(t, 2*time.Minute, l2.Lease)
	assert.Equal(t, StateBound, c.State())
	assert.Equal(t, requests+1, strings.Count(logs.String(), "DHCPREQUEST("+srvDev+") "+addr), "dnsmasq saw the renewal")
	assert.Empty(t, expired)

	// Cut the unicast path to the server: the renewal at the next T1 is
	// lost, and at T2 the client rebinds by broadcast, which dnsmasq
	// answers. (The carrier drops it: a blackhole route does not apply to a
	// socket bound to a device, and no packet filter tool is required.)
	tr.dropUnicast.Store(true)
	require.NoError(t, clock.WaitForTimers(ctx, 1))
	next, ok = clock.NextDeadline()
	require.True(t, ok)
	require.Equal(t, l2.RenewAt(), next)
	clock.AdvanceTo(next)
	require.NoError(t, clock.WaitForTimers(ctx, 1))
	assert.Equal(t, StateRenewing, c.State())
	next, ok = clock.NextDeadline()
	require.True(t, ok)
	require.Equal(t, l2.RebindAt(), next, "the next retransmission would come after T2")
	clock.AdvanceTo(next)
	l3 := recv(t, leases, "rebound lease")
	assert.Equal(t, l.Addr, l3.Addr)
	assert.Equal(t, next, l3.Acquired)
	assert.Equal(t, requests+2, strings.Count(logs.String(), "DHCPREQUEST("+srvDev+") "+addr), "dnsmasq saw the rebinding, not the blocked renewal")
	assert.Empty(t, expired)
	assert.Equal(t, int32(1), tr.dropped.Load())
	tr.dropUnicast.Store(false)

	// Release: Run returns, dnsmasq logs the release and forgets the lease.
	require.NoError(t, c.Release(ctx))
	require.NoError(t, recv(t, runDone, "Run's return"))
	assert.Equal(t, l3, recv(t, expired, "OnExpire after release"))
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "DHCPRELEASE("+srvDev+") "+addr+" "+mac.String())
	}, hangGuard, 10*time.Millisecond, "dnsmasq did not log the release")
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(leaseFile)
		return err == nil && !strings.Contains(string(b), addr)
	}, hangGuard, 10*time.Millisecond, "dnsmasq kept the released lease")
}
