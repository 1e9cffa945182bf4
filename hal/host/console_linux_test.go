package host_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/host"
	"github.com/anykernel/anykernel/internal/testenv"
)

// openPTY opens a pseudo-terminal pair: the master (the operator's end) and
// the slave (the terminal a console runs on). Both are closed when t ends.
func openPTY(t testing.TB) (master, slave *os.File) {
	t.Helper()
	testenv.NeedFile(t, "/dev/ptmx")
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	require.NoError(t, err)
	master = os.NewFile(uintptr(mfd), "/dev/ptmx")
	t.Cleanup(func() { master.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0)) // unlockpt
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)                    // ptsname
	require.NoError(t, err)
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

func TestConsoleConformance(t *testing.T) {
	haltest.TestConsole(t, func(t *testing.T) (hal.Console, io.ReadWriter) {
		master, slave := openPTY(t)
		c, err := host.OpenConsole(slave, slave, host.ConsoleOptions{Raw: true})
		require.NoError(t, err)
		return c, master
	})
}

func TestConsolePipeConformance(t *testing.T) {
	// Pipes: the operator writes into the console's input pipe and reads
	// from its output pipe.
	haltest.TestConsole(t, func(t *testing.T) (hal.Console, io.ReadWriter) {
		inR, inW, err := os.Pipe()
		require.NoError(t, err)
		outR, outW, err := os.Pipe()
		require.NoError(t, err)
		t.Cleanup(func() { inR.Close(); inW.Close(); outR.Close(); outW.Close() })
		c, err := host.OpenConsole(inR, outW, host.ConsoleOptions{})
		require.NoError(t, err)
		return c, struct {
			io.Reader
			io.Writer
		}{outR, inW}
	})
}

func termios(t *testing.T, f *os.File) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	require.NoError(t, err)
	return tio
}

func TestConsoleRawModeRestored(t *testing.T) {
	master, slave := openPTY(t)
	orig := termios(t, slave)
	require.NotZero(t, orig.Lflag&unix.ICANON, "a new pty starts in canonical mode")

	c, err := host.OpenConsole(slave, slave, host.ConsoleOptions{})
	require.NoError(t, err)
	require.NoError(t, c.SetRaw(true))
	raw := termios(t, slave)
	assert.Zero(t, raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG))
	assert.Zero(t, raw.Oflag&unix.OPOST)
	assert.Zero(t, raw.Iflag&unix.ICRNL)

	// Raw: one keystroke is readable at once, unechoed.
	_, err = master.Write([]byte("x"))
	require.NoError(t, err)
	buf := make([]byte, 8)
	n, err := c.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "x", string(buf[:n]))

	require.NoError(t, c.SetRaw(false))
	assert.Equal(t, orig.Lflag, termios(t, slave).Lflag)
	require.NoError(t, c.SetRaw(true))
	require.NoError(t, c.Close())
	after := termios(t, slave)
	assert.Equal(t, orig.Lflag, after.Lflag, "Close restores local modes")
	assert.Equal(t, orig.Iflag, after.Iflag, "Close restores input modes")
	assert.Equal(t, orig.Oflag, after.Oflag, "Close restores output modes")
	assert.ErrorIs(t, c.SetRaw(true), hal.ErrClosed)
}

func TestConsoleWindowSize(t *testing.T) {
	_, slave := openPTY(t)
	require.NoError(t, unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: 132, Row: 43}))
	c, err := host.OpenConsole(slave, slave, host.ConsoleOptions{})
	require.NoError(t, err)
	defer c.Close()
	cols, rows, err := c.WindowSize()
	require.NoError(t, err)
	assert.Equal(t, 132, cols)
	assert.Equal(t, 43, rows)
}

func TestConsoleNotATerminal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in")
	require.NoError(t, os.WriteFile(path, []byte("abc"), 0o644))
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer out.Close()

	_, err = host.OpenConsole(in, out, host.ConsoleOptions{Raw: true})
	assert.ErrorIs(t, err, errors.ErrUnsupported)

	c, err := host.OpenConsole(in, out, host.ConsoleOptions{})
	require.NoError(t, err)
	defer c.Close()
	assert.ErrorIs(t, c.SetRaw(true), errors.ErrUnsupported)
	_, _, err = c.WindowSize()
	assert.ErrorIs(t, err, errors.ErrUnsupported)

	// A regular file reads to its end, then io.EOF.
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, "abc", string(got))
	_, err = c.Write([]byte("out"))
	require.NoError(t, err)
	b, err := os.ReadFile(out.Name())
	require.NoError(t, err)
	assert.Equal(t, "out", string(b))
}

func TestConsoleOperatorHangup(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T) (c *host.Console, hangup func())
	}{
		{"pty", func(t *testing.T) (*host.Console, func()) {
			master, slave := openPTY(t)
			c, err := host.OpenConsole(slave, slave, host.ConsoleOptions{Raw: true})
			require.NoError(t, err)
			return c, func() { master.Close() }
		}},
		{"pipe", func(t *testing.T) (*host.Console, func()) {
			r, w, err := os.Pipe()
			require.NoError(t, err)
			t.Cleanup(func() { r.Close() })
			c, err := host.OpenConsole(r, os.Stderr, host.ConsoleOptions{})
			require.NoError(t, err)
			return c, func() { w.Close() }
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, hangup := tc.make(t)
			defer c.Close()
			done := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 16))
				done <- err
			}()
			hangup()
			select {
			case err := <-done:
				assert.ErrorIs(t, err, io.EOF)
			case <-time.After(waitLimit):
				t.Fatal("Read did not return after the operator hung up")
			}
		})
	}
}

func TestStdio(t *testing.T) {
	c, err := host.Stdio()
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "second Close")
	_, err = c.Write([]byte("x"))
	assert.ErrorIs(t, err, hal.ErrClosed)
	// The process's standard files stay open.
	var st unix.Stat_t
	assert.NoError(t, unix.Fstat(int(os.Stdin.Fd()), &st))
	assert.NoError(t, unix.Fstat(int(os.Stdout.Fd()), &st))
}
