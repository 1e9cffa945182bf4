package dhcp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// Transport carries the client's UDP payloads. A network stack implements
// it with a UDP socket bound to port 68 on the interface being configured,
// with broadcast allowed.
//
// Both methods are called from the client's goroutines, Send and Receive
// concurrently with each other but each never concurrently with itself.
type Transport interface {
	// Send transmits pkt as one UDP datagram from port 68 to dst: either
	// 255.255.255.255:67 (a limited broadcast on the interface, sent with
	// source address 0.0.0.0 while the interface has no address) or a
	// server's unicast address and port 67. Send must not retain pkt. An
	// error counts as a lost datagram: the client retransmits as usual.
	Send(ctx context.Context, pkt []byte, dst netip.AddrPort) error

	// Receive blocks until a UDP datagram for port 68 arrives on the
	// interface, copies its payload into buf (truncating, as recvfrom does)
	// and returns the payload length and source. The transport must deliver
	// datagrams sent to 255.255.255.255:68 and to the address being offered
	// even before that address is configured (or the client must set
	// Config.Broadcast so servers broadcast their replies). Receive must
	// return promptly once ctx is done; any error while ctx is not done is
	// taken to mean the transport is unusable and ends Run or Acquire.
	Receive(ctx context.Context, buf []byte) (int, netip.AddrPort, error)
}

// Config configures a [Client]. Clock and Transport are required; every
// other zero value is a documented default.
type Config struct {
	// MAC is the interface's hardware address, sent in chaddr.
	MAC hal.MAC

	// Hostname, if not empty, is sent as option 12.
	Hostname string

	// ClientID is sent as option 61; the default is type 1 (Ethernet)
	// followed by MAC, as RFC 2132 §9.14 suggests.
	ClientID []byte

	// Clock times retransmissions and leases. Required.
	Clock hal.Clock

	// Transport sends and receives the messages. Required.
	Transport Transport

	// Rand supplies transaction IDs and retransmission jitter; the default
	// is crypto/rand.
	Rand io.Reader

	// RequestedIP, if valid, is an address to ask for again first
	// (INIT-REBOOT, RFC 2131 §3.2), such as the one of a previous lease.
	RequestedIP netip.Addr

	// Broadcast sets the BROADCAST flag in DHCPDISCOVER and DHCPREQUEST
	// messages sent before the client has an address, asking servers to
	// broadcast their replies; for transports that cannot receive unicast
	// to an address not yet configured.
	Broadcast bool

	// ReleaseOnExit makes Run send DHCPRELEASE for a lease it holds when
	// its context is done.
	ReleaseOnExit bool

	// OnLease is called when a lease is granted or extended; the network
	// stack applies Addr, Router and DNS. When a renewal changes the address,
	// OnExpire is called for the old lease first.
	OnLease func(Lease)

	// OnExpire is called when a lease stops being valid: it expired, a
	// server refused its renewal (DHCPNAK), or it was released. The stack
	// removes the address.
	OnExpire func(Lease)

	// Check, if set, vets an acknowledged lease before it is used (for
	// instance with an ARP probe for the address, RFC 2131 §2.2). An error
	// makes the client send DHCPDECLINE and start over after 10 seconds.
	Check func(Lease) error

	// Logger receives debug and warning records; the default discards them.
	Logger *slog.Logger
}

// State is a state of the client (RFC 2131 §4.4, figure 5).
type State int

// Client states (RFC 2131 figure 5).
const (
	StateInit State = iota
	StateSelecting
	StateRequesting
	StateBound
	StateRenewing
	StateRebinding
	StateInitReboot
	StateRebooting
)

// String spells the state as RFC 2131 does.
func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateSelecting:
		return "SELECTING"
	case StateRequesting:
		return "REQUESTING"
	case StateBound:
		return "BOUND"
	case StateRenewing:
		return "RENEWING"
	case StateRebinding:
		return "REBINDING"
	case StateInitReboot:
		return "INIT-REBOOT"
	case StateRebooting:
		return "REBOOTING"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Errors of the client.
var (
	// ErrRunning is returned by Run and Acquire while another Run or
	// Acquire of the same client is in progress.
	ErrRunning = errors.New("dhcp: client already running")

	// ErrNoLease is returned by Release when the client holds no lease.
	ErrNoLease = errors.New("dhcp: no lease")
)

// maxRequests is how many times a DHCPREQUEST is sent in REQUESTING or
// REBOOTING before the client gives up and starts over in INIT: with the
// §4.1 backoff that is about a minute.
const maxRequests = 4

// receiveBufSize bounds the messages the client accepts: well above the
// maximum message size it advertises.
const receiveBufSize = 4096

// advertisedMaxSize is the maximum message size sent in option 57: an
// Ethernet MTU.
const advertisedMaxSize = 1500

// releaseTimeout bounds the DHCPRELEASE sent when Run's context is done.
const releaseTimeout = 2 * time.Second

var (
	broadcastDst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), ServerPort)
)

// Client is a DHCPv4 client for one interface. Its methods are safe for
// concurrent use; Run and Acquire exclude each other.
type Client struct {
	cfg Config
	log *slog.Logger

	// sem is held by whoever drives the protocol: Run, Acquire, or Release
	// when neither is running.
	sem        chan struct{}
	releaseReq chan releaseRequest

	mu       sync.Mutex // guards state and lease for State and Lease
	state    State
	lease    Lease
	hasLease bool

	// Protocol state, owned by the holder of sem.
	xid         uint32
	began       time.Duration // start of this acquisition or renewal (secs)
	reqSent     time.Duration // first transmission of the current request
	tries       int           // transmissions of the current message
	retryAt     time.Duration // next retransmission or restart
	offered     netip.Addr    // the address of the selected DHCPOFFER
	offerServer netip.Addr    // and its server
	naks        int           // DHCPNAKs since the last lease
	rebootDone  bool
}

type releaseRequest struct {
	ctx  context.Context
	done chan error
}

// NewClient returns a client in INIT (or INIT-REBOOT when
// cfg.RequestedIP is set). It sends nothing until Run or Acquire.
func NewClient(cfg Config) *Client {
	c := &Client{
		cfg:        cfg,
		log:        cfg.Logger,
		sem:        make(chan struct{}, 1),
		releaseReq: make(chan releaseRequest),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.cfg.Rand == nil {
		c.cfg.Rand = rand.Reader
	}
	if c.cfg.ClientID == nil {
		c.cfg.ClientID = append([]byte{HTypeEthernet}, cfg.MAC[:]...)
	}
	if cfg.RequestedIP.Is4() {
		c.state = StateInitReboot
	}
	return c
}

// State returns the client's current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Lease returns the lease the client holds, if any.
func (c *Client) Lease() (Lease, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease.clone(), c.hasLease
}

func (c *Client) setState(s State) {
	c.mu.Lock()
	old := c.state
	c.state = s
	c.mu.Unlock()
	if old != s {
		c.log.Debug("dhcp: state", "from", old, "to", s)
	}
}

// Run obtains a lease and keeps it: it renews at T1, rebinds at T2, starts
// over when the lease expires or is refused, and calls Config.OnLease and
// Config.OnExpire as the lease changes. It returns nil when ctx is done
// (after sending DHCPRELEASE if Config.ReleaseOnExit is set) or after
// Release, and an error if the transport fails.
func (c *Client) Run(ctx context.Context) error {
	_, err := c.drive(ctx, false)
	return err
}

// Acquire obtains a lease, or returns the one the client holds if it has
// not expired, and returns without renewing it: call Run to keep it.
// Config.OnLease is called as in Run.
func (c *Client) Acquire(ctx context.Context) (Lease, error) {
	return c.drive(ctx, true)
}

// Release gives the lease back to its server (DHCPRELEASE, RFC 2131 §4.4.6)
// and calls Config.OnExpire. If Run is in progress, Run returns once the
// release is sent. It returns ErrNoLease if the client holds none (Run is
// stopped all the same). It must not be called from OnLease or OnExpire.
func (c *Client) Release(ctx context.Context) error {
	req := releaseRequest{ctx: ctx, done: make(chan error, 1)}
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
		return c.release(ctx)
	case c.releaseReq <- req:
		select {
		case err := <-req.done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("dhcp: release: %w", ctx.Err())
		}
	case <-ctx.Done():
		return fmt.Errorf("dhcp: release: %w", ctx.Err())
	}
}

// drive runs the state machine until ctx is done, Release, a transport
// failure, or (if oneShot) a lease.
func (c *Client) drive(ctx context.Context, oneShot bool) (Lease, error) {
	if c.cfg.Clock == nil || c.cfg.Transport == nil {
		return Lease{}, errors.New("dhcp: Config.Clock and Config.Transport are required")
	}
	select {
	case c.sem <- struct{}{}:
	default:
		return Lease{}, ErrRunning
	}
	defer func() { <-c.sem }()
	if err := ctx.Err(); err != nil {
		if oneShot {
			return Lease{}, fmt.Errorf("dhcp: acquire: %w", err)
		}
		return Lease{}, nil
	}

	clock := c.cfg.Clock
	now := clock.Monotonic()
	c.mu.Lock()
	lease, has := c.lease, c.hasLease
	c.mu.Unlock()
	if has && oneShot && now < lease.Expiry() {
		return lease.clone(), nil
	}
	if !has {
		// Start (or start over) from INIT, or INIT-REBOOT the first time.
		if c.cfg.RequestedIP.Is4() && !c.rebootDone {
			c.setState(StateInitReboot)
		} else {
			c.setState(StateInit)
		}
		c.retryAt = now
	}

	rctx, stop := context.WithCancel(ctx)
	rx := make(chan *Message)
	rxErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { c.receive(rctx, rx, rxErr) })
	defer func() {
		stop()
		wg.Wait()
	}()

	// The wake-up timer is created the first time there is a deadline, so
	// no placeholder timer is ever pending on the clock.
	wake := make(chan struct{}, 1)
	var timer hal.Timer
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
		}
	}
	defer stopTimer()

	for {
		now := clock.Monotonic()
		deadline := c.deadline()
		if now >= deadline {
			c.timeout(ctx, now)
			continue
		}
		if deadline != Infinite {
			if timer == nil {
				timer = clock.AfterFunc(deadline-now, func() {
					select {
					case wake <- struct{}{}:
					default:
					}
				})
			} else {
				timer.Reset(deadline - now)
			}
		}
		select {
		case <-ctx.Done():
			stopTimer()
			if !oneShot && c.cfg.ReleaseOnExit {
				c.releaseOnExit(ctx)
			}
			if oneShot {
				return Lease{}, fmt.Errorf("dhcp: acquire: %w", ctx.Err())
			}
			return Lease{}, nil
		case err := <-rxErr:
			stopTimer()
			return Lease{}, fmt.Errorf("dhcp: receive: %w", err)
		case req := <-c.releaseReq:
			stopTimer()
			req.done <- c.release(req.ctx)
			return Lease{}, nil
		case m := <-rx:
			stopTimer()
			if l, bound := c.handle(ctx, m); bound && oneShot {
				return l.clone(), nil
			}
		case <-wake:
		}
	}
}

// receive reads, parses and filters replies until ctx is done.
func (c *Client) receive(ctx context.Context, out chan<- *Message, errc chan<- error) {
	buf := make([]byte, receiveBufSize)
	for {
		n, src, err := c.cfg.Transport.Receive(ctx, buf)
		if err != nil {
			if ctx.Err() == nil {
				errc <- err
			}
			return
		}
		m, err := ParseMessage(buf[:n])
		if err != nil {
			c.log.Debug("dhcp: dropping malformed datagram", "from", src, "err", err)
			continue
		}
		if m.Op != BOOTREPLY || m.HLen != 6 || [6]byte(m.CHAddr[:6]) != c.cfg.MAC {
			continue
		}
		select {
		case out <- m:
		case <-ctx.Done():
			return
		}
	}
}

// deadline returns the Monotonic time of the next timed event.
func (c *Client) deadline() time.Duration {
	c.mu.Lock()
	state, lease := c.state, c.lease
	c.mu.Unlock()
	switch state {
	case StateBound:
		return lease.RenewAt()
	case StateRenewing:
		return min(c.retryAt, lease.RebindAt())
	case StateRebinding:
		return min(c.retryAt, lease.Expiry())
	}
	return c.retryAt
}

// timeout handles the arrival of the deadline.
func (c *Client) timeout(ctx context.Context, now time.Duration) {
	switch c.State() {
	case StateInit:
		c.discover(ctx, now)
	case StateSelecting:
		c.tries++
		c.sendDiscover(ctx, now)
	case StateInitReboot:
		c.rebootDone = true
		c.newXID()
		c.began, c.reqSent, c.tries = now, now, 0
		c.setState(StateRebooting)
		c.sendRequest(ctx, now)
	case StateRequesting, StateRebooting:
		if c.tries >= maxRequests {
			c.log.Warn("dhcp: no answer to DHCPREQUEST, starting over", "tries", c.tries)
			c.discover(ctx, now)
			return
		}
		c.sendRequest(ctx, now)
	case StateBound, StateRenewing, StateRebinding:
		c.leaseTimeout(ctx, now)
	}
}

// leaseTimeout moves through RENEWING and REBINDING to expiry.
func (c *Client) leaseTimeout(ctx context.Context, now time.Duration) {
	lease, _ := c.Lease()
	state := c.State()
	switch {
	case now >= lease.Expiry():
		c.log.Warn("dhcp: lease expired", "addr", lease.Addr)
		c.dropLease()
		c.discover(ctx, now)
	case now >= lease.RebindAt() && state != StateRebinding:
		c.newXID()
		c.began, c.reqSent, c.tries = now, now, 0
		c.setState(StateRebinding)
		c.sendRequest(ctx, now)
	case now >= lease.RenewAt() && state == StateBound:
		c.newXID()
		c.began, c.reqSent, c.tries = now, now, 0
		c.setState(StateRenewing)
		c.sendRequest(ctx, now)
	case now >= c.retryAt && (state == StateRenewing || state == StateRebinding):
		c.sendRequest(ctx, now)
	}
}

// discover starts over in INIT: a new transaction, DHCPDISCOVER.
func (c *Client) discover(ctx context.Context, now time.Duration) {
	c.newXID()
	c.began, c.tries = now, 0
	c.offered, c.offerServer = netip.Addr{}, netip.Addr{}
	c.sendDiscover(ctx, now)
}

func (c *Client) sendDiscover(ctx context.Context, now time.Duration) {
	c.setState(StateSelecting)
	m := c.newMessage(DHCPDISCOVER, now)
	if c.cfg.Broadcast {
		m.Flags |= FlagBroadcast
	}
	c.addRequestOptions(m)
	c.send(ctx, m, broadcastDst)
	c.retryAt = now + c.backoff(c.tries)
}

// sendRequest sends (or resends) the DHCPREQUEST of the current state
// (RFC 2131 §4.3.2, table 4) and schedules the next transmission.
func (c *Client) sendRequest(ctx context.Context, now time.Duration) {
	state := c.State()
	lease, _ := c.Lease()
	m := c.newMessage(DHCPREQUEST, now)
	dst := broadcastDst
	switch state {
	case StateRequesting:
		_ = m.Options.SetRequestedIPAddress(c.offered)
		_ = m.Options.SetServerIdentifier(c.offerServer)
	case StateRebooting:
		_ = m.Options.SetRequestedIPAddress(c.cfg.RequestedIP)
	case StateRenewing:
		m.CIAddr = lease.Addr.Addr()
		dst = netip.AddrPortFrom(lease.Server, ServerPort)
	case StateRebinding:
		m.CIAddr = lease.Addr.Addr()
	}
	if c.cfg.Broadcast && !m.CIAddr.IsValid() {
		m.Flags |= FlagBroadcast
	}
	c.addRequestOptions(m)
	c.send(ctx, m, dst)
	switch state {
	case StateRenewing:
		// RFC 2131 §4.4.5: half the time to T2, at least 60 s.
		c.retryAt = now + max((lease.RebindAt()-now)/2, minRenewRetry)
	case StateRebinding:
		c.retryAt = now + max((lease.Expiry()-now)/2, minRenewRetry)
	default:
		c.retryAt = now + c.backoff(c.tries)
	}
	c.tries++
}

// handle processes a reply, reporting a new or extended lease.
func (c *Client) handle(ctx context.Context, m *Message) (Lease, bool) {
	now := c.cfg.Clock.Monotonic()
	state := c.State()
	if m.XID != c.xid {
		return Lease{}, false
	}
	typ, err := m.Type()
	if err != nil {
		return Lease{}, false
	}
	server, _ := m.Options.ServerIdentifier()
	c.log.Debug("dhcp: received", "msg", m, "server", server, "state", state)
	switch state {
	case StateSelecting:
		if typ != DHCPOFFER {
			return Lease{}, false
		}
		if !m.YIAddr.Is4() || m.YIAddr.IsUnspecified() || !server.IsValid() {
			c.log.Warn("dhcp: ignoring unusable DHCPOFFER", "yiaddr", m.YIAddr, "server", server)
			return Lease{}, false
		}
		// The first acceptable offer wins (RFC 2131 §4.4.1 lets the client
		// choose; waiting for more only delays configuration).
		c.offered, c.offerServer = m.YIAddr, server
		c.reqSent, c.tries = now, 0
		c.setState(StateRequesting)
		c.sendRequest(ctx, now)
	case StateRequesting, StateRebooting, StateRenewing, StateRebinding:
		if state == StateRequesting && server.IsValid() && server != c.offerServer {
			return Lease{}, false
		}
		switch typ {
		case DHCPACK:
			l, err := leaseFromAck(m, c.reqSent)
			if err != nil {
				c.log.Warn("dhcp: ignoring unusable DHCPACK", "err", err)
				return Lease{}, false
			}
			if state == StateRequesting || state == StateRebooting {
				if c.cfg.Check != nil {
					if err := c.cfg.Check(l); err != nil {
						c.decline(ctx, l, now, err)
						return Lease{}, false
					}
				}
			}
			c.bind(l)
			return l, true
		case DHCPNAK:
			text, _ := m.Options.Message()
			c.log.Warn("dhcp: DHCPNAK", "server", server, "message", text, "state", state)
			c.naks++
			if state == StateRenewing || state == StateRebinding {
				c.dropLease()
			}
			// Start over at once after one refusal; back off if the
			// servers keep refusing.
			c.setState(StateInit)
			c.retryAt = now
			if c.naks > 1 {
				c.retryAt = now + c.backoff(c.naks-2)
			}
		}
	}
	return Lease{}, false
}

// bind enters BOUND with l.
func (c *Client) bind(l Lease) {
	c.mu.Lock()
	old, had := c.lease, c.hasLease
	c.mu.Unlock()
	if had && old.Addr != l.Addr {
		c.dropLease()
	}
	c.mu.Lock()
	c.lease, c.hasLease = l, true
	c.state = StateBound
	c.mu.Unlock()
	c.naks = 0
	c.log.Debug("dhcp: bound", "addr", l.Addr, "router", l.Router, "lease", l.Lease, "server", l.Server)
	if c.cfg.OnLease != nil {
		c.cfg.OnLease(l.clone())
	}
}

// dropLease forgets the lease and calls OnExpire.
func (c *Client) dropLease() {
	c.mu.Lock()
	l, had := c.lease, c.hasLease
	c.lease, c.hasLease = Lease{}, false
	c.state = StateInit
	c.mu.Unlock()
	if had && c.cfg.OnExpire != nil {
		c.cfg.OnExpire(l.clone())
	}
}

// decline refuses an acknowledged address and waits before starting over.
func (c *Client) decline(ctx context.Context, l Lease, now time.Duration, why error) {
	c.log.Warn("dhcp: declining address", "addr", l.Addr, "err", why)
	m := c.newMessage(DHCPDECLINE, now)
	m.Secs = 0
	_ = m.Options.SetRequestedIPAddress(l.Addr.Addr())
	_ = m.Options.SetServerIdentifier(l.Server)
	c.send(ctx, m, broadcastDst)
	c.setState(StateInit)
	c.retryAt = now + declineWait
}

// release sends DHCPRELEASE for the lease and drops it.
func (c *Client) release(ctx context.Context) error {
	l, ok := c.Lease()
	if !ok {
		return ErrNoLease
	}
	c.newXID()
	m := c.newMessage(DHCPRELEASE, c.cfg.Clock.Monotonic())
	m.Secs = 0
	m.CIAddr = l.Addr.Addr()
	_ = m.Options.SetServerIdentifier(l.Server)
	b, err := m.MarshalBinary()
	if err == nil {
		err = c.cfg.Transport.Send(ctx, b, netip.AddrPortFrom(l.Server, ServerPort))
	}
	c.dropLease()
	if err != nil {
		return fmt.Errorf("dhcp: send DHCPRELEASE: %w", err)
	}
	return nil
}

// releaseOnExit releases the lease after ctx is done, within a time bound
// measured on the client's clock.
func (c *Client) releaseOnExit(ctx context.Context) {
	if _, ok := c.Lease(); !ok {
		return
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := c.cfg.Clock.AfterFunc(releaseTimeout, cancel)
	defer func() {
		t.Stop()
		cancel()
	}()
	if err := c.release(rctx); err != nil {
		c.log.Warn("dhcp: release on exit", "err", err)
	}
}

// newMessage returns a request of type t in the current transaction.
func (c *Client) newMessage(t MessageType, now time.Duration) *Message {
	m := &Message{Op: BOOTREQUEST, XID: c.xid}
	m.SetHardwareAddr(c.cfg.MAC)
	m.Secs = uint16(min((now-c.began)/time.Second, 0xffff))
	m.Options.SetMessageType(t)
	m.Options.SetClientIdentifier(c.cfg.ClientID)
	return m
}

// addRequestOptions adds what DHCPDISCOVER and DHCPREQUEST carry besides
// their addresses (RFC 2131 table 5).
func (c *Client) addRequestOptions(m *Message) {
	m.Options.SetMaximumMessageSize(advertisedMaxSize)
	if c.cfg.Hostname != "" {
		m.Options.SetHostName(c.cfg.Hostname)
	}
	m.Options.SetParameterRequestList(
		OptionSubnetMask, OptionRouter, OptionDomainNameServer, OptionDomainName,
		OptionBroadcastAddress, OptionInterfaceMTU, OptionIPAddressLeaseTime,
		OptionRenewalTimeValue, OptionRebindingTimeValue, OptionClasslessStaticRoute,
	)
}

func (c *Client) send(ctx context.Context, m *Message, dst netip.AddrPort) {
	b, err := m.MarshalBinary()
	if err == nil {
		err = c.cfg.Transport.Send(ctx, b, dst)
	}
	if err != nil {
		c.log.Warn("dhcp: send failed", "msg", m, "to", dst, "err", err)
		return
	}
	c.log.Debug("dhcp: sent", "msg", m, "to", dst)
}

// newXID starts a new transaction.
func (c *Client) newXID() {
	var b [4]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
		c.xid++
		return
	}
	c.xid = binary.BigEndian.Uint32(b[:])
}

// backoff returns the wait after the n-th transmission (from 0): 4 s
// doubling to 64 s, plus a uniform jitter of ±1 s in milliseconds
// (RFC 2131 §4.1).
func (c *Client) backoff(n int) time.Duration {
	d := maxRetransmit
	if n < 4 {
		d = initialRetransmit << n
	}
	var b [2]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
		return d
	}
	steps := int64(2*retransmitJitter/time.Millisecond) + 1
	j := time.Duration(int64(binary.BigEndian.Uint16(b[:]))%steps)*time.Millisecond - retransmitJitter
	return d + j
}
