package virtio

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// device is what every driver shares: the transport, the negotiated
// features, the queues, interrupt dispatch and the timeout policy.
type device struct {
	t    Transport
	name string
	// features are the negotiated feature bits. reinit rewrites them
	// (virtio-net changing its receive offloads) while the configuration
	// interrupt, the other queues' goroutines and callers of Features
	// may be reading them, so they are only loaded and stored whole.
	features atomic.Uint64
	queues   []*queue
	clock    hal.Clock
	timeout  time.Duration

	// life orders DEVICE_NEEDS_RESET handling against reinit, so a stale
	// status read cannot break queues a reset has just mended.
	life      sync.Mutex
	closeOnce sync.Once
	closed    chan struct{}
	onConfig  func() // driver hook for configuration changes, may be nil
	started   bool
	regions   [][]byte // buffer memory to free on release
}

// poolRegion is the most memory allocBufs asks the platform for at once
// (unless one buffer is larger), so no allocation needs a long run of
// physically contiguous pages.
const poolRegion = 256 << 10

// allocBufs allocates count buffers of size bytes, each aligned to align,
// carved from as few platform allocations as poolRegion allows.
func (d *device) allocBufs(count, size, align int) ([][]byte, []uint64, error) {
	stride := (size + align - 1) &^ (align - 1)
	per := max(1, poolRegion/stride)
	bufs := make([][]byte, 0, count)
	bus := make([]uint64, 0, count)
	for len(bufs) < count {
		k := min(per, count-len(bufs))
		region, base, err := d.t.DMA().Alloc(k*stride, max(align, 64))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: allocating %d buffers of %d bytes: %w", d.name, count, size, err)
		}
		d.regions = append(d.regions, region)
		for i := range k {
			bufs = append(bufs, region[i*stride:i*stride+size:i*stride+size])
			bus = append(bus, base+uint64(i*stride))
		}
	}
	return bufs, bus, nil
}

func newDevice(t Transport, name string, clock hal.Clock, timeout time.Duration) *device {
	if clock == nil {
		clock = realClock{origin: time.Now()}
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &device{t: t, name: name, clock: clock, timeout: timeout, closed: make(chan struct{})}
}

// has reports whether feature bit n was negotiated.
func (d *device) has(n uint) bool { return d.features.Load()&Bit(n) != 0 }

// start begins interrupt delivery and sets DRIVER_OK.
func (d *device) start() error {
	if !d.started {
		if err := d.t.Start(d.queueInterrupt, d.configInterrupt); err != nil {
			return fmt.Errorf("%s: interrupts: %w", d.name, err)
		}
		d.started = true
	}
	return driverOK(d.t)
}

func (d *device) queueInterrupt(q int) {
	if q >= 0 && q < len(d.queues) {
		d.queues[q].wake()
		return
	}
	for _, qq := range d.queues {
		qq.wake()
	}
}

func (d *device) configInterrupt() {
	d.life.Lock()
	if s := d.t.Status(); s&VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET != 0 {
		err := fmt.Errorf("%s: status %#x: %w", d.name, s, ErrNeedsReset)
		for _, q := range d.queues {
			q.breakWith(err)
		}
	}
	d.life.Unlock()
	if d.onConfig != nil {
		d.onConfig()
	}
}

// shutdown marks the device closed and wakes every waiter; release then
// resets it (so it stops touching memory), stops interrupts and frees the
// queues. Drivers call release once no goroutine uses the queues.
func (d *device) shutdown() bool {
	first := false
	d.closeOnce.Do(func() {
		first = true
		close(d.closed)
		for _, q := range d.queues {
			q.breakWith(fmt.Errorf("%s: %w", d.name, hal.ErrClosed))
		}
	})
	return first
}

func (d *device) release() {
	_ = d.t.Reset()
	if d.started {
		d.t.Stop()
	}
	for _, q := range d.queues {
		q.free()
	}
	for _, r := range d.regions {
		d.t.DMA().Free(r)
	}
	d.regions = nil
}

// close is shutdown and release for a driver that has already made sure
// no goroutine uses the queues.
func (d *device) close() {
	if d.shutdown() {
		d.release()
	}
}

// ringFeatures are the feature bits the queues were built for (see
// queue): reinit must not change them.
const ringFeatures = 1<<VIRTIO_F_INDIRECT_DESC | 1<<VIRTIO_F_EVENT_IDX | 1<<VIRTIO_F_RING_RESET

// reinit resets the device and initialises it again with the features
// f (all of which it must still offer, so exactly f is negotiated),
// giving it the same queues, empty. f may differ from the features
// negotiated before only in device-type bits. refill, if not nil, runs
// before DRIVER_OK to give the device buffers. If it fails the queues
// are left broken, so that whoever uses them next tries again rather than
// waiting on a device that is not running (or on buffers that only a
// successful reset gives back).
func (d *device) reinit(f uint64, refill func() error) error {
	d.life.Lock()
	err := d.reinitLocked(f, refill)
	if err != nil {
		for _, q := range d.queues {
			q.breakWith(fmt.Errorf("%s: reinitialising: %w", d.name, err))
		}
	}
	d.life.Unlock()
	if err == nil && d.onConfig != nil {
		// A configuration change signalled while the device was being
		// reset may have had its interrupt cleared with everything
		// else: read the configuration afresh.
		d.onConfig()
	}
	return err
}

func (d *device) reinitLocked(f uint64, refill func() error) error {
	if diff := (f ^ d.features.Load()) & ringFeatures; diff != 0 {
		return fmt.Errorf("%s: reinitialising with ring features %#x changed: %w", d.name, diff, errors.ErrUnsupported)
	}
	got, err := negotiate(d.t, d.t.DeviceID(), f, f)
	if err != nil {
		return err
	}
	d.features.Store(got)
	for _, q := range d.queues {
		if err := q.reenable(); err != nil {
			d.t.SetStatus(d.t.Status() | VIRTIO_CONFIG_S_FAILED)
			return err
		}
	}
	if refill != nil {
		if err := refill(); err != nil {
			d.t.SetStatus(d.t.Status() | VIRTIO_CONFIG_S_FAILED)
			return err
		}
	}
	return driverOK(d.t)
}

// isClosed reports whether close has been called.
func (d *device) isClosed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// waiter is a reusable timeout: one per goroutine slot that waits for the
// device, so waiting allocates nothing.
//
// A token in expired means the deadline of the current arming has passed,
// and nothing else. The timer is reused, and stopping it does not stop a
// callback that has already started (hal.Timer.Stop): the callback of an
// earlier arming may run after disarm has drained expired, or after the
// next arm. So the callback checks, under mu, that the waiter is armed and
// that its deadline is due before it sends; disarm clears armed and drains
// under the same lock, so no earlier arming's token survives it.
type waiter struct {
	expired chan struct{}
	clock   hal.Clock
	timer   hal.Timer

	mu       sync.Mutex
	armed    bool
	deadline time.Duration // on clock's Monotonic time
}

func newWaiter(c hal.Clock) *waiter {
	w := &waiter{expired: make(chan struct{}, 1), clock: c}
	w.timer = c.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	return w
}

// fire is the timer's callback.
func (w *waiter) fire() {
	w.mu.Lock()
	if !w.armed {
		w.mu.Unlock()
		return // stale: the arming it was for is over
	}
	left := w.deadline - w.clock.Monotonic()
	if left <= 0 {
		select {
		case w.expired <- struct{}{}:
		default:
		}
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	// Early for this arming: an earlier arming's callback, or a timer
	// that fired a little before the deadline. Wait for the rest rather
	// than drop the expiry (at worst the timer is set again to the same
	// deadline).
	w.timer.Reset(left)
}

func (w *waiter) arm(d time.Duration) {
	w.disarm()
	w.mu.Lock()
	w.armed = true
	w.deadline = w.clock.Monotonic() + d
	w.mu.Unlock()
	w.timer.Reset(d)
}

func (w *waiter) disarm() {
	w.timer.Stop()
	w.mu.Lock()
	w.armed = false
	select {
	case <-w.expired:
	default:
	}
	w.mu.Unlock()
}

// realClock is the default hal.Clock: the Go runtime's clock.
type realClock struct{ origin time.Time }

func (realClock) Now() time.Time             { return time.Now() }
func (c realClock) Monotonic() time.Duration { return time.Since(c.origin) }
func (realClock) AfterFunc(d time.Duration, f func()) hal.Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// call places one chain on q and waits for the device to return it, for
// queues with at most one chain in flight (the caller serialises). w must
// be armed; on timeout the queue is broken so that it is reset before
// reuse.
func (d *device) call(q *queue, segs []Seg, w *waiter) (uint32, error) {
	q.mu.Lock()
	head, err := q.add(segs)
	if err != nil {
		q.mu.Unlock()
		return 0, err
	}
	kick := q.kick()
	q.mu.Unlock()
	if kick {
		q.notify()
	}
	for {
		q.mu.Lock()
		h, ln, ok, err := q.pop()
		if err != nil {
			q.mu.Unlock()
			return 0, err
		}
		if ok {
			q.mu.Unlock()
			if h != head {
				return 0, q.failLocked(fmt.Errorf("%s: completed chain %d while %d was the one in flight: %w", q.name, h, head, ErrDevice))
			}
			return ln, nil
		}
		pending := q.arm()
		q.mu.Unlock()
		if pending {
			continue
		}
		select {
		case <-q.signal:
		case <-d.closed:
			return 0, hal.ErrClosed
		case <-w.expired:
			err := fmt.Errorf("no completion within %v: %w", d.timeout, hal.ErrTimeout)
			q.breakWith(fmt.Errorf("%s: %w", q.name, err))
			return 0, err
		}
	}
}

// recoverQueue resets q if it is broken, by itself with
// VIRTIO_F_RING_RESET or else with the whole device (refill gives a
// device reset the buffers back). The caller serialises all use of the
// device's queues.
func (d *device) recoverQueue(q *queue, refill func() error) error {
	err := q.broken()
	if err == nil || d.isClosed() {
		return err
	}
	if !errors.Is(err, ErrNeedsReset) && q.reset() == nil {
		return nil
	}
	if rerr := d.reinit(d.features.Load(), refill); rerr != nil {
		return fmt.Errorf("%w (and resetting the device failed: %w)", err, rerr)
	}
	return nil
}
