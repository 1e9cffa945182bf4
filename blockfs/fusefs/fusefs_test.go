package fusefs_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/hanwen/go-fuse/v2/posixtest"
	"github.com/stretchr/testify/require"
)

// buildCmd builds cmd/blockfs into a temporary directory.
func buildCmd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "blockfs")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/anykernel/anykernel/cmd/blockfs").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// serve runs "blockfs mount IMAGE DIR" in its own process and returns a
// function that stops it with SIGINT and waits for a clean exit.
func serve(t testing.TB, bin, img, dir string) func() {
	t.Helper()
	cmd := exec.Command(bin, "mount", img, dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "server did not report the mount")
	require.Contains(t, line, "mounted")
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err, "server exit")
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("server did not exit after SIGINT")
		}
	}
	t.Cleanup(func() {
		if !stopped {
			_ = exec.Command("umount", "-l", dir).Run()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return stop
}

func needFUSE(t testing.TB) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedFile(t, "/dev/fuse")
	testenv.NeedCommand(t, "go", "e2fsck", "fusermount3")
}

// Tests of the posixtest list this file system does not support, and why.
var unsupported = map[string]string{
	"FcntlFlockLocksFile": "no lock support in the adapter",
	"FcntlFlockSetLk":     "no lock support in the adapter",
	"DirectIO":            "O_DIRECT is not passed through",
}

func TestPosix(t *testing.T) {
	needFUSE(t)
	bin := buildCmd(t)
	img := filepath.Join(t.TempDir(), "posix.img")
	out, err := exec.Command(bin, "mkfs", "-size", "128000000", img).CombinedOutput()
	require.NoError(t, err, "%s", out)
	dir := t.TempDir()
	stop := serve(t, bin, img, dir)
	var names []string
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if why, ok := unsupported[name]; ok {
				t.Skip(why)
			}
			sub := filepath.Join(dir, strings.ToLower(name))
			require.NoError(t, os.Mkdir(sub, 0o755))
			posixtest.All[name](t, sub)
		})
	}
	stop()
	out, err = exec.Command("e2fsck", "-fn", img).CombinedOutput()
	require.NoError(t, err, "e2fsck after the FUSE session:\n%s", out)
}
