package netstack

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

func TestNettestConn(t *testing.T) {
	tests := []struct{ name, network, listen, dial string }{
		{"tcp4 across the link", "tcp4", "10.0.0.2:0", "10.0.0.2"},
		{"tcp6 across the link", "tcp6", "[fd00::2]:0", "fd00::2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sa, sb := testPair(t)
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				ln, err := sb.Listen(tc.network, tc.listen)
				if err != nil {
					return nil, nil, nil, err
				}
				defer ln.Close()
				type res struct {
					c   net.Conn
					err error
				}
				ch := make(chan res, 1)
				go func() {
					c, err := ln.Accept()
					ch <- res{c, err}
				}()
				port := ln.Addr().(*net.TCPAddr).Port
				c1, err = sa.Dial(tc.network, net.JoinHostPort(tc.dial, fmt.Sprint(port)))
				if err != nil {
					return nil, nil, nil, err
				}
				r := <-ch
				if r.err != nil {
					c1.Close()
					return nil, nil, nil, r.err
				}
				return c1, r.c, func() { c1.Close(); r.c.Close() }, nil
			})
		})
	}
}

func TestHTTP(t *testing.T) {
	checkGoroutines(t)
	sa, sb := testPair(t)
	ln, err := sb.Listen("tcp", ":80")
	require.NoError(t, err)
	body := strings.Repeat("anykernel ", 100_000)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)
		io.WriteString(w, body)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		require.NoError(t, srv.Shutdown(context.Background()))
		assert.ErrorIs(t, <-done, http.ErrServerClosed)
	}()
	tr := &http.Transport{DialContext: sa.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for _, url := range []string{"http://10.0.0.2/a", "http://[fd00::2]/b", "http://10.0.0.2:80/c"} {
		t.Run(url, func(t *testing.T) {
			resp, err := client.Get(url)
			require.NoError(t, err)
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			path := url[strings.LastIndex(url, "/"):]
			assert.Equal(t, "GET "+path+"\n"+body, string(got))
		})
	}
}

func TestEmptyReadDoesNotBlock(t *testing.T) {
	sa, sb := testPair(t)
	ln, err := sb.Listen("tcp", ":80")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := sa.Dial("tcp", "10.0.0.2:80")
	require.NoError(t, err)
	defer c.Close()
	n, err := c.Read(nil)
	assert.NoError(t, err)
	assert.Zero(t, n)
}
