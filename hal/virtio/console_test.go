package virtio_test

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/hal/virtio"
	"github.com/anykernel/anykernel/hal/virtio/model"
)

func newConsole(t testing.TB, mo model.ConsoleOptions, o model.Options) (*virtio.Console, io.ReadWriter, *model.Console, *model.Device) {
	t.Helper()
	mc := mem.NewConsole()
	be := model.NewConsole(mc, mo)
	t.Cleanup(func() { _ = be.Close() })
	tr, dev := newMMIO(t, be, o)
	c, err := virtio.NewConsole(tr, virtio.ConsoleOptions{})
	require.NoError(t, err)
	return c, mc.Operator(), be, dev
}

func TestConsoleConformance(t *testing.T) {
	haltest.TestConsole(t, func(t *testing.T) (hal.Console, io.ReadWriter) {
		c, op, _, _ := newConsole(t, model.ConsoleOptions{}, model.Options{})
		return c, op
	})
}

func TestConsoleEcho(t *testing.T) {
	c, op, _, _ := newConsole(t, model.ConsoleOptions{}, model.Options{})
	defer c.Close()
	done := make(chan error, 1)
	go func() { // the echo program on the driver side
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err != nil {
				done <- err
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				done <- err
				return
			}
		}
	}()
	for _, line := range []string{"hello\n", "a longer line of input to echo back\n", "x"} {
		_, err := op.Write([]byte(line))
		require.NoError(t, err)
		got := make([]byte, len(line))
		_, err = io.ReadFull(op, got)
		require.NoError(t, err)
		require.Equal(t, line, string(got))
	}
	require.NoError(t, c.Close())
	require.ErrorIs(t, <-done, hal.ErrClosed)
}

func TestConsoleWindowSize(t *testing.T) {
	cases := []struct {
		name       string
		cols, rows uint16
		wantErr    bool
	}{
		{name: "offered", cols: 132, rows: 43},
		{name: "not-offered", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, be, _ := newConsole(t, model.ConsoleOptions{Cols: tc.cols, Rows: tc.rows}, model.Options{})
			defer c.Close()
			cols, rows, err := c.WindowSize()
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []int{int(tc.cols), int(tc.rows)}, []int{cols, rows})
			be.Resize(80, 25) // a configuration change mid-flight
			require.Eventually(t, func() bool {
				cols, rows, _ := c.WindowSize()
				return cols == 80 && rows == 25
			}, 10*time.Second, time.Millisecond)
		})
	}
}
