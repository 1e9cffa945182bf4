package dhcp

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
)

// hangGuard bounds how long a test waits for the client's goroutines to
// act on something it has already made happen; it never measures timing.
const hangGuard = 10 * time.Second

// sent is one datagram the client handed to the transport.
type sent struct {
	msg *Message
	dst netip.AddrPort
	at  time.Duration // the clock's Monotonic time at Send
}

// fakeNet is a Transport whose far end is the test: it records what the
// client sends and delivers the replies the test queues.
type fakeNet struct {
	t         *testing.T
	clock     *mem.Clock
	out       chan sent
	in        chan []byte
	receiving atomic.Int32
	failRecv  chan error
}

func newFakeNet(t *testing.T, clock *mem.Clock) *fakeNet {
	return &fakeNet{t: t, clock: clock, out: make(chan sent, 64), in: make(chan []byte, 64), failRecv: make(chan error, 1)}
}

func (f *fakeNet) Send(ctx context.Context, pkt []byte, dst netip.AddrPort) error {
	m, err := ParseMessage(pkt)
	if err != nil {
		f.t.Errorf("client sent an unparsable message: %v", err)
		return err
	}
	f.out <- sent{msg: m, dst: dst, at: f.clock.Monotonic()}
	return nil
}

func (f *fakeNet) Receive(ctx context.Context, buf []byte) (int, netip.AddrPort, error) {
	f.receiving.Add(1)
	defer f.receiving.Add(-1)
	select {
	case b := <-f.in:
		return copy(buf, b), netip.AddrPortFrom(testServer, ServerPort), nil
	case err := <-f.failRecv:
		return 0, netip.AddrPort{}, err
	case <-ctx.Done():
		return 0, netip.AddrPort{}, ctx.Err()
	}
}

// next returns the next message the client sends.
func (f *fakeNet) next() sent {
	f.t.Helper()
	select {
	case s := <-f.out:
		return s
	case <-time.After(hangGuard):
		f.t.Fatalf("client sent nothing (clock %v)", f.clock)
		return sent{}
	}
}

// nextOf returns the next message, checking its type.
func (f *fakeNet) nextOf(want MessageType) sent {
	f.t.Helper()
	s := f.next()
	typ, err := s.msg.Type()
	require.NoError(f.t, err)
	require.Equal(f.t, want, typ, "message sent at %v", s.at)
	return s
}

// quiet checks that the client has sent nothing more.
func (f *fakeNet) quiet() {
	f.t.Helper()
	select {
	case s := <-f.out:
		f.t.Fatalf("unexpected %v to %v at %v", s.msg, s.dst, s.at)
	default:
	}
}

// reply queues a server reply to req.
func (f *fakeNet) reply(req *Message, typ MessageType, edit func(*Message)) {
	f.t.Helper()
	m := &Message{Op: BOOTREPLY, HType: req.HType, HLen: req.HLen, XID: req.XID, Flags: req.Flags, CHAddr: req.CHAddr}
	m.Options.SetMessageType(typ)
	require.NoError(f.t, m.Options.SetServerIdentifier(testServer))
	if typ != DHCPNAK {
		m.YIAddr = testYour
		m.Options.SetLeaseTime(time.Hour)
		require.NoError(f.t, m.Options.SetSubnetMask(24))
		require.NoError(f.t, m.Options.SetRouters(testServer))
		require.NoError(f.t, m.Options.SetDomainNameServers(netip.MustParseAddr("10.0.2.3")))
		m.Options.SetDomainName("example.internal")
	}
	if edit != nil {
		edit(m)
	}
	b, err := m.MarshalBinary()
	require.NoError(f.t, err)
	f.in <- b
}

// waitAndAdvance waits until the client has armed its timer, then moves
// the clock to it.
func waitAndAdvance(t *testing.T, clock *mem.Clock) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	require.NoError(t, clock.WaitForTimers(ctx, 1))
	require.True(t, clock.AdvanceToNext())
	return clock.Monotonic()
}

// harness runs a client over a fakeNet.
type harness struct {
	t       *testing.T
	clock   *mem.Clock
	net     *fakeNet
	c       *Client
	leases  chan Lease
	expired chan Lease
	done    chan error
	cancel  context.CancelFunc
}

func newHarness(t *testing.T, edit func(*Config)) *harness {
	clock := mem.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	h := &harness{t: t, clock: clock, net: newFakeNet(t, clock), leases: make(chan Lease, 16), expired: make(chan Lease, 16)}
	cfg := Config{
		MAC:       hal.MAC(testMAC),
		Hostname:  "guest",
		Clock:     clock,
		Transport: h.net,
		Rand:      mem.NewEntropy(1),
		OnLease:   func(l Lease) { h.leases <- l },
		OnExpire:  func(l Lease) { h.expired <- l },
	}
	if edit != nil {
		edit(&cfg)
	}
	h.c = NewClient(cfg)
	return h
}

// run starts Run; the test's cleanup stops it and checks it returned nil
// and left no Receive call behind.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	done := make(chan error, 1)
	h.done = done
	go func() { done <- h.c.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(h.t, err)
		case <-time.After(hangGuard):
			h.t.Error("Run did not return after cancel")
		}
		assert.Zero(h.t, h.net.receiving.Load(), "Receive calls left running")
	})
}

func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- nil // for the cleanup
		return err
	case <-time.After(hangGuard):
		h.t.Fatal("Run did not return after cancel")
		return nil
	}
}

// waitState waits until the client has reached state s, for events that
// send nothing the test could wait for instead.
func (h *harness) waitState(s State) {
	h.t.Helper()
	require.Eventually(h.t, func() bool { return h.c.State() == s }, hangGuard, time.Millisecond, "state %v, want %v", h.c.State(), s)
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("no %s", what)
		var zero T
		return zero
	}
}

// handshake completes DISCOVER, OFFER, REQUEST, ACK and returns the lease.
func (h *harness) handshake(edit func(*Message)) Lease {
	h.t.Helper()
	d := h.net.nextOf(DHCPDISCOVER)
	h.net.reply(d.msg, DHCPOFFER, edit)
	r := h.net.nextOf(DHCPREQUEST)
	h.net.reply(r.msg, DHCPACK, edit)
	return recv(h.t, h.leases, "lease")
}

func TestHandshake(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Broadcast = true })
	h.run()

	d := h.net.nextOf(DHCPDISCOVER)
	assert.Equal(t, broadcastDst, d.dst)
	assert.Equal(t, BOOTREQUEST, d.msg.Op)
	assert.True(t, d.msg.Broadcast(), "Config.Broadcast sets the flag")
	assert.Equal(t, testMAC[:], []byte(d.msg.HardwareAddr()))
	assert.Equal(t, netip.IPv4Unspecified(), d.msg.CIAddr)
	cid, err := d.msg.Options.ClientIdentifier()
	require.NoError(t, err)
	assert.Equal(t, append([]byte{1}, testMAC[:]...), cid)
	hn, err := d.msg.Options.HostName()
	require.NoError(t, err)
	assert.Equal(t, "guest", hn)
	prl, err := d.msg.Options.ParameterRequestList()
	require.NoError(t, err)
	assert.Contains(t, prl, OptionRouter)
	assert.False(t, d.msg.Options.Has(OptionRequestedIPAddress))
	assert.Equal(t, StateSelecting, h.c.State())

	// A reply to another transaction or another client is ignored.
	h.net.reply(&Message{HType: 1, HLen: 6, XID: d.msg.XID + 1, CHAddr: d.msg.CHAddr}, DHCPOFFER, nil)
	other := *d.msg
	other.CHAddr[5]++
	h.net.reply(&other, DHCPOFFER, nil)
	h.net.reply(d.msg, DHCPOFFER, nil)

	r := h.net.nextOf(DHCPREQUEST)
	assert.Equal(t, broadcastDst, r.dst)
	assert.Equal(t, d.msg.XID, r.msg.XID, "REQUEST keeps the OFFER's xid")
	assert.True(t, r.msg.Broadcast())
	assert.Equal(t, netip.IPv4Unspecified(), r.msg.CIAddr)
	ri, err := r.msg.Options.RequestedIPAddress()
	require.NoError(t, err)
	assert.Equal(t, testYour, ri)
	sid, err := r.msg.Options.ServerIdentifier()
	require.NoError(t, err)
	assert.Equal(t, testServer, sid)
	assert.Equal(t, StateRequesting, h.c.State())

	h.net.reply(r.msg, DHCPACK, nil)
	l := recv(t, h.leases, "lease")
	assert.Equal(t, Lease{
		Addr:     netip.MustParsePrefix("10.0.2.15/24"),
		Router:   testServer,
		DNS:      []netip.Addr{netip.MustParseAddr("10.0.2.3")},
		Domain:   "example.internal",
		Server:   testServer,
		Lease:    time.Hour,
		T1:       30 * time.Minute,
		T2:       52*time.Minute + 30*time.Second,
		Acquired: 0,
	}, l)
	assert.Equal(t, StateBound, h.c.State())
	got, ok := h.c.Lease()
	assert.True(t, ok)
	assert.Equal(t, l, got)

	// Bound, the client waits for T1.
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	require.NoError(t, h.clock.WaitForTimers(ctx, 1))
	next, ok := h.clock.NextDeadline()
	require.True(t, ok)
	assert.Equal(t, 30*time.Minute, next)
	h.net.quiet()
}

func TestRetransmitBackoff(t *testing.T) {
	h := newHarness(t, nil)
	h.run()

	// Lost OFFERs: DISCOVER is resent after 4, 8, 16, 32, 64, 64 s, ±1 s.
	first := h.net.nextOf(DHCPDISCOVER)
	prev := first
	var offsets []time.Duration
	for _, base := range []time.Duration{4, 8, 16, 32, 64, 64} {
		waitAndAdvance(t, h.clock)
		d := h.net.nextOf(DHCPDISCOVER)
		gap := d.at - prev.at
		assert.InDelta(t, float64(base*time.Second), float64(gap), float64(time.Second), "gap before retransmission %v", gap)
		offsets = append(offsets, gap-base*time.Second)
		assert.Equal(t, first.msg.XID, d.msg.XID, "retransmissions keep the xid")
		assert.Equal(t, uint16(d.at/time.Second), d.msg.Secs, "secs counts from the first DISCOVER")
		prev = d
	}
	assert.NotEqual(t, offsets[0], offsets[1], "jitter varies: %v", offsets)

	// Lost ACKs: REQUEST is resent after 4, 8, 16 s ±1 s, then after 32 s
	// the client starts over with a new DISCOVER and transaction.
	h.net.reply(prev.msg, DHCPOFFER, nil)
	r := h.net.nextOf(DHCPREQUEST)
	assert.Equal(t, prev.at, r.at)
	prevReq := r
	for _, base := range []time.Duration{4, 8, 16} {
		waitAndAdvance(t, h.clock)
		rr := h.net.nextOf(DHCPREQUEST)
		assert.InDelta(t, float64(base*time.Second), float64(rr.at-prevReq.at), float64(time.Second))
		assert.Equal(t, r.msg.XID, rr.msg.XID)
		prevReq = rr
	}
	waitAndAdvance(t, h.clock)
	d := h.net.nextOf(DHCPDISCOVER)
	assert.InDelta(t, float64(32*time.Second), float64(d.at-prevReq.at), float64(time.Second))
	assert.NotEqual(t, r.msg.XID, d.msg.XID, "a new transaction")
	assert.Equal(t, uint16(0), d.msg.Secs)

	// The retransmitted REQUEST's ACK dates the lease from the first
	// REQUEST of the exchange.
	h.net.reply(d.msg, DHCPOFFER, nil)
	r = h.net.nextOf(DHCPREQUEST)
	waitAndAdvance(t, h.clock)
	r2 := h.net.nextOf(DHCPREQUEST)
	h.net.reply(r2.msg, DHCPACK, nil)
	l := recv(t, h.leases, "lease")
	assert.Equal(t, r.at, l.Acquired)
}

func TestExactBackoffWithKnownRandomness(t *testing.T) {
	// Zero randomness: jitter is always -1 s, xids are 0.
	h := newHarness(t, func(c *Config) { c.Rand = zeroReader{} })
	h.run()
	prev := h.net.nextOf(DHCPDISCOVER)
	for _, want := range []time.Duration{3, 7, 15, 31, 63, 63, 63} {
		waitAndAdvance(t, h.clock)
		d := h.net.nextOf(DHCPDISCOVER)
		assert.Equal(t, want*time.Second, d.at-prev.at)
		prev = d
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestNAK(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	d := h.net.nextOf(DHCPDISCOVER)
	h.net.reply(d.msg, DHCPOFFER, nil)
	r := h.net.nextOf(DHCPREQUEST)
	h.net.reply(r.msg, DHCPNAK, func(m *Message) { m.Options.SetMessage("address taken") })

	// The client starts over at once, in a new transaction.
	d2 := h.net.nextOf(DHCPDISCOVER)
	assert.Equal(t, r.at, d2.at)
	assert.NotEqual(t, d.msg.XID, d2.msg.XID)

	// A second refusal in a row backs off before the next DISCOVER.
	h.net.reply(d2.msg, DHCPOFFER, nil)
	r2 := h.net.nextOf(DHCPREQUEST)
	h.net.reply(r2.msg, DHCPNAK, nil)
	h.waitState(StateInit)
	at := waitAndAdvance(t, h.clock)
	d3 := h.net.nextOf(DHCPDISCOVER)
	assert.InDelta(t, float64(4*time.Second), float64(d3.at-r2.at), float64(time.Second))
	assert.Equal(t, at, d3.at)

	// An offer from one server and a NAK from another: the NAK is ignored.
	h.net.reply(d3.msg, DHCPOFFER, nil)
	r3 := h.net.nextOf(DHCPREQUEST)
	h.net.reply(r3.msg, DHCPNAK, func(m *Message) {
		require.NoError(t, m.Options.SetServerIdentifier(netip.MustParseAddr("10.9.9.9")))
	})
	h.net.reply(r3.msg, DHCPACK, nil)
	l := recv(t, h.leases, "lease")
	assert.Equal(t, testYour, l.Addr.Addr())
	assert.Empty(t, h.expired)
}

func TestRenewAtT1(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Broadcast = true })
	h.run()
	l := h.handshake(nil)

	at := waitAndAdvance(t, h.clock)
	assert.Equal(t, l.RenewAt(), at)
	r := h.net.nextOf(DHCPREQUEST)
	assert.Equal(t, StateRenewing, h.c.State())
	assert.Equal(t, netip.AddrPortFrom(testServer, ServerPort), r.dst, "renewal is unicast to the server")
	assert.Equal(t, testYour, r.msg.CIAddr)
	assert.False(t, r.msg.Broadcast(), "a client with an address does not ask for broadcast")
	assert.False(t, r.msg.Options.Has(OptionRequestedIPAddress))
	assert.False(t, r.msg.Options.Has(OptionServerIdentifier))
	assert.Equal(t, uint16(0), r.msg.Secs)

	h.net.reply(r.msg, DHCPACK, func(m *Message) { m.Options.SetLeaseTime(2 * time.Hour) })
	l2 := recv(t, h.leases, "renewed lease")
	assert.Equal(t, 30*time.Minute, l2.Acquired)
	assert.Equal(t, 2*time.Hour, l2.Lease)
	assert.Equal(t, StateBound, h.c.State())
	assert.Empty(t, h.expired, "the same address was renewed")

	at = waitAndAdvance(t, h.clock)
	assert.Equal(t, 30*time.Minute+time.Hour, at, "next T1 counts from the renewal")
	h.net.nextOf(DHCPREQUEST)
}

func TestRebindAtT2(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	l := h.handshake(nil)

	// The server is silent: unicast retransmissions wait half the time to
	// T2 but at least 60 s, until T2.
	waitAndAdvance(t, h.clock)
	renew := h.net.nextOf(DHCPREQUEST)
	assert.Equal(t, l.RenewAt(), renew.at)
	prev := renew
	var rebind sent
	for range 20 {
		waitAndAdvance(t, h.clock)
		s := h.net.nextOf(DHCPREQUEST)
		if s.dst == broadcastDst {
			rebind = s
			break
		}
		want := max((l.RebindAt()-prev.at)/2, time.Minute)
		assert.Equal(t, want, s.at-prev.at)
		assert.Equal(t, renew.msg.XID, s.msg.XID)
		assert.Less(t, s.at, l.RebindAt())
		prev = s
	}
	require.NotNil(t, rebind.msg, "no rebinding broadcast")
	assert.Equal(t, l.RebindAt(), rebind.at)
	assert.Equal(t, StateRebinding, h.c.State())
	assert.Equal(t, testYour, rebind.msg.CIAddr)
	assert.False(t, rebind.msg.Options.Has(OptionServerIdentifier))
	assert.False(t, rebind.msg.Options.Has(OptionRequestedIPAddress))
	assert.NotEqual(t, renew.msg.XID, rebind.msg.XID)

	// Another server answers the rebinding with a different address: the
	// old lease ends, the new one begins.
	other := netip.MustParseAddr("10.0.2.2")
	h.net.reply(rebind.msg, DHCPACK, func(m *Message) {
		m.YIAddr = netip.MustParseAddr("10.0.2.77")
		require.NoError(t, m.Options.SetServerIdentifier(other))
	})
	old := recv(t, h.expired, "expiry of the old lease")
	assert.Equal(t, l.Addr, old.Addr)
	l2 := recv(t, h.leases, "rebound lease")
	assert.Equal(t, netip.MustParsePrefix("10.0.2.77/24"), l2.Addr)
	assert.Equal(t, other, l2.Server)
	assert.Equal(t, rebind.at, l2.Acquired)
}

func TestExpiry(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	l := h.handshake(func(m *Message) { m.Options.SetLeaseTime(10 * time.Minute) })
	assert.Equal(t, 5*time.Minute, l.T1)
	assert.Equal(t, 8*time.Minute+45*time.Second, l.T2)

	var rebinds []time.Duration
	for {
		waitAndAdvance(t, h.clock)
		s := h.net.next()
		if typ, _ := s.msg.Type(); typ == DHCPDISCOVER {
			assert.Equal(t, l.Expiry(), s.at, "DISCOVER right at expiry")
			break
		}
		if s.dst == broadcastDst {
			rebinds = append(rebinds, s.at)
		}
		require.Less(t, s.at, l.Expiry())
	}
	gone := recv(t, h.expired, "expiry")
	assert.Equal(t, l, gone)
	_, ok := h.c.Lease()
	assert.False(t, ok)
	assert.Equal(t, StateSelecting, h.c.State())
	// REBINDING: broadcast at T2, then after max(half the remaining time, 60 s).
	assert.Equal(t, []time.Duration{l.RebindAt(), l.RebindAt() + time.Minute}, rebinds)
}

func TestNAKWhileRenewing(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	l := h.handshake(nil)
	waitAndAdvance(t, h.clock)
	r := h.net.nextOf(DHCPREQUEST)
	h.net.reply(r.msg, DHCPNAK, nil)
	gone := recv(t, h.expired, "lease lost to NAK")
	assert.Equal(t, l, gone)
	d := h.net.nextOf(DHCPDISCOVER)
	assert.Equal(t, r.at, d.at)
}

func TestRelease(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	l := h.handshake(nil)

	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	require.NoError(t, h.c.Release(ctx))
	rel := h.net.nextOf(DHCPRELEASE)
	assert.Equal(t, netip.AddrPortFrom(testServer, ServerPort), rel.dst)
	assert.Equal(t, testYour, rel.msg.CIAddr)
	sid, err := rel.msg.Options.ServerIdentifier()
	require.NoError(t, err)
	assert.Equal(t, testServer, sid)
	assert.Equal(t, l, recv(t, h.expired, "OnExpire after release"))
	assert.NoError(t, recv(t, h.done, "Run's return after Release"))
	h.done <- nil
	_, ok := h.c.Lease()
	assert.False(t, ok)
	assert.ErrorIs(t, h.c.Release(ctx), ErrNoLease)
}

func TestReleaseWhileAcquiring(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	h.net.nextOf(DHCPDISCOVER)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	assert.ErrorIs(t, h.c.Release(ctx), ErrNoLease)
	assert.NoError(t, recv(t, h.done, "Run's return after Release"))
	h.done <- nil
	h.net.quiet()
	assert.Empty(t, h.expired)

	// A later Run starts over from INIT.
	h.run()
	h.handshake(nil)
}

func TestReleaseOnExit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release bool
	}{{"release", true}, {"keep", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.ReleaseOnExit = tc.release })
			h.run()
			h.handshake(nil)
			require.NoError(t, h.stop())
			if tc.release {
				h.net.nextOf(DHCPRELEASE)
				recv(t, h.expired, "OnExpire")
			} else {
				h.net.quiet()
				_, ok := h.c.Lease()
				assert.True(t, ok, "the lease is kept")
			}
		})
	}
}

func TestAcquireThenRun(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	got := make(chan Lease, 1)
	go func() {
		l, err := h.c.Acquire(ctx)
		assert.NoError(t, err)
		got <- l
	}()
	l := h.handshake(nil)
	assert.Equal(t, l, recv(t, got, "Acquire's lease"))
	assert.Zero(t, h.net.receiving.Load(), "Acquire left a Receive running")

	// A second Acquire returns the held lease without sending anything.
	l2, err := h.c.Acquire(ctx)
	require.NoError(t, err)
	assert.Equal(t, l, l2)
	h.net.quiet()

	// Run keeps it: the next message is the renewal at T1. Run may arm
	// other timers first (a far-off one while it starts), so wait until the
	// earliest deadline is T1 rather than for any timer.
	h.run()
	require.Eventually(t, func() bool {
		next, ok := h.clock.NextDeadline()
		return ok && next == l.RenewAt()
	}, hangGuard, time.Millisecond, "Run never armed the renewal at T1 (%v)", l.RenewAt())
	require.True(t, h.clock.AdvanceToNext())
	assert.Equal(t, l.RenewAt(), h.clock.Monotonic())
	h.net.nextOf(DHCPREQUEST)
}

func TestAcquireCanceled(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.c.Acquire(ctx)
		errc <- err
	}()
	h.net.nextOf(DHCPDISCOVER)
	cancel()
	err := recv(t, errc, "Acquire's error")
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, h.net.receiving.Load())
}

func TestInitReboot(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequestedIP = testYour })
	assert.Equal(t, StateInitReboot, h.c.State())
	h.run()
	r := h.net.nextOf(DHCPREQUEST)
	assert.Equal(t, broadcastDst, r.dst)
	ri, err := r.msg.Options.RequestedIPAddress()
	require.NoError(t, err)
	assert.Equal(t, testYour, ri)
	assert.False(t, r.msg.Options.Has(OptionServerIdentifier))
	assert.Equal(t, netip.IPv4Unspecified(), r.msg.CIAddr)
	assert.Equal(t, StateRebooting, h.c.State())
	h.net.reply(r.msg, DHCPACK, nil)
	l := recv(t, h.leases, "lease")
	assert.Equal(t, testYour, l.Addr.Addr())
}

func TestInitRebootUnanswered(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequestedIP = testYour })
	h.run()
	for range maxRequests {
		h.net.nextOf(DHCPREQUEST)
		waitAndAdvance(t, h.clock)
	}
	h.net.nextOf(DHCPDISCOVER)
}

func TestDecline(t *testing.T) {
	checked := 0
	h := newHarness(t, func(c *Config) {
		c.Check = func(l Lease) error {
			checked++
			if checked == 1 {
				return errors.New("address in use")
			}
			return nil
		}
	})
	h.run()
	d := h.net.nextOf(DHCPDISCOVER)
	h.net.reply(d.msg, DHCPOFFER, nil)
	r := h.net.nextOf(DHCPREQUEST)
	h.net.reply(r.msg, DHCPACK, nil)
	dec := h.net.nextOf(DHCPDECLINE)
	assert.Equal(t, broadcastDst, dec.dst)
	ri, err := dec.msg.Options.RequestedIPAddress()
	require.NoError(t, err)
	assert.Equal(t, testYour, ri)
	sid, err := dec.msg.Options.ServerIdentifier()
	require.NoError(t, err)
	assert.Equal(t, testServer, sid)

	at := waitAndAdvance(t, h.clock)
	assert.Equal(t, dec.at+10*time.Second, at)
	l := h.handshake(nil)
	assert.Equal(t, 2, checked)
	assert.Equal(t, testYour, l.Addr.Addr())
}

func TestInfiniteLease(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	l := h.handshake(func(m *Message) { m.Options.SetLeaseTime(Infinite) })
	assert.Equal(t, Infinite, l.Lease)
	assert.Equal(t, Infinite, l.Expiry())
	h.clock.Advance(1000 * time.Hour)
	assert.Equal(t, StateBound, h.c.State())
	h.net.quiet()
}

func TestRunExclusive(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	h.net.nextOf(DHCPDISCOVER)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	_, err := h.c.Acquire(ctx)
	assert.ErrorIs(t, err, ErrRunning)
	assert.ErrorIs(t, h.c.Run(ctx), ErrRunning)
}

func TestTransportFailure(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.c.Run(ctx) }()
	h.net.nextOf(DHCPDISCOVER)
	h.net.failRecv <- hal.ErrClosed
	err := recv(t, errc, "Run's error")
	assert.ErrorIs(t, err, hal.ErrClosed)
	assert.Zero(t, h.net.receiving.Load())
}

func TestDoneContext(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, h.c.Run(ctx))
	_, err := h.c.Acquire(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	h.net.quiet()
}

func TestLeaseIsACopy(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	h.handshake(nil)
	l, ok := h.c.Lease()
	require.True(t, ok)
	l.DNS[0] = netip.MustParseAddr("6.6.6.6")
	l2, _ := h.c.Lease()
	assert.Equal(t, netip.MustParseAddr("10.0.2.3"), l2.DNS[0])
}

func TestConfigRequired(t *testing.T) {
	c := NewClient(Config{})
	_, err := c.Acquire(context.Background())
	assert.ErrorContains(t, err, "required")
}

func TestUnusableReplies(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	d := h.net.nextOf(DHCPDISCOVER)
	// An offer of 0.0.0.0, an offer without server identifier, garbage.
	h.net.reply(d.msg, DHCPOFFER, func(m *Message) { m.YIAddr = netip.IPv4Unspecified() })
	h.net.reply(d.msg, DHCPOFFER, func(m *Message) { m.Options.Del(OptionServerIdentifier) })
	h.net.in <- []byte("not dhcp")
	h.net.reply(d.msg, DHCPOFFER, nil)
	r := h.net.nextOf(DHCPREQUEST)
	// An ACK without lease time is ignored; the client keeps waiting.
	h.net.reply(r.msg, DHCPACK, func(m *Message) { m.Options.Del(OptionIPAddressLeaseTime) })
	h.net.reply(r.msg, DHCPACK, nil)
	l := recv(t, h.leases, "lease")
	assert.Equal(t, time.Hour, l.Lease)
}

func TestConcurrentAccessors(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = h.c.State()
				_, _ = h.c.Lease()
			}
		}
	})
	h.handshake(nil)
	close(stop)
	wg.Wait()
}

func TestLeaseFromAck(t *testing.T) {
	base := func() *Message {
		m := &Message{Op: BOOTREPLY, YIAddr: testYour}
		require.NoError(t, m.Options.SetServerIdentifier(testServer))
		m.Options.SetLeaseTime(time.Hour)
		return m
	}
	for _, tc := range []struct {
		name string
		edit func(*Message)
		want func(*Lease)
		err  string
	}{
		{"defaults", nil, func(l *Lease) {
			l.Addr = netip.MustParsePrefix("10.0.2.15/8") // class A
			l.T1, l.T2 = 30*time.Minute, 52*time.Minute+30*time.Second
		}, ""},
		{"server times", func(m *Message) {
			m.Options.SetRenewalTime(10 * time.Minute)
			m.Options.SetRebindingTime(20 * time.Minute)
		}, func(l *Lease) {
			l.Addr = netip.MustParsePrefix("10.0.2.15/8")
			l.T1, l.T2 = 10*time.Minute, 20*time.Minute
		}, ""},
		{"inconsistent times", func(m *Message) {
			m.Options.SetRenewalTime(50 * time.Minute)
			m.Options.SetRebindingTime(20 * time.Minute)
		}, func(l *Lease) {
			l.Addr = netip.MustParsePrefix("10.0.2.15/8")
			l.T1, l.T2 = 30*time.Minute, 52*time.Minute+30*time.Second
		}, ""},
		{"T2 beyond lease", func(m *Message) { m.Options.SetRebindingTime(2 * time.Hour) }, func(l *Lease) {
			l.Addr = netip.MustParsePrefix("10.0.2.15/8")
			l.T1, l.T2 = 30*time.Minute, 52*time.Minute+30*time.Second
		}, ""},
		{"classless routes win over router", func(m *Message) {
			require.NoError(t, m.Options.SetSubnetMask(24))
			require.NoError(t, m.Options.SetRouters(netip.MustParseAddr("10.0.2.9")))
			require.NoError(t, m.Options.SetClasslessStaticRoutes(
				Route{netip.MustParsePrefix("172.16.0.0/12"), netip.MustParseAddr("10.0.2.5")},
				Route{netip.MustParsePrefix("0.0.0.0/0"), testServer}))
			m.Options.SetInterfaceMTU(9000)
			require.NoError(t, m.Options.SetBroadcastAddress(netip.MustParseAddr("10.0.2.255")))
		}, func(l *Lease) {
			l.Addr = netip.MustParsePrefix("10.0.2.15/24")
			l.T1, l.T2 = 30*time.Minute, 52*time.Minute+30*time.Second
			l.Router = testServer
			l.Routes = []Route{{netip.MustParsePrefix("172.16.0.0/12"), netip.MustParseAddr("10.0.2.5")}, {netip.MustParsePrefix("0.0.0.0/0"), testServer}}
			l.MTU = 9000
			l.Broadcast = netip.MustParseAddr("10.0.2.255")
		}, ""},
		{"zero times ignored", func(m *Message) {
			m.Options.SetRenewalTime(0)
			m.Options.SetRebindingTime(0)
		}, func(l *Lease) {
			l.Addr = netip.MustParsePrefix("10.0.2.15/8")
			l.T1, l.T2 = 30*time.Minute, 52*time.Minute+30*time.Second
		}, ""},
		{"no yiaddr", func(m *Message) { m.YIAddr = netip.IPv4Unspecified() }, nil, "unusable yiaddr"},
		{"no server id", func(m *Message) { m.Options.Del(OptionServerIdentifier) }, nil, "Server Identifier"},
		{"no lease time", func(m *Message) { m.Options.Del(OptionIPAddressLeaseTime) }, nil, "Lease Time"},
		{"zero lease time", func(m *Message) { m.Options.SetLeaseTime(0) }, nil, "lease time 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			if tc.edit != nil {
				tc.edit(m)
			}
			l, err := leaseFromAck(m, 7*time.Second)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			want := Lease{Server: testServer, Lease: time.Hour, Acquired: 7 * time.Second}
			tc.want(&want)
			assert.Equal(t, want, l)
		})
	}
}
