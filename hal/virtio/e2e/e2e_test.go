package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/blockfs"
	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/mmio"
	"github.com/anykernel/anykernel/hal/virtio/model"
	"github.com/anykernel/anykernel/hal/virtio/pci"
	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/anykernel/anykernel/netstack"
)

// transports are the two ways the tests reach a device.
var transports = []struct {
	name string
	open func(t testing.TB, b model.Backend) virtio.Transport
}{
	{"mmio", func(t testing.TB, b model.Backend) virtio.Transport {
		m := model.NewMemory()
		dev := model.NewDevice(m, b, model.Options{})
		t.Cleanup(func() { _ = dev.Close() })
		win := dev.MMIO()
		tr, err := mmio.New(win, m, win.IRQ(), mmio.Options{})
		require.NoError(t, err)
		return tr
	}},
	{"pci-msix", func(t testing.TB, b model.Backend) virtio.Transport {
		m := model.NewMemory()
		dev := model.NewDevice(m, b, model.Options{})
		t.Cleanup(func() { _ = dev.Close() })
		fn := dev.PCI(model.PCIOptions{Vectors: 3})
		tr, err := pci.New(fn.Config(), fn.BAR, m, pci.Options{MSIX: fn.MSIX()})
		require.NoError(t, err)
		return tr
	}},
}

// countingNet is a virtio-net driver that counts the frame calls netstack
// makes on it, showing whether the link takes the vectored paths.
type countingNet struct {
	*virtio.Net
	readVec, writeVec, readFlat, writeFlat atomic.Uint64
}

func (c *countingNet) ReadFrameHdrVec(bufs [][]byte) (int, hal.NetHdr, error) {
	c.readVec.Add(1)
	return c.Net.ReadFrameHdrVec(bufs)
}

func (c *countingNet) WriteFrameHdrVec(h *hal.NetHdr, bufs [][]byte) error {
	c.writeVec.Add(1)
	return c.Net.WriteFrameHdrVec(h, bufs)
}

func (c *countingNet) ReadFrameHdr(p []byte) (int, hal.NetHdr, error) {
	c.readFlat.Add(1)
	return c.Net.ReadFrameHdr(p)
}

func (c *countingNet) ReadFrame(p []byte) (int, error) {
	c.readFlat.Add(1)
	return c.Net.ReadFrame(p)
}

func (c *countingNet) ReadFrames(bufs [][]byte, sizes []int) (int, error) {
	c.readFlat.Add(1)
	return c.Net.ReadFrames(bufs, sizes)
}

func (c *countingNet) WriteFrameHdr(h *hal.NetHdr, p []byte) error {
	c.writeFlat.Add(1)
	return c.Net.WriteFrameHdr(h, p)
}

func (c *countingNet) WriteFrame(p []byte) error {
	c.writeFlat.Add(1)
	return c.Net.WriteFrame(p)
}

func (c *countingNet) WriteFrames(frames [][]byte) (int, error) {
	c.writeFlat.Add(1)
	return c.Net.WriteFrames(frames)
}

// TestNetstackOverVirtioNet moves 64 MiB by TCP from a stack on virtio-net
// (driver + device model over one end of a mem NIC pair) to a stack on the
// other end, and checks it arrived intact, and that the stack received
// every frame, and sent most, straight between its own buffers and the
// driver's (hal.VecNIC) rather than through a flat buffer.
func TestNetstackOverVirtioNet(t *testing.T) {
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) { testNetstack(t, tp.open) })
	}
}

func testNetstack(t *testing.T, open func(testing.TB, model.Backend) virtio.Transport) {
	size := 64 << 20
	if testing.Short() {
		size = 4 << 20
	}
	x, y := mem.NewNICPair(mem.NICOptions{})
	be := model.NewNet(x, model.NetOptions{})
	t.Cleanup(func() { _ = be.Close() })
	n, err := virtio.NewNet(open(t, be), virtio.NetOptions{})
	require.NoError(t, err)
	vn := &countingNet{Net: n}

	sa, err := netstack.New(netstack.Options{})
	require.NoError(t, err)
	defer sa.Close()
	sb, err := netstack.New(netstack.Options{})
	require.NoError(t, err)
	defer sb.Close()
	_, err = sa.AddNIC(vn, netstack.NICConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	require.NoError(t, err)
	_, err = sb.AddNIC(y, netstack.NICConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	require.NoError(t, err)

	ln, err := sb.Listen("tcp4", "10.0.0.2:0")
	require.NoError(t, err)
	defer ln.Close()
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		r.n, r.err = n, err
		copy(r.sum[:], h.Sum(nil))
		done <- r
	}()

	c, err := sa.Dial("tcp4", fmt.Sprintf("10.0.0.2:%d", ln.Addr().(*net.TCPAddr).Port))
	require.NoError(t, err)
	h := sha256.New()
	start := time.Now()
	rng := rand.NewChaCha8([32]byte{1})
	chunk := make([]byte, 256<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		_, _ = rng.Read(chunk)
		h.Write(chunk)
		_, err := c.Write(chunk)
		require.NoError(t, err)
	}
	require.NoError(t, c.Close())
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, int64(size), r.n)
	require.Equal(t, h.Sum(nil), r.sum[:])
	t.Logf("frame calls: %d vectored reads, %d flat; %d vectored writes, %d flat",
		vn.readVec.Load(), vn.readFlat.Load(), vn.writeVec.Load(), vn.writeFlat.Load())
	require.NotZero(t, vn.readVec.Load(), "vectored reads")
	require.Zero(t, vn.readFlat.Load(), "flat reads")
	require.Greater(t, vn.writeVec.Load(), vn.writeFlat.Load(), "vectored writes are most")
	t.Logf("%d MiB in %v (%.0f MB/s, data generation and hashing included)",
		size>>20, time.Since(start).Round(time.Millisecond), float64(size)/time.Since(start).Seconds()/1e6)
}

// TestBlockfsOnVirtioBlk formats a virtio-blk disk (driver + device model
// over a mem.Block) with blockfs, fills it, and has e2fsck check the image.
func TestBlockfsOnVirtioBlk(t *testing.T) {
	testenv.NeedCommand(t, "e2fsck")
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) { testBlockfs(t, tp.open) })
	}
}

func testBlockfs(t *testing.T, open func(testing.TB, model.Backend) virtio.Transport) {
	disk, err := mem.NewBlock(64<<20, mem.BlockOptions{})
	require.NoError(t, err)
	vb, err := virtio.NewBlock(open(t, model.NewBlock(disk, model.BlockOptions{})), virtio.BlockOptions{})
	require.NoError(t, err)

	require.NoError(t, blockfs.Mkfs(vb, blockfs.MkfsOptions{Label: "virtio"}))
	fsys, err := blockfs.Mount(vb, blockfs.Options{})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	files := map[string][]byte{}
	require.NoError(t, fsys.Mkdir("dir", 0o755))
	for i := range 20 {
		name := fmt.Sprintf("dir/file%02d", i)
		data := make([]byte, rng.IntN(3<<20))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		f, err := fsys.Create(name)
		require.NoError(t, err)
		_, err = f.Write(data)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		files[name] = data
	}
	require.NoError(t, fsys.Close())
	require.NoError(t, vb.Close())

	// Read back through a fresh driver, then check the image offline.
	vb2, err := virtio.NewBlock(open(t, model.NewBlock(disk, model.BlockOptions{ReadOnly: true})), virtio.BlockOptions{})
	require.NoError(t, err)
	ro, err := blockfs.Mount(vb2, blockfs.Options{ReadOnly: true})
	require.NoError(t, err)
	for name, want := range files {
		got, err := ro.ReadFile(name)
		require.NoError(t, err)
		require.Equal(t, want, got, name)
	}
	require.NoError(t, ro.Close())
	require.NoError(t, vb2.Close())

	img := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(img, disk.Image(), 0o600))
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	require.NoError(t, err, "e2fsck -fn:\n%s", out)
}
