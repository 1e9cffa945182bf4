package virtio_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/mmio"
	"github.com/anykernel/anykernel/hal/virtio/model"
	"github.com/anykernel/anykernel/hal/virtio/pci"
)

// recoverWait bounds every wait of TestNetRecoveryUnderLoad: far beyond
// what recovery takes on a loaded machine, so reaching it means a hang.
const recoverWait = 30 * time.Second

// loadEnd is one end of the link in TestNetRecoveryUnderLoad: a virtio-net
// driver over a modelled device, or a plain in-memory NIC (dev nil).
type loadEnd struct {
	nic hal.NIC
	dev *model.Device
	be  *model.Net
	mem *model.Memory
}

// newLoadEnd puts a virtio-net driver over a modelled device in front of
// nic, behind a virtio-mmio window or, with overPCI, a virtio-pci function
// with MSI-X.
func newLoadEnd(t *testing.T, nic hal.NIC, mo model.NetOptions, o model.Options, overPCI bool) *loadEnd {
	t.Helper()
	e := &loadEnd{mem: model.NewMemory(), be: model.NewNet(nic, mo)}
	e.dev = model.NewDevice(e.mem, e.be, o)
	var tr virtio.Transport
	if overPCI {
		fn := e.dev.PCI(model.PCIOptions{})
		p, err := pci.New(fn.Config(), fn.BAR, e.mem, pci.Options{MSIX: fn.MSIX(), INTx: fn.INTx()})
		require.NoError(t, err)
		tr = p
	} else {
		win := e.dev.MMIO()
		m, err := mmio.New(win, e.mem, win.IRQ(), mmio.Options{})
		require.NoError(t, err)
		tr = m
	}
	// The timeout ends the waits for a stalled transmit queue; one that
	// expires without a fault is a known error the driver recovers from
	// like the others.
	n, err := virtio.NewNet(tr, virtio.NetOptions{Timeout: 100 * time.Millisecond, RxQueueSize: 32, TxQueueSize: 16})
	require.NoError(t, err)
	e.nic = n
	return e
}

// close closes the driver, then the device model and its NIC.
func (e *loadEnd) close() {
	_ = e.nic.Close()
	if e.dev != nil {
		_ = e.dev.Close()
		_ = e.be.Close()
	}
}

// resets counts the device and queue resets the driver made.
func (e *loadEnd) resets() int {
	d, q := e.dev.Resets()
	return d + q
}

// Frames of TestNetRecoveryUnderLoad carry a direction and a sequence
// number after the Ethernet header; their length and every payload byte
// follow from the sequence number, so any damage shows.
const (
	loadEtherType = 0x88b5
	loadHdrLen    = hal.EthernetHeaderLen + 1 + 4
)

func loadFrameLen(seq uint32, maxLen int) int {
	const minLen = 60
	return minLen + int(seq*7919%uint32(maxLen-minLen+1))
}

// loadPattern is pseudo-random bytes; the payload of frame seq is the run
// of them starting at loadOffset(seq), so a frame shifted, truncated or
// mixed with another does not check, and building and checking a frame
// is one copy and one comparison.
var loadPattern = sync.OnceValue(func() []byte {
	p := make([]byte, 1<<16+hal.MaxOffloadFrame)
	x := uint32(0x9e3779b9)
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
	return p
})

func loadOffset(seq uint32) int { return int(seq * 40503 % (1 << 16)) }

// loadFrame builds frame seq of direction dir in buf.
func loadFrame(buf []byte, dst, src hal.MAC, dir byte, seq uint32, maxLen int) []byte {
	f := buf[:loadFrameLen(seq, maxLen)]
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], loadEtherType)
	f[14] = dir
	binary.BigEndian.PutUint32(f[15:], seq)
	copy(f[loadHdrLen:], loadPattern()[loadOffset(seq):])
	return f
}

// checkLoadFrame returns the sequence number of f if f is an intact frame
// of direction dir from src to dst.
func checkLoadFrame(f []byte, dst, src hal.MAC, dir byte, maxLen int) (uint32, error) {
	if len(f) < loadHdrLen {
		return 0, fmt.Errorf("%d-byte frame", len(f))
	}
	if hal.MAC(f[:6]) != dst || hal.MAC(f[6:12]) != src || binary.BigEndian.Uint16(f[12:]) != loadEtherType || f[14] != dir {
		return 0, fmt.Errorf("foreign or damaged header % x", f[:loadHdrLen])
	}
	seq := binary.BigEndian.Uint32(f[15:])
	if want := loadFrameLen(seq, maxLen); len(f) != want {
		return 0, fmt.Errorf("frame %d is %d bytes, sent %d", seq, len(f), want)
	}
	off := loadOffset(seq)
	if !bytes.Equal(f[loadHdrLen:], loadPattern()[off:off+len(f)-loadHdrLen]) {
		return 0, fmt.Errorf("frame %d damaged", seq)
	}
	return seq, nil
}

// loadFlow is the traffic one way: a sender numbering its frames and a
// receiver checking that each arrives intact, once, in order.
type loadFlow struct {
	name     string
	from, to *loadEnd
	dir      byte
	maxLen   int

	next       atomic.Uint32 // sequence number of the frame being sent
	last       atomic.Int64  // highest sequence number received, -1 for none
	received   atomic.Int64
	sendFailed atomic.Int64
	recvFailed atomic.Int64

	mu  sync.Mutex
	err error // the first failure the flow saw
}

func (fl *loadFlow) fail(err error) {
	fl.mu.Lock()
	if fl.err == nil {
		fl.err = fmt.Errorf("%s: %w", fl.name, err)
	}
	fl.mu.Unlock()
}

func (fl *loadFlow) failure() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.err
}

// send writes numbered frames until stop is set or the NIC closes. A
// frame whose write fails is not written again: every sequence number goes
// out at most once, so the receiver may call any repeat a duplicate.
func (fl *loadFlow) send(stop *atomic.Bool) {
	buf := make([]byte, fl.maxLen)
	dst, src := fl.to.nic.MAC(), fl.from.nic.MAC()
	for seq := uint32(0); !stop.Load(); seq++ {
		fl.next.Store(seq)
		err := fl.from.nic.WriteFrame(loadFrame(buf, dst, src, fl.dir, seq, fl.maxLen))
		switch {
		case err == nil:
		case errors.Is(err, hal.ErrClosed):
			return
		case knownErr(err):
			fl.sendFailed.Add(1)
		default:
			fl.fail(fmt.Errorf("write %d: %w", seq, err))
			return
		}
	}
}

// receive reads and checks frames until the NIC closes.
func (fl *loadFlow) receive() {
	buf := make([]byte, hal.MaxOffloadFrame)
	dst, src := fl.to.nic.MAC(), fl.from.nic.MAC()
	for {
		k, err := fl.to.nic.ReadFrame(buf)
		switch {
		case errors.Is(err, hal.ErrClosed):
			return
		case err != nil && knownErr(err):
			fl.recvFailed.Add(1)
			continue
		case err != nil:
			fl.fail(fmt.Errorf("read: %w", err))
			return
		}
		seq, err := checkLoadFrame(buf[:k], dst, src, fl.dir, fl.maxLen)
		if err != nil {
			fl.fail(err)
			return
		}
		if last := fl.last.Load(); int64(seq) <= last {
			fl.fail(fmt.Errorf("frame %d after frame %d: duplicated or reordered", seq, last))
			return
		}
		fl.last.Store(int64(seq))
		fl.received.Add(1)
	}
}

// flowing waits until a frame sent after the call arrives.
func (fl *loadFlow) flowing(t *testing.T, when string) {
	t.Helper()
	mark := int64(fl.next.Load()) + 1
	require.Eventually(t, func() bool { return fl.last.Load() >= mark || fl.failure() != nil },
		recoverWait, 100*time.Microsecond, "%s: no frame got through %s", fl.name, when)
	require.NoError(t, fl.failure())
}

// loadFault makes a device misbehave so that its driver must recover.
type loadFault struct {
	name   string
	inject func(dev *model.Device)
}

// TestNetRecoveryUnderLoad runs steady traffic both ways over a link with
// virtio-net at one or both ends while the devices misbehave, one fault at
// a time, in ways the driver must mend by resetting a queue or the whole
// device: used ids out of range, duplicated used entries and used indices
// running ahead on either queue, a transmit queue that stops completing,
// and DEVICE_NEEDS_RESET. After every fault, once the driver has
// reset what it must, frames flow again both ways. Throughout, every frame
// that arrives is intact, arrives once and in order (a reset may lose
// frames, never repeat or damage one), and every call ends with success or
// a known error. Closing the ends ends every goroutine and gives back all
// the memory the drivers took.
func TestNetRecoveryUnderLoad(t *testing.T) {
	const rx, tx = 1 << virtio.VirtioNetRxQ, 1 << virtio.VirtioNetTxQ
	faults := []loadFault{
		{name: "rx-used-id-out-of-range", inject: func(d *model.Device) { d.SetFaults(model.Faults{Queues: rx, BadUsedID: true}) }},
		{name: "tx-used-id-out-of-range", inject: func(d *model.Device) { d.SetFaults(model.Faults{Queues: tx, BadUsedID: true}) }},
		{name: "rx-duplicate-used", inject: func(d *model.Device) { d.SetFaults(model.Faults{Queues: rx, DuplicateUsed: true}) }},
		{name: "tx-duplicate-used", inject: func(d *model.Device) { d.SetFaults(model.Faults{Queues: tx, DuplicateUsed: true}) }},
		{name: "rx-used-index-jump", inject: func(d *model.Device) { d.SetFaults(model.Faults{Queues: rx, UsedIdxJump: 3}) }},
		{name: "tx-used-index-jump", inject: func(d *model.Device) { d.SetFaults(model.Faults{Queues: tx, UsedIdxJump: 3}) }},
		{name: "tx-stalled", inject: func(d *model.Device) { d.SetFaults(model.Faults{Queues: tx, Stall: true}) }},
		{name: "needs-reset", inject: func(d *model.Device) { d.RequestReset() }},
	}
	noRingReset := model.Options{HideFeatures: virtio.Bit(virtio.VIRTIO_F_RING_RESET)}
	cases := []struct {
		name       string
		nic        mem.NICOptions
		mo         model.NetOptions
		o          model.Options
		pci        bool
		virtioPeer bool // virtio-net at both ends, both misbehaving in turn
	}{
		{name: "mmio"},
		{name: "pci", pci: true},
		{name: "jumbo-merged-buffers", nic: mem.NICOptions{MTU: 9000}},
		{name: "no-mergeable", mo: model.NetOptions{NoMergeable: true}},
		{name: "no-ring-reset", o: noRingReset},
		{name: "virtio-both-ends", virtioPeer: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			goroutines := runtime.NumGoroutine()
			// The peer's address ends in 01 00: a frame the device wrote
			// without its virtio-net header would read as filling one
			// buffer, so such damage would reach the receiver's check
			// rather than pass for a device error.
			tc.nic.MAC = hal.MAC{0x02, 0, 0, 0, 0x01, 0x01}
			x, y := mem.NewNICPair(tc.nic)
			a := newLoadEnd(t, x, tc.mo, tc.o, tc.pci)
			b := &loadEnd{nic: y}
			faulty := []*loadEnd{a}
			if tc.virtioPeer {
				b = newLoadEnd(t, y, tc.mo, tc.o, tc.pci)
				faulty = append(faulty, b)
			}
			maxLen := min(a.nic.MTU(), b.nic.MTU()) + hal.EthernetHeaderLen
			flows := []*loadFlow{
				{name: "a->b", from: a, to: b, dir: 0, maxLen: maxLen},
				{name: "b->a", from: b, to: a, dir: 1, maxLen: maxLen},
			}
			var stop atomic.Bool
			var workers sync.WaitGroup
			for _, fl := range flows {
				fl.last.Store(-1)
				workers.Go(func() { fl.send(&stop) })
				workers.Go(fl.receive)
			}
			closed := false
			closeAll := func() {
				if closed {
					return
				}
				closed = true
				stop.Store(true)
				a.close()
				b.close()
				if !waitTimeout(&workers, recoverWait) {
					buf := make([]byte, 1<<20)
					t.Fatalf("traffic hung after Close:\n%s", buf[:runtime.Stack(buf, true)])
				}
			}
			defer closeAll()
			for _, fl := range flows {
				fl.flowing(t, "before any fault")
			}

			for i := range len(faults) * len(faulty) {
				f := faults[i%len(faults)]
				e := faulty[i/len(faults)%len(faulty)]
				when := fmt.Sprintf("after %s (round %d)", f.name, i)
				resets := e.resets()
				f.inject(e.dev)
				require.Eventually(t, func() bool { return e.resets() > resets },
					recoverWait, 100*time.Microsecond, "no reset %s", when)
				e.dev.SetFaults(model.Faults{})
				require.Eventually(t, func() bool {
					return e.dev.Status()&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET == 0
				}, recoverWait, 100*time.Microsecond, "device left needing a reset %s", when)
				for _, fl := range flows {
					fl.flowing(t, when)
				}
			}

			closeAll()
			for _, fl := range flows {
				require.NoError(t, fl.failure())
				t.Logf("%s: %d frames received of %d sent; %d writes and %d reads failed", fl.name,
					fl.received.Load(), fl.next.Load(), fl.sendFailed.Load(), fl.recvFailed.Load())
			}
			for _, e := range faulty {
				require.Zero(t, e.dev.Status(), "Close did not reset the device")
				require.Zero(t, e.mem.Regions(), "Close did not free the driver's memory")
			}
			noLeak(t, goroutines)
		})
	}
}

// noLeak waits until no more goroutines run than before, and fails with
// every goroutine's stack if that does not happen in time.
func noLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(recoverWait)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}
