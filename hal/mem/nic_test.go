package mem

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
)

func TestNICPairConformance(t *testing.T) {
	haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
		a, b := NewNICPair(NICOptions{})
		return a, b
	})
}

// A short queue makes the suite's bursts run into backpressure.
func TestNICPairConformanceShortQueue(t *testing.T) {
	haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
		a, b := NewNICPair(NICOptions{MTU: 9000, QueueLen: 64})
		return a, b
	})
}

// nicQueued returns how many frames wait in n's receive queue.
func nicQueued(n *NIC) int {
	n.rx.mu.Lock()
	defer n.rx.mu.Unlock()
	return n.rx.count
}

// testFrame builds a frame from src to dst with EtherType 0x88b5, a tag
// and a length of size bytes.
func testFrame(dst, src hal.MAC, tag uint32, size int) []byte {
	f := make([]byte, max(size, 18))
	copy(f[0:], dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	binary.BigEndian.PutUint32(f[14:], tag)
	for i := 18; i < len(f); i++ {
		f[i] = byte(i) ^ byte(tag)
	}
	return f
}

func testTag(f []byte) uint32 { return binary.BigEndian.Uint32(f[14:]) }

func TestNewNICPairOptions(t *testing.T) {
	mac := hal.MAC{0x02, 1, 2, 3, 4, 6}
	tests := []struct {
		name      string
		opts      NICOptions
		wantMTU   int
		wantQueue int
	}{
		{"defaults", NICOptions{}, hal.DefaultMTU, DefaultNICQueueLen},
		{"jumbo", NICOptions{MTU: 9000, QueueLen: 3}, 9000, 3},
		{"tiny-mtu-raised", NICOptions{MTU: 10}, hal.MinMTU, DefaultNICQueueLen},
		{"huge-mtu-lowered", NICOptions{MTU: 1 << 20}, 65535, DefaultNICQueueLen},
		{"mac", NICOptions{MAC: mac}, hal.DefaultMTU, DefaultNICQueueLen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := NewNICPair(tc.opts)
			defer a.Close()
			defer b.Close()
			assert.Equal(t, tc.wantMTU, a.MTU())
			assert.Equal(t, tc.wantMTU, b.MTU())
			assert.Len(t, a.rx.slots, tc.wantQueue)
			assert.NotEqual(t, a.MAC(), b.MAC())
			for _, m := range []hal.MAC{a.MAC(), b.MAC()} {
				assert.False(t, m.IsMulticast(), "%v", m)
				assert.True(t, m.IsLocal(), "%v", m)
			}
			if tc.opts.MAC != (hal.MAC{}) {
				assert.Equal(t, tc.opts.MAC, a.MAC())
			}
			assert.True(t, a.LinkUp())
		})
	}
}

func TestNICBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewNICPair(NICOptions{QueueLen: 2})
		for i := range 2 {
			require.NoError(t, a.WriteFrame(testFrame(b.MAC(), a.MAC(), uint32(i), 60)))
		}
		done := make(chan error, 1)
		go func() { done <- a.WriteFrame(testFrame(b.MAC(), a.MAC(), 2, 60)) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("write to a full queue returned %v, want it to wait", err)
		default:
		}
		buf := make([]byte, 1514)
		for i := range 3 {
			n, err := b.ReadFrame(buf)
			require.NoError(t, err)
			assert.Equal(t, uint32(i), testTag(buf[:n]))
			if i == 0 {
				require.NoError(t, <-done)
			}
		}
		st := a.Stats()
		assert.Equal(t, uint64(3), st.FramesOut)
		assert.Zero(t, st.TxDrops)
		assert.Equal(t, uint64(3), b.Stats().FramesIn)
		assert.Equal(t, uint64(180), b.Stats().BytesIn)
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})
}

func TestNICCloseSemantics(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, a, b *NIC)
	}{
		{"peer-reads-queued-then-blocks", func(t *testing.T, a, b *NIC) {
			require.NoError(t, a.WriteFrame(testFrame(b.MAC(), a.MAC(), 1, 60)))
			require.NoError(t, a.Close())
			assert.False(t, b.LinkUp())
			assert.False(t, a.LinkUp())
			buf := make([]byte, 1514)
			n, err := b.ReadFrame(buf)
			require.NoError(t, err)
			assert.Equal(t, uint32(1), testTag(buf[:n]))
			done := make(chan error, 1)
			go func() { _, err := b.ReadFrame(buf); done <- err }()
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("read on drained queue returned %v, want it to wait", err)
			default:
			}
			require.NoError(t, b.Close())
			assert.ErrorIs(t, <-done, hal.ErrClosed)
		}},
		{"writes-to-closed-peer-dropped", func(t *testing.T, a, b *NIC) {
			require.NoError(t, a.Close())
			require.NoError(t, b.WriteFrame(testFrame(a.MAC(), b.MAC(), 1, 60)))
			assert.Equal(t, uint64(1), b.Stats().TxDrops)
			require.NoError(t, b.Close())
		}},
		{"close-unblocks-own-writer", func(t *testing.T, a, b *NIC) {
			require.NoError(t, a.WriteFrame(testFrame(b.MAC(), a.MAC(), 1, 60)))
			done := make(chan error, 1)
			go func() { done <- a.WriteFrame(testFrame(b.MAC(), a.MAC(), 2, 60)) }()
			synctest.Wait()
			require.NoError(t, a.Close())
			assert.ErrorIs(t, <-done, hal.ErrClosed)
			require.NoError(t, b.Close())
		}},
		{"peer-close-unblocks-writer", func(t *testing.T, a, b *NIC) {
			require.NoError(t, a.WriteFrame(testFrame(b.MAC(), a.MAC(), 1, 60)))
			done := make(chan error, 1)
			go func() { done <- a.WriteFrame(testFrame(b.MAC(), a.MAC(), 2, 60)) }()
			synctest.Wait()
			require.NoError(t, b.Close())
			assert.NoError(t, <-done)
			assert.Equal(t, uint64(1), a.Stats().TxDrops)
			require.NoError(t, a.Close())
		}},
		{"close-unblocks-batch-read", func(t *testing.T, a, b *NIC) {
			done := make(chan error, 1)
			go func() {
				_, err := b.ReadFrames([][]byte{make([]byte, 100)}, make([]int, 1))
				done <- err
			}()
			synctest.Wait()
			require.NoError(t, b.Close())
			assert.ErrorIs(t, <-done, hal.ErrClosed)
			require.NoError(t, a.Close())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// synctest also fails the test if a goroutine is left blocked.
			synctest.Test(t, func(t *testing.T) {
				a, b := NewNICPair(NICOptions{QueueLen: 1})
				tc.run(t, a, b)
			})
		})
	}
}

func TestNICBatchShortBuffer(t *testing.T) {
	a, b := NewNICPair(NICOptions{})
	defer a.Close()
	defer b.Close()
	frames := [][]byte{
		testFrame(b.MAC(), a.MAC(), 0, 60),
		testFrame(b.MAC(), a.MAC(), 1, 500),
		testFrame(b.MAC(), a.MAC(), 2, 70),
	}
	n, err := a.WriteFrames(frames)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	bufs := [][]byte{make([]byte, 100), make([]byte, 100), make([]byte, 100), make([]byte, 100)}
	sizes := make([]int, 4)
	n, err = b.ReadFrames(bufs, sizes)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	assert.Equal(t, []int{60, -1, 70}, sizes[:3])
	assert.Equal(t, frames[2], bufs[2][:70])
	assert.Equal(t, uint64(1), b.Stats().RxDrops)

	_, err = b.ReadFrames(bufs, sizes[:1])
	assert.Error(t, err, "fewer sizes than buffers")
}

func TestNICSetOffload(t *testing.T) {
	tests := []struct {
		name string
		want hal.Offload
		got  hal.Offload
	}{
		{"none", 0, 0},
		{"all", ^hal.Offload(0), hal.OffloadTxCsum | hal.OffloadTxTSO4 | hal.OffloadTxTSO6 | hal.OffloadTxUSO | hal.OffloadRxCsum | hal.OffloadRxTSO4 | hal.OffloadRxTSO6},
		{"tso-without-csum", hal.OffloadTxTSO4 | hal.OffloadRxTSO6, 0},
		{"csum-only", hal.OffloadTxCsum | hal.OffloadRxCsum, hal.OffloadTxCsum | hal.OffloadRxCsum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := NewNICPair(NICOptions{})
			defer a.Close()
			defer b.Close()
			got, err := a.SetOffload(tc.want)
			require.NoError(t, err)
			assert.Equal(t, tc.got, got)
		})
	}
}

func TestNICWriteHdrRejects(t *testing.T) {
	frame, _, l4, _ := testPacket{payload: testPayload(3000, 1)}.build()
	tests := []struct {
		name    string
		enable  hal.Offload
		hdr     hal.NetHdr
		frame   []byte
		wantErr error
	}{
		{"csum-not-enabled", 0, hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: uint16(l4), CsumOffset: 16}, frame[:1000], errors.ErrUnsupported},
		{"tso-not-enabled", hal.OffloadTxCsum, hal.NetHdr{GSOType: hal.GSOTCPv4, GSOSize: 1448}, frame, errors.ErrUnsupported},
		{"ufo", ^hal.Offload(0), hal.NetHdr{GSOType: hal.GSOUDP, GSOSize: 1448}, frame, errors.ErrUnsupported},
		{"csum-outside", ^hal.Offload(0), hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: 999, CsumOffset: 16}, frame[:1000], nil},
		{"unknown-flag", ^hal.Offload(0), hal.NetHdr{Flags: 0x40}, frame[:1000], nil},
		{"gso-bad-packet", ^hal.Offload(0), hal.NetHdr{GSOType: hal.GSOTCPv6, GSOSize: 1448}, frame, nil},
		{"too-long-without-gso", ^hal.Offload(0), hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: uint16(l4), CsumOffset: 16}, frame, hal.ErrFrameSize},
		{"too-long-plain", ^hal.Offload(0), hal.NetHdr{}, frame, hal.ErrFrameSize},
		{"too-short", 0, hal.NetHdr{}, frame[:13], hal.ErrFrameSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := NewNICPair(NICOptions{})
			defer a.Close()
			defer b.Close()
			_, err := a.SetOffload(tc.enable)
			require.NoError(t, err)
			err = a.WriteFrameHdr(&tc.hdr, tc.frame)
			require.Error(t, err)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			}
			assert.Zero(t, nicQueued(b), "nothing sent")
			assert.Zero(t, a.Stats().FramesOut)
		})
	}
}

// TestNICOffloadDelivery writes checksum-offloaded frames and TSO
// super-frames and checks what receivers with different Rx offloads get.
func TestNICOffloadDelivery(t *testing.T) {
	type pktCase struct {
		name string
		pkt  testPacket
		gso  uint8
	}
	pkts := []pktCase{
		{"tcp4", testPacket{seq: 100, id: 1, flags: 0x19, payload: testPayload(10000, 1)}, hal.GSOTCPv4},
		{"tcp6", testPacket{v6: true, seq: 100, flags: 0x18, payload: testPayload(7000, 2)}, hal.GSOTCPv6},
		{"udp4", testPacket{udp: true, id: 9, payload: testPayload(4000, 3)}, hal.GSOUDPL4},
	}
	rxModes := []struct {
		name     string
		rx       hal.Offload
		takesTSO bool
	}{
		{"rx-none", 0, false},
		{"rx-csum", hal.OffloadRxCsum, false},
		{"rx-all", hal.OffloadRxCsum | hal.OffloadRxTSO4 | hal.OffloadRxTSO6, true},
	}
	for _, pc := range pkts {
		for _, rm := range rxModes {
			t.Run(pc.name+"/"+rm.name, func(t *testing.T) {
				a, b := NewNICPair(NICOptions{})
				defer a.Close()
				defer b.Close()
				_, err := a.SetOffload(a.SupportedOffload())
				require.NoError(t, err)
				_, err = b.SetOffload(rm.rx)
				require.NoError(t, err)

				frame, l3, l4, l4hdr := pc.pkt.build()
				off := uint16(16)
				if pc.pkt.udp {
					off = 6
				}
				binary.BigEndian.PutUint16(frame[l4+int(off):], ^refChecksum(refPseudo(frame, l3, l4, pc.pkt.v6)))
				hdr := hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, GSOType: pc.gso, GSOSize: 1400,
					HdrLen: uint16(l4 + l4hdr), CsumStart: uint16(l4), CsumOffset: off}
				orig := bytes.Clone(frame)
				require.NoError(t, a.WriteFrameHdr(&hdr, frame))
				assert.Equal(t, orig, frame, "caller's frame changed")

				buf := make([]byte, hal.MaxOffloadFrame)
				tso := rm.takesTSO && !pc.pkt.udp
				if tso {
					n, got, err := b.ReadFrameHdr(buf)
					require.NoError(t, err)
					assert.Equal(t, hdr, got, "header passed through")
					assert.Equal(t, frame, buf[:n])
					return
				}
				want := (len(pc.pkt.payload) + 1399) / 1400
				require.Equal(t, want, nicQueued(b))
				var payload []byte
				for i := range want {
					n, got, err := b.ReadFrameHdr(buf)
					require.NoError(t, err)
					seg := buf[:n]
					assert.LessOrEqual(t, n, l4+l4hdr+1400, "segment %d", i)
					if rm.rx&hal.OffloadRxCsum != 0 {
						assert.Equal(t, hal.NetHdr{Flags: hal.NetHdrFDataValid}, got)
					} else {
						assert.Equal(t, hal.NetHdr{}, got)
					}
					assert.True(t, refL4Valid(t, seg, l3, l4, pc.pkt.v6, pc.pkt.udp), "checksum of segment %d", i)
					payload = append(payload, seg[l4+l4hdr:]...)
				}
				assert.Equal(t, pc.pkt.payload, payload)
				assert.Equal(t, uint64(want), b.Stats().FramesIn)
			})
		}
	}
}

func TestNICChecksumOffloadDelivery(t *testing.T) {
	tests := []struct {
		name    string
		rx      hal.Offload
		wantHdr bool
	}{
		{"receiver-without-csum-gets-finished-frame", 0, false},
		{"receiver-with-csum-gets-partial-frame", hal.OffloadRxCsum, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := NewNICPair(NICOptions{})
			defer a.Close()
			defer b.Close()
			_, err := a.SetOffload(hal.OffloadTxCsum)
			require.NoError(t, err)
			_, err = b.SetOffload(tc.rx)
			require.NoError(t, err)
			frame, l3, l4, _ := testPacket{payload: testPayload(1000, 5)}.build()
			partial := ^refChecksum(refPseudo(frame, l3, l4, false))
			binary.BigEndian.PutUint16(frame[l4+16:], partial)
			hdr := hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, CsumStart: uint16(l4), CsumOffset: 16}
			require.NoError(t, a.WriteFrameHdr(&hdr, frame))
			buf := make([]byte, 2000)
			n, got, err := b.ReadFrameHdr(buf)
			require.NoError(t, err)
			if tc.wantHdr {
				assert.Equal(t, hdr, got)
				assert.Equal(t, frame, buf[:n])
			} else {
				assert.Equal(t, hal.NetHdr{}, got)
				assert.True(t, refL4Valid(t, buf[:n], l3, l4, false, false))
				assert.Equal(t, frame[:l4+16], buf[:l4+16])
				assert.Equal(t, frame[l4+18:], buf[l4+18:n])
			}
		})
	}
}

func TestNICReadShortBuffer(t *testing.T) {
	a, b := NewNICPair(NICOptions{})
	defer a.Close()
	defer b.Close()
	require.NoError(t, a.WriteFrame(testFrame(b.MAC(), a.MAC(), 1, 200)))
	require.NoError(t, a.WriteFrame(testFrame(b.MAC(), a.MAC(), 2, 60)))
	_, err := b.ReadFrame(make([]byte, 100))
	assert.ErrorIs(t, err, io.ErrShortBuffer)
	buf := make([]byte, 100)
	n, err := b.ReadFrame(buf)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), testTag(buf[:n]))
	assert.Equal(t, uint64(1), b.Stats().RxDrops)
}

// benchPair measures frames of size bytes through a pair; with gso they are
// TSO super-frames, taken whole by the receiver when rxTSO is set and
// segmented in software otherwise.
func benchPair(b *testing.B, size int, gso, rxTSO bool) {
	x, y := NewNICPair(NICOptions{})
	defer x.Close()
	defer y.Close()
	var hdr hal.NetHdr
	frame := testFrame(y.MAC(), x.MAC(), 1, size)
	if gso {
		_, err := x.SetOffload(x.SupportedOffload())
		require.NoError(b, err)
		if rxTSO {
			_, err = y.SetOffload(y.SupportedOffload())
			require.NoError(b, err)
		}
		var l4 int
		frame, _, l4, _ = testPacket{payload: testPayload(size-54, 1)}.build()
		hdr = hal.NetHdr{Flags: hal.NetHdrFNeedsCsum, GSOType: hal.GSOTCPv4, GSOSize: 1448, HdrLen: 54, CsumStart: uint16(l4), CsumOffset: 16}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, hal.MaxOffloadFrame)
		for {
			if _, _, err := y.ReadFrameHdr(buf); err != nil {
				return
			}
		}
	}()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := x.WriteFrameHdr(&hdr, frame); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	y.Close()
	<-done
}

func BenchmarkNICPair(b *testing.B) {
	b.Run("1500", func(b *testing.B) { benchPair(b, 1514, false, false) })
	b.Run("64KiB-tso", func(b *testing.B) { benchPair(b, 65535+14, true, true) })
	b.Run("64KiB-segmented", func(b *testing.B) { benchPair(b, 65535+14, true, false) })
}
