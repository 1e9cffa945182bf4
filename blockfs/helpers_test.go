package blockfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/stretchr/testify/require"
)

// newDev returns a RAM disk holding a copy of img.
func newDev(t testing.TB, img []byte) *mem.Block {
	t.Helper()
	d, err := mem.NewBlockFromImage(img, mem.BlockOptions{SectorSize: 512})
	require.NoError(t, err)
	return d
}

// mkfsImage runs mke2fs with args on a new image of size bytes and returns
// the image.
func mkfsImage(t testing.TB, size int64, args ...string) []byte {
	t.Helper()
	testenv.NeedCommand(t, "mke2fs")
	p := filepath.Join(t.TempDir(), "img")
	require.NoError(t, os.WriteFile(p, nil, 0o644))
	require.NoError(t, os.Truncate(p, size))
	cmd := exec.Command("mke2fs", append(append([]string{"-q", "-F"}, args...), p)...)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000", "MKE2FS_DEVICE_SECTSIZE=512")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "mke2fs: %s", out)
	img, err := os.ReadFile(p)
	require.NoError(t, err)
	return img
}

// fsck runs e2fsck -fn on img and fails the test if it finds problems.
func fsck(t testing.TB, img []byte) {
	t.Helper()
	fsckAt(t, img, "image")
}

// fsckAt is fsck naming the image (a crash point, say) in its failure.
func fsckAt(t testing.TB, img []byte, what string) {
	t.Helper()
	testenv.NeedCommand(t, "e2fsck")
	p := filepath.Join(t.TempDir(), "fsck.img")
	require.NoError(t, os.WriteFile(p, img, 0o644))
	out, err := exec.Command("e2fsck", "-fn", p).CombinedOutput()
	require.NoError(t, err, "%s: e2fsck -fn found problems:\n%s", what, out)
}

func writeImageFile(t testing.TB, img []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image")
	require.NoError(t, os.WriteFile(p, img, 0o644))
	return p
}

func debugfs(t testing.TB, img []byte, cmd string) string {
	t.Helper()
	testenv.NeedCommand(t, "debugfs")
	p := writeImageFile(t, img)
	out, err := exec.Command("debugfs", "-R", cmd, p).CombinedOutput()
	require.NoError(t, err, "debugfs: %s", out)
	return string(out)
}

// makeTree writes a small but varied tree into dir.
func makeTree(t testing.TB, dir string) { makeTreeSized(t, dir, 300, 300*1024+17, 5<<20) }

// makeTreeSized is makeTree with nfiles entries in many/, a big file of
// bigSize bytes and a sparse file ending after sparseOff.
func makeTreeSized(t testing.TB, dir string, nfiles, bigSize int, sparseOff int64) {
	t.Helper()
	w := func(p string, data []byte) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), data, 0o644))
	}
	w("hello.txt", []byte("hello, world\n"))
	w("empty", nil)
	big := make([]byte, bigSize)
	for i := range big {
		big[i] = byte(i*7 + i/1000)
	}
	w("dir/big.bin", big)
	w("dir/sub/deep.txt", []byte(strings.Repeat("deep ", 100)))
	for i := 0; i < nfiles; i++ {
		w(fmt.Sprintf("many/file-%03d-%s", i, strings.Repeat("x", i%40)), []byte(fmt.Sprint(i)))
	}
	require.NoError(t, os.Symlink("hello.txt", filepath.Join(dir, "fastlink")))
	require.NoError(t, os.Symlink(strings.Repeat("./", 40)+"dir/sub/../../hello.txt", filepath.Join(dir, "slowlink")))
	require.NoError(t, os.Link(filepath.Join(dir, "hello.txt"), filepath.Join(dir, "dir/hardlink")))
	// A sparse file.
	fh, err := os.Create(filepath.Join(dir, "sparse"))
	require.NoError(t, err)
	_, err = fh.WriteAt([]byte("end"), sparseOff)
	require.NoError(t, err)
	require.NoError(t, fh.Close())
}
