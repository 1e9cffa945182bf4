package dhcp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loopbackUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnTransport(t *testing.T) {
	a, b := loopbackUDP(t), loopbackUDP(t)
	ta, tb := NewConnTransport(a), NewConnTransport(b)
	bAddr := b.LocalAddr().(*net.UDPAddr).AddrPort()
	aAddr := a.LocalAddr().(*net.UDPAddr).AddrPort()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	t.Run("send and receive", func(t *testing.T) {
		require.NoError(t, ta.Send(ctx, []byte("hello"), bAddr))
		buf := make([]byte, 3)
		n, src, err := tb.Receive(ctx, buf)
		require.NoError(t, err)
		assert.Equal(t, 3, n, "truncated to the buffer")
		assert.Equal(t, "hel", string(buf[:n]))
		assert.Equal(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), aAddr.Port()), src)
	})

	t.Run("cancel interrupts a blocked receive", func(t *testing.T) {
		rctx, rcancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, _, err := tb.Receive(rctx, make([]byte, 16))
			errc <- err
		}()
		rcancel()
		assert.ErrorIs(t, recv(t, errc, "Receive's return"), context.Canceled)

		// The next Receive is not disturbed by the old cancellation.
		require.NoError(t, ta.Send(ctx, []byte("again"), bAddr))
		buf := make([]byte, 16)
		n, _, err := tb.Receive(ctx, buf)
		require.NoError(t, err)
		assert.Equal(t, "again", string(buf[:n]))
	})

	t.Run("done context", func(t *testing.T) {
		dctx, dcancel := context.WithCancel(ctx)
		dcancel()
		_, _, err := tb.Receive(dctx, make([]byte, 16))
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, ta.Send(dctx, []byte("x"), bAddr), context.Canceled)
	})

	t.Run("stale deadline is retried", func(t *testing.T) {
		require.NoError(t, b.SetReadDeadline(time.Unix(1, 0)))
		require.NoError(t, ta.Send(ctx, []byte("late"), bAddr))
		buf := make([]byte, 16)
		n, _, err := tb.Receive(ctx, buf)
		require.NoError(t, err)
		assert.Equal(t, "late", string(buf[:n]))
	})

	t.Run("closed socket", func(t *testing.T) {
		c := loopbackUDP(t)
		require.NoError(t, c.Close())
		_, _, err := NewConnTransport(c).Receive(ctx, make([]byte, 16))
		assert.ErrorIs(t, err, net.ErrClosed)
	})
}

func TestPastDeadline(t *testing.T) {
	// It must read as passed on any clock, including a simulated one that
	// starts at the zero time, and must not mean "no deadline".
	assert.False(t, pastDeadline.IsZero())
	assert.True(t, pastDeadline.Before(time.Time{}))
}
