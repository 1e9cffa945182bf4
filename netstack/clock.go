package netstack

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/anykernel/anykernel/hal"
)

// clock adapts a hal.Clock to tcpip.Clock, so that every timer of the stack
// (TCP retransmission, delayed ACK, NDP, ARP) runs on the caller's clock,
// simulated or real.
type clock struct{ c hal.Clock }

func (c clock) Now() time.Time { return c.c.Now() }

func (c clock) NowMonotonic() tcpip.MonotonicTime {
	return tcpip.MonotonicTime{}.Add(c.c.Monotonic())
}

func (c clock) AfterFunc(d time.Duration, f func()) tcpip.Timer {
	return timer{c.c.AfterFunc(d, f)}
}

type timer struct{ t hal.Timer }

func (t timer) Stop() bool            { return t.t.Stop() }
func (t timer) Reset(d time.Duration) { t.t.Reset(d) }

// osClock is the default hal.Clock: the operating system's clocks.
type osClock struct{ start time.Time }

func newOSClock() *osClock { return &osClock{start: time.Now()} }

func (c *osClock) Now() time.Time { return time.Now() }

func (c *osClock) Monotonic() time.Duration { return time.Since(c.start) }

func (c *osClock) AfterFunc(d time.Duration, f func()) hal.Timer {
	return osTimer{time.AfterFunc(d, f)}
}

type osTimer struct{ t *time.Timer }

func (t osTimer) Stop() bool                 { return t.t.Stop() }
func (t osTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
