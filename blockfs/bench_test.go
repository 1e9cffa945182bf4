package blockfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/anykernel/anykernel/hal/host"
	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/stretchr/testify/require"
)

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

func mountHostImage(b *testing.B, p string) (*FS, func()) {
	b.Helper()
	dev, err := host.OpenFile(p, host.FileOptions{})
	require.NoError(b, err)
	f, err := Mount(dev, Options{})
	require.NoError(b, err)
	return f, func() {
		require.NoError(b, f.Close())
		require.NoError(b, dev.Close())
	}
}

func kernelMount(b *testing.B, p string) (string, func()) {
	b.Helper()
	dir := b.TempDir()
	out, err := exec.Command("mount", "-o", "loop", p, dir).CombinedOutput()
	require.NoError(b, err, "%s", out)
	return dir, func() {
		out, err := exec.Command("umount", dir).CombinedOutput()
		require.NoError(b, err, "%s", out)
	}
}

func dropCaches() { _ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200) }

func needBenchKernel(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedCommand(b, "mke2fs", "mount", "umount")
	testenv.NeedFile(b, "/dev/loop-control")
}

const seqSize = 256 << 20

// BenchmarkSequential writes then reads a 256 MiB file through blockfs on
// an image file and through the kernel's ext4 on a loop device over the
// same kind of image, reporting both throughputs and their ratios.
func BenchmarkSequential(b *testing.B) {
	needBenchKernel(b)
	buf := pattern(1<<20, 3)
	var ourW, ourR, kW, kR time.Duration
	b.SetBytes(seqSize)
	b.ReportAllocs()
	for b.Loop() {
		// blockfs
		p := benchImage(b, 1<<30)
		f, done := mountHostImage(b, p)
		t0 := time.Now()
		fl, err := f.OpenFile("seq", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		require.NoError(b, err)
		for off := 0; off < seqSize; off += len(buf) {
			_, err := fl.Write(buf)
			require.NoError(b, err)
		}
		require.NoError(b, fl.Sync())
		require.NoError(b, fl.Close())
		ourW += time.Since(t0)
		done()
		dropCaches()
		f, done = mountHostImage(b, p)
		t0 = time.Now()
		fl, err = f.OpenFile("seq", os.O_RDONLY, 0)
		require.NoError(b, err)
		rb := make([]byte, len(buf))
		for off := 0; off < seqSize; off += len(rb) {
			_, err := fl.Read(rb)
			require.NoError(b, err)
		}
		require.NoError(b, fl.Close())
		ourR += time.Since(t0)
		done()
		// kernel
		p = benchImage(b, 1<<30)
		dir, umount := kernelMount(b, p)
		t0 = time.Now()
		hf, err := os.Create(filepath.Join(dir, "seq"))
		require.NoError(b, err)
		for off := 0; off < seqSize; off += len(buf) {
			_, err := hf.Write(buf)
			require.NoError(b, err)
		}
		require.NoError(b, hf.Sync())
		require.NoError(b, hf.Close())
		kW += time.Since(t0)
		umount()
		dropCaches()
		dir, umount = kernelMount(b, p)
		t0 = time.Now()
		hf, err = os.Open(filepath.Join(dir, "seq"))
		require.NoError(b, err)
		for off := 0; off < seqSize; off += len(rb) {
			_, err := hf.Read(rb)
			require.NoError(b, err)
		}
		require.NoError(b, hf.Close())
		kR += time.Since(t0)
		umount()
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * seqSize / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(ourW), "blockfs-write-MB/s")
	b.ReportMetric(mbps(kW), "kernel-write-MB/s")
	b.ReportMetric(mbps(ourR), "blockfs-read-MB/s")
	b.ReportMetric(mbps(kR), "kernel-read-MB/s")
	b.ReportMetric(kW.Seconds()/ourW.Seconds(), "write-ratio")
	b.ReportMetric(kR.Seconds()/ourR.Seconds(), "read-ratio")
}

const smallFiles = 2000

// BenchmarkSmallFiles creates, writes and closes 2000 4 KiB files, stats
// them and unlinks them, through blockfs and through the kernel, and
// reports the rates and their ratios.
func BenchmarkSmallFiles(b *testing.B) {
	needBenchKernel(b)
	data := pattern(4096, 1)
	var our, kern [3]time.Duration
	b.ReportAllocs()
	for b.Loop() {
		p := benchImage(b, 256<<20)
		f, done := mountHostImage(b, p)
		require.NoError(b, f.Mkdir("d", 0o755))
		t0 := time.Now()
		for i := 0; i < smallFiles; i++ {
			fl, err := f.OpenFile(fmt.Sprintf("d/f%05d", i), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			require.NoError(b, err)
			_, err = fl.Write(data)
			require.NoError(b, err)
			require.NoError(b, fl.Close())
		}
		require.NoError(b, f.Sync())
		our[0] += time.Since(t0)
		t0 = time.Now()
		for i := 0; i < smallFiles; i++ {
			_, err := f.Stat(fmt.Sprintf("d/f%05d", i))
			require.NoError(b, err)
		}
		our[1] += time.Since(t0)
		t0 = time.Now()
		for i := 0; i < smallFiles; i++ {
			require.NoError(b, f.Remove(fmt.Sprintf("d/f%05d", i)))
		}
		require.NoError(b, f.Sync())
		our[2] += time.Since(t0)
		done()

		p = benchImage(b, 256<<20)
		dir, umount := kernelMount(b, p)
		d := filepath.Join(dir, "d")
		require.NoError(b, os.Mkdir(d, 0o755))
		t0 = time.Now()
		for i := 0; i < smallFiles; i++ {
			fl, err := os.OpenFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			require.NoError(b, err)
			_, err = fl.Write(data)
			require.NoError(b, err)
			require.NoError(b, fl.Close())
		}
		require.NoError(b, exec.Command("sync", "-f", dir).Run())
		kern[0] += time.Since(t0)
		t0 = time.Now()
		for i := 0; i < smallFiles; i++ {
			_, err := os.Stat(filepath.Join(d, fmt.Sprintf("f%05d", i)))
			require.NoError(b, err)
		}
		kern[1] += time.Since(t0)
		t0 = time.Now()
		for i := 0; i < smallFiles; i++ {
			require.NoError(b, os.Remove(filepath.Join(d, fmt.Sprintf("f%05d", i))))
		}
		require.NoError(b, exec.Command("sync", "-f", dir).Run())
		kern[2] += time.Since(t0)
		umount()
	}
	for i, name := range []string{"create", "stat", "unlink"} {
		rate := func(d time.Duration) float64 { return float64(b.N*smallFiles) / d.Seconds() }
		b.ReportMetric(rate(our[i]), "blockfs-"+name+"/s")
		b.ReportMetric(rate(kern[i]), "kernel-"+name+"/s")
		b.ReportMetric(kern[i].Seconds()/our[i].Seconds(), name+"-ratio")
	}
}
