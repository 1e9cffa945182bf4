package virtio_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

const benchBatch = 16

// benchFrames moves benchBatch frames of size bytes from tx to rx per
// operation, batched where the NICs allow.
func benchFrames(b *testing.B, tx, rx hal.NIC, size int) {
	frames := make([][]byte, benchBatch)
	bufs := make([][]byte, benchBatch)
	sizes := make([]int, benchBatch)
	dst, src := rx.MAC(), tx.MAC()
	for i := range frames {
		f := make([]byte, size)
		copy(f, dst[:])
		copy(f[6:], src[:])
		f[12], f[13] = 0x88, 0xb5
		frames[i] = f
		bufs[i] = make([]byte, hal.MaxFrameLen(rx))
	}
	btx, _ := tx.(hal.BatchNIC)
	brx, _ := rx.(hal.BatchNIC)
	b.SetBytes(int64(size * benchBatch))
	b.ReportAllocs()
	for b.Loop() {
		if btx != nil {
			if _, err := btx.WriteFrames(frames); err != nil {
				b.Fatal(err)
			}
		} else {
			for _, f := range frames {
				if err := tx.WriteFrame(f); err != nil {
					b.Fatal(err)
				}
			}
		}
		for got := 0; got < benchBatch; {
			if brx != nil {
				n, err := brx.ReadFrames(bufs[:benchBatch-got], sizes)
				if err != nil {
					b.Fatal(err)
				}
				got += n
				continue
			}
			if _, err := rx.ReadFrame(bufs[0]); err != nil {
				b.Fatal(err)
			}
			got++
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkNet compares frames through the virtio-net driver and the
// device model with the same frames between two bare mem NICs: the ratio
// is the driver's (and the model's) overhead.
func BenchmarkNet(b *testing.B) {
	for _, size := range []int{64, 1514} {
		for _, dir := range []string{"tx", "rx"} {
			b.Run(fmt.Sprintf("%s-%d/ref-mem", dir, size), func(b *testing.B) {
				x, y := mem.NewNICPair(mem.NICOptions{})
				defer x.Close()
				defer y.Close()
				benchFrames(b, x, y, size)
			})
			b.Run(fmt.Sprintf("%s-%d/virtio", dir, size), func(b *testing.B) {
				x, y := mem.NewNICPair(mem.NICOptions{})
				defer y.Close()
				n, _, _ := newNet(b, x, model.NetOptions{}, model.Options{}, virtio.NetOptions{})
				defer n.Close()
				if dir == "tx" {
					benchFrames(b, n, y, size)
				} else {
					benchFrames(b, y, n, size)
				}
			})
		}
	}
}

// BenchmarkBlock compares I/O through the virtio-blk driver and the device
// model with the same I/O on the bare mem.Block.
func BenchmarkBlock(b *testing.B) {
	const diskSize = 64 << 20
	for _, io := range []struct {
		name  string
		size  int
		write bool
	}{
		{"read-4k", 4 << 10, false},
		{"write-4k", 4 << 10, true},
		{"read-128k", 128 << 10, false},
		{"write-128k", 128 << 10, true},
	} {
		for _, backend := range []string{"ref-mem", "virtio", "virtio-poll"} {
			b.Run(io.name+"/"+backend, func(b *testing.B) {
				var d hal.BlockDevice
				if backend != "ref-mem" {
					do := virtio.BlockOptions{}
					if backend == "virtio-poll" {
						do.Poll = 64
					}
					vb, _, _ := newBlock(b, diskSize, mem.BlockOptions{}, model.BlockOptions{}, model.Options{}, do)
					d = vb
				} else {
					mb, err := mem.NewBlock(diskSize, mem.BlockOptions{})
					require.NoError(b, err)
					d = mb
				}
				defer d.Close()
				buf := make([]byte, io.size)
				slots := int64(diskSize / io.size)
				var i int64
				b.SetBytes(int64(io.size))
				b.ReportAllocs()
				for b.Loop() {
					off := (i * 7919 % slots) * int64(io.size) // scattered, deterministic
					i++
					var err error
					if io.write {
						_, err = d.WriteAt(buf, off)
					} else {
						_, err = d.ReadAt(buf, off)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
			})
		}
	}
}

// TestSteadyStateAllocs guards the allocation-free data path: once warm, a
// block write and read, and a frame each way, allocate no more through the
// virtio driver and the device model than the same operations on the bare
// mem devices do (the driver, the model, the mem devices and all their
// goroutines are counted).
func TestSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counting is slow under -short")
	}
	blockIO := func(d hal.BlockDevice) func() {
		buf := make([]byte, 8192)
		return func() {
			_, err := d.WriteAt(buf, 4096)
			require.NoError(t, err)
			_, err = d.ReadAt(buf, 0)
			require.NoError(t, err)
		}
	}
	netIO := func(a, b hal.NIC) func() {
		frame := make([]byte, 1000)
		dst, src := b.MAC(), a.MAC()
		copy(frame, dst[:])
		copy(frame[6:], src[:])
		frame[12], frame[13] = 0x88, 0xb5
		rbuf := make([]byte, 2048)
		return func() {
			require.NoError(t, a.WriteFrame(frame))
			_, err := b.ReadFrame(rbuf)
			require.NoError(t, err)
			require.NoError(t, b.WriteFrame(frame))
			_, err = a.ReadFrame(rbuf)
			require.NoError(t, err)
		}
	}
	allocs := func(f func()) float64 {
		for range 50 {
			f() // warm up: pools, timers, goroutine stacks
		}
		return testing.AllocsPerRun(500, f)
	}

	vb, _, _ := newBlock(t, 1<<20, mem.BlockOptions{}, model.BlockOptions{}, model.Options{}, virtio.BlockOptions{})
	defer vb.Close()
	mb, err := mem.NewBlock(1<<20, mem.BlockOptions{})
	require.NoError(t, err)
	require.LessOrEqual(t, allocs(blockIO(vb)), allocs(blockIO(mb))+0.1, "block: allocations per operation")

	x, y := mem.NewNICPair(mem.NICOptions{})
	defer y.Close()
	vn, _, _ := newNet(t, x, model.NetOptions{}, model.Options{}, virtio.NetOptions{})
	defer vn.Close()
	p, q := mem.NewNICPair(mem.NICOptions{})
	defer p.Close()
	defer q.Close()
	require.LessOrEqual(t, allocs(netIO(vn, y)), allocs(netIO(p, q))+0.1, "net: allocations per operation")
}
