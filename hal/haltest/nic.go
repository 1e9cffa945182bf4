package haltest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// EtherType is the EtherType of the frames TestNIC sends (IEEE 802 local
// experimental EtherType 1). TestNIC ignores frames of any other type, so it
// can run on links where a host kernel emits its own traffic.
const EtherType = 0x88B5

// hangTimeout bounds every wait in the suites: long enough for a loaded CI
// machine, short enough to report a hang as a failure instead of a stuck run.
const hangTimeout = 10 * time.Second

// TestNIC checks the hal.NIC contract on a pair of NICs joined by a link:
// frames written on a arrive at b and frames written on b arrive at a. The
// link must not lose, reorder or alter the suite's frames, and must buffer
// at least 16 frames. Any MTU from hal.MinMTU up works. makePair is called
// once per subtest; the suite closes the NICs it gets.
func TestNIC(t *testing.T, makePair func(t *testing.T) (a, b hal.NIC)) {
	t.Helper()
	run := func(name string, f func(t *testing.T, a, b hal.NIC)) {
		t.Run(name, func(t *testing.T) {
			a, b := makePair(t)
			defer a.Close()
			defer b.Close()
			f(t, a, b)
		})
	}
	run("Identity", testNICIdentity)
	run("RoundTrip", testNICRoundTrip)
	run("MaxFrame", testNICMaxFrame)
	run("FrameSizeLimits", testNICFrameSizeLimits)
	run("WriterKeepsNoBuffer", testNICWriterKeepsNoBuffer)
	run("ShortBuffer", testNICShortBuffer)
	run("Order", testNICOrder)
	run("ConcurrentWriters", testNICConcurrentWriters)
	run("Batch", testNICBatch)
	run("Offload", testNICOffload)
	run("Vec", testNICVec)
	run("Gather", testNICGather)
	run("CloseUnblocksRead", testNICCloseUnblocksRead)
	run("UseAfterClose", testNICUseAfterClose)
}

// frame builds a suite frame from src to dst carrying a tag and payload of
// length size (total frame length).
func frame(dst, src hal.MAC, tag uint32, size int) []byte {
	if size < hal.EthernetHeaderLen+4 {
		size = hal.EthernetHeaderLen + 4
	}
	f := make([]byte, size)
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:14], EtherType)
	binary.BigEndian.PutUint32(f[14:18], tag)
	for i := 18; i < size; i++ {
		f[i] = byte(uint32(i)*31 + tag)
	}
	return f
}

func frameTag(f []byte) uint32 { return binary.BigEndian.Uint32(f[14:18]) }

// fit clamps a frame length to what both ends of the link accept.
func fit(a, b hal.NIC, size int) int {
	return min(size, hal.MaxFrameLen(a), hal.MaxFrameLen(b))
}

type readResult struct {
	frame []byte
	err   error
}

// reader reads suite frames from n in its own goroutine and delivers them on
// a channel, skipping foreign frames.
type reader struct {
	ch   chan readResult
	done chan struct{}
}

func startReader(n hal.NIC, bufLen int) *reader {
	r := &reader{ch: make(chan readResult, 4096), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, bufLen)
		for {
			k, err := n.ReadFrame(buf)
			if err != nil {
				if errors.Is(err, io.ErrShortBuffer) {
					r.ch <- readResult{err: err}
					continue
				}
				r.ch <- readResult{err: err}
				return
			}
			if k < hal.EthernetHeaderLen || binary.BigEndian.Uint16(buf[12:14]) != EtherType {
				continue
			}
			r.ch <- readResult{frame: bytes.Clone(buf[:k])}
		}
	}()
	return r
}

func (r *reader) next(t *testing.T) []byte {
	t.Helper()
	select {
	case res := <-r.ch:
		if res.err != nil {
			t.Fatalf("ReadFrame: %v", res.err)
		}
		return res.frame
	case <-time.After(hangTimeout):
		t.Fatalf("no frame received within %v", hangTimeout)
	}
	return nil
}

func testNICIdentity(t *testing.T, a, b hal.NIC) {
	for _, n := range []hal.NIC{a, b} {
		if mtu := n.MTU(); mtu < hal.MinMTU {
			t.Errorf("MTU() = %d, want >= %d", mtu, hal.MinMTU)
		}
		if n.MTU() != n.MTU() {
			t.Errorf("MTU() not stable")
		}
		m := n.MAC()
		if m == (hal.MAC{}) {
			t.Errorf("MAC() is all zero")
		}
		if m.IsMulticast() {
			t.Errorf("MAC() = %v is a group address, want unicast", m)
		}
		if n.MAC() != m {
			t.Errorf("MAC() not stable")
		}
	}
}

func testNICRoundTrip(t *testing.T, a, b hal.NIC) {
	rb := startReader(b, hal.MaxFrameLen(b))
	ra := startReader(a, hal.MaxFrameLen(a))
	for i, size := range []int{hal.EthernetHeaderLen + 4, 60, 64, 100, 1000} {
		if size > hal.MaxFrameLen(a) || size > hal.MaxFrameLen(b) {
			continue
		}
		f := frame(b.MAC(), a.MAC(), uint32(i), size)
		if err := a.WriteFrame(f); err != nil {
			t.Fatalf("a.WriteFrame(%d bytes): %v", size, err)
		}
		got := rb.next(t)
		if !bytes.Equal(got, f) {
			t.Fatalf("a→b frame of %d bytes arrived as %d bytes, altered", size, len(got))
		}
		g := frame(a.MAC(), b.MAC(), uint32(100+i), size)
		if err := b.WriteFrame(g); err != nil {
			t.Fatalf("b.WriteFrame(%d bytes): %v", size, err)
		}
		if got := ra.next(t); !bytes.Equal(got, g) {
			t.Fatalf("b→a frame of %d bytes arrived as %d bytes, altered", size, len(got))
		}
	}
}

func testNICMaxFrame(t *testing.T, a, b hal.NIC) {
	max := min(hal.MaxFrameLen(a), hal.MaxFrameLen(b))
	rb := startReader(b, hal.MaxFrameLen(b))
	f := frame(b.MAC(), a.MAC(), 7, max)
	if err := a.WriteFrame(f); err != nil {
		t.Fatalf("WriteFrame of MTU+header = %d bytes: %v", max, err)
	}
	if got := rb.next(t); !bytes.Equal(got, f) {
		t.Fatalf("maximal frame altered: sent %d bytes, got %d", len(f), len(got))
	}
	// Broadcast frames are delivered too.
	g := frame(hal.Broadcast, a.MAC(), 8, 60)
	if err := a.WriteFrame(g); err != nil {
		t.Fatalf("WriteFrame(broadcast): %v", err)
	}
	if got := rb.next(t); !bytes.Equal(got, g) {
		t.Fatalf("broadcast frame altered")
	}
}

func testNICFrameSizeLimits(t *testing.T, a, b hal.NIC) {
	cases := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"shorter than header", hal.EthernetHeaderLen - 1},
		{"one over MTU", hal.MaxFrameLen(a) + 1},
		{"far over MTU", hal.MaxFrameLen(a) + 4096},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := make([]byte, c.size)
			if c.size >= hal.EthernetHeaderLen {
				f = frame(b.MAC(), a.MAC(), 9, c.size)
			}
			err := a.WriteFrame(f)
			if !errors.Is(err, hal.ErrFrameSize) {
				t.Fatalf("WriteFrame(%d bytes) = %v, want error wrapping hal.ErrFrameSize", c.size, err)
			}
		})
	}
}

func testNICWriterKeepsNoBuffer(t *testing.T, a, b hal.NIC) {
	rb := startReader(b, hal.MaxFrameLen(b))
	const n = 32
	want := make([][]byte, n)
	buf := make([]byte, fit(a, b, 200))
	for i := range n {
		f := frame(b.MAC(), a.MAC(), uint32(i), len(buf))
		want[i] = f
		copy(buf, f)
		if err := a.WriteFrame(buf); err != nil {
			t.Fatalf("WriteFrame: %v", err)
		}
		for j := hal.EthernetHeaderLen; j < len(buf); j++ { // scribble after return
			buf[j] = 0xEE
		}
	}
	for i := range n {
		if got := rb.next(t); !bytes.Equal(got, want[i]) {
			t.Fatalf("frame %d altered after WriteFrame returned: the NIC kept the caller's buffer", i)
		}
	}
}

func testNICShortBuffer(t *testing.T, a, b hal.NIC) {
	bigLen := fit(a, b, 600)
	big := frame(b.MAC(), a.MAC(), 1, bigLen)
	small := frame(b.MAC(), a.MAC(), 2, min(100, bigLen-22))
	if err := a.WriteFrame(big); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteFrame(small); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, bigLen-1) // one byte short of the big frame
	sawShort := false
	deadline := time.Now().Add(hangTimeout)
	for time.Now().Before(deadline) {
		n, err := readWithTimeout(t, b, buf)
		if errors.Is(err, io.ErrShortBuffer) {
			if n != 0 {
				t.Fatalf("ReadFrame with short buffer returned n=%d, want 0", n)
			}
			sawShort = true
			continue
		}
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		if n < hal.EthernetHeaderLen || binary.BigEndian.Uint16(buf[12:14]) != EtherType {
			continue
		}
		if !sawShort {
			t.Fatalf("%d-byte frame into %d-byte buffer: got %d bytes and no io.ErrShortBuffer", bigLen, len(buf), n)
		}
		if !bytes.Equal(buf[:n], small) {
			t.Fatalf("frame after the discarded one altered (tag %d, %d bytes)", frameTag(buf[:n]), n)
		}
		return
	}
	t.Fatalf("next frame not received")
}

// readWithTimeout calls ReadFrame, failing the test if it hangs.
func readWithTimeout(t *testing.T, n hal.NIC, buf []byte) (int, error) {
	t.Helper()
	type res struct {
		n   int
		err error
	}
	ch := make(chan res, 1)
	tmp := make([]byte, len(buf))
	go func() {
		k, err := n.ReadFrame(tmp)
		ch <- res{k, err}
	}()
	select {
	case r := <-ch:
		copy(buf, tmp[:max(r.n, 0)])
		return r.n, r.err
	case <-time.After(hangTimeout):
		t.Fatalf("ReadFrame hung for %v", hangTimeout)
	}
	return 0, nil
}

func testNICOrder(t *testing.T, a, b hal.NIC) {
	rb := startReader(b, hal.MaxFrameLen(b))
	const n = 500
	size := func(i int) int { return fit(a, b, 60+i%500) }
	go func() {
		for i := range n {
			if err := a.WriteFrame(frame(b.MAC(), a.MAC(), uint32(i), size(i))); err != nil {
				return
			}
		}
	}()
	for i := range n {
		got := rb.next(t)
		if tag := frameTag(got); tag != uint32(i) {
			t.Fatalf("frame %d arrived as number %d: frames from one writer must stay in order", tag, i)
		}
		if !bytes.Equal(got, frame(b.MAC(), a.MAC(), uint32(i), size(i))) {
			t.Fatalf("frame %d altered", i)
		}
	}
}

func testNICConcurrentWriters(t *testing.T, a, b hal.NIC) {
	rb := startReader(b, hal.MaxFrameLen(b))
	const writers, per = 4, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				tag := uint32(w<<16 | i)
				if err := a.WriteFrame(frame(b.MAC(), a.MAC(), tag, fit(a, b, 64+w*100))); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	seen := make(map[uint32]bool)
	next := make([]int, writers)
	for range writers * per {
		got := rb.next(t)
		tag := frameTag(got)
		w, i := int(tag>>16), int(tag&0xffff)
		if w >= writers || seen[tag] {
			t.Fatalf("unexpected or duplicate frame tag %#x", tag)
		}
		seen[tag] = true
		if i != next[w] {
			t.Fatalf("writer %d: frame %d arrived before frame %d", w, i, next[w])
		}
		next[w]++
		if !bytes.Equal(got, frame(b.MAC(), a.MAC(), tag, fit(a, b, 64+w*100))) {
			t.Fatalf("frame %#x altered", tag)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func testNICBatch(t *testing.T, a, b hal.NIC) {
	ba, okA := a.(hal.BatchNIC)
	bb, okB := b.(hal.BatchNIC)
	if !okA || !okB {
		t.Skip("not a hal.BatchNIC")
	}
	const n = 16
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = frame(b.MAC(), a.MAC(), uint32(i), fit(a, b, 60+i*50))
	}
	k, err := ba.WriteFrames(frames)
	if err != nil || k != n {
		t.Fatalf("WriteFrames = %d, %v; want %d, nil", k, err, n)
	}
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, hal.MaxFrameLen(b))
	}
	sizes := make([]int, len(bufs))
	got := 0
	deadline := time.Now().Add(hangTimeout)
	for got < n && time.Now().Before(deadline) {
		k, err := bb.ReadFrames(bufs, sizes)
		if err != nil {
			t.Fatalf("ReadFrames: %v", err)
		}
		if k < 1 || k > len(bufs) {
			t.Fatalf("ReadFrames returned %d frames for %d buffers", k, len(bufs))
		}
		for i := range k {
			if sizes[i] < hal.EthernetHeaderLen || binary.BigEndian.Uint16(bufs[i][12:14]) != EtherType {
				continue
			}
			if !bytes.Equal(bufs[i][:sizes[i]], frames[got]) {
				t.Fatalf("batched frame %d altered or out of order (tag %d)", got, frameTag(bufs[i][:sizes[i]]))
			}
			got++
		}
	}
	if got != n {
		t.Fatalf("received %d of %d batched frames", got, n)
	}
	// An oversized frame in a batch is rejected; the frames before it are sent.
	bad := [][]byte{frames[0], make([]byte, hal.MaxFrameLen(a)+1)}
	k, err = ba.WriteFrames(bad)
	if k != 1 || !errors.Is(err, hal.ErrFrameSize) {
		t.Fatalf("WriteFrames(good, oversized) = %d, %v; want 1 and hal.ErrFrameSize", k, err)
	}
}

func testNICOffload(t *testing.T, a, b hal.NIC) {
	oa, okA := a.(hal.OffloadNIC)
	ob, okB := b.(hal.OffloadNIC)
	if !okA || !okB {
		t.Skip("not a hal.OffloadNIC")
	}
	// Offload starts disabled: the header-carrying calls behave like the
	// plain ones with a zero header.
	rb := func() ([]byte, hal.NetHdr) {
		buf := make([]byte, hal.MaxOffloadFrame)
		for {
			type res struct {
				n   int
				h   hal.NetHdr
				err error
			}
			ch := make(chan res, 1)
			go func() {
				n, h, err := ob.ReadFrameHdr(buf)
				ch <- res{n, h, err}
			}()
			select {
			case r := <-ch:
				if r.err != nil {
					t.Fatalf("ReadFrameHdr: %v", r.err)
				}
				if r.n >= hal.EthernetHeaderLen && binary.BigEndian.Uint16(buf[12:14]) == EtherType {
					return bytes.Clone(buf[:r.n]), r.h
				}
			case <-time.After(hangTimeout):
				t.Fatalf("ReadFrameHdr hung")
			}
		}
	}
	f := frame(b.MAC(), a.MAC(), 1, fit(a, b, 200))
	if err := oa.WriteFrameHdr(&hal.NetHdr{}, f); err != nil {
		t.Fatalf("WriteFrameHdr with zero header, offload off: %v", err)
	}
	got, h := rb()
	if !bytes.Equal(got, f) || h != (hal.NetHdr{}) {
		t.Fatalf("zero-header frame: altered=%v header=%+v", !bytes.Equal(got, f), h)
	}
	// Asking for a disabled ability is refused.
	if oa.SupportedOffload()&hal.OffloadTxCsum != 0 {
		bad := &hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 14, CsumOffset: 4}
		if err := oa.WriteFrameHdr(bad, f); err == nil {
			t.Fatalf("WriteFrameHdr with NEEDS_CSUM accepted while tx-csum is not enabled")
		}
	}
	// SetOffload grants a subset of what is supported.
	want := oa.SupportedOffload()
	got2, err := oa.SetOffload(want)
	if err != nil {
		t.Fatalf("SetOffload(%v): %v", want, err)
	}
	if got2&^want != 0 {
		t.Fatalf("SetOffload(%v) granted %v, more than asked", want, got2)
	}
	// A malformed header is rejected.
	bad := &hal.NetHdr{Flags: 0x40}
	if err := oa.WriteFrameHdr(bad, f); err == nil {
		t.Fatalf("WriteFrameHdr accepted a header with unknown flags")
	}
	if _, err := oa.SetOffload(0); err != nil {
		t.Fatalf("SetOffload(0): %v", err)
	}
}

func testNICCloseUnblocksRead(t *testing.T, a, b hal.NIC) {
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		buf := make([]byte, hal.MaxFrameLen(b))
		close(started)
		for {
			n, err := b.ReadFrame(buf)
			if err != nil {
				errc <- err
				return
			}
			if n >= hal.EthernetHeaderLen && binary.BigEndian.Uint16(buf[12:14]) == EtherType {
				errc <- fmt.Errorf("unexpected suite frame")
				return
			}
		}
	}()
	<-started
	time.Sleep(20 * time.Millisecond) // let ReadFrame block; correctness does not depend on it
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("ReadFrame after Close = %v, want error wrapping hal.ErrClosed", err)
		}
	case <-time.After(hangTimeout):
		t.Fatalf("Close did not unblock ReadFrame within %v", hangTimeout)
	}
}

func testNICUseAfterClose(t *testing.T, a, b hal.NIC) {
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if err := a.WriteFrame(frame(b.MAC(), a.MAC(), 1, 60)); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("WriteFrame after Close = %v, want hal.ErrClosed", err)
	}
	if _, err := readWithTimeout(t, a, make([]byte, hal.MaxFrameLen(a))); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("ReadFrame after Close = %v, want hal.ErrClosed", err)
	}
}
