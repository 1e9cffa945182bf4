package netstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/anykernel/anykernel/hal/host"
	"github.com/anykernel/anykernel/internal/netns"
	"github.com/anykernel/anykernel/internal/testenv"
)

// Addresses of the kernel-peer tests: the kernel owns tap0 in a private
// namespace with the .1 addresses, the stack under test has the .2 ones.
var (
	kernel4 = netip.MustParseAddr("192.168.77.1")
	ours4   = netip.MustParseAddr("192.168.77.2")
	kernel6 = netip.MustParseAddr("fd77::1")
	ours6   = netip.MustParseAddr("fd77::2")
)

type kernelPeer struct {
	ns       *netns.NS
	st       *Stack
	nic      NICID
	kernelLL netip.Addr // the kernel's link-local address on tap0
	oursLL   netip.Addr // ours, zoned with our NIC's name
}

// newKernelPeer creates a namespace with a TAP device, configures the
// kernel's side with ip(8) and attaches a stack to the other side.
func newKernelPeer(t testing.TB, offload bool) *kernelPeer {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedFile(t, "/dev/net/tun")
	ns := netns.New(t)
	var tap *host.TAP
	require.NoError(t, ns.Run(func() error {
		var err error
		tap, err = host.OpenTAP("tap0", host.TAPOptions{VNetHdr: offload})
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
	st, err := New(Options{DisableSLAAC: true})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, st.Close()) })
	id, err := st.AddNIC(tap, NICConfig{Name: "eth0", Addresses: []netip.Prefix{
		netip.PrefixFrom(ours4, 24), netip.PrefixFrom(ours6, 64),
	}})
	require.NoError(t, err)
	p := &kernelPeer{ns: ns, st: st, nic: id}
	for _, a := range st.Addresses(id) {
		if a.Addr().IsLinkLocalUnicast() {
			p.oursLL = a.Addr().WithZone("eth0")
		}
	}
	require.True(t, p.oursLL.IsValid(), "no link-local address in %v", st.Addresses(id))
	out, err := ns.Exec("ip", "-6", "-o", "addr", "show", "dev", "tap0", "scope", "link")
	require.NoError(t, err)
	for _, f := range strings.Fields(string(out)) {
		if pfx, err := netip.ParsePrefix(f); err == nil && pfx.Addr().IsLinkLocalUnicast() {
			p.kernelLL = pfx.Addr()
		}
	}
	require.True(t, p.kernelLL.IsValid(), "no kernel link-local address in %q", out)
	return p
}

// kernelPing sends one echo request from the kernel's stack to dst and
// waits for the reply.
func (p *kernelPeer) kernelPing(dst netip.Addr) error {
	return p.ns.Run(func() error {
		network, laddr := "ip4:icmp", "0.0.0.0"
		var typ icmp.Type = ipv4.ICMPTypeEcho
		proto := 1
		if dst.Is6() {
			network, laddr, typ, proto = "ip6:ipv6-icmp", "::", ipv6.ICMPTypeEchoRequest, 58
		}
		c, err := icmp.ListenPacket(network, laddr)
		if err != nil {
			return err
		}
		defer c.Close()
		msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: 0x4242, Seq: 1, Data: []byte("anykernel")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		to := &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
		if _, err := c.WriteTo(b, to); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return err
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); ok && m.Type != typ && e.ID == 0x4242 && e.Seq == 1 &&
				bytes.Equal(e.Data, []byte("anykernel")) {
				_ = from
				return nil
			}
		}
	})
}

func TestKernelPing(t *testing.T) {
	p := newKernelPeer(t, true)
	tests := []struct {
		name string
		run  func() error
	}{
		{"kernel pings us ipv4", func() error { return p.kernelPing(ours4) }},
		{"kernel pings us ipv6 global", func() error { return p.kernelPing(ours6) }},
		{"kernel pings us ipv6 link-local", func() error { return p.kernelPing(p.oursLL.WithZone("tap0")) }},
		{"we ping the kernel ipv4", func() error { return p.ping(kernel4) }},
		{"we ping the kernel ipv6 global", func() error { return p.ping(kernel6) }},
		{"we ping the kernel ipv6 link-local", func() error { return p.ping(p.kernelLL.WithZone("eth0")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.run())
		})
	}
}

func (p *kernelPeer) ping(dst netip.Addr) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.st.Ping(ctx, dst, 1, []byte("anykernel"))
	return err
}

func TestKernelHTTP(t *testing.T) {
	curl := testenv.NeedCommand(t, "curl")
	for _, offload := range []bool{true, false} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			p := newKernelPeer(t, offload)
			body := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%s\n%s", r.URL.Path, body)
			})

			// The kernel's curl fetches from our server.
			ln, err := p.st.Listen("tcp", ":80")
			require.NoError(t, err)
			srv := &http.Server{Handler: h}
			go func() { _ = srv.Serve(ln) }()
			defer srv.Close()
			for _, u := range []string{"http://192.168.77.2/v4", "http://[fd77::2]/v6", "http://[" + p.oursLL.WithZone("").String() + "%25tap0]/ll"} {
				out, err := p.ns.Exec(curl, "-sS", "-g", "--max-time", "20", u)
				require.NoError(t, err, "curl %s: %s", u, out)
				path := u[strings.LastIndex(u, "/"):]
				assert.Equal(t, path+"\n"+body, string(out), "curl %s", u)
			}

			// Our client fetches from a server on the kernel's stack.
			var kln net.Listener
			require.NoError(t, p.ns.Run(func() error {
				var err error
				kln, err = net.Listen("tcp", ":8080")
				return err
			}))
			ksrv := &http.Server{Handler: h}
			go func() { _ = ksrv.Serve(kln) }()
			defer ksrv.Close()
			tr := &http.Transport{DialContext: p.st.DialContext}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
			for _, u := range []string{"http://192.168.77.1:8080/v4", "http://[fd77::1]:8080/v6", "http://[" + p.kernelLL.String() + "%25eth0]:8080/ll"} {
				resp, err := client.Get(u)
				require.NoError(t, err, u)
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				path := u[strings.LastIndex(u, "/"):]
				assert.Equal(t, path+"\n"+body, string(got), u)
			}
		})
	}
}

// kernelBulkSize is the size of each direction of TestKernelBulk:
// 256 MiB, or 32 MiB under the race detector. ANYKERNEL_BULK_MIB overrides.
func kernelBulkSize() int64 {
	if s := os.Getenv("ANYKERNEL_BULK_MIB"); s != "" {
		var n int64
		if _, err := fmt.Sscan(s, &n); err == nil && n > 0 {
			return n << 20
		}
	}
	if raceEnabled {
		return 32 << 20
	}
	return 256 << 20
}

func TestKernelBulk(t *testing.T) {
	size := kernelBulkSize()
	for _, offload := range []bool{true, false} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			p := newKernelPeer(t, offload)
			var kln net.Listener
			require.NoError(t, p.ns.Run(func() error {
				var err error
				kln, err = net.Listen("tcp", "192.168.77.1:9000")
				return err
			}))
			defer kln.Close()
			type result struct {
				sum [sha256.Size]byte
				n   int64
				err error
			}
			kernelGot := make(chan result, 1)
			go func() {
				c, err := kln.Accept()
				if err != nil {
					kernelGot <- result{err: err}
					return
				}
				defer c.Close()
				h := sha256.New()
				n, err := io.Copy(h, c)
				r := result{n: n, err: err}
				copy(r.sum[:], h.Sum(nil))
				kernelGot <- r
				_, _ = io.Copy(c, io.LimitReader(newPRNG(9), size))
			}()
			c, err := p.st.Dial("tcp", "192.168.77.1:9000")
			require.NoError(t, err)
			defer c.Close()
			start := time.Now()
			_, err = io.Copy(c, io.LimitReader(newPRNG(5), size))
			require.NoError(t, err)
			require.NoError(t, c.(*TCPConn).CloseWrite())
			r := <-kernelGot
			up := time.Since(start)
			require.NoError(t, r.err)
			require.Equal(t, size, r.n)
			start = time.Now()
			h := sha256.New()
			n, err := io.Copy(h, c)
			down := time.Since(start)
			require.NoError(t, err)
			require.Equal(t, size, n)
			want := func(seed byte) []byte {
				h := sha256.New()
				_, _ = io.Copy(h, io.LimitReader(newPRNG(seed), size))
				return h.Sum(nil)
			}
			assert.Equal(t, want(5), r.sum[:], "netstack to kernel data corrupted")
			assert.Equal(t, want(9), h.Sum(nil), "kernel to netstack data corrupted")
			st, _ := p.st.NICStats(p.nic)
			t.Logf("%d MiB: netstack->kernel %.0f MB/s, kernel->netstack %.0f MB/s (including hashing); %+v",
				size>>20, float64(size)/up.Seconds()/1e6, float64(size)/down.Seconds()/1e6, st)
		})
	}
}

func TestKernelUDP(t *testing.T) {
	p := newKernelPeer(t, true)
	var kc net.PacketConn
	require.NoError(t, p.ns.Run(func() error {
		var err error
		kc, err = net.ListenPacket("udp", ":5353")
		return err
	}))
	defer kc.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := kc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = kc.WriteTo(buf[:n], from)
		}
	}()
	tests := []struct {
		name, addr string
		size       int
	}{
		{"ipv4 small", "192.168.77.1:5353", 32},
		{"ipv4 full frame", "192.168.77.1:5353", 1472},
		{"ipv4 fragmented", "192.168.77.1:5353", 8000},
		{"ipv6", "[fd77::1]:5353", 1000},
		{"ipv6 fragmented", "[fd77::1]:5353", 6000},
		{"ipv6 link-local", "[" + p.kernelLL.String() + "%eth0]:5353", 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := p.st.Dial("udp", tc.addr)
			require.NoError(t, err)
			defer c.Close()
			msg := bytes.Repeat([]byte{0xa5, 0x5a, 0x01}, tc.size/3+1)[:tc.size]
			buf := make([]byte, 65536)
			for i := range 20 {
				msg[0] = byte(i)
				_, err = c.Write(msg)
				require.NoError(t, err)
				require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
				n, err := c.Read(buf)
				require.NoError(t, err)
				require.Equal(t, msg, buf[:n])
			}
		})
	}
}
