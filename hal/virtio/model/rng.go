package model

import (
	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/virtio"
)

// RNGOptions configures a modelled virtio-rng. The zero value fills every
// buffer completely.
type RNGOptions struct {
	// MaxFill, if positive, caps the bytes returned per request (a device
	// that returns less than asked, as the specification allows); a
	// negative value returns nothing at all.
	MaxFill int
}

// RNG is the device side of virtio-rng (virtio 1.2 §5.4) over a
// hal.Entropy.
type RNG struct {
	src hal.Entropy
	o   RNGOptions
}

// NewRNG models an entropy device drawing from src.
func NewRNG(src hal.Entropy, o RNGOptions) *RNG { return &RNG{src: src, o: o} }

// DeviceID implements Backend.
func (g *RNG) DeviceID() virtio.DeviceID { return virtio.DeviceEntropy }

// NumQueues implements Backend.
func (g *RNG) NumQueues() int { return 1 }

// Features implements Backend.
func (g *RNG) Features() uint64 { return 0 }

// ConfigLen implements Backend.
func (g *RNG) ConfigLen() int { return 0 }

// Config implements Backend.
func (g *RNG) Config([]byte) {}

// Start implements Backend.
func (g *RNG) Start(r *Run) {
	q := r.Queues[0]
	r.Go(func() {
		var c Chain
		buf := make([]byte, 4096)
		for {
			for {
				ok, err := q.Pop(&c)
				if err != nil || !ok {
					break
				}
				r.Delay()
				want := c.WriteLen
				if g.o.MaxFill != 0 {
					want = max(0, min(want, g.o.MaxFill))
				}
				written := 0
				for written < want {
					n := min(want-written, len(buf))
					if _, err := g.src.Read(buf[:n]); err != nil {
						break
					}
					written += c.CopyTo(written, buf[:n])
				}
				q.Push(&c, written)
			}
			if !q.Wait(r.Stop) {
				return
			}
		}
	})
}
