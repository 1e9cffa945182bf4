package virtio_test

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

// hostileNet is a virtio-net device that fills receive buffers with
// whatever the fuzzer says: headers, num_buffers, used lengths (also
// beyond the buffer), several entries per publication.
type hostileNet struct {
	mrg     bool
	records []byte
	done    chan struct{}
}

func (h *hostileNet) DeviceID() virtio.DeviceID { return virtio.DeviceNet }
func (h *hostileNet) NumQueues() int            { return 2 }
func (h *hostileNet) ConfigLen() int            { return 12 }
func (h *hostileNet) Features() uint64 {
	f := virtio.Bit(virtio.VIRTIO_NET_F_MAC)
	if h.mrg {
		f |= virtio.Bit(virtio.VIRTIO_NET_F_MRG_RXBUF)
	}
	return f
}
func (h *hostileNet) Config(p []byte) {
	clear(p)
	copy(p, []byte{2, 0, 0, 0, 0, 1})
}

func (h *hostileNet) Start(r *model.Run) {
	rx := r.Queues[virtio.VirtioNetRxQ]
	r.Go(func() {
		defer close(h.done)
		var c model.Chain
		rec := h.records
		for len(rec) >= 6 {
			written := int(binary.LittleEndian.Uint16(rec))
			nbuf := binary.LittleEndian.Uint16(rec[2:])
			flags, publish := rec[4], rec[5]
			rec = rec[6:]
			for {
				ok, err := rx.Pop(&c)
				if err != nil {
					return
				}
				if ok {
					break
				}
				// Out of buffers: hand over what was put, else the
				// driver can never repost any (a device that withholds
				// every buffer is a stalled receiver, which Close ends).
				rx.Publish()
				if !rx.Wait(r.Stop) {
					return
				}
			}
			var hdr [virtio.VirtioNetHdrLen]byte
			hdr[0] = flags
			binary.LittleEndian.PutUint16(hdr[10:], nbuf)
			n := c.CopyTo(0, hdr[:])
			fill := make([]byte, max(0, min(written, c.WriteLen)-n))
			for i := range fill {
				fill[i] = byte(i)
			}
			c.CopyTo(n, fill)
			rx.Put(&c, written)
			if publish&1 != 0 {
				rx.Publish()
			}
		}
		rx.Publish()
	})
}

// FuzzNetRx: whatever a device puts in the receive ring, ReadFrame and
// ReadFrameHdrVec (taking turns) return whole frames that fit the caller's
// buffers, or an error; they never panic, never write outside the
// buffers (nor, on success, beyond the frame), and (with the merge
// timeout) never hang.
func FuzzNetRx(f *testing.F) {
	rec := func(written, nbuf uint16, flags, publish byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, written)
		b = binary.LittleEndian.AppendUint16(b, nbuf)
		return append(b, flags, publish)
	}
	f.Add(true, append(rec(12+60, 1, 0, 1), rec(12+100, 1, 0, 1)...))
	f.Add(true, append(rec(2048, 2, 0, 0), rec(500, 1, 0, 1)...))
	f.Add(false, rec(12+1514, 1, 0, 1))
	f.Add(true, rec(5000, 1, 0, 1))
	f.Add(true, rec(100, 300, 0, 1))
	f.Add(false, rec(4, 1, 0, 1))
	f.Fuzz(func(t *testing.T, mrg bool, records []byte) {
		if len(records) > 6*64 {
			records = records[:6*64]
		}
		be := &hostileNet{mrg: mrg, records: records, done: make(chan struct{})}
		tr, _ := newMMIO(t, be, model.Options{QueueSize: 16})
		n, err := virtio.NewNet(tr, virtio.NetOptions{Timeout: 20 * time.Millisecond})
		require.NoError(t, err)
		type res struct {
			n     int
			err   error
			guard error // a write outside the vectored read's buffers
		}
		out := make(chan res, 128)
		go func() {
			buf := make([]byte, 1600)
			g := newGuardedBufs(1, 13, 0, 50, 536, 1000) // 1600 bytes too
			for i := 0; ; i++ {
				var r res
				if i%2 == 0 {
					r.n, r.err = n.ReadFrame(buf)
				} else {
					g.fill()
					r.n, _, r.err = n.ReadFrameHdrVec(g.bufs)
					if r.err != nil {
						r.guard = g.check(-1)
					} else {
						r.guard = g.check(r.n)
					}
				}
				out <- r
				if errors.Is(r.err, hal.ErrClosed) {
					close(out)
					return
				}
			}
		}()
		<-be.done
		time.Sleep(time.Millisecond) // let the reader take what was published
		require.NoError(t, n.Close())
		for r := range out {
			require.NoError(t, r.guard)
			switch {
			case r.err == nil:
				require.GreaterOrEqual(t, r.n, hal.EthernetHeaderLen)
				require.LessOrEqual(t, r.n, 1600)
			case errors.Is(r.err, hal.ErrClosed), errors.Is(r.err, virtio.ErrDevice),
				errors.Is(r.err, io.ErrShortBuffer), errors.Is(r.err, hal.ErrFrameSize),
				errors.Is(r.err, hal.ErrTimeout):
			default:
				t.Fatalf("unexpected error: %v", r.err)
			}
		}
	})
}
