package virtio

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// ConsoleOptions configures a virtio-console driver. The zero value is the
// default.
type ConsoleOptions struct {
	// Clock times writes; nil means the Go runtime's clock.
	Clock hal.Clock
	// Timeout bounds a wait for a free transmit buffer; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// QueueSize caps the queue sizes; zero means 64.
	QueueSize int
}

// Console is a virtio-console driver (virtio 1.2 §5.3) for port 0, without
// VIRTIO_CONSOLE_F_MULTIPORT. It implements hal.Console and
// hal.ConsoleSizer (which reports errors.ErrUnsupported unless the device
// offers VIRTIO_CONSOLE_F_SIZE).
type Console struct {
	d      *device
	rx, tx *queue
	size   atomic.Uint32 // cols<<16 | rows

	rxMu    sync.Mutex
	rxBufs  [][]byte
	rxBus   []uint64
	rxOf    []int
	rxSpare []int
	rxSeg   [1]Seg
	cur     []byte // unread part of the buffer last received
	curBuf  int    // its index, -1 if none

	txMu   sync.Mutex
	txBufs [][]byte
	txBus  []uint64
	txOf   []int
	txFree []int
	txSeg  [1]Seg
	txW    *waiter
}

var (
	_ hal.Console      = (*Console)(nil)
	_ hal.ConsoleSizer = (*Console)(nil)
)

const consoleBufLen = 1024

// NewConsole initialises the virtio-console device behind t.
func NewConsole(t Transport, o ConsoleOptions) (*Console, error) {
	d := newDevice(t, "virtio-console", o.Clock, o.Timeout)
	f, err := negotiate(t, DeviceConsole, Bit(VIRTIO_CONSOLE_F_SIZE)|Bit(VIRTIO_F_EVENT_IDX)|Bit(VIRTIO_F_RING_RESET), 0)
	if err != nil {
		return nil, err
	}
	d.features.Store(f)
	c := &Console{d: d, curBuf: -1, txW: newWaiter(d.clock)}
	if err := c.readSize(); err != nil {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		return nil, err
	}
	d.onConfig = func() { _ = c.readSize() }
	qs := o.QueueSize
	if qs <= 0 {
		qs = 64
	}
	fail := func(err error) (*Console, error) {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		d.close()
		return nil, err
	}
	if c.rx, err = newQueue(t, f, VirtioConsoleRxQ, qs, 0, "virtio-console"); err != nil {
		return fail(err)
	}
	d.queues = append(d.queues, c.rx)
	if c.tx, err = newQueue(t, f, VirtioConsoleTxQ, qs, 0, "virtio-console"); err != nil {
		return fail(err)
	}
	d.queues = append(d.queues, c.tx)
	if c.rxBufs, c.rxBus, err = d.allocBufs(c.rx.n, consoleBufLen, 64); err != nil {
		return fail(err)
	}
	if c.txBufs, c.txBus, err = d.allocBufs(c.tx.n, consoleBufLen, 64); err != nil {
		return fail(err)
	}
	c.rxOf = make([]int, c.rx.n)
	c.txOf = make([]int, c.tx.n)
	c.resetBuffers()
	if err := d.start(); err != nil {
		return fail(err)
	}
	c.kick(c.rx)
	return c, nil
}

func (c *Console) readSize() error {
	if !c.d.has(VIRTIO_CONSOLE_F_SIZE) {
		return nil
	}
	var cols, rows uint16
	err := readConfig(c.d.t, func(r Regs) {
		cols = r.Read16(VirtioConsoleCfgCols)
		rows = r.Read16(VirtioConsoleCfgRows)
	})
	if err == nil {
		c.size.Store(uint32(cols)<<16 | uint32(rows))
	}
	return err
}

// resetBuffers frees every transmit buffer and puts every receive buffer
// on the empty receive ring.
func (c *Console) resetBuffers() error {
	c.resetTx()
	c.resetRx()
	return nil
}

func (c *Console) resetTx() {
	c.txFree = c.txFree[:0]
	for i := range c.txBufs {
		c.txFree = append(c.txFree, i)
	}
	c.tx.mu.Lock()
	c.tx.quiet()
	c.tx.mu.Unlock()
}

func (c *Console) resetRx() {
	c.rxSpare = c.rxSpare[:0]
	for i := range c.rxBufs {
		c.rxSpare = append(c.rxSpare, i)
	}
	c.cur, c.curBuf = nil, -1
	c.rx.mu.Lock()
	c.refillLocked()
	c.rx.mu.Unlock()
	c.kick(c.rx)
}

func (c *Console) refillLocked() {
	for len(c.rxSpare) > 0 {
		k := c.rxSpare[len(c.rxSpare)-1]
		c.rxSeg[0] = Seg{Addr: c.rxBus[k], Len: consoleBufLen, Write: true}
		head, err := c.rx.add(c.rxSeg[:])
		if err != nil {
			return
		}
		c.rxOf[head] = k
		c.rxSpare = c.rxSpare[:len(c.rxSpare)-1]
	}
}

// maybeRefill reposts spare receive buffers once the used entries already
// published are consumed, so a duplicate used entry cannot pass for the
// completion of a reposted buffer. (Read reposts too before it waits.)
func (c *Console) maybeRefill() {
	q := c.rx
	q.mu.Lock()
	if q.pending() {
		q.mu.Unlock()
		return
	}
	c.refillLocked()
	q.mu.Unlock()
	c.kick(q)
}

func (c *Console) kick(q *queue) {
	q.mu.Lock()
	k := q.kick()
	q.mu.Unlock()
	if k {
		q.notify()
	}
}

// recoverDevice resets and reinitialises the device when a queue broke in
// a way a queue reset cannot mend (see Net.recoverDevice). The caller
// holds neither c.rxMu nor c.txMu.
func (c *Console) recoverDevice() error {
	err := c.rx.broken()
	if err == nil {
		err = c.tx.broken()
	}
	if err == nil || c.d.isClosed() {
		return nil
	}
	if c.d.has(VIRTIO_F_RING_RESET) && !errors.Is(err, ErrNeedsReset) {
		return nil
	}
	c.rx.breakWith(err)
	c.tx.breakWith(err)
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	c.txMu.Lock()
	defer c.txMu.Unlock()
	if c.d.isClosed() || c.rx.broken() == nil && c.tx.broken() == nil {
		return nil
	}
	if rerr := c.d.reinit(c.d.features.Load(), c.resetBuffers); rerr != nil {
		return fmt.Errorf("%w (and resetting the device failed: %w)", err, rerr)
	}
	c.kick(c.rx)
	return nil
}

// recoverQueue resets one broken queue with VIRTIO_F_RING_RESET; the
// caller holds that direction's lock. Errors needing a device reset are
// returned for recoverDevice to mend on the next call.
func (c *Console) recoverQueue(q *queue, refill func()) error {
	err := q.broken()
	if err == nil || c.d.isClosed() || errors.Is(err, ErrNeedsReset) || !c.d.has(VIRTIO_F_RING_RESET) {
		return err
	}
	if q.reset() != nil {
		return err
	}
	refill()
	return nil
}

// WindowSize implements hal.ConsoleSizer.
func (c *Console) WindowSize() (cols, rows int, err error) {
	if !c.d.has(VIRTIO_CONSOLE_F_SIZE) {
		return 0, 0, fmt.Errorf("virtio-console: window size: %w", errors.ErrUnsupported)
	}
	s := c.size.Load()
	return int(s >> 16), int(s & 0xffff), nil
}

// Read implements hal.Console.
func (c *Console) Read(p []byte) (int, error) {
	if err := c.recoverDevice(); err != nil {
		return 0, fmt.Errorf("virtio-console: read: %w", err)
	}
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	if c.d.isClosed() {
		return 0, fmt.Errorf("virtio-console: read: %w", hal.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.cur) == 0 {
		if c.curBuf >= 0 {
			c.rxSpare = append(c.rxSpare, c.curBuf)
			c.curBuf = -1
			c.maybeRefill()
		}
		if err := c.recoverQueue(c.rx, c.resetRx); err != nil {
			return 0, fmt.Errorf("virtio-console: read: %w", err)
		}
		q := c.rx
		q.mu.Lock()
		head, ln, ok, err := q.pop()
		if err != nil {
			q.mu.Unlock()
			return 0, fmt.Errorf("virtio-console: read: %w", err)
		}
		if ok {
			q.mu.Unlock()
			c.curBuf = c.rxOf[head]
			c.cur = c.rxBufs[c.curBuf][:ln]
			continue
		}
		c.refillLocked() // nothing pending: safe to repost
		kick := q.kick()
		pending := q.arm()
		q.mu.Unlock()
		if kick {
			q.notify()
		}
		if pending {
			continue
		}
		select {
		case <-q.signal:
		case <-c.d.closed:
			return 0, fmt.Errorf("virtio-console: read: %w", hal.ErrClosed)
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// Write implements hal.Console. Writes of up to 1024 bytes are atomic with
// respect to each other; all writes are serialised.
func (c *Console) Write(p []byte) (int, error) {
	if err := c.recoverDevice(); err != nil {
		return 0, fmt.Errorf("virtio-console: write: %w", err)
	}
	c.txMu.Lock()
	defer c.txMu.Unlock()
	if c.d.isClosed() {
		return 0, fmt.Errorf("virtio-console: write: %w", hal.ErrClosed)
	}
	if err := c.recoverQueue(c.tx, c.resetTx); err != nil {
		return 0, fmt.Errorf("virtio-console: write: %w", err)
	}
	q := c.tx
	done := 0
	timed := false
	defer c.txW.disarm()
	for done < len(p) {
		q.mu.Lock()
		for {
			head, _, ok, err := q.pop()
			if err != nil {
				q.mu.Unlock()
				return done, fmt.Errorf("virtio-console: write: %w", err)
			}
			if !ok {
				break
			}
			c.txFree = append(c.txFree, c.txOf[head])
		}
		if len(c.txFree) == 0 {
			kick := q.kick()
			pending := q.arm()
			q.mu.Unlock()
			if kick {
				q.notify()
			}
			if pending {
				continue
			}
			if !timed {
				timed = true
				c.txW.arm(c.d.timeout)
			}
			select {
			case <-q.signal:
			case <-c.d.closed:
				return done, fmt.Errorf("virtio-console: write: %w", hal.ErrClosed)
			case <-c.txW.expired:
				err := fmt.Errorf("no transmit buffer freed within %v: %w", c.d.timeout, hal.ErrTimeout)
				q.breakWith(fmt.Errorf("%s: %w", q.name, err))
				return done, fmt.Errorf("virtio-console: write: %w", err)
			}
			continue
		}
		k := c.txFree[len(c.txFree)-1]
		n := copy(c.txBufs[k], p[done:])
		c.txSeg[0] = Seg{Addr: c.txBus[k], Len: uint32(n)}
		head, err := q.add(c.txSeg[:])
		if err != nil {
			q.mu.Unlock()
			return done, fmt.Errorf("virtio-console: write: %w", err)
		}
		c.txFree = c.txFree[:len(c.txFree)-1]
		c.txOf[head] = k
		q.quiet()
		q.mu.Unlock()
		done += n
	}
	c.kick(q)
	return done, nil
}

// Close implements hal.Console: it resets the device.
func (c *Console) Close() error {
	if c.d.shutdown() {
		c.rxMu.Lock()
		c.txMu.Lock()
		c.d.release()
		c.txMu.Unlock()
		c.rxMu.Unlock()
	}
	return nil
}
