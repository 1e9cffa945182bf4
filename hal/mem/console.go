package mem

import (
	"fmt"
	"io"
	"sync"

	"github.com/anykernel/anykernel/hal"
)

// Console is an in-memory [hal.Console]. Its other end, the operator, is
// returned by [Console.Operator]: bytes written to the console are read from
// the operator and vice versa.
//
// Both directions are unbounded buffers, so a Write never blocks, whether or
// not anyone reads; each Write is atomic with respect to other Writes in the
// same direction, whatever its length.
//
// Closing one end makes the other end's Read return io.EOF once it has
// drained what was written before the close, and makes the other end's Write
// fail with an error wrapping io.ErrClosedPipe. After an end's own Close,
// its Read and Write return an error wrapping [hal.ErrClosed]; Close unblocks
// a Read pending on that end.
type Console struct {
	in  consolePipe // operator -> console
	out consolePipe // console -> operator
	op  consoleOperator
}

var _ hal.Console = (*Console)(nil)

// NewConsole returns a console with empty buffers in both directions.
func NewConsole() *Console {
	c := &Console{}
	c.in.init()
	c.out.init()
	c.op.c = c
	return c
}

// Read reads what the operator has written, blocking until at least one byte
// is available.
func (c *Console) Read(p []byte) (int, error) {
	return c.in.read(p, "mem console: read")
}

// Write queues p for the operator to read.
func (c *Console) Write(p []byte) (int, error) {
	return c.out.write(p, "mem console: write")
}

// Close closes the console's end. Calling it again returns nil.
func (c *Console) Close() error {
	c.in.closeReader()
	c.out.closeWriter()
	return nil
}

// Operator returns the operator's end of the console. Closing it closes only
// the operator's end.
func (c *Console) Operator() io.ReadWriteCloser { return &c.op }

// consoleOperator is the operator's end of a Console.
type consoleOperator struct{ c *Console }

func (o *consoleOperator) Read(p []byte) (int, error) {
	return o.c.out.read(p, "mem console operator: read")
}

func (o *consoleOperator) Write(p []byte) (int, error) {
	return o.c.in.write(p, "mem console operator: write")
}

func (o *consoleOperator) Close() error {
	o.c.out.closeReader()
	o.c.in.closeWriter()
	return nil
}

// consolePipe is one direction of a Console: an unbounded byte queue with a
// writing end and a reading end that close independently.
type consolePipe struct {
	mu        sync.Mutex
	cond      sync.Cond
	buf       []byte
	rClosed   bool // the reading end was closed
	wClosed   bool // the writing end was closed
	readerOff int  // bytes of buf already consumed
}

func (p *consolePipe) init() { p.cond.L = &p.mu }

func (p *consolePipe) read(b []byte, op string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.rClosed:
			return 0, fmt.Errorf("%s: %w", op, hal.ErrClosed)
		case p.readerOff < len(p.buf):
			if len(b) == 0 {
				return 0, nil
			}
			n := copy(b, p.buf[p.readerOff:])
			p.readerOff += n
			switch {
			case p.readerOff == len(p.buf):
				p.buf, p.readerOff = p.buf[:0], 0
			case p.readerOff >= 4096 && p.readerOff*2 >= len(p.buf):
				// A slow reader: reclaim the consumed prefix.
				p.buf = append(p.buf[:0], p.buf[p.readerOff:]...)
				p.readerOff = 0
			}
			return n, nil
		case p.wClosed:
			return 0, io.EOF
		case len(b) == 0:
			return 0, nil
		}
		p.cond.Wait()
	}
}

func (p *consolePipe) write(b []byte, op string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.wClosed:
		return 0, fmt.Errorf("%s: %w", op, hal.ErrClosed)
	case p.rClosed:
		return 0, fmt.Errorf("%s: other end closed: %w", op, io.ErrClosedPipe)
	}
	if len(b) == 0 {
		return 0, nil
	}
	p.buf = append(p.buf, b...)
	p.cond.Broadcast()
	return len(b), nil
}

func (p *consolePipe) closeReader() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rClosed = true
	p.buf, p.readerOff = nil, 0
	p.cond.Broadcast()
}

func (p *consolePipe) closeWriter() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wClosed = true
	p.cond.Broadcast()
}
