// Package netns gives tests a private Linux network namespace: a place to
// create TAP devices, bridges and addresses that the host never sees and that
// vanish when the test ends.
//
// A namespace is created with `ip netns add` (so it is also visible to
// `ip netns exec` and to tools such as tcpdump run inside it) and deleted in
// the test's Cleanup. Code runs inside it either as a command ([NS.Exec]) or
// as a Go function on an OS thread switched into the namespace ([NS.Run]).
// File descriptors opened inside (a TAP device, a socket) keep belonging to
// the namespace and can be used from any goroutine afterwards.
//
// Tests using this package need root and the ip command from iproute2; they
// skip without them outside CI and fail under CI (see internal/testenv).
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/internal/testenv"
)

// runDir is where `ip netns add` bind-mounts named namespaces.
const runDir = "/run/netns"

// NS is a named network namespace that lives as long as the test that made it.
type NS struct {
	name string
}

// New creates a fresh, uniquely named network namespace with its loopback
// interface up, and deletes it when t finishes. It fails t if the namespace
// cannot be created.
func New(t testing.TB) *NS {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "ip")

	var rnd [5]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("netns: random name: %v", err)
	}
	ns := &NS{name: "aktest-" + hex.EncodeToString(rnd[:])}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("netns: ip netns add %s: %v: %s", ns.name, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns.name).CombinedOutput(); err != nil {
			t.Errorf("netns: ip netns delete %s: %v: %s", ns.name, err, strings.TrimSpace(string(out)))
		}
	})
	if out, err := ns.Exec("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("netns: %s: bring lo up: %v: %s", ns.name, err, strings.TrimSpace(string(out)))
	}
	return ns
}

// Name returns the namespace's name as `ip netns` knows it.
func (ns *NS) Name() string { return ns.name }

// Exec runs `ip netns exec NAME args...` and returns its combined output.
// A non-zero exit status is returned as an error that includes the output.
func (ns *NS) Exec(args ...string) ([]byte, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("netns %s: exec: no command", ns.name)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("netns %s: %s: %w: %s", ns.name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Run calls fn on a goroutine locked to an OS thread that has been switched
// into the namespace, switches the thread back afterwards, and returns fn's
// error. Devices and sockets fn creates belong to the namespace; their file
// descriptors stay usable from anywhere once Run returns.
//
// fn must not start goroutines that expect to run inside the namespace: only
// fn's own goroutine is on the switched thread. A panic in fn is re-raised
// in the caller's goroutine after the thread has been switched back.
func (ns *NS) Run(fn func() error) error {
	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		// The thread stays locked (and so is discarded when this goroutine
		// exits) unless it is back in its original namespace.
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: fmt.Errorf("netns %s: open current namespace: %w", ns.name, err)}
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(filepath.Join(runDir, ns.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: fmt.Errorf("netns %s: open: %w", ns.name, err)}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("netns %s: setns: %w", ns.name, err)}
			return
		}

		var res result
		func() {
			defer func() {
				if v := recover(); v != nil {
					res = result{panicked: true, value: v}
				}
			}()
			res.err = fn()
		}()

		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			if res.err == nil && !res.panicked {
				res.err = fmt.Errorf("netns %s: switch back: %w", ns.name, err)
			}
			done <- res
			return
		}
		runtime.UnlockOSThread()
		done <- res
	}()
	res := <-done
	if res.panicked {
		panic(res.value)
	}
	return res.err
}
