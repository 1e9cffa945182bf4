// Package testenv decides whether a test that needs a real resource (root,
// /dev/net/tun, /dev/fuse, loop devices, a command such as mke2fs or
// qemu-system-x86_64) can run.
//
// The rule of the project: a test may skip itself when the resource is
// missing only when the CI environment variable is unset; under CI a missing
// resource is a test failure, so a broken CI machine cannot turn the real
// checks into silent skips.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the CI environment variable is set to a non-empty value.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing reports a missing resource: it fails t under CI and skips it
// otherwise. It does not return.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("required test resource missing under CI: %s", msg)
	}
	t.Skipf("skipping: %s (set up the resource, or run under CI=1 to make this a failure)", msg)
}

// NeedRoot requires an effective user ID of 0.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "test needs root")
	}
}

// NeedFile requires that path exists and can be opened for reading and
// writing (device nodes such as /dev/net/tun, /dev/fuse, /dev/loop-control).
func NeedFile(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		Missing(t, "cannot open %s: %v", path, err)
	}
	f.Close()
}

// NeedCommand requires that each named program is found in PATH and returns
// the path of the first one.
func NeedCommand(t testing.TB, names ...string) string {
	t.Helper()
	var first string
	for i, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			Missing(t, "command %s not found in PATH", n)
		}
		if i == 0 {
			first = p
		}
	}
	return first
}

// NeedLong skips t when -short is set; it is for slow tests, and never
// fails under CI (CI runs without -short).
func NeedLong(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping slow test in -short mode")
	}
}
