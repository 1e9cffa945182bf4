package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/hal"
)

// Console is a hal.Console over a pair of host files: a terminal (both ends
// usually the same tty), pipes, or regular files.
//
// Read waits in poll(2) on the input and on an eventfd that Close signals,
// so Close unblocks a pending Read on any kind of input without changing the
// input's blocking mode (which other processes sharing a terminal would
// see). The cost is one OS thread per blocked Read. Reads are serialized.
//
// Write writes all of p to the output; concurrent Writes do not interleave.
// On a terminal, WindowSize and SetRaw work on the terminal's termios and
// window size; elsewhere they return errors wrapping errors.ErrUnsupported.
//
// Close restores the terminal mode found at open and releases the
// console's own resources; it does not close in or out, which stay the
// caller's.
type Console struct {
	in, out *os.File
	wake    int // eventfd; written by Close

	tty      bool          // in is a terminal
	orig     *unix.Termios // in's mode at open, restored by Close
	rawState atomic.Bool

	rmu    sync.Mutex // serializes reads
	wmu    sync.Mutex // serializes writes
	closed atomic.Bool
	life   sync.RWMutex // read-held by Read; Close write-locks it before releasing the eventfd
	once   sync.Once
	cerr   error
}

var (
	_ hal.Console      = (*Console)(nil)
	_ hal.ConsoleSizer = (*Console)(nil)
	_ hal.RawConsole   = (*Console)(nil)
)

// OpenConsole makes a console reading from in and writing to out.
func OpenConsole(in, out *os.File, opts ConsoleOptions) (*Console, error) {
	if in == nil || out == nil {
		return nil, errors.New("host: console: nil file")
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("host: console: eventfd: %w", err)
	}
	c := &Console{in: in, out: out, wake: wake}
	if err := c.withFd(in, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err == nil {
			c.tty, c.orig = true, t
		}
		return nil
	}); err != nil {
		unix.Close(wake)
		return nil, fmt.Errorf("host: console %s: %w", in.Name(), err)
	}
	if opts.Raw {
		if err := c.SetRaw(true); err != nil {
			unix.Close(wake)
			return nil, err
		}
	}
	return c, nil
}

// Stdio returns a console over the process's standard input and output.
// Closing it restores the terminal mode but leaves os.Stdin and os.Stdout
// open.
func Stdio() (*Console, error) { return OpenConsole(os.Stdin, os.Stdout, ConsoleOptions{}) }

// withFd runs fn with f's descriptor, keeping f open meanwhile.
func (c *Console) withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (c *Console) closedErr(op string) error {
	return fmt.Errorf("host: console: %s: %w", op, hal.ErrClosed)
}

// Read waits for input and returns what is available, up to len(p); see
// hal.Console. End of input (a closed pipe, a hung-up terminal) is io.EOF.
func (c *Console) Read(p []byte) (int, error) {
	// Close sets closed before signalling the eventfd and write-locks life
	// before closing it: a Read that sees closed unset under the read lock
	// polls an open eventfd that is, or will be, signalled.
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed.Load() {
		return 0, c.closedErr("read")
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.closed.Load() {
			return 0, c.closedErr("read")
		}
		var n int
		var rerr error
		again := false
		err := c.withFd(c.in, func(fd int) error {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(c.wake), Events: unix.POLLIN}}
			if _, err := unix.Poll(pfd, -1); err != nil {
				if err == unix.EINTR {
					again = true
					return nil
				}
				return fmt.Errorf("poll: %w", err)
			}
			if pfd[1].Revents != 0 {
				return hal.ErrClosed
			}
			if pfd[0].Revents&unix.POLLNVAL != 0 {
				return errors.New("input is not open")
			}
			n, rerr = unix.Read(fd, p)
			switch {
			case rerr == unix.EINTR || rerr == unix.EAGAIN:
				again = true
			case rerr == unix.EIO && c.tty:
				// The other side of a terminal has hung up.
				rerr = io.EOF
			case rerr == nil && n == 0:
				rerr = io.EOF
			}
			return nil
		})
		switch {
		case errors.Is(err, hal.ErrClosed) || errors.Is(err, os.ErrClosed):
			return 0, c.closedErr("read")
		case err != nil:
			return 0, fmt.Errorf("host: console: read %s: %w", c.in.Name(), err)
		case again:
			continue
		case rerr == io.EOF:
			return 0, io.EOF
		case rerr != nil:
			return 0, fmt.Errorf("host: console: read %s: %w", c.in.Name(), rerr)
		}
		return n, nil
	}
}

// Write writes all of p; see hal.Console.
func (c *Console) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.closedErr("write")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.out.Write(p)
	if err != nil {
		if c.closed.Load() {
			return n, c.closedErr("write")
		}
		return n, fmt.Errorf("host: console: write %s: %w", c.out.Name(), err)
	}
	return n, nil
}

// WindowSize returns the terminal's size in character cells (TIOCGWINSZ on
// the output, else the input).
func (c *Console) WindowSize() (cols, rows int, err error) {
	if c.closed.Load() {
		return 0, 0, c.closedErr("window size")
	}
	for _, f := range []*os.File{c.out, c.in} {
		var ws *unix.Winsize
		if err := c.withFd(f, func(fd int) error {
			var err error
			ws, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
			return err
		}); err == nil {
			return int(ws.Col), int(ws.Row), nil
		}
	}
	return 0, 0, fmt.Errorf("host: console: window size: not a terminal: %w", errors.ErrUnsupported)
}

// SetRaw switches the terminal's line discipline off (raw) or back to the
// mode it had when the console was opened; see hal.RawConsole. Raw mode
// here is what cfmakeraw(3) makes: no echo, no canonical line editing, no
// signals from keys, no input or output translation, 8-bit characters, and
// reads that return as soon as one byte is there.
func (c *Console) SetRaw(raw bool) error {
	if c.closed.Load() {
		return c.closedErr("set raw")
	}
	if !c.tty {
		return fmt.Errorf("host: console: raw mode: %s is not a terminal: %w", c.in.Name(), errors.ErrUnsupported)
	}
	t := *c.orig
	if raw {
		makeRaw(&t)
	}
	if err := c.withFd(c.in, func(fd int) error { return unix.IoctlSetTermios(fd, unix.TCSETS, &t) }); err != nil {
		return fmt.Errorf("host: console: raw mode: %w", err)
	}
	c.rawState.Store(raw)
	return nil
}

// makeRaw turns t into raw mode as cfmakeraw(3) defines it.
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}

// Close unblocks a pending Read, restores the terminal mode found at open
// and releases the console's eventfd. It does not close in or out.
func (c *Console) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		var one [8]byte
		one[0] = 1 // eventfd counters are host-endian; any non-zero wakes poll
		if _, err := unix.Write(c.wake, one[:]); err != nil && err != unix.EAGAIN {
			c.cerr = fmt.Errorf("host: console: wake reader: %w", err)
		}
		c.life.Lock()
		defer c.life.Unlock()
		if c.tty && c.rawState.Load() {
			if err := c.withFd(c.in, func(fd int) error { return unix.IoctlSetTermios(fd, unix.TCSETS, c.orig) }); err != nil && c.cerr == nil {
				c.cerr = fmt.Errorf("host: console: restore terminal mode: %w", err)
			}
		}
		unix.Close(c.wake)
	})
	return c.cerr
}
