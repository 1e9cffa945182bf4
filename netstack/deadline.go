package netstack

import (
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// deadline is one direction's deadline of a connection, measured on the
// stack's clock. Waiters select on the channel returned by done, which is
// closed once the deadline has passed. Moving a deadline keeps an open
// channel (so a blocked waiter sees the new deadline) and replaces a closed
// one.
type deadline struct {
	clock hal.Clock

	mu    sync.Mutex
	ch    chan struct{}
	timer hal.Timer
	gen   uint64
}

func (d *deadline) init(c hal.Clock) {
	d.clock = c
	d.ch = make(chan struct{})
}

func (d *deadline) done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

func (d *deadline) passed() bool {
	select {
	case <-d.done():
		return true
	default:
		return false
	}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.gen++
	select {
	case <-d.ch:
		d.ch = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	wait := t.Sub(d.clock.Now())
	if wait <= 0 {
		close(d.ch)
		return
	}
	ch, gen := d.ch, d.gen
	d.timer = d.clock.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			close(ch)
			d.timer = nil
		}
	})
}

// stop cancels a pending timer so that a closed connection keeps nothing
// scheduled on the clock.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
