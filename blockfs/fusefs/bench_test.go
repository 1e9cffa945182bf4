package fusefs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const benchSize = 256 << 20

func writeRead(b *testing.B, dir string, remount func()) (w, r time.Duration) {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i / 7)
	}
	t0 := time.Now()
	f, err := os.Create(filepath.Join(dir, "seq"))
	require.NoError(b, err)
	for off := 0; off < benchSize; off += len(buf) {
		_, err := f.Write(buf)
		require.NoError(b, err)
	}
	require.NoError(b, f.Sync())
	require.NoError(b, f.Close())
	w = time.Since(t0)
	remount()
	_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200)
	t0 = time.Now()
	f, err = os.Open(filepath.Join(dir, "seq"))
	require.NoError(b, err)
	for off := 0; off < benchSize; off += len(buf) {
		_, err := f.Read(buf)
		require.NoError(b, err)
	}
	require.NoError(b, f.Close())
	return w, time.Since(t0)
}

// BenchmarkFUSESequential writes and reads 256 MiB through a blockfs FUSE
// mount served by cmd/blockfs in its own process, and through the
// kernel's ext4 on a loop device, reporting both and the ratios.
func BenchmarkFUSESequential(b *testing.B) {
	needFUSE(b)
	bin := buildCmd(b)
	var fw, fr, kw, kr time.Duration
	b.SetBytes(benchSize)
	for b.Loop() {
		img := filepath.Join(b.TempDir(), "fuse.img")
		out, err := exec.Command(bin, "mkfs", "-b", "4096", "-size", "1073741824", img).CombinedOutput()
		require.NoError(b, err, "%s", out)
		dir := b.TempDir()
		stop := serve(b, bin, img, dir)
		w, r := writeRead(b, dir, func() { stop(); stop = serve(b, bin, img, dir) })
		stop()
		fw += w
		fr += r

		kimg := filepath.Join(b.TempDir(), "kernel.img")
		out, err = exec.Command(bin, "mkfs", "-b", "4096", "-size", "1073741824", kimg).CombinedOutput()
		require.NoError(b, err, "%s", out)
		kdir := b.TempDir()
		mount := func() {
			out, err := exec.Command("mount", "-o", "loop", kimg, kdir).CombinedOutput()
			require.NoError(b, err, "%s", out)
		}
		umount := func() {
			out, err := exec.Command("umount", kdir).CombinedOutput()
			require.NoError(b, err, "%s", out)
		}
		mount()
		w, r = writeRead(b, kdir, func() { umount(); mount() })
		umount()
		kw += w
		kr += r
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * benchSize / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(fw), "fuse-write-MB/s")
	b.ReportMetric(mbps(kw), "kernel-write-MB/s")
	b.ReportMetric(mbps(fr), "fuse-read-MB/s")
	b.ReportMetric(mbps(kr), "kernel-read-MB/s")
	b.ReportMetric(kw.Seconds()/fw.Seconds(), "write-ratio")
	b.ReportMetric(kr.Seconds()/fr.Seconds(), "read-ratio")
}
