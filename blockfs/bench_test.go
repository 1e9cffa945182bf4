package blockfs

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/anykernel/anykernel/hal/host"
	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/stretchr/testify/require"
)

// The benchmarks run blockfs on an image file (hal/host) beside the
// kernel's ext4 on a loop device over the same kind of file, as sibling
// sub-benchmarks named "blockfs" and "ref-kernel-ext4" (internal/benchtable
// prints the ratios).

// benchFS abstracts the two sides.
type benchFS interface {
	create(name string) (io.WriteCloser, error)
	open(name string) (io.ReadCloser, error)
	stat(name string) error
	remove(name string) error
	mkdir(name string) error
	sync() error
	remount()
}

type ourBench struct {
	b    *testing.B
	path string
	dev  *host.File
	f    *FS
}

func (o *ourBench) mount() {
	dev, err := host.OpenFile(o.path, host.FileOptions{})
	require.NoError(o.b, err)
	f, err := Mount(dev, Options{})
	require.NoError(o.b, err)
	o.dev, o.f = dev, f
}

func (o *ourBench) unmount() {
	require.NoError(o.b, o.f.Close())
	require.NoError(o.b, o.dev.Close())
}

func (o *ourBench) create(name string) (io.WriteCloser, error) {
	return o.f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}
func (o *ourBench) open(name string) (io.ReadCloser, error) {
	return o.f.OpenFile(name, os.O_RDONLY, 0)
}
func (o *ourBench) stat(name string) error {
	_, err := o.f.Stat(name)
	return err
}
func (o *ourBench) remove(name string) error { return o.f.Remove(name) }
func (o *ourBench) mkdir(name string) error  { return o.f.Mkdir(name, 0o755) }
func (o *ourBench) sync() error              { return o.f.Sync() }
func (o *ourBench) remount() {
	o.unmount()
	dropCaches()
	o.mount()
}

type kernelBench struct {
	b    *testing.B
	path string
	dir  string
}

func (k *kernelBench) mount() {
	out, err := exec.Command("mount", "-o", "loop", k.path, k.dir).CombinedOutput()
	require.NoError(k.b, err, "%s", out)
}

func (k *kernelBench) unmount() {
	out, err := exec.Command("umount", k.dir).CombinedOutput()
	require.NoError(k.b, err, "%s", out)
}

func (k *kernelBench) p(name string) string { return filepath.Join(k.dir, name) }
func (k *kernelBench) create(name string) (io.WriteCloser, error) {
	return os.OpenFile(k.p(name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}
func (k *kernelBench) open(name string) (io.ReadCloser, error) { return os.Open(k.p(name)) }
func (k *kernelBench) stat(name string) error {
	_, err := os.Stat(k.p(name))
	return err
}
func (k *kernelBench) remove(name string) error { return os.Remove(k.p(name)) }
func (k *kernelBench) mkdir(name string) error  { return os.Mkdir(k.p(name), 0o755) }
func (k *kernelBench) sync() error              { return exec.Command("sync", "-f", k.dir).Run() }
func (k *kernelBench) remount() {
	k.unmount()
	dropCaches()
	k.mount()
}

func dropCaches() { _ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200) }

// benchImage makes an ext4 image file of size bytes with mke2fs.
func benchImage(b *testing.B, size int64) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "bench.img")
	require.NoError(b, os.WriteFile(p, nil, 0o644))
	require.NoError(b, os.Truncate(p, size))
	out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", p).CombinedOutput()
	require.NoError(b, err, "%s", out)
	return p
}

// sides runs fn on blockfs and on the kernel, each on a fresh 1 GiB image.
func sides(b *testing.B, fn func(b *testing.B, fsys benchFS)) {
	testenv.NeedRoot(b)
	testenv.NeedCommand(b, "mke2fs", "mount", "umount", "sync")
	testenv.NeedFile(b, "/dev/loop-control")
	b.Run("blockfs", func(b *testing.B) {
		o := &ourBench{b: b, path: benchImage(b, 1<<30)}
		o.mount()
		defer o.unmount()
		fn(b, o)
	})
	b.Run("ref-kernel-ext4", func(b *testing.B) {
		k := &kernelBench{b: b, path: benchImage(b, 1<<30), dir: b.TempDir()}
		k.mount()
		defer k.unmount()
		fn(b, k)
	})
}

const seqSize = 256 << 20

func writeSeq(b *testing.B, fsys benchFS, name string, buf []byte) {
	w, err := fsys.create(name)
	require.NoError(b, err)
	for off := 0; off < seqSize; off += len(buf) {
		_, err := w.Write(buf)
		require.NoError(b, err)
	}
	require.NoError(b, w.Close())
	require.NoError(b, fsys.sync())
}

// BenchmarkSeqWrite writes a 256 MiB file in 1 MiB writes and syncs.
func BenchmarkSeqWrite(b *testing.B) {
	sides(b, func(b *testing.B, fsys benchFS) {
		buf := pattern(1<<20, 3)
		b.SetBytes(seqSize)
		b.ReportAllocs()
		for b.Loop() {
			writeSeq(b, fsys, "seq", buf)
		}
	})
}

// BenchmarkSeqRead reads a 256 MiB file in 1 MiB reads from a cold cache.
func BenchmarkSeqRead(b *testing.B) {
	sides(b, func(b *testing.B, fsys benchFS) {
		buf := pattern(1<<20, 3)
		writeSeq(b, fsys, "seq", buf)
		b.SetBytes(seqSize)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			fsys.remount()
			b.StartTimer()
			r, err := fsys.open("seq")
			require.NoError(b, err)
			n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
			require.NoError(b, err)
			require.Equal(b, int64(seqSize), n)
			require.NoError(b, r.Close())
		}
	})
}

const smallBatch = 1000

func createBatch(b *testing.B, fsys benchFS, dir string, data []byte) {
	require.NoError(b, fsys.mkdir(dir))
	for i := 0; i < smallBatch; i++ {
		w, err := fsys.create(fmt.Sprintf("%s/f%05d", dir, i))
		require.NoError(b, err)
		_, err = w.Write(data)
		require.NoError(b, err)
		require.NoError(b, w.Close())
	}
	require.NoError(b, fsys.sync())
}

func removeBatch(b *testing.B, fsys benchFS, dir string) {
	for i := 0; i < smallBatch; i++ {
		require.NoError(b, fsys.remove(fmt.Sprintf("%s/f%05d", dir, i)))
	}
	require.NoError(b, fsys.remove(dir))
	require.NoError(b, fsys.sync())
}

// BenchmarkSmallCreate creates, writes (4 KiB) and closes 1000 files in a
// new directory per op, then syncs. Outside the timer, the oldest batch is
// removed once keepBatches exist, so that the image's 64 Ki inodes last
// however many ops the benchmark runs.
func BenchmarkSmallCreate(b *testing.B) {
	const keepBatches = 16
	sides(b, func(b *testing.B, fsys benchFS) {
		data := pattern(4096, 1)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			createBatch(b, fsys, fmt.Sprintf("d%d", i), data)
			if i >= keepBatches {
				b.StopTimer()
				removeBatch(b, fsys, fmt.Sprintf("d%d", i-keepBatches))
				b.StartTimer()
			}
			i++
		}
	})
}

// BenchmarkSmallStat stats 1000 files per op.
func BenchmarkSmallStat(b *testing.B) {
	sides(b, func(b *testing.B, fsys benchFS) {
		createBatch(b, fsys, "d", pattern(4096, 1))
		b.ReportAllocs()
		for b.Loop() {
			for i := 0; i < smallBatch; i++ {
				require.NoError(b, fsys.stat(fmt.Sprintf("d/f%05d", i)))
			}
		}
	})
}

// BenchmarkSmallUnlink unlinks 1000 files and their directory per op,
// then syncs.
func BenchmarkSmallUnlink(b *testing.B) {
	sides(b, func(b *testing.B, fsys benchFS) {
		data := pattern(4096, 1)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			b.StopTimer()
			dir := fmt.Sprintf("d%d", i)
			i++
			createBatch(b, fsys, dir, data)
			b.StartTimer()
			removeBatch(b, fsys, dir)
		}
	})
}
