package mem_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/mem"
)

func TestConsoleConformance(t *testing.T) {
	haltest.TestConsole(t, func(t *testing.T) (hal.Console, io.ReadWriter) {
		c := mem.NewConsole()
		t.Cleanup(func() { _ = c.Operator().Close() })
		return c, c.Operator()
	})
}

func TestConsoleBothDirections(t *testing.T) {
	tests := []struct {
		name     string
		from, to func(c *mem.Console) io.ReadWriter
	}{
		{
			name: "console to operator",
			from: func(c *mem.Console) io.ReadWriter { return c },
			to:   func(c *mem.Console) io.ReadWriter { return c.Operator() },
		},
		{
			name: "operator to console",
			from: func(c *mem.Console) io.ReadWriter { return c.Operator() },
			to:   func(c *mem.Console) io.ReadWriter { return c },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mem.NewConsole()
			defer c.Close()
			from, to := tt.from(c), tt.to(c)

			n, err := from.Write([]byte("hello, "))
			require.NoError(t, err)
			assert.Equal(t, 7, n)
			_, err = from.Write([]byte("world\r\n"))
			require.NoError(t, err)

			// Bytes pass through unchanged and in order, in whatever pieces
			// the reader asks for.
			buf := make([]byte, 3)
			var got []byte
			for len(got) < 14 {
				n, err := to.Read(buf)
				require.NoError(t, err)
				require.Positive(t, n)
				got = append(got, buf[:n]...)
			}
			assert.Equal(t, "hello, world\r\n", string(got))
		})
	}
}

func TestConsoleReadBlocksUntilWrite(t *testing.T) {
	c := mem.NewConsole()
	defer c.Close()
	got := make(chan string)
	go func() {
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		assert.NoError(t, err)
		got <- string(buf[:n])
	}()
	_, err := c.Operator().Write([]byte("x"))
	require.NoError(t, err)
	assert.Equal(t, "x", <-got)
}

func TestConsoleEmptyReadWrite(t *testing.T) {
	c := mem.NewConsole()
	defer c.Close()
	n, err := c.Write(nil)
	assert.NoError(t, err)
	assert.Zero(t, n)
	n, err = c.Read(nil)
	assert.NoError(t, err, "a zero-length read does not block")
	assert.Zero(t, n)
}

func TestConsoleClose(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T, c *mem.Console)
	}{
		{
			name: "close unblocks pending read with ErrClosed",
			check: func(t *testing.T, c *mem.Console) {
				errc := make(chan error)
				go func() {
					_, err := c.Read(make([]byte, 1))
					errc <- err
				}()
				require.NoError(t, c.Close())
				assert.ErrorIs(t, <-errc, hal.ErrClosed)
			},
		},
		{
			name: "read and write after close fail with ErrClosed",
			check: func(t *testing.T, c *mem.Console) {
				_, err := c.Operator().Write([]byte("pending"))
				require.NoError(t, err)
				require.NoError(t, c.Close())
				_, err = c.Read(make([]byte, 8))
				assert.ErrorIs(t, err, hal.ErrClosed)
				_, err = c.Write([]byte("x"))
				assert.ErrorIs(t, err, hal.ErrClosed)
			},
		},
		{
			name: "close twice returns nil",
			check: func(t *testing.T, c *mem.Console) {
				assert.NoError(t, c.Close())
				assert.NoError(t, c.Close())
				assert.NoError(t, c.Operator().Close())
				assert.NoError(t, c.Operator().Close())
			},
		},
		{
			name: "operator drains then sees EOF after console close",
			check: func(t *testing.T, c *mem.Console) {
				_, err := c.Write([]byte("last words"))
				require.NoError(t, err)
				require.NoError(t, c.Close())
				got, err := io.ReadAll(c.Operator())
				require.NoError(t, err)
				assert.Equal(t, "last words", string(got))
			},
		},
		{
			name: "console drains then sees EOF after operator close",
			check: func(t *testing.T, c *mem.Console) {
				_, err := c.Operator().Write([]byte("bye"))
				require.NoError(t, err)
				require.NoError(t, c.Operator().Close())
				got, err := io.ReadAll(c)
				require.NoError(t, err)
				assert.Equal(t, "bye", string(got))
				_, err = c.Read(make([]byte, 1))
				assert.ErrorIs(t, err, io.EOF, "EOF is sticky")
			},
		},
		{
			name: "operator close unblocks console read with EOF",
			check: func(t *testing.T, c *mem.Console) {
				errc := make(chan error)
				go func() {
					_, err := c.Read(make([]byte, 1))
					errc <- err
				}()
				require.NoError(t, c.Operator().Close())
				assert.ErrorIs(t, <-errc, io.EOF)
			},
		},
		{
			name: "write to closed operator fails",
			check: func(t *testing.T, c *mem.Console) {
				require.NoError(t, c.Operator().Close())
				_, err := c.Write([]byte("anyone there?"))
				assert.ErrorIs(t, err, io.ErrClosedPipe)
				assert.False(t, errors.Is(err, hal.ErrClosed), "the console itself is still open")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mem.NewConsole()
			defer c.Close()
			tt.check(t, c)
		})
	}
}

// TestConsoleConcurrentWritesAtomic checks that each Write arrives whole
// even with many concurrent writers, and that a slow reader loses nothing.
func TestConsoleConcurrentWritesAtomic(t *testing.T) {
	c := mem.NewConsole()
	const (
		writers = 8
		perW    = 100
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			// Longer than 512 bytes: this backend makes every Write atomic.
			line := strings.Repeat(string(rune('a'+w)), 700) + "\n"
			for range perW {
				_, err := c.Write([]byte(line))
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.NoError(t, c.Close())

	got, err := io.ReadAll(c.Operator())
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSuffix(got, []byte("\n")), []byte("\n"))
	require.Len(t, lines, writers*perW)
	counts := map[byte]int{}
	for _, l := range lines {
		require.Len(t, l, 700)
		require.Equal(t, bytes.Repeat(l[:1], 700), l, "interleaved write")
		counts[l[0]]++
	}
	for w := range writers {
		assert.Equal(t, perW, counts[byte('a'+w)])
	}
}

func TestConsoleSlowReaderKeepsOrder(t *testing.T) {
	c := mem.NewConsole()
	var want, got bytes.Buffer
	next := 0
	write := func(n int) {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(next * 7 / 3)
			next++
		}
		want.Write(b)
		_, err := c.Write(b)
		require.NoError(t, err)
	}
	read := func(n int) {
		buf := make([]byte, 1000)
		for n > 0 {
			k, err := c.Operator().Read(buf[:min(n, len(buf))])
			require.NoError(t, err)
			got.Write(buf[:k])
			n -= k
		}
	}
	// The reader lags behind, catches up partly, then fully, so the buffer
	// is both compacted and reset along the way.
	write(10000)
	read(6000)
	write(5000)
	read(8000)
	write(3)
	read(1003)
	write(20000)
	require.NoError(t, c.Close())
	rest, err := io.ReadAll(c.Operator())
	require.NoError(t, err)
	got.Write(rest)
	assert.Equal(t, want.Bytes(), got.Bytes())
}
