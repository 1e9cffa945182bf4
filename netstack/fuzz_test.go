package netstack

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
)

// fuzzTarget is a stack with a plain NIC and an offload NIC, a TCP listener
// and a UDP socket, into whose receive path the fuzzer injects frames.
type fuzzTarget struct {
	st           *Stack
	plain, offld *link
}

func newFuzzTarget(t testing.TB) *fuzzTarget {
	st, err := New(Options{})
	require.NoError(t, err)
	a, peerA := mem.NewNICPair(mem.NICOptions{MAC: hal.MAC{2, 0, 0, 0, 0, 0x10}})
	b, peerB := mem.NewNICPair(mem.NICOptions{MAC: hal.MAC{2, 0, 0, 0, 0, 0x20}})
	// The peers drain whatever the stack answers, so it never blocks.
	var wg sync.WaitGroup
	for _, p := range []*mem.NIC{peerA, peerB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, hal.MaxOffloadFrame)
			for {
				if _, _, err := p.ReadFrameHdr(buf); err != nil {
					return
				}
			}
		}()
	}
	ida, err := st.AddNIC(a, NICConfig{DisableOffload: true, Addresses: []netip.Prefix{addrA4, addrA6}})
	require.NoError(t, err)
	idb, err := st.AddNIC(b, NICConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24"), netip.MustParsePrefix("fd01::1/64")}})
	require.NoError(t, err)
	ln, err := st.Listen("tcp", ":80")
	require.NoError(t, err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	uc, err := st.ListenPacket("udp", ":53")
	require.NoError(t, err)
	t.Cleanup(func() {
		uc.Close()
		ln.Close()
		require.NoError(t, st.Close())
		peerA.Close()
		peerB.Close()
		wg.Wait()
	})
	st.mu.Lock()
	ft := &fuzzTarget{st: st, plain: st.nics[ida].link, offld: st.nics[idb].link}
	st.mu.Unlock()
	return ft
}

// inject feeds one fuzz input: byte 0 chooses the NIC (bit 0: offload),
// for the offload NIC the next NetHdrLen bytes are the virtio-net header,
// the rest is the frame.
func (ft *fuzzTarget) inject(data []byte) {
	if len(data) == 0 {
		return
	}
	mode, data := data[0], data[1:]
	if mode&1 == 0 {
		ft.plain.deliver(data, nil)
		return
	}
	h, err := hal.DecodeNetHdr(data)
	if err != nil {
		return
	}
	ft.offld.deliver(data[hal.NetHdrLen:], &h)
}

// FuzzReceive injects random and mutated frames into the receive path of
// both a plain and an offload NIC: nothing may panic, and closing the stack
// afterwards must release every goroutine.
func FuzzReceive(f *testing.F) {
	checkGoroutinesF(f)
	ft := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ft.inject(data)
	})
}

func checkGoroutinesF(f *testing.F) {
	before := countGoroutines()
	f.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for countGoroutines() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := countGoroutines(); n > before {
			buf := make([]byte, 1<<20)
			f.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// recordNIC copies every frame written through it, for seed generation.
type recordNIC struct {
	hal.NIC
	mu     sync.Mutex
	frames [][]byte
}

func (n *recordNIC) WriteFrame(p []byte) error {
	n.mu.Lock()
	n.frames = append(n.frames, append([]byte(nil), p...))
	n.mu.Unlock()
	return n.NIC.WriteFrame(p)
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzReceive from a real
// exchange (ARP, NDP, ping, TCP, UDP) when ANYKERNEL_WRITE_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ANYKERNEL_WRITE_SEEDS") == "" {
		t.Skip("set ANYKERNEL_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	a, b := mem.NewNICPair(mem.NICOptions{})
	ra := &recordNIC{NIC: a}
	sa, sb := newStackPair(t, ra, b, Options{}, NICConfig{DisableOffload: true})
	ln, err := sb.Listen("tcp", ":80")
	require.NoError(t, err)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := sa.Dial("tcp", "10.0.0.2:80")
	require.NoError(t, err)
	_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	c.Close()
	c6, err := sa.Dial("tcp", "[fd00::2]:80")
	if err == nil {
		c6.Close()
	}
	u, err := sa.Dial("udp", "10.0.0.2:53")
	require.NoError(t, err)
	_, _ = u.Write(make([]byte, 3000)) // fragmented
	u.Close()
	time.Sleep(100 * time.Millisecond)
	dir := filepath.Join("testdata", "fuzz", "FuzzReceive")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for i, fr := range ra.frames {
		if i >= 24 {
			break
		}
		// Address the frame to the fuzz target's plain NIC.
		in := append([]byte{0}, fr...)
		copy(in[1:7], []byte{2, 0, 0, 0, 0, 0x10})
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("frame%02d", i)), []byte(body), 0o644))
		// The same frame on the offload NIC, with an all-zero header
		// (checked in software) and with DATA_VALID (trusted).
		for j, flags := range []byte{0, hal.NetHdrFDataValid} {
			off := append([]byte{1, flags, 0, 0, 0, 0, 0, 0, 0, 0, 0}, fr...)
			copy(off[11:17], []byte{2, 0, 0, 0, 0, 0x20})
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", off)
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("offload%02d-%d", i, j)), []byte(body), 0o644))
		}
	}
}
