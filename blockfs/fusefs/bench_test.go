package fusefs_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const benchSize = 256 << 20

// mountSide is a mounted directory that can be remounted with a cold
// cache.
type mountSide struct {
	dir     string
	remount func()
}

// fuseSides runs fn through a blockfs FUSE mount served by cmd/blockfs in
// its own process ("blockfs-fuse") and through the kernel's ext4 on a loop
// device ("ref-kernel-ext4"), each on a fresh 1 GiB image made by Mkfs.
func fuseSides(b *testing.B, fn func(b *testing.B, m *mountSide)) {
	needFUSE(b)
	bin := buildCmd(b)
	mkimg := func(b *testing.B) string {
		img := filepath.Join(b.TempDir(), "bench.img")
		out, err := exec.Command(bin, "mkfs", "-b", "4096", "-size", "1073741824", img).CombinedOutput()
		require.NoError(b, err, "%s", out)
		return img
	}
	dropCaches := func() { _ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200) }
	b.Run("blockfs-fuse", func(b *testing.B) {
		img, dir := mkimg(b), b.TempDir()
		stop := serve(b, bin, img, dir)
		m := &mountSide{dir: dir, remount: func() {
			stop()
			dropCaches()
			stop = serve(b, bin, img, dir)
		}}
		defer func() { stop() }()
		fn(b, m)
	})
	b.Run("ref-kernel-ext4", func(b *testing.B) {
		img, dir := mkimg(b), b.TempDir()
		mount := func() {
			out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput()
			require.NoError(b, err, "%s", out)
		}
		umount := func() {
			out, err := exec.Command("umount", dir).CombinedOutput()
			require.NoError(b, err, "%s", out)
		}
		mount()
		defer umount()
		fn(b, &mountSide{dir: dir, remount: func() { umount(); dropCaches(); mount() }})
	})
}

func writeSeq(b *testing.B, dir string, buf []byte) {
	f, err := os.Create(filepath.Join(dir, "seq"))
	require.NoError(b, err)
	for off := 0; off < benchSize; off += len(buf) {
		_, err := f.Write(buf)
		require.NoError(b, err)
	}
	require.NoError(b, f.Sync())
	require.NoError(b, f.Close())
}

// BenchmarkFUSESeqWrite writes and fsyncs a 256 MiB file in 1 MiB writes.
func BenchmarkFUSESeqWrite(b *testing.B) {
	buf := make([]byte, 1<<20)
	fuseSides(b, func(b *testing.B, m *mountSide) {
		b.SetBytes(benchSize)
		for b.Loop() {
			writeSeq(b, m.dir, buf)
		}
	})
}

// BenchmarkFUSESeqRead reads a 256 MiB file in 1 MiB reads, cold cache.
func BenchmarkFUSESeqRead(b *testing.B) {
	buf := make([]byte, 1<<20)
	fuseSides(b, func(b *testing.B, m *mountSide) {
		writeSeq(b, m.dir, buf)
		b.SetBytes(benchSize)
		for b.Loop() {
			b.StopTimer()
			m.remount()
			b.StartTimer()
			f, err := os.Open(filepath.Join(m.dir, "seq"))
			require.NoError(b, err)
			n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
			require.NoError(b, err)
			require.Equal(b, int64(benchSize), n)
			require.NoError(b, f.Close())
		}
	})
}
