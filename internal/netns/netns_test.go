package netns_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/internal/netns"
)

// inode returns the inode of the calling thread's network namespace.
func inode(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Stat("/proc/thread-self/ns/net", &st))
	return st.Ino
}

func TestRunSwitchesNamespace(t *testing.T) {
	ns := netns.New(t)
	require.True(t, strings.HasPrefix(ns.Name(), "aktest-"), ns.Name())

	host := inode(t)
	var inside uint64
	require.NoError(t, ns.Run(func() error {
		inside = inode(t)
		// A link made here exists in the namespace only.
		_, err := ns.Exec("ip", "link", "add", "dummy0", "type", "bridge")
		return err
	}))
	assert.NotEqual(t, host, inside, "Run must switch the thread into another namespace")

	out, err := ns.Exec("ip", "-o", "link", "show", "dummy0")
	require.NoError(t, err)
	assert.Contains(t, string(out), "dummy0")
	_, err = net.InterfaceByName("dummy0")
	assert.Error(t, err, "dummy0 must not appear in the host namespace")

	// Interfaces listed from inside Run are the namespace's.
	var names []string
	require.NoError(t, ns.Run(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	}))
	assert.ElementsMatch(t, []string{"lo", "dummy0"}, names)
}

func TestRunResults(t *testing.T) {
	ns := netns.New(t)
	sentinel := errors.New("sentinel")
	tests := []struct {
		name string
		fn   func() error
		want error
	}{
		{"nil", func() error { return nil }, nil},
		{"error", func() error { return sentinel }, sentinel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ns.Run(tc.fn)
			if tc.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
	t.Run("panic", func(t *testing.T) {
		assert.PanicsWithValue(t, "boom", func() { _ = ns.Run(func() error { panic("boom") }) })
	})
}

func TestExec(t *testing.T) {
	ns := netns.New(t)
	out, err := ns.Exec("ip", "-o", "link", "show", "lo")
	require.NoError(t, err)
	assert.Contains(t, string(out), "UP", "New brings lo up")

	_, err = ns.Exec("false")
	assert.Error(t, err)
	_, err = ns.Exec()
	assert.Error(t, err)
}

func TestCleanupDeletes(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		name = netns.New(t).Name()
		_, err := os.Stat("/run/netns/" + name)
		require.NoError(t, err)
	})
	_, err := os.Stat("/run/netns/" + name)
	assert.True(t, os.IsNotExist(err), "namespace %s still exists after cleanup: %v", name, err)
}
