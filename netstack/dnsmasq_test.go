package netstack

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/host"
	"github.com/anykernel/anykernel/internal/netns"
	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/anykernel/anykernel/netstack/dhcp"
)

// lockedBuffer collects a child process's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDnsmasq configures a stack entirely from Debian's dnsmasq running as
// the kernel-side server: an IPv4 address, router and DNS server by DHCP,
// an IPv6 address and default route by router advertisement (SLAAC), then
// resolves and dials a name through dnsmasq's DNS.
func TestDnsmasq(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedFile(t, "/dev/net/tun")
	testenv.NeedCommand(t, "dnsmasq")
	checkGoroutines(t)
	ns := netns.New(t)
	var tap *host.TAP
	require.NoError(t, ns.Run(func() error {
		var err error
		tap, err = host.OpenTAP("tap0", host.TAPOptions{VNetHdr: true})
		return err
	}))
	for _, args := range [][]string{
		{"sysctl", "-qw", "net.ipv6.conf.tap0.accept_dad=0"},
		{"ip", "addr", "add", "192.168.77.1/24", "dev", "tap0"},
		{"ip", "-6", "addr", "add", "fd77::1/64", "dev", "tap0", "nodad"},
		{"ip", "link", "set", "tap0", "up"},
	} {
		out, err := ns.Exec(args...)
		require.NoError(t, err, "%v: %s", args, out)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command("ip", "netns", "exec", ns.Name(), "dnsmasq",
		"--no-daemon", "--conf-file=/dev/null", "--pid-file=", "--user=root",
		"--interface=tap0", "--bind-interfaces", "--except-interface=lo",
		"--no-resolv", "--no-hosts",
		"--dhcp-range=192.168.77.50,192.168.77.60,255.255.255.0,2m",
		"--dhcp-option=option:router,192.168.77.1",
		"--dhcp-option=option:dns-server,192.168.77.1",
		"--address=/kernel.test/192.168.77.1",
		"--enable-ra", "--dhcp-range=fd77::,ra-only,64",
		"--dhcp-leasefile="+filepath.Join(t.TempDir(), "leases"),
		"--log-dhcp", "--log-facility=-")
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("dnsmasq:\n%s", logs.String())
		}
	})

	st, err := New(Options{})
	require.NoError(t, err)
	defer func() { assert.NoError(t, st.Close()) }()
	id, err := st.AddNIC(tap, NICConfig{Name: "eth0"})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	leases := make(chan dhcp.Lease, 4)
	dhcpDone := make(chan error, 1)
	go func() {
		dhcpDone <- st.RunDHCP(ctx, id, DHCPOptions{
			Hostname:      "anykernel",
			ReleaseOnExit: true,
			OnLease:       func(l dhcp.Lease) { leases <- l },
		})
	}()
	var lease dhcp.Lease
	select {
	case lease = <-leases:
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("no DHCP lease; dnsmasq said:\n%s", logs.String())
	}
	pool := netip.MustParsePrefix("192.168.77.0/24")
	assert.True(t, pool.Contains(lease.Addr.Addr()), "lease %v", lease.Addr)
	assert.Equal(t, 24, lease.Addr.Bits())
	assert.Contains(t, st.Addresses(id), lease.Addr)
	assert.Contains(t, st.DNSServers(), netip.MustParseAddrPort("192.168.77.1:53"))
	assert.Contains(t, st.Routes(), Route{Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: kernel4, NIC: id})

	// DNS through dnsmasq, then a connection by name.
	lookup, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	ips, err := st.LookupHost(lookup, "kernel.test")
	require.NoError(t, err)
	assert.Contains(t, ips, kernel4)
	var kln net.Listener
	require.NoError(t, ns.Run(func() error {
		var err error
		kln, err = net.Listen("tcp4", ":8080")
		return err
	}))
	defer kln.Close()
	go func() {
		c, err := kln.Accept()
		if err == nil {
			_, _ = c.Write([]byte("hello by name"))
			c.Close()
		}
	}()
	c, err := st.Dial("tcp4", "kernel.test:8080")
	require.NoError(t, err)
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	c.Close()
	assert.Equal(t, "hello by name", string(got))

	// SLAAC from dnsmasq's router advertisements.
	slaac := netip.MustParsePrefix("fd77::/64")
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(st.Addresses(id), func(p netip.Prefix) bool { return slaac.Contains(p.Addr()) })
	}, 30*time.Second, 50*time.Millisecond, "no SLAAC address; have %v", st.Addresses(id))
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(st.Routes(), func(r Route) bool {
			return r.Destination.Bits() == 0 && r.Destination.Addr().Is6() && r.Gateway.IsLinkLocalUnicast()
		})
	}, 30*time.Second, 50*time.Millisecond, "no IPv6 default route; have %v", st.Routes())
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	_, err = st.Ping(pctx, kernel6, 1, []byte("slaac"))
	require.NoError(t, err)

	// Releasing the lease takes the address away again.
	cancel()
	require.NoError(t, <-dhcpDone)
	assert.NotContains(t, st.Addresses(id), lease.Addr)
}
