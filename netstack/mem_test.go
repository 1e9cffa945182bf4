package netstack

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
)

// TestLossySwitch moves data between two stacks through a switch whose
// ports lose, duplicate and reorder 5% of frames each, and checks it
// arrives intact in both directions. The minimum RTO is lowered to 20 ms, as
// suits a link whose round trip takes microseconds; otherwise each tail
// loss costs 200 ms.
//
// In plain mode the faults hit MTU-sized frames, like a real link. In
// offload mode they hit 64 KiB segmentation super-frames, so one loss takes
// out some forty segments; that mode moves less data.
func TestLossySwitch(t *testing.T) {
	tests := []struct {
		name string
		cfg  NICConfig
		size int64
	}{
		{"plain", NICConfig{DisableOffload: true}, 64 << 20},
		{"offload", NICConfig{}, 8 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			size := tc.size
			switch {
			case testing.Short():
				size = 2 << 20
			case raceEnabled:
				// The race detector slows the stack about tenfold.
				size /= 4
			}
			sw := mem.NewSwitch(mem.SwitchOptions{})
			faults := mem.NICFaults{Loss: 0.05, Duplicate: 0.05, Reorder: 0.05}
			fa, fb := faults, faults
			fa.Seed, fb.Seed = 1, 2
			a := mem.NewFaultyNIC(sw.NewPort(mem.NICOptions{}), fa)
			b := mem.NewFaultyNIC(sw.NewPort(mem.NICOptions{}), fb)
			sa, sb := newStackPair(t, a, b, Options{TCP: TCPOptions{MinRTO: 20 * time.Millisecond}}, tc.cfg)

			ln, err := sb.Listen("tcp", ":5000")
			require.NoError(t, err)
			defer ln.Close()
			// Both directions at once, each side writing size bytes and
			// reading size bytes, so neither half-closes early.
			type result struct {
				sum [sha256.Size]byte
				n   int64
				err error
			}
			serverGot := make(chan result, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					serverGot <- result{err: err}
					return
				}
				defer c.Close()
				// Close only after both halves are done: closing while the
				// writer still has data to send would cut the client short.
				wrote := make(chan error, 1)
				go func() {
					_, err := io.Copy(c, io.LimitReader(newPRNG(7), size))
					wrote <- err
				}()
				h := sha256.New()
				n, err := io.CopyN(h, c, size)
				var r result
				copy(r.sum[:], h.Sum(nil))
				r.n, r.err = n, err
				if werr := <-wrote; r.err == nil {
					r.err = werr
				}
				serverGot <- r
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c, err := sa.DialContext(ctx, "tcp", "10.0.0.2:5000")
			require.NoError(t, err)
			defer c.Close()
			writeErr := make(chan error, 1)
			go func() {
				_, err := io.Copy(c, io.LimitReader(newPRNG(3), size))
				writeErr <- err
			}()
			back := sha256.New()
			n, err := io.CopyN(back, c, size)
			require.NoError(t, err)
			require.Equal(t, size, n)
			require.NoError(t, <-writeErr)
			r := <-serverGot
			require.NoError(t, r.err)
			require.Equal(t, size, r.n)

			sum := func(seed byte) []byte {
				h := sha256.New()
				_, _ = io.Copy(h, io.LimitReader(newPRNG(seed), size))
				return h.Sum(nil)
			}
			assert.Equal(t, sum(3), r.sum[:], "client to server data corrupted")
			assert.Equal(t, sum(7), back.Sum(nil), "server to client data corrupted")

			st := sa.TCPStats()
			t.Logf("client: %d retransmits, %d timeouts, %d fast recoveries; faults a=%+v b=%+v",
				st.Retransmits, st.Timeouts, st.FastRecovery, a.Stats(), b.Stats())
			assert.NotZero(t, st.Retransmits, "5%% loss yet no retransmission")
		})
	}
}

// prng is a deterministic byte stream for transfers.
type prng struct{ r *rand.ChaCha8 }

func newPRNG(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return &prng{rand.NewChaCha8(s)}
}

func (p *prng) Read(b []byte) (int, error) { return p.r.Read(b) }

// tapNIC wraps a NIC and, for frames the wrapped side writes, records when
// each TCP segment carrying data left (on the test's clock) and drops the
// first drop such segments.
type tapNIC struct {
	hal.NIC
	clock *mem.Clock

	mu    sync.Mutex
	drop  int
	sent  []time.Duration
	added chan struct{}
}

func (n *tapNIC) WriteFrame(p []byte) error {
	if tcpPayloadLen(p) > 0 {
		n.mu.Lock()
		n.sent = append(n.sent, n.clock.Monotonic())
		dropIt := n.drop > 0
		if dropIt {
			n.drop--
		}
		n.mu.Unlock()
		select {
		case n.added <- struct{}{}:
		default:
		}
		if dropIt {
			return nil
		}
	}
	return n.NIC.WriteFrame(p)
}

func (n *tapNIC) times() []time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]time.Duration(nil), n.sent...)
}

// tcpPayloadLen returns the TCP payload length of an IPv4 frame, or 0.
func tcpPayloadLen(f []byte) int {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != etherTypeIPv4 || f[14+9] != protoTCP {
		return 0
	}
	ihl := int(f[14]&0xf) * 4
	total := int(binary.BigEndian.Uint16(f[16:]))
	if len(f) < 14+ihl+20 {
		return 0
	}
	doff := int(f[14+ihl+12]>>4) * 4
	return total - ihl - doff
}

// TestRetransmitTiming drives two stacks with a manual clock only. A data
// segment is lost three times in a row; the retransmissions must leave
// exactly the initial RTO of one second after the original (RFC 6298 §2.1:
// gVisor takes no RTT sample from the handshake) and then back off
// exponentially (§5.5), with no real time involved.
func TestRetransmitTiming(t *testing.T) {
	checkGoroutines(t)
	clk := mem.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a, b := mem.NewNICPair(mem.NICOptions{})
	ta := &tapNIC{NIC: a, clock: clk, added: make(chan struct{}, 1)}
	// RACK's tail loss probe would retransmit earlier than the RTO.
	opts := Options{Clock: clk, DisableSLAAC: true, TCP: TCPOptions{DisableRACK: true}}
	sa, sb := newStackPair(t, ta, b, opts, NICConfig{DisableOffload: true})

	ln, err := sb.Listen("tcp4", ":7")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(got)
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		_, err = io.ReadFull(c, buf)
		if err != nil {
			close(got)
			return
		}
		got <- buf
	}()
	// gVisor defers some work (neighbour resolution) to zero-delay timers:
	// fire those as they come due, without ever moving the clock.
	stopPump := make(chan struct{})
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		for {
			select {
			case <-stopPump:
				return
			case <-time.After(time.Millisecond):
				clk.AdvanceTo(clk.Monotonic())
			}
		}
	}()
	defer func() { close(stopPump); <-pumped }()
	c, err := sa.Dial("tcp4", "10.0.0.2:7")
	require.NoError(t, err)
	defer c.Close()

	ta.mu.Lock()
	ta.drop = 3
	ta.mu.Unlock()
	t0 := clk.Monotonic()
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)

	// Fire timers one deadline at a time; after each, give the stack's
	// goroutines a moment to act while the clock stands still.
	settle := func() {
		select {
		case <-ta.added:
		case <-time.After(100 * time.Millisecond):
		}
	}
	settle()
	var data []byte
	for i := 0; i < 200 && data == nil; i++ {
		select {
		case data = <-got:
			continue
		default:
		}
		if !clk.AdvanceToNext() {
			settle()
			continue
		}
		settle()
	}
	select {
	case data = <-got:
	case <-time.After(10 * time.Second):
	}
	require.Equal(t, []byte("hello"), data)
	sent := ta.times()
	require.GreaterOrEqual(t, len(sent), 4, "send times %v", sent)
	assert.Equal(t, t0, sent[0])
	const rto = time.Second
	assert.Equal(t, []time.Duration{rto, 2 * rto, 4 * rto},
		[]time.Duration{sent[1] - sent[0], sent[2] - sent[1], sent[3] - sent[2]}, "send times %v", sent)
	assert.NotZero(t, sa.TCPStats().Timeouts)
}

// TestCorruptFramesRejected flips bits in 2% of the frames a plain sender
// writes. The receiver has receive-checksum offload on, but the device did
// not vouch for these frames, so the link endpoint must verify them in
// software and drop the damaged ones: the data arrives intact and the
// endpoint counts checksum errors.
func TestCorruptFramesRejected(t *testing.T) {
	for _, scatter := range []bool{false, true} {
		t.Run(fmt.Sprintf("scatter=%v", scatter), func(t *testing.T) { testCorruptFramesRejected(t, scatter) })
	}
}

func testCorruptFramesRejected(t *testing.T, scatter bool) {
	checkGoroutines(t)
	a, mb := mem.NewNICPair(mem.NICOptions{})
	var b hal.NIC = mb
	if scatter {
		b = &scatterNIC{OffloadNIC: mb}
	}
	fa := mem.NewFaultyNIC(a, mem.NICFaults{Seed: 5, Corrupt: 0.02})
	opts := Options{TCP: TCPOptions{MinRTO: 20 * time.Millisecond}}
	sa, err := New(opts)
	require.NoError(t, err)
	defer sa.Close()
	sb, err := New(opts)
	require.NoError(t, err)
	defer sb.Close()
	_, err = sa.AddNIC(fa, NICConfig{DisableOffload: true, Addresses: []netip.Prefix{addrA4}})
	require.NoError(t, err)
	idb, err := sb.AddNIC(b, NICConfig{Addresses: []netip.Prefix{addrB4}})
	require.NoError(t, err)

	ln, err := sb.Listen("tcp", ":9")
	require.NoError(t, err)
	defer ln.Close()
	sums := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(sums)
			return
		}
		defer c.Close()
		h := sha256.New()
		_, _ = io.Copy(h, c)
		sums <- h.Sum(nil)
	}()
	const size = 8 << 20
	c, err := sa.Dial("tcp", "10.0.0.2:9")
	require.NoError(t, err)
	want := sha256.New()
	_, err = io.Copy(io.MultiWriter(c, want), io.LimitReader(newPRNG(11), size))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.Equal(t, want.Sum(nil), <-sums)
	st, err := sb.NICStats(idb)
	require.NoError(t, err)
	assert.NotZero(t, st.ChecksumErrors, "corrupted frames reached the stack unchecked (%+v, faults %+v)", st, fa.Stats())
	if s, ok := b.(*scatterNIC); ok {
		assert.NotZero(t, s.vecReads.Load(), "scatter receive path not used")
		assert.NotZero(t, s.vecWrites.Load(), "gather send path not used")
	}
}
