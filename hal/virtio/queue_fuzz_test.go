package virtio

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/virtio/internal/ring"
)

// fakeDMA is the simplest DMA: Go memory with made-up bus addresses.
type fakeDMA struct{ next uint64 }

func (d *fakeDMA) Alloc(size, align int) ([]byte, uint64, error) {
	w := make([]uint64, (size+7)/8)
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), size)
	d.next = (d.next + 4096 + uint64(size) + 4095) &^ 4095
	return b, d.next, nil
}
func (d *fakeDMA) Free([]byte) {}

// fakeTransport records queue setup and nothing else.
type fakeTransport struct {
	dma     fakeDMA
	max     int
	notifed int
}

func (t *fakeTransport) DeviceID() DeviceID                                { return DeviceBlock }
func (t *fakeTransport) DeviceFeatures() uint64                            { return 0 }
func (t *fakeTransport) SetDriverFeatures(uint64)                          {}
func (t *fakeTransport) Status() uint8                                     { return 0 }
func (t *fakeTransport) SetStatus(uint8)                                   {}
func (t *fakeTransport) Reset() error                                      { return nil }
func (t *fakeTransport) Config() Regs                                      { return nil }
func (t *fakeTransport) ConfigGeneration() uint32                          { return 0 }
func (t *fakeTransport) NumQueues() int                                    { return 1 }
func (t *fakeTransport) QueueMax(int) int                                  { return t.max }
func (t *fakeTransport) SetupQueue(int, int, uint64, uint64, uint64) error { return nil }
func (t *fakeTransport) ResetQueue(int) error                              { return nil }
func (t *fakeTransport) Notify(int)                                        { t.notifed++ }
func (t *fakeTransport) DMA() DMA                                          { return &t.dma }
func (t *fakeTransport) Start(func(int), func()) error                     { return nil }
func (t *fakeTransport) Stop()                                             {}

// FuzzQueueUsed feeds the driver side of a split queue arbitrary used-ring
// contents after it has placed some chains, as a hostile device could. The
// driver must report an error or hand back only chains it placed, each
// once, and its bookkeeping must stay whole.
func FuzzQueueUsed(f *testing.F) {
	f.Add(uint8(3), uint8(5), []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(0), uint8(1), []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, shape, chains uint8, used []byte) {
		tr := &fakeTransport{max: 8}
		features := uint64(0)
		if shape&1 != 0 {
			features |= Bit(VIRTIO_F_EVENT_IDX)
		}
		if shape&2 != 0 {
			features |= Bit(VIRTIO_F_INDIRECT_DESC)
		}
		q, err := newQueue(tr, features, 0, 8, 4, "fuzz")
		require.NoError(t, err)
		placed := map[uint16]uint32{}
		for i := range int(chains % 9) {
			segs := []Seg{{Addr: 0x1000, Len: 16}, {Addr: 0x2000, Len: uint32(i + 1), Write: true}}
			if i%3 == 2 {
				segs = segs[:1]
			}
			q.mu.Lock()
			head, err := q.add(segs)
			q.mu.Unlock()
			if err != nil {
				require.ErrorIs(t, err, errQueueFull)
				break
			}
			placed[head] = segs[len(segs)-1].Len
			if !segs[len(segs)-1].Write {
				placed[head] = 0
			}
		}
		// The device's part of the used ring: idx, then elements.
		if len(used) >= 2 {
			copy(q.used[ring.UsedElemOff(0):ring.UsedElemOff(q.n)], used[2:])
			idx := binary.LittleEndian.Uint16(used)
			require.NoError(t, ring.Store16(q.used, ring.UsedIdxOff(), idx))
		}
		seen := map[uint16]bool{}
		q.mu.Lock()
		defer q.mu.Unlock()
		for range 3 * q.n {
			head, n, ok, err := q.pop()
			if err != nil {
				require.ErrorIs(t, err, ErrDevice)
				return
			}
			if !ok {
				break
			}
			w, wasPlaced := placed[head]
			require.True(t, wasPlaced, "popped head %d never placed", head)
			require.False(t, seen[head], "head %d popped twice", head)
			require.LessOrEqual(t, n, w)
			seen[head] = true
		}
		// Every descriptor is either free or in a chain still in flight.
		inUse := 0
		for _, l := range q.chainLen {
			inUse += int(l)
		}
		require.Equal(t, q.n, q.numFree+inUse)
		free := map[uint16]bool{}
		for i, h := 0, q.freeHead; i < q.numFree; i++ {
			require.Less(t, int(h), q.n)
			require.False(t, free[h], "free list loops at %d", h)
			free[h] = true
			h = q.next[h]
		}
	})
}
