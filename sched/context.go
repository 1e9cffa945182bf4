package sched

import (
	"context"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// WithTimeout returns WithDeadline(parent, clk, clk.Now().Add(d)), except
// that the timer is armed for exactly d on clk's Monotonic time.
func WithTimeout(parent context.Context, clk hal.Clock, d time.Duration) (context.Context, context.CancelFunc) {
	return withClockDeadline(parent, clk, clk.Now().Add(d), d)
}

// WithDeadline is context.WithDeadline with the deadline kept by clk: the
// returned context is done, with Err() == context.DeadlineExceeded, once
// clk's wall time reaches deadline — measured as the duration from clk.Now()
// to deadline on clk's Monotonic time, so a manual clock's Advance is what
// expires it. It is also done when parent is or when cancel is called, as
// with context.WithDeadline; Deadline reports the earlier of deadline and
// parent's deadline. Calling cancel releases the clock timer, so call it as
// soon as the work is done.
func WithDeadline(parent context.Context, clk hal.Clock, deadline time.Time) (context.Context, context.CancelFunc) {
	return withClockDeadline(parent, clk, deadline, deadline.Sub(clk.Now()))
}

// withClockDeadline builds the context as a std cancel context on top of a
// clockCtx. The std layer gives callers everything the context package
// provides (Cause, AfterFunc, cheap children); the clockCtx underneath is
// done when the clock timer or the parent says so, with the right error.
func withClockDeadline(parent context.Context, clk hal.Clock, deadline time.Time, d time.Duration) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	cc := &clockCtx{parent: parent, deadline: deadline, done: make(chan struct{})}
	ctx, cancelStd := context.WithCancel(cc)
	if err := parent.Err(); err != nil {
		cc.finish(err)
		return ctx, cancelStd
	}
	if d <= 0 {
		cc.finish(context.DeadlineExceeded)
		return ctx, cancelStd
	}
	cc.mu.Lock()
	cc.timer = clk.AfterFunc(d, func() { cc.finish(context.DeadlineExceeded) })
	cc.stopParent = context.AfterFunc(parent, func() { cc.finish(parent.Err()) })
	cc.mu.Unlock()
	return ctx, func() {
		cancelStd()
		cc.release()
	}
}

// clockCtx is a context done when its clock timer fires or its parent is
// done. Values come from the parent.
type clockCtx struct {
	parent   context.Context
	deadline time.Time
	done     chan struct{}

	mu         sync.Mutex
	err        error
	timer      hal.Timer   // nil once released
	stopParent func() bool // nil once released
	nextID     uint64
	funcs      map[uint64]func()
}

func (c *clockCtx) Deadline() (time.Time, bool) {
	if pd, ok := c.parent.Deadline(); ok && pd.Before(c.deadline) {
		return pd, true
	}
	return c.deadline, true
}

func (c *clockCtx) Done() <-chan struct{} { return c.done }

func (c *clockCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *clockCtx) Value(key any) any { return c.parent.Value(key) }

// AfterFunc has the meaning of context.AfterFunc. The context package uses
// it to hook child contexts to this one without a goroutine each, and so
// that a child is cancelled in the same call that fires the clock timer.
func (c *clockCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	if c.funcs == nil {
		c.funcs = make(map[uint64]func())
	}
	id := c.nextID
	c.nextID++
	c.funcs[id] = f
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.funcs[id]
		delete(c.funcs, id)
		return ok
	}
}

// finish makes the context done with err, runs the registered functions
// and releases the timer and the parent hook. Only the first call counts.
func (c *clockCtx) finish(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	funcs := c.funcs
	c.funcs = nil
	c.mu.Unlock()
	c.release()
	for _, f := range funcs {
		f()
	}
}

// release stops the clock timer and the parent hook.
func (c *clockCtx) release() {
	c.mu.Lock()
	t, stop := c.timer, c.stopParent
	c.timer, c.stopParent = nil, nil
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	if stop != nil {
		stop()
	}
}
