package virtio

import (
	"fmt"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// RNGOptions configures a virtio-rng driver. The zero value is the default.
type RNGOptions struct {
	// Clock times requests; nil means the Go runtime's clock.
	Clock hal.Clock
	// Timeout bounds one Read; zero means DefaultTimeout.
	Timeout time.Duration
}

// RNG is a virtio-rng driver (virtio 1.2 §5.4). It implements hal.Entropy.
type RNG struct {
	d   *device
	q   *queue
	mu  sync.Mutex
	buf []byte
	bus uint64
	seg [1]Seg
	w   *waiter
}

var _ hal.Entropy = (*RNG)(nil)

const rngBufLen = 4096

// NewRNG initialises the virtio-rng device behind t.
func NewRNG(t Transport, o RNGOptions) (*RNG, error) {
	d := newDevice(t, "virtio-rng", o.Clock, o.Timeout)
	f, err := negotiate(t, DeviceEntropy, Bit(VIRTIO_F_EVENT_IDX)|Bit(VIRTIO_F_RING_RESET), 0)
	if err != nil {
		return nil, err
	}
	d.features.Store(f)
	r := &RNG{d: d, w: newWaiter(d.clock)}
	if r.q, err = newQueue(t, f, 0, 2, 0, "virtio-rng"); err != nil {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		return nil, err
	}
	d.queues = []*queue{r.q}
	bufs, bus, err := d.allocBufs(1, rngBufLen, 64)
	if err != nil {
		d.close()
		return nil, err
	}
	r.buf, r.bus = bufs[0], bus[0]
	if err := d.start(); err != nil {
		d.close()
		return nil, err
	}
	return r, nil
}

// Read fills p with random bytes from the device. A device that returns
// too few bytes within the timeout makes Read fail with an error wrapping
// hal.ErrTimeout; Read never returns a short count with a nil error.
func (r *RNG) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.d.isClosed() {
		return 0, fmt.Errorf("virtio-rng: read: %w", hal.ErrClosed)
	}
	if err := r.d.recoverQueue(r.q, nil); err != nil {
		return 0, fmt.Errorf("virtio-rng: read: %w", err)
	}
	r.w.arm(r.d.timeout)
	defer r.w.disarm()
	done := 0
	for done < len(p) {
		want := min(len(p)-done, rngBufLen)
		r.seg[0] = Seg{Addr: r.bus, Len: uint32(want), Write: true}
		n, err := r.d.call(r.q, r.seg[:], r.w)
		if err != nil {
			return 0, fmt.Errorf("virtio-rng: read: %w", err)
		}
		done += copy(p[done:], r.buf[:n])
		if n == 0 {
			select {
			case <-r.w.expired:
				return 0, fmt.Errorf("virtio-rng: read: device returned no bytes within %v: %w", r.d.timeout, hal.ErrTimeout)
			default:
			}
		}
	}
	return done, nil
}

// Close resets the device.
func (r *RNG) Close() error {
	if r.d.shutdown() {
		r.mu.Lock()
		r.d.release()
		r.mu.Unlock()
	}
	return nil
}
