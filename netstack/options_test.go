package netstack

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"zero value", Options{}, false},
		{"cubic", Options{TCP: TCPOptions{CongestionControl: "cubic"}}, false},
		{"reno", Options{TCP: TCPOptions{CongestionControl: "reno"}}, false},
		{"unknown congestion control", Options{TCP: TCPOptions{CongestionControl: "bbr3000"}}, true},
		{"no SACK, no RACK", Options{TCP: TCPOptions{DisableSACK: true, DisableRACK: true}}, false},
		{"buffers", Options{TCP: TCPOptions{
			SendBuffer:    BufferSizes{Min: 8 << 10, Default: 256 << 10, Max: 8 << 20},
			ReceiveBuffer: BufferSizes{Default: 2 << 20},
		}}, false},
		{"minimum RTO and Nagle", Options{TCP: TCPOptions{MinRTO: 50 * time.Millisecond, Delay: true}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			st, err := New(tc.opts)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			// The stack works: a loopback connection carries data.
			ln, err := st.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					_, _ = c.Write([]byte("ok"))
					c.Close()
				}
			}()
			c, err := st.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			buf := make([]byte, 2)
			_, err = c.Read(buf)
			require.NoError(t, err)
			assert.Equal(t, "ok", string(buf))
			c.Close()
			ln.Close()
			require.NoError(t, st.Close())
		})
	}
}

func TestPacketConn(t *testing.T) {
	checkGoroutines(t)
	sa, sb := testPair(t)
	tests := []struct{ name, network, laddr, raddr string }{
		{"ipv4", "udp4", "10.0.0.2:0", "10.0.0.2"},
		{"ipv6", "udp6", "[fd00::2]:0", "fd00::2"},
		{"dual-stack", "udp", ":0", "10.0.0.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := sb.ListenPacket(tc.network, tc.laddr)
			require.NoError(t, err)
			defer srv.Close()
			port := srv.LocalAddr().(*net.UDPAddr).Port
			cli, err := sa.ListenPacket(tc.network, ":0")
			require.NoError(t, err)
			defer cli.Close()
			dst := &net.UDPAddr{IP: net.ParseIP(tc.raddr), Port: port}
			_, err = cli.WriteTo([]byte("ping"), dst)
			require.NoError(t, err)
			buf := make([]byte, 100)
			require.NoError(t, srv.SetReadDeadline(time.Now().Add(5*time.Second)))
			n, from, err := srv.ReadFrom(buf)
			require.NoError(t, err)
			assert.Equal(t, "ping", string(buf[:n]))
			_, err = srv.WriteTo([]byte("pong"), from)
			require.NoError(t, err)
			require.NoError(t, cli.SetReadDeadline(time.Now().Add(5*time.Second)))
			n, _, err = cli.ReadFrom(buf)
			require.NoError(t, err)
			assert.Equal(t, "pong", string(buf[:n]))

			// A read past its deadline times out like package net's.
			require.NoError(t, cli.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
			_, _, err = cli.ReadFrom(buf)
			require.Error(t, err)
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			assert.True(t, ne.Timeout())
		})
	}
	t.Run("connected socket learns of a closed port", func(t *testing.T) {
		c, err := sa.Dial("udp", "10.0.0.2:9")
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		var rerr error
		for range 5 {
			if _, err := c.Write([]byte("anyone?")); err != nil {
				rerr = err
				break
			}
			if _, rerr = c.Read(make([]byte, 10)); rerr != nil {
				break
			}
		}
		assert.ErrorIs(t, rerr, syscall.ECONNREFUSED)
	})
}

// TestBufferDefaults checks that zero buffer sizes reach gVisor as the
// documented defaults and that explicit fields override only themselves.
func TestBufferDefaults(t *testing.T) {
	type r = tcpip.TCPSendBufferSizeRangeOption
	tests := []struct {
		name     string
		tcp      TCPOptions
		snd, rcv r
	}{
		{"zero", TCPOptions{},
			r{Min: 4 << 10, Default: 4 << 20, Max: 16 << 20},
			r{Min: 4 << 10, Default: 1 << 20, Max: 16 << 20}},
		{"explicit", TCPOptions{
			SendBuffer:    BufferSizes{Max: 8 << 20},
			ReceiveBuffer: BufferSizes{Default: 64 << 10, Max: 2 << 20},
		},
			r{Min: 4 << 10, Default: 4 << 20, Max: 8 << 20},
			r{Min: 4 << 10, Default: 64 << 10, Max: 2 << 20}},
		{"default above max", TCPOptions{ReceiveBuffer: BufferSizes{Default: 32 << 20}},
			r{Min: 4 << 10, Default: 4 << 20, Max: 16 << 20},
			r{Min: 4 << 10, Default: 32 << 20, Max: 32 << 20}},
		{"max below default", TCPOptions{SendBuffer: BufferSizes{Max: 1 << 20}},
			r{Min: 4 << 10, Default: 1 << 20, Max: 1 << 20},
			r{Min: 4 << 10, Default: 1 << 20, Max: 16 << 20}},
		{"min above default", TCPOptions{SendBuffer: BufferSizes{Min: 8 << 20}},
			r{Min: 8 << 20, Default: 8 << 20, Max: 16 << 20},
			r{Min: 4 << 10, Default: 1 << 20, Max: 16 << 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := New(Options{TCP: tc.tcp})
			require.NoError(t, err)
			defer st.Close()
			var snd tcpip.TCPSendBufferSizeRangeOption
			require.Nil(t, st.s.TransportProtocolOption(tcp.ProtocolNumber, &snd))
			var rcv tcpip.TCPReceiveBufferSizeRangeOption
			require.Nil(t, st.s.TransportProtocolOption(tcp.ProtocolNumber, &rcv))
			assert.Equal(t, tc.snd, snd, "send buffer")
			assert.Equal(t, tc.rcv, r(rcv), "receive buffer")
		})
	}
}
