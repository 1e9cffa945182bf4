package mem

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// SwitchOptions configures a [Switch]. The zero value is a switch that
// never forgets a learned address.
type SwitchOptions struct {
	// AgeOut is how long a learned address stays in the forwarding table
	// without being seen as a source; 0 means forever.
	AgeOut time.Duration
	// Clock measures AgeOut; nil means real time.
	Clock hal.Clock
}

// SwitchStats are the counters of a [Switch].
type SwitchStats struct {
	Forwarded uint64 // frames sent to the one port that owns the destination
	Flooded   uint64 // frames sent to every other port (broadcast, multicast, unknown)
	Filtered  uint64 // frames whose destination is on the port they came from
	Drops     uint64 // frame copies dropped because a port's queue was full
}

// Switch is an in-memory learning Ethernet switch. It learns which port
// each source address lives behind, forwards unicast frames to a known
// destination's port only, and floods broadcast, multicast and unknown
// destinations to every other port.
//
// Unlike a [NewNICPair] link, a switch never makes a writer wait: when a
// port's receive queue is full the frame is dropped for that port and
// counted (in the port's RxDrops and the switch's Drops), so one stalled
// port cannot block the others. Ports' queues default to
// [DefaultSwitchQueueLen] frames, enough for a TCP flow between two ports of
// an otherwise idle switch not to lose frames.
//
// Offload headers travel through the switch; each receiving port gets the
// frame finished in software as far as its own Rx offloads require. Ports
// may have different MTUs: a frame (or segment) longer than the receiving
// port's MTU plus the Ethernet header is dropped for that port and counted.
type Switch struct {
	ageOut time.Duration
	clock  hal.Clock

	ports  atomic.Pointer[[]*NIC] // copied on write
	mu     sync.Mutex             // guards table and changes to ports
	table  map[hal.MAC]switchEntry
	closed atomic.Bool

	forwarded, flooded, filtered, drops atomic.Uint64
}

type switchEntry struct {
	port *NIC
	seen time.Duration
}

// NewSwitch returns a switch with no ports.
func NewSwitch(opts SwitchOptions) *Switch {
	s := &Switch{ageOut: opts.AgeOut, clock: opts.Clock, table: make(map[hal.MAC]switchEntry)}
	if s.clock == nil && s.ageOut > 0 {
		s.clock = newNetWallClock()
	}
	s.ports.Store(new([]*NIC))
	return s
}

// NewPort adds a port and returns the NIC plugged into it. opts.QueueLen 0
// means [DefaultSwitchQueueLen]. A port added to a closed switch is closed.
func (s *Switch) NewPort(opts NICOptions) *NIC {
	mac := opts.MAC
	if mac == (hal.MAC{}) {
		mac = nicFreshMAC()
	}
	n := newNIC(opts, mac, DefaultSwitchQueueLen)
	n.sw = s
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		_ = n.Close()
		return n
	}
	old := *s.ports.Load()
	ports := make([]*NIC, len(old), len(old)+1)
	copy(ports, old)
	ports = append(ports, n)
	s.ports.Store(&ports)
	s.mu.Unlock()
	return n
}

// Stats returns a snapshot of the switch's counters.
func (s *Switch) Stats() SwitchStats {
	return SwitchStats{
		Forwarded: s.forwarded.Load(), Flooded: s.flooded.Load(),
		Filtered: s.filtered.Load(), Drops: s.drops.Load(),
	}
}

// Close closes every port. Calling it again returns nil.
func (s *Switch) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for _, p := range *s.ports.Load() {
		_ = p.Close()
	}
	return nil
}

func (s *Switch) removePort(n *NIC) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.ports.Load()
	ports := make([]*NIC, 0, len(old))
	for _, p := range old {
		if p != n {
			ports = append(ports, p)
		}
	}
	s.ports.Store(&ports)
	for mac, e := range s.table {
		if e.port == n {
			delete(s.table, mac)
		}
	}
}

func (s *Switch) now() time.Duration {
	if s.ageOut <= 0 {
		return 0
	}
	return s.clock.Monotonic()
}

// forward delivers a frame written on port from. It never blocks.
func (s *Switch) forward(from *NIC, hdr *hal.NetHdr, p []byte, plan *gsoPlan) error {
	dst, src := hal.MAC(p[0:6]), hal.MAC(p[6:12])
	now := s.now()
	var to *NIC
	s.mu.Lock()
	if !src.IsMulticast() && !from.closed.Load() {
		if e, ok := s.table[src]; !ok || e.port != from || s.ageOut > 0 {
			s.table[src] = switchEntry{port: from, seen: now}
		}
	}
	if !dst.IsMulticast() {
		if e, ok := s.table[dst]; ok {
			if s.ageOut > 0 && now-e.seen > s.ageOut {
				delete(s.table, dst)
			} else {
				to = e.port
			}
		}
	}
	s.mu.Unlock()

	switch {
	case to == from:
		s.filtered.Add(1)
	case to != nil:
		s.forwarded.Add(1)
		s.deliver(from, to, hdr, p, plan)
	default:
		s.flooded.Add(1)
		for _, port := range *s.ports.Load() {
			if port != from {
				s.deliver(from, port, hdr, p, plan)
			}
		}
	}
	return nil
}

func (s *Switch) deliver(from, to *NIC, hdr *hal.NetHdr, p []byte, plan *gsoPlan) {
	rx := to.offloads()
	size := len(p)
	if plan != nil {
		if nicRxTakesGSO(rx, hdr) {
			size = 0 // a super-frame the port accepts whole
		} else {
			size = plan.maxSegLen()
		}
	}
	if size > to.mtu+hal.EthernetHeaderLen {
		// Ports may differ in MTU; like a real switch, drop what the
		// receiving port cannot take.
		to.rxDrops.Add(1)
		s.drops.Add(1)
		return
	}
	if dropped, _ := to.rx.put(from, rx, hdr, p, plan, false); dropped {
		to.rxDrops.Add(1)
		s.drops.Add(1)
	}
}
