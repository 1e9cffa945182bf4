package model

import (
	"encoding/binary"
	"io"
	"sync"

	"github.com/anykernel/anykernel/hal/virtio"
)

// ConsoleOptions configures a modelled virtio-console. The zero value
// offers no window size.
type ConsoleOptions struct {
	// Cols and Rows, if both non-zero, are offered with
	// VIRTIO_CONSOLE_F_SIZE.
	Cols, Rows uint16
}

// Console is the device side of virtio-console port 0 (virtio 1.2 §5.3)
// over a byte stream: what the driver transmits is written to rw, what is
// read from rw fills the driver's receive buffers.
type Console struct {
	rw io.ReadWriter
	o  ConsoleOptions

	mu         sync.Mutex
	cols, rows uint16
	dev        *Device

	free, full chan *consoleChunk
	done       chan struct{}
	closeOnce  sync.Once
}

type consoleChunk struct {
	b []byte
	n int
}

// NewConsole models a console over rw and starts reading from it. Close
// stops it and closes rw if it is an io.Closer.
func NewConsole(rw io.ReadWriter, o ConsoleOptions) *Console {
	c := &Console{rw: rw, o: o, cols: o.Cols, rows: o.Rows,
		free: make(chan *consoleChunk, 8), full: make(chan *consoleChunk, 8), done: make(chan struct{})}
	for range 8 {
		c.free <- &consoleChunk{b: make([]byte, 4096)}
	}
	go c.pump()
	return c
}

func (c *Console) pump() {
	for {
		var ch *consoleChunk
		select {
		case ch = <-c.free:
		case <-c.done:
			return
		}
		n, err := c.rw.Read(ch.b)
		if n > 0 {
			ch.n = n
			c.full <- ch
		} else {
			c.free <- ch
		}
		if err != nil {
			return
		}
	}
}

// Close stops the model and closes the stream if it can be closed.
func (c *Console) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	if cl, ok := c.rw.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// Bind implements the backend's device binding.
func (c *Console) Bind(d *Device) {
	c.mu.Lock()
	c.dev = d
	c.mu.Unlock()
}

// Resize changes the window size and raises a configuration interrupt.
func (c *Console) Resize(cols, rows uint16) {
	c.mu.Lock()
	c.cols, c.rows = cols, rows
	d := c.dev
	c.mu.Unlock()
	if d != nil {
		d.ConfigChanged()
	}
}

// DeviceID implements Backend.
func (c *Console) DeviceID() virtio.DeviceID { return virtio.DeviceConsole }

// NumQueues implements Backend: port 0's receive and transmit queues.
func (c *Console) NumQueues() int { return 2 }

// Features implements Backend.
func (c *Console) Features() uint64 {
	if c.o.Cols != 0 && c.o.Rows != 0 {
		return 1 << virtio.VIRTIO_CONSOLE_F_SIZE
	}
	return 0
}

// ConfigLen implements Backend.
func (c *Console) ConfigLen() int { return virtio.VirtioConsoleCfgLen }

// Config implements Backend.
func (c *Console) Config(p []byte) {
	clear(p)
	c.mu.Lock()
	binary.LittleEndian.PutUint16(p[virtio.VirtioConsoleCfgCols:], c.cols)
	binary.LittleEndian.PutUint16(p[virtio.VirtioConsoleCfgRows:], c.rows)
	c.mu.Unlock()
	binary.LittleEndian.PutUint32(p[4:], 1) // max_nr_ports
}

// Start implements Backend.
func (c *Console) Start(r *Run) {
	r.Go(func() {
		q := r.Queues[virtio.VirtioConsoleTxQ]
		var ch Chain
		buf := make([]byte, 64<<10)
		for {
			for {
				ok, err := q.Pop(&ch)
				if err != nil || !ok {
					break
				}
				r.Delay()
				for off := 0; off < ch.ReadLen; {
					n := ch.CopyFrom(off, buf)
					if _, err := c.rw.Write(buf[:n]); err != nil {
						break
					}
					off += n
				}
				q.Push(&ch, 0)
			}
			if !q.Wait(r.Stop) {
				return
			}
		}
	})
	r.Go(func() {
		q := r.Queues[virtio.VirtioConsoleRxQ]
		var ch Chain
		for {
			var in *consoleChunk
			select {
			case in = <-c.full:
			case <-r.Stop:
				return
			}
			data := in.b[:in.n]
			for len(data) > 0 {
				ok, err := q.Pop(&ch)
				if err != nil {
					c.free <- in
					return
				}
				if !ok {
					if !q.Wait(r.Stop) {
						c.free <- in
						return
					}
					continue
				}
				r.Delay()
				n := ch.CopyTo(0, data)
				data = data[n:]
				q.Push(&ch, n)
			}
			c.free <- in
		}
	})
}
