package netstack

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/internal/netns"
)

// benchChunk is what one benchmark iteration moves.
const benchChunk = 1 << 20

// benchCC is the congestion control the kernel's sockets use in the bulk
// benchmarks, the reference's and the TAP peer's alike. It is pinned per
// socket rather than taken from net.ipv4.tcp_congestion_control because
// the choice decides the reference: on a host defaulting to bbr, a sender
// paces itself and veth moves a quarter of what it moves with cubic, the
// kernel's own default. ANYK_BENCH_CC picks another one.
func benchCC() string {
	if cc := os.Getenv("ANYK_BENCH_CC"); cc != "" {
		return cc
	}
	return "cubic"
}

// pinCC sets the benchmark's congestion control on a kernel TCP socket.
func pinCC(b *testing.B, c net.Conn) {
	b.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(b, err)
	var serr error
	require.NoError(b, rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, benchCC())
	}))
	require.NoError(b, serr, "TCP_CONGESTION %q (see net.ipv4.tcp_available_congestion_control)", benchCC())
}

// bulkPair is a connected pair of stream endpoints: the benchmark writes to
// w and a drain goroutine reads everything from r.
type bulkPair struct {
	w, r  net.Conn
	close func()
	// stats, if set, reads the counters of the netstack NIC under test.
	stats func() (NICStats, error)
}

// runBulk measures sending from p.w to p.r.
func runBulk(b *testing.B, p bulkPair) {
	defer p.close()
	var got atomic.Int64
	drained := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		for {
			n, err := p.r.Read(buf)
			got.Add(int64(n))
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				drained <- err
				return
			}
		}
	}()
	chunk := make([]byte, benchChunk)
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	var sent int64
	var nic0 NICStats
	if p.stats != nil {
		var err error
		nic0, err = p.stats()
		require.NoError(b, err)
	}
	cpu0 := cpuTime(b)
	for b.Loop() {
		n, err := p.w.Write(chunk)
		sent += int64(n)
		if err != nil {
			b.Fatal(err)
		}
	}
	// Count the data still in flight: wait until all of it has arrived.
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < sent && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got.Load() != sent {
		b.Fatalf("sent %d bytes, received %d", sent, got.Load())
	}
	reportCPU(b, cpuTime(b)-cpu0, sent)
	if p.stats != nil && sent > 0 {
		nic, err := p.stats()
		require.NoError(b, err)
		mib := float64(sent) / (1 << 20)
		b.ReportMetric(float64(nic.RxFrames-nic0.RxFrames)/mib, "rxframes/MiB")
		b.ReportMetric(float64(nic.TxFrames-nic0.TxFrames)/mib, "txframes/MiB")
	}
	p.w.Close()
	if err := <-drained; err != nil {
		b.Logf("drain: %v", err)
	}
}

// cpuTime is the CPU time the process has used, user and system, which
// includes the kernel's work for its sockets and TAP devices done in its
// threads.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	require.NoError(b, unix.Getrusage(unix.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time spent per KiB moved. Throughput on a
// machine with few cores is the cost per byte in disguise, and unlike
// throughput this cost does not swing with where the scheduler happens to
// place the sending and receiving threads.
func reportCPU(b *testing.B, cpu time.Duration, bytes int64) {
	if bytes > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())*1024/float64(bytes), "cpu-ns/KiB")
	}
}

// acceptOne accepts one connection on ln in the background.
func acceptOne(ln net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

func memBulkPair(b *testing.B, cfg NICConfig, mtu int) bulkPair {
	a, c := mem.NewNICPair(mem.NICOptions{MTU: mtu})
	sa, sb := newStackPair(b, a, c, Options{}, cfg)
	ln, err := sb.Listen("tcp", ":9")
	require.NoError(b, err)
	ch := acceptOne(ln)
	w, err := sa.Dial("tcp", "10.0.0.2:9")
	require.NoError(b, err)
	r := <-ch
	require.NotNil(b, r)
	return bulkPair{w: w, r: r, close: func() { w.Close(); r.Close(); ln.Close() }}
}

// tapBulkPair connects netstack to the kernel over TAP; tx means netstack
// sends.
func tapBulkPair(b *testing.B, offload, tx bool) bulkPair {
	p := newKernelPeer(b, offload)
	var kln net.Listener
	require.NoError(b, p.ns.Run(func() error {
		var err error
		kln, err = net.Listen("tcp", "192.168.77.1:9")
		return err
	}))
	ch := acceptOne(kln)
	c, err := p.st.Dial("tcp", "192.168.77.1:9")
	require.NoError(b, err)
	k := <-ch
	require.NotNil(b, k)
	pinCC(b, k)
	closeAll := func() { c.Close(); k.Close(); kln.Close() }
	stats := func() (NICStats, error) { return p.st.NICStats(p.nic) }
	if tx {
		return bulkPair{w: c, r: k, close: closeAll, stats: stats}
	}
	return bulkPair{w: k, r: c, close: closeAll, stats: stats}
}

// vethPeers builds the reference: two namespaces joined by a veth pair,
// 10.99.0.1 in the first and 10.99.0.2 in the second.
func vethPeers(b *testing.B) (*netns.NS, *netns.NS) {
	n1, n2 := netns.New(b), netns.New(b)
	for _, cmd := range []struct {
		ns   *netns.NS
		args []string
	}{
		{n1, []string{"ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", n2.Name()}},
		{n1, []string{"ip", "addr", "add", "10.99.0.1/24", "dev", "v0"}},
		{n2, []string{"ip", "addr", "add", "10.99.0.2/24", "dev", "v1"}},
		{n1, []string{"ip", "link", "set", "v0", "up"}},
		{n2, []string{"ip", "link", "set", "v1", "up"}},
	} {
		out, err := cmd.ns.Exec(cmd.args...)
		require.NoError(b, err, "%v: %s", cmd.args, out)
	}
	return n1, n2
}

func vethBulkPair(b *testing.B) bulkPair {
	n1, n2 := vethPeers(b)
	var ln net.Listener
	require.NoError(b, n2.Run(func() error {
		var err error
		ln, err = net.Listen("tcp", "10.99.0.2:9")
		return err
	}))
	ch := acceptOne(ln)
	var w net.Conn
	require.NoError(b, n1.Run(func() error {
		var err error
		w, err = net.Dial("tcp", "10.99.0.2:9")
		return err
	}))
	r := <-ch
	require.NotNil(b, r)
	pinCC(b, w)
	pinCC(b, r)
	return bulkPair{w: w, r: r, close: func() { w.Close(); r.Close(); ln.Close() }}
}

// BenchmarkTCPBulk measures one TCP stream. Within tx (netstack sends) and
// rx (netstack receives), ref-kernel-veth is the Linux-to-Linux reference
// over a veth pair measured in the same run.
func BenchmarkTCPBulk(b *testing.B) {
	b.Run("tx/mem-offload", func(b *testing.B) { runBulk(b, memBulkPair(b, NICConfig{}, 1500)) })
	b.Run("tx/mem-plain", func(b *testing.B) { runBulk(b, memBulkPair(b, NICConfig{DisableOffload: true}, 1500)) })
	b.Run("tx/mem-plain-mtu65000", func(b *testing.B) {
		runBulk(b, memBulkPair(b, NICConfig{DisableOffload: true}, 65000))
	})
	b.Run("tx/tap-offload", func(b *testing.B) { runBulk(b, tapBulkPair(b, true, true)) })
	b.Run("tx/tap-plain", func(b *testing.B) { runBulk(b, tapBulkPair(b, false, true)) })
	b.Run("tx/ref-kernel-veth", func(b *testing.B) { runBulk(b, vethBulkPair(b)) })
	b.Run("rx/tap-offload", func(b *testing.B) { runBulk(b, tapBulkPair(b, true, false)) })
	b.Run("rx/tap-plain", func(b *testing.B) { runBulk(b, tapBulkPair(b, false, false)) })
	b.Run("rx/ref-kernel-veth", func(b *testing.B) { runBulk(b, vethBulkPair(b)) })
}

// runHTTP measures sequential keep-alive GETs of a small page.
func runHTTP(b *testing.B, ln net.Listener, dial func(ctx context.Context, network, addr string) (net.Conn, error), url string) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello, anykernel\n")
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// nsDialer dials from inside a namespace: the socket is made on a thread
// switched into it.
func nsDialer(ns *netns.NS) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Run(func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// BenchmarkHTTP measures request rate: netstack client and server over
// hal/mem; a kernel client against a netstack server over TAP; and the
// Linux-to-Linux reference over veth.
func BenchmarkHTTP(b *testing.B) {
	b.Run("mem-offload", func(b *testing.B) {
		a, c := mem.NewNICPair(mem.NICOptions{})
		sa, sb := newStackPair(b, a, c, Options{}, NICConfig{})
		ln, err := sb.Listen("tcp", ":80")
		require.NoError(b, err)
		runHTTP(b, ln, sa.DialContext, "http://10.0.0.2/")
	})
	for _, offload := range []bool{true, false} {
		name := "tap-plain"
		if offload {
			name = "tap-offload"
		}
		b.Run(name, func(b *testing.B) {
			p := newKernelPeer(b, offload)
			ln, err := p.st.Listen("tcp", ":80")
			require.NoError(b, err)
			runHTTP(b, ln, nsDialer(p.ns), "http://192.168.77.2/")
		})
	}
	b.Run("ref-kernel-veth", func(b *testing.B) {
		n1, n2 := vethPeers(b)
		var ln net.Listener
		require.NoError(b, n2.Run(func() error {
			var err error
			ln, err = net.Listen("tcp", "10.99.0.2:80")
			return err
		}))
		runHTTP(b, ln, nsDialer(n1), "http://10.99.0.2/")
	})
}
