package haltest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// vecFill is the byte the vector suite fills buffers with, to see which
// bytes a read wrote.
const vecFill = 0xEE

// testNICVec checks hal.VecNIC on b (frames written on a). It runs with
// offload disabled, so frames are plain and at most MaxFrameLen long.
func testNICVec(t *testing.T, a, b hal.NIC) {
	vb, ok := b.(hal.VecNIC)
	if !ok {
		t.Skip("not a hal.VecNIC")
	}
	size := fit(a, b, 600)
	cases := []struct {
		name  string
		split []int // buffer lengths; -1 means "the rest of the frame plus slack"
	}{
		{name: "one-buffer", split: []int{-1}},
		{name: "header-then-payload", split: []int{hal.EthernetHeaderLen, -1}},
		{name: "empty-buffers-skipped", split: []int{0, 1, 0, 20, 0, -1}},
		{name: "max-buffers", split: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, -1}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := frame(b.MAC(), a.MAC(), uint32(100+i), size)
			if err := a.WriteFrame(want); err != nil {
				t.Fatal(err)
			}
			bufs := vecBufs(c.split, size+64)
			n, h := readVec(t, vb, bufs)
			if h != (hal.NetHdr{}) {
				t.Fatalf("header %+v with offload disabled, want all zero", h)
			}
			got := make([]byte, 0, n)
			written := 0
			for _, buf := range bufs {
				k := min(len(buf), n-written)
				got = append(got, buf[:k]...)
				written += k
				for j, x := range buf[k:] {
					if x != vecFill {
						t.Fatalf("byte %d beyond the frame's end in a %d-byte buffer modified", k+j, len(buf))
					}
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("scattered frame altered: got %d bytes (tag %d), want %d", n, frameTag(got), len(want))
			}
		})
	}

	t.Run("short-buffers", func(t *testing.T) {
		big := frame(b.MAC(), a.MAC(), 201, size)
		small := frame(b.MAC(), a.MAC(), 202, min(100, size-22))
		for _, f := range [][]byte{big, small} {
			if err := a.WriteFrame(f); err != nil {
				t.Fatal(err)
			}
		}
		sawShort := false
		deadline := time.Now().Add(hangTimeout)
		for time.Now().Before(deadline) {
			bufs := vecBufs([]int{hal.EthernetHeaderLen, size - hal.EthernetHeaderLen - 1}, 0)
			n, _, err := readVecOnce(t, vb, bufs)
			if errors.Is(err, io.ErrShortBuffer) {
				if n != 0 {
					t.Fatalf("short buffers returned n=%d, want 0", n)
				}
				sawShort = true
				continue
			}
			if err != nil {
				t.Fatalf("ReadFrameHdrVec: %v", err)
			}
			if !isSuiteFrame(bufs, n) {
				continue
			}
			if !sawShort {
				t.Fatalf("%d-byte frame into %d bytes of buffers: got %d bytes and no io.ErrShortBuffer", size, size-1, n)
			}
			got := append(bytes.Clone(bufs[0]), bufs[1][:n-hal.EthernetHeaderLen]...)
			if !bytes.Equal(got, small) {
				t.Fatalf("frame after the discarded one altered (tag %d, %d bytes)", frameTag(got), n)
			}
			return
		}
		t.Fatalf("next frame not received")
	})

	t.Run("too-many-buffers", func(t *testing.T) {
		want := frame(b.MAC(), a.MAC(), 301, size)
		if err := a.WriteFrame(want); err != nil {
			t.Fatal(err)
		}
		split := make([]int, hal.MaxVecBufs+1)
		for i := range split {
			split[i] = size
		}
		bufs := vecBufs(split, 0)
		_, _, err := readVecOnce(t, vb, bufs)
		if err != nil {
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("%d buffers refused with %v, want an error wrapping errors.ErrUnsupported", len(bufs), err)
			}
			// Refused before reading: the frame is still there.
			one := vecBufs([]int{-1}, size+64)
			n, _ := readVec(t, vb, one)
			if !bytes.Equal(one[0][:n], want) {
				t.Fatalf("frame after a refused read altered or lost (tag %d, %d bytes)", frameTag(one[0][:n]), n)
			}
			return
		}
		// Accepted: reading more buffers than required is allowed.
	})
}

// testNICGather checks hal.VecNIC's WriteFrameHdrVec on b (frames read on
// a), with offload disabled.
func testNICGather(t *testing.T, a, b hal.NIC) {
	vb, ok := b.(hal.VecNIC)
	if !ok {
		t.Skip("not a hal.VecNIC")
	}
	size := fit(a, b, 600)
	r := startReader(a, hal.MaxFrameLen(a)+64)
	expect := func(t *testing.T, want []byte) {
		t.Helper()
		if got := r.next(t); !bytes.Equal(got, want) {
			t.Fatalf("gathered frame altered: got %d bytes (tag %d), want %d (tag %d)", len(got), frameTag(got), len(want), frameTag(want))
		}
	}
	cases := []struct {
		name  string
		split []int // piece lengths; -1 means "the rest of the frame"
		hdr   bool  // pass an all-zero header rather than nil
	}{
		{name: "one-buffer", split: []int{-1}},
		{name: "zero-header", split: []int{hal.EthernetHeaderLen, -1}, hdr: true},
		{name: "empty-buffers-skipped", split: []int{0, 1, 0, 20, 0, -1, 0}},
		{name: "max-buffers", split: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, -1}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := frame(a.MAC(), b.MAC(), uint32(400+i), size)
			pieces := cut(want, c.split)
			var h *hal.NetHdr
			if c.hdr {
				h = &hal.NetHdr{}
			}
			if err := vb.WriteFrameHdrVec(h, pieces); err != nil {
				t.Fatalf("WriteFrameHdrVec(%d pieces): %v", len(pieces), err)
			}
			// The NIC keeps no reference: scribbling over everything after
			// the Ethernet header now changes nothing.
			off := 0
			for _, p := range pieces {
				for j := range p {
					if off+j >= hal.EthernetHeaderLen {
						p[j] = vecFill
					}
				}
				off += len(p)
			}
			expect(t, frame(a.MAC(), b.MAC(), uint32(400+i), size))
		})
	}

	t.Run("frame-size-limits", func(t *testing.T) {
		for _, n := range []int{0, hal.EthernetHeaderLen - 1, hal.MaxFrameLen(b) + 1} {
			f := make([]byte, n)
			if n >= hal.EthernetHeaderLen {
				f = frame(a.MAC(), b.MAC(), 450, n)
			}
			err := vb.WriteFrameHdrVec(nil, cut(f, []int{n / 2, -1}))
			if !errors.Is(err, hal.ErrFrameSize) {
				t.Fatalf("WriteFrameHdrVec(%d bytes in two pieces) = %v, want an error wrapping hal.ErrFrameSize", n, err)
			}
		}
	})

	t.Run("too-many-buffers", func(t *testing.T) {
		split := make([]int, hal.MaxVecBufs+1)
		for i := range split {
			split[i] = 1
		}
		split[len(split)-1] = -1
		want := frame(a.MAC(), b.MAC(), 460, size)
		err := vb.WriteFrameHdrVec(nil, cut(want, split))
		if err != nil {
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("%d buffers refused with %v, want an error wrapping errors.ErrUnsupported", len(split), err)
			}
			// Refused: nothing was sent, so the next frame is the next one.
			want = frame(a.MAC(), b.MAC(), 461, size)
			if err := b.WriteFrame(want); err != nil {
				t.Fatal(err)
			}
		}
		expect(t, want)
	})
}

// cut splits f into pieces of the given lengths (-1: the rest), copying
// them so that no piece aliases f.
func cut(f []byte, split []int) [][]byte {
	var pieces [][]byte
	off := 0
	for _, l := range split {
		if l < 0 || off+l > len(f) {
			l = len(f) - off
		}
		pieces = append(pieces, bytes.Clone(f[off:off+l]))
		off += l
	}
	return pieces
}

// vecBufs makes buffers of the given lengths, filled with vecFill; -1 is
// rest bytes.
func vecBufs(split []int, rest int) [][]byte {
	bufs := make([][]byte, len(split))
	for i, l := range split {
		if l < 0 {
			l = rest
		}
		bufs[i] = bytes.Repeat([]byte{vecFill}, l)
	}
	return bufs
}

// isSuiteFrame reports whether the n-byte frame scattered over bufs carries
// the suite's EtherType.
func isSuiteFrame(bufs [][]byte, n int) bool {
	if n < hal.EthernetHeaderLen {
		return false
	}
	var head [hal.EthernetHeaderLen]byte
	k := 0
	for _, b := range bufs {
		k += copy(head[k:], b)
		if k == len(head) {
			break
		}
	}
	return binary.BigEndian.Uint16(head[12:14]) == EtherType
}

// readVec reads the next suite frame into bufs (refilled with vecFill
// before each attempt), failing the test on an error or a hang.
func readVec(t *testing.T, n hal.VecNIC, bufs [][]byte) (int, hal.NetHdr) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for time.Now().Before(deadline) {
		for _, b := range bufs {
			for i := range b {
				b[i] = vecFill
			}
		}
		k, h, err := readVecOnce(t, n, bufs)
		if err != nil {
			t.Fatalf("ReadFrameHdrVec: %v", err)
		}
		if isSuiteFrame(bufs, k) {
			return k, h
		}
	}
	t.Fatalf("no suite frame received within %v", hangTimeout)
	return 0, hal.NetHdr{}
}

// readVecOnce calls ReadFrameHdrVec once, failing the test if it hangs.
func readVecOnce(t *testing.T, n hal.VecNIC, bufs [][]byte) (int, hal.NetHdr, error) {
	t.Helper()
	type res struct {
		n   int
		h   hal.NetHdr
		err error
	}
	ch := make(chan res, 1)
	tmp := make([][]byte, len(bufs))
	for i, b := range bufs {
		tmp[i] = bytes.Clone(b)
	}
	go func() {
		k, h, err := n.ReadFrameHdrVec(tmp)
		ch <- res{k, h, err}
	}()
	select {
	case r := <-ch:
		for i := range bufs {
			copy(bufs[i], tmp[i])
		}
		return r.n, r.h, r.err
	case <-time.After(hangTimeout):
		t.Fatalf("ReadFrameHdrVec hung for %v", hangTimeout)
	}
	return 0, hal.NetHdr{}, nil
}
