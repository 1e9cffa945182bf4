package blockfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// node is what the oracle tests compare for one path.
type node struct {
	Mode   fs.FileMode
	Size   int64
	Nlink  uint64
	Uid    uint32
	Gid    uint32
	Data   string // sha256 of a regular file's contents
	Link   string
	Xattrs string
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:8]) }

func xattrString(m map[string]string) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s;", k, m[k])
	}
	return sb.String()
}

// sampleSum hashes a file's contents; of files over 64 MiB only the
// first and last MiB and 64 KiB every 256 MiB.
func sampleSum(t testing.TB, r io.ReaderAt, size int64) string {
	h := sha256.New()
	read := func(off, n int64) {
		if off+n > size {
			n = size - off
		}
		if n <= 0 {
			return
		}
		b := make([]byte, n)
		_, err := r.ReadAt(b, off)
		if err != io.EOF {
			require.NoError(t, err)
		}
		h.Write(b)
	}
	if size <= 64<<20 {
		read(0, size)
	} else {
		read(0, 1<<20)
		for off := int64(256 << 20); off < size; off += 256 << 20 {
			read(off, 64<<10)
		}
		read(size-1<<20, 1<<20)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// snapshotFS records every path of f but lost+found.
func snapshotFS(t testing.TB, f *FS) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err, p)
		if p == "lost+found" {
			return fs.SkipDir
		}
		fi, err := f.Lstat(p)
		require.NoError(t, err, p)
		st := fi.Sys().(*Stat)
		n := node{Mode: fi.Mode(), Nlink: uint64(st.Nlink), Uid: st.Uid, Gid: st.Gid}
		if !fi.IsDir() {
			n.Size = fi.Size()
		}
		switch {
		case fi.Mode().IsRegular():
			fl, err := f.Open(p)
			require.NoError(t, err, p)
			n.Data = sampleSum(t, fl.(*File), fi.Size())
			require.NoError(t, fl.Close())
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Link, err = f.Readlink(p)
			require.NoError(t, err, p)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			names, err := f.Listxattr(p)
			require.NoError(t, err, p)
			m := map[string]string{}
			for _, a := range names {
				if !strings.HasPrefix(a, "user.") {
					continue
				}
				v, err := f.Getxattr(p, a)
				require.NoError(t, err)
				m[a] = sum(v)
			}
			n.Xattrs = xattrString(m)
		}
		out[p] = n
		return nil
	})
	require.NoError(t, err)
	return out
}

// snapshotHost records every path under root but lost+found.
func snapshotHost(t testing.TB, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "lost+found" {
			return fs.SkipDir
		}
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		n := node{Mode: fi.Mode(), Nlink: uint64(st.Nlink), Uid: st.Uid, Gid: st.Gid}
		if !fi.IsDir() {
			n.Size = fi.Size()
		}
		switch {
		case fi.Mode().IsRegular():
			fl, err := os.Open(p)
			require.NoError(t, err, p)
			n.Data = sampleSum(t, fl, fi.Size())
			require.NoError(t, fl.Close())
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Link, err = os.Readlink(p)
			require.NoError(t, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			m := map[string]string{}
			buf := make([]byte, 65536)
			ln, err := unix.Llistxattr(p, buf)
			require.NoError(t, err)
			for _, a := range strings.Split(string(buf[:ln]), "\x00") {
				if !strings.HasPrefix(a, "user.") {
					continue
				}
				vb := make([]byte, 65536)
				vn, err := unix.Lgetxattr(p, a, vb)
				require.NoError(t, err)
				m[a] = sum(vb[:vn])
			}
			n.Xattrs = xattrString(m)
		}
		out[rel] = n
		return nil
	})
	require.NoError(t, err)
	return out
}

func needKernel(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "mount", "umount", "losetup", "mke2fs", "e2fsck")
	testenv.NeedFile(t, "/dev/loop-control")
}

// loopMount mounts the image file p at a new directory and returns it;
// the mount is removed at cleanup if still present.
// loopImages maps a loop mount's directory to its image file.
var loopImages sync.Map

func loopMount(t *testing.T, p string, opts string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,"+opts, p, dir).CombinedOutput()
	require.NoError(t, err, "mount: %s", out)
	loopImages.Store(dir, p)
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// umount unmounts dir and waits until the kernel has let go of the image
// file: the loop device is detached asynchronously after the unmount, and
// the image must not be read before its last writes have landed.
func umount(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("umount", dir).CombinedOutput()
	require.NoError(t, err, "umount: %s", out)
	p, ok := loopImages.LoadAndDelete(dir)
	if !ok {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("losetup", "-j", p.(string)).CombinedOutput()
		require.NoError(t, err, "losetup -j: %s", out)
		if len(strings.TrimSpace(string(out))) == 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "loop device still attached to %s after umount: %s", p, out)
		time.Sleep(10 * time.Millisecond)
	}
}

func assertSameTree(t *testing.T, want, got map[string]node) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !assert.True(t, ok, "missing %s", p) {
			continue
		}
		assert.Equal(t, w, g, p)
	}
	for p := range got {
		_, ok := want[p]
		assert.True(t, ok, "unexpected %s", p)
	}
}

// buildWithBlockfs applies a varied workload through the library.
func buildWithBlockfs(t *testing.T, f *FS) {
	require.NoError(t, f.Mkdir("d", 0o755))
	require.NoError(t, f.Mkdir("d/e", 0o750))
	writeFile(t, f, "d/e/file", pattern(123457, 5))
	writeFile(t, f, "top", []byte("top"))
	require.NoError(t, f.Link("top", "d/top-link"))
	require.NoError(t, f.Symlink("d/e/file", "sym"))
	require.NoError(t, f.Symlink(strings.Repeat("../", 30)+"top", "d/longsym"))
	require.NoError(t, f.Mkdir("big", 0o755))
	for i := 0; i < 800; i++ {
		writeFile(t, f, fmt.Sprintf("big/entry-%d-%s", i, strings.Repeat("n", i%60)), []byte(fmt.Sprint(i)))
	}
	for i := 0; i < 800; i += 4 {
		require.NoError(t, f.Remove(fmt.Sprintf("big/entry-%d-%s", i, strings.Repeat("n", i%60))))
	}
	fl, err := f.OpenFile("sparse", os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	_, err = fl.WriteAt([]byte("tail"), 6<<30)
	require.NoError(t, err)
	_, err = fl.WriteAt(pattern(5000, 7), 12345)
	require.NoError(t, err)
	require.NoError(t, fl.Close())
	if f.incompat&EXT4_FEATURE_INCOMPAT_EXTENTS != 0 {
		fl, err = f.OpenFile("prealloc", os.O_RDWR|os.O_CREATE, 0o644)
		require.NoError(t, err)
		require.NoError(t, fl.Allocate(0, 200000, false))
		require.NoError(t, fl.Allocate(300000, 50000, true))
		_, err = fl.WriteAt([]byte("in the middle"), 70001)
		require.NoError(t, err)
		require.NoError(t, fl.Close())
	}
	require.NoError(t, f.Setxattr("top", "user.color", []byte("blue")))
	require.NoError(t, f.Setxattr("d", "user.big", pattern(600, 2)))
	require.NoError(t, f.Chown("d/e/file", 1234, 5678))
	writeFile(t, f, "future", nil)
	require.NoError(t, f.Chtimes("future", time1960, time2200))
	require.NoError(t, f.Rename("d/e", "e-moved"))
	require.NoError(t, f.Rename("top", "d/top-renamed"))
}

func TestKernelReadsOurImages(t *testing.T) {
	needKernel(t)
	for _, k := range writableKinds {
		t.Run(k.name, func(t *testing.T) {
			dev := newDev(t, mkfsImage(t, 64<<20, k.args...))
			f, err := Mount(dev, Options{})
			require.NoError(t, err)
			buildWithBlockfs(t, f)
			want := snapshotFS(t, f)
			require.NoError(t, f.Close())
			img := dev.Image()
			fsck(t, img)
			p := writeImageFile(t, img)
			dir := loopMount(t, p, "ro")
			got := snapshotHost(t, dir)
			var st unix.Stat_t
			require.NoError(t, unix.Stat(filepath.Join(dir, "future"), &st))
			umount(t, dir)
			assertSameTree(t, want, got)
			if f.inodeSize > EXT4_GOOD_OLD_INODE_SIZE {
				assert.Equal(t, time2200.UnixNano(), st.Mtim.Nano(), "mtime")
				assert.Equal(t, time1960.UnixNano(), st.Atim.Nano(), "atime")
			}
		})
	}
}

var (
	time1960 = time.Date(1960, 5, 6, 7, 8, 9, 123456789, time.UTC)
	time2200 = time.Date(2200, 1, 2, 3, 4, 5, 987654321, time.UTC)
)

// buildWithKernel writes a varied tree through the kernel at dir.
func buildWithKernel(t *testing.T, dir string) {
	w := func(p string, data []byte) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), data, 0o644))
	}
	w("a/b/c.txt", []byte("kernel"))
	w("big.bin", pattern(2<<20+5, 9))
	for i := 0; i < 1200; i++ {
		w(fmt.Sprintf("htree/%04d-%s", i, strings.Repeat("k", i%70)), []byte(fmt.Sprint(i)))
	}
	for i := 0; i < 1200; i += 5 {
		require.NoError(t, os.Remove(filepath.Join(dir, fmt.Sprintf("htree/%04d-%s", i, strings.Repeat("k", i%70)))))
	}
	require.NoError(t, os.Symlink("a/b/c.txt", filepath.Join(dir, "fast")))
	require.NoError(t, os.Symlink(strings.Repeat("./", 50)+"big.bin", filepath.Join(dir, "slow")))
	require.NoError(t, os.Link(filepath.Join(dir, "big.bin"), filepath.Join(dir, "a/hard")))
	require.NoError(t, unix.Setxattr(filepath.Join(dir, "a"), "user.k", []byte("v"), 0))
	require.NoError(t, unix.Setxattr(filepath.Join(dir, "big.bin"), "user.large", pattern(700, 1), 0))
	// Unwritten extents and a sparse file.
	fh, err := os.Create(filepath.Join(dir, "prealloc"))
	require.NoError(t, err)
	if err := unix.Fallocate(int(fh.Fd()), 0, 0, 1<<20); err != unix.EOPNOTSUPP {
		require.NoError(t, err)
	}
	_, err = fh.WriteAt([]byte("middle"), 300000)
	require.NoError(t, err)
	_, err = fh.WriteAt([]byte("far"), 5<<30)
	require.NoError(t, err)
	require.NoError(t, fh.Close())
}

func TestReadKernelImages(t *testing.T) {
	needKernel(t)
	for _, k := range writableKinds {
		t.Run(k.name, func(t *testing.T) {
			p := writeImageFile(t, mkfsImage(t, 64<<20, k.args...))
			dir := loopMount(t, p, "rw")
			buildWithKernel(t, dir)
			want := snapshotHost(t, dir)
			umount(t, dir)
			img, err := os.ReadFile(p)
			require.NoError(t, err)
			dev := newDev(t, img)
			f, err := Mount(dev, Options{})
			require.NoError(t, err)
			assertSameTree(t, want, snapshotFS(t, f))

			// Modify the kernel's tree, then let the kernel read ours.
			for i := 1; i < 1200; i += 2 {
				if i%5 != 0 {
					require.NoError(t, f.Remove(fmt.Sprintf("htree/%04d-%s", i, strings.Repeat("k", i%70))))
				}
			}
			for i := 0; i < 300; i++ {
				writeFile(t, f, fmt.Sprintf("htree/new-%d", i), []byte("n"))
			}
			fl, err := f.OpenFile("prealloc", os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = fl.WriteAt([]byte("inside-unwritten"), 70000)
			require.NoError(t, err)
			require.NoError(t, fl.Close())
			require.NoError(t, f.Rename("a", "htree/a"))
			want = snapshotFS(t, f)
			require.NoError(t, f.Close())
			img = dev.Image()
			fsck(t, img)
			require.NoError(t, os.WriteFile(p, img, 0o644))
			dir = loopMount(t, p, "ro")
			got := snapshotHost(t, dir)
			umount(t, dir)
			assertSameTree(t, want, got)
		})
	}
}

func TestReplayKernelJournal(t *testing.T) {
	needKernel(t)
	testenv.NeedCommand(t, "sync")
	for _, k := range writableKinds[:2] {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ro=%v", k.name, ro), func(t *testing.T) {
				p := writeImageFile(t, mkfsImage(t, 64<<20, k.args...))
				dir := loopMount(t, p, "rw,commit=600")
				buildWithKernel(t, dir)
				require.NoError(t, exec.Command("sync", "-f", dir).Run())
				want := snapshotHost(t, dir)
				img, err := os.ReadFile(p)
				require.NoError(t, err)
				umount(t, dir)
				f0, err := Mount(newDev(t, append([]byte(nil), img...)), Options{NoRecovery: true})
				require.ErrorIs(t, err, ErrNeedsRecovery)
				require.Nil(t, f0)

				dev := newDev(t, append([]byte(nil), img...))
				f, err := Mount(dev, Options{ReadOnly: ro})
				require.NoError(t, err)
				assertSameTree(t, want, snapshotFS(t, f))
				require.NoError(t, f.Close())
				if ro {
					assert.Equal(t, img, dev.Image(), "a read-only mount wrote to the device")
					return
				}
				fsck(t, dev.Image())
			})
		}
	}
}

// TestSpecialFiles reads device nodes, fifos and sockets the kernel made
// and removes them (their i_block holds device numbers, not blocks).
func TestSpecialFiles(t *testing.T) {
	needKernel(t)
	p := writeImageFile(t, mkfsImage(t, 16<<20, "-t", "ext4"))
	dir := loopMount(t, p, "rw")
	require.NoError(t, unix.Mknod(filepath.Join(dir, "chr"), unix.S_IFCHR|0o600, int(unix.Mkdev(4, 64))))
	require.NoError(t, unix.Mknod(filepath.Join(dir, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(259, 70000))))
	require.NoError(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	require.NoError(t, unix.Mknod(filepath.Join(dir, "sock"), unix.S_IFSOCK|0o644, 0))
	want := snapshotHost(t, dir)
	umount(t, dir)
	img, err := os.ReadFile(p)
	require.NoError(t, err)
	dev := newDev(t, img)
	f, err := Mount(dev, Options{})
	require.NoError(t, err)
	assertSameTree(t, want, snapshotFS(t, f))
	for _, n := range []string{"chr", "blk", "fifo", "sock"} {
		require.NoError(t, f.Remove(n))
	}
	require.NoError(t, f.Close())
	fsck(t, dev.Image())
}

// TestMknodKernelSees creates special files with blockfs and checks the
// kernel's view of their type, mode and device numbers.
func TestMknodKernelSees(t *testing.T) {
	needKernel(t)
	dev := newDev(t, mkfsImage(t, 16<<20, "-t", "ext4"))
	f, err := Mount(dev, Options{})
	require.NoError(t, err)
	devs := map[string]uint64{"small": unix.Mkdev(4, 64), "large": unix.Mkdev(259, 70000)}
	require.NoError(t, f.Mknod("small", fs.ModeDevice|fs.ModeCharDevice|0o620, devs["small"]))
	require.NoError(t, f.Mknod("large", fs.ModeDevice|0o600, devs["large"]))
	require.NoError(t, f.Mknod("fifo", fs.ModeNamedPipe|0o644, 0))
	require.NoError(t, f.Mknod("sock", fs.ModeSocket|0o755, 0))
	for n, d := range devs {
		fi, err := f.Lstat(n)
		require.NoError(t, err)
		assert.Equal(t, d, fi.Sys().(*Stat).Rdev, n)
	}
	want := snapshotFS(t, f)
	require.NoError(t, f.Close())
	fsck(t, dev.Image())
	dir := loopMount(t, writeImageFile(t, dev.Image()), "ro")
	assertSameTree(t, want, snapshotHost(t, dir))
	for n, d := range devs {
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(filepath.Join(dir, n), &st))
		assert.Equal(t, d, st.Rdev, n)
	}
	umount(t, dir)
}
