package virtio_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

// TestBlockChaos runs concurrent writers and readers while the device
// switches between misbehaviours at random. Every call must end (no hang)
// with success or an error of a known kind; a write that succeeded and a
// read that succeeded must agree with each other; and once the device
// behaves again, every sector last written successfully reads back.
func TestBlockChaos(t *testing.T) {
	const (
		sector  = 512
		workers = 4
		per     = 16 // sectors owned by each worker
	)
	rounds := 300
	if testing.Short() {
		rounds = 60
	}
	b, dev, _ := newBlock(t, workers*per*sector, mem.BlockOptions{}, model.BlockOptions{}, model.Options{},
		virtio.BlockOptions{Timeout: 20 * time.Millisecond, QueueSize: 16, Slots: 4})
	defer b.Close()
	faults := []model.Faults{
		{},
		{UsedLenExtra: 100},
		{BadUsedID: true},
		{DuplicateUsed: true},
		{UsedIdxJump: 3},
		{Stall: true},
		{CorruptDescriptors: true},
		{Delay: time.Millisecond},
	}
	// The faults change with the traffic, not with the clock: every few
	// calls, whichever worker makes it picks the next one.
	var ops atomic.Int64
	var pickMu sync.Mutex
	pick := rand.New(rand.NewPCG(7, 7))
	chaos := func() {
		if ops.Add(1)%5 == 0 {
			pickMu.Lock()
			dev.SetFaults(faults[pick.IntN(len(faults))])
			pickMu.Unlock()
		}
	}
	known := make([]error, workers)
	var failed sync.Map               // worker -> count of calls that failed with a known error
	want := make([][][]byte, workers) // last successfully written contents, nil if unknown
	var wg sync.WaitGroup
	for w := range workers {
		want[w] = make([][]byte, per)
		for i := range want[w] {
			want[w][i] = make([]byte, sector) // the disk starts zeroed
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			buf := make([]byte, sector)
			for r := range rounds {
				chaos()
				i := rng.IntN(per)
				off := int64((w*per + i) * sector)
				if rng.IntN(2) == 0 {
					for j := range buf {
						buf[j] = byte(w*31 + r + j)
					}
					_, err := b.WriteAt(buf, off)
					if err == nil {
						want[w][i] = bytes.Clone(buf)
					} else {
						want[w][i] = nil // unspecified after a failed write
					}
					if err != nil && !knownErr(err) {
						known[w] = err
						return
					}
					if err != nil {
						n, _ := failed.LoadOrStore(w, new(int))
						*n.(*int)++
					}
					continue
				}
				_, err := b.ReadAt(buf, off)
				switch {
				case err == nil && want[w][i] != nil && !bytes.Equal(buf, want[w][i]):
					known[w] = errors.New("a successful read disagrees with the last successful write")
					return
				case err != nil && !knownErr(err):
					known[w] = err
					return
				case err != nil:
					n, _ := failed.LoadOrStore(w, new(int))
					*n.(*int)++
				}
			}
		}()
	}
	wg.Wait()
	dev.SetFaults(model.Faults{})
	for _, err := range known {
		require.NoError(t, err)
	}
	total := 0
	failed.Range(func(_, v any) bool { total += *v.(*int); return true })
	t.Logf("%d of %d calls failed under the faults", total, workers*rounds)
	require.Positive(t, total, "the faults never reached a request")
	buf := make([]byte, sector)
	for w := range workers {
		for i, c := range want[w] {
			var err error
			for range 20 { // the first requests after the chaos may meet a fault's leftovers
				if _, err = b.ReadAt(buf, int64((w*per+i)*sector)); err == nil {
					break
				}
			}
			require.NoError(t, err)
			if c != nil {
				require.Equal(t, c, buf, "worker %d sector %d", w, i)
			}
		}
	}
	require.NoError(t, b.Sync())
}

func knownErr(err error) bool {
	return errors.Is(err, virtio.ErrDevice) || errors.Is(err, hal.ErrTimeout) ||
		errors.Is(err, virtio.ErrNeedsReset) || errors.Is(err, virtio.ErrIO)
}

// TestNetChaos sends frames both ways while the device switches between
// misbehaviours at random. Every call ends with success or a known error,
// no frame arrives altered, and afterwards frames flow both ways again.
// (A device that swallows receive buffers for good looks like an idle
// link, for which ReadFrame rightly waits; stalls are injected on the
// transmit queue only, where the driver must give up in time.)
func TestNetChaos(t *testing.T) {
	frames := 1500
	if testing.Short() {
		frames = 300
	}
	x, y := mem.NewNICPair(mem.NICOptions{})
	n, dev, _ := newNet(t, x, model.NetOptions{}, model.Options{},
		virtio.NetOptions{Timeout: 50 * time.Millisecond, RxQueueSize: 16, TxQueueSize: 8})
	faults := []model.Faults{
		{},
		{UsedLenExtra: 1 << 16}, // beyond any buffer: a length within it cannot be told from the truth
		{BadUsedID: true},
		{DuplicateUsed: true},
		{UsedIdxJump: 3},
		{Queues: 1 << virtio.VirtioNetTxQ, Stall: true},
		{CorruptDescriptors: true},
	}
	// frame builds a self-checking frame: byte 14 is a tag, the rest of the
	// payload a pattern derived from it.
	frame := func(dst, src hal.MAC, tag byte, size int) []byte {
		f := make([]byte, size)
		copy(f, dst[:])
		copy(f[6:], src[:])
		f[12], f[13], f[14] = 0x88, 0xb5, tag
		for i := 15; i < size; i++ {
			f[i] = tag ^ byte(i)
		}
		return f
	}
	intact := func(f []byte) bool {
		if len(f) < 15 || f[12] != 0x88 || f[13] != 0xb5 {
			return true // not ours
		}
		for i := 15; i < len(f); i++ {
			if f[i] != f[14]^byte(i) {
				return false
			}
		}
		return true
	}

	// The faults change with the traffic: every few frames the
	// transmitter picks the next one.
	pick := rand.New(rand.NewPCG(3, 3))
	var errTx, errRx, errPeer error
	var txFailed, rxFailed int
	var senders sync.WaitGroup
	senders.Add(2)
	go func() { // virtio transmits
		defer senders.Done()
		for i := range frames {
			if i%5 == 0 {
				dev.SetFaults(faults[pick.IntN(len(faults))])
			}
			if err := n.WriteFrame(frame(y.MAC(), n.MAC(), byte(i), 60+i%1400)); err != nil {
				if !knownErr(err) {
					errTx = err
					return
				}
				txFailed++
			}
		}
	}()
	go func() { // the peer transmits
		defer senders.Done()
		for i := range frames {
			if err := y.WriteFrame(frame(n.MAC(), y.MAC(), byte(i%0xe0), 60+i%1400)); err != nil {
				errPeer = err
				return
			}
		}
	}()
	sawClean := make(chan struct{})
	rxDone := make(chan struct{})
	go func() { // virtio receives until closed
		defer close(rxDone)
		buf := make([]byte, 2048)
		clean := false
		for {
			k, err := n.ReadFrame(buf)
			switch {
			case errors.Is(err, hal.ErrClosed):
				return
			case err != nil && !knownErr(err) && !errors.Is(err, hal.ErrFrameSize):
				errRx = err
				return
			case err != nil:
				rxFailed++
			case !intact(buf[:k]):
				errRx = errors.New("a frame arrived altered")
				return
			case buf[14] == 0xee && !clean:
				clean = true
				close(sawClean)
			}
		}
	}()
	peerDone := make(chan struct{})
	go func() { // the peer receives until closed
		defer close(peerDone)
		buf := make([]byte, 2048)
		for {
			k, err := y.ReadFrame(buf)
			if err != nil {
				return
			}
			if !intact(buf[:k]) {
				errPeer = errors.New("a frame reached the peer altered")
				return
			}
		}
	}()
	require.True(t, waitTimeout(&senders, 30*time.Second), "senders hung")
	dev.SetFaults(model.Faults{})
	require.NoError(t, errTx)
	require.NoError(t, errPeer)
	t.Logf("transmit: %d of %d failed; receive: %d calls failed", txFailed, frames, rxFailed)

	// The device behaves again: frames get through both ways.
	require.Eventually(t, func() bool {
		require.NoError(t, y.WriteFrame(frame(n.MAC(), y.MAC(), 0xee, 64)))
		select {
		case <-sawClean:
			return true
		case <-time.After(time.Millisecond):
			return false
		}
	}, 10*time.Second, time.Millisecond)
	var err error
	for range 20 {
		if err = n.WriteFrame(frame(y.MAC(), n.MAC(), 0xfa, 100)); err == nil {
			break
		}
	}
	require.NoError(t, err)
	require.NoError(t, n.Close())
	<-rxDone
	require.NoError(t, errRx)
	require.NoError(t, y.Close())
	<-peerDone
	require.NoError(t, errPeer)
	require.Positive(t, txFailed+rxFailed, "the faults never reached a call")
}

// waitTimeout waits for wg at most d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
