package console_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/console"
	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
)

// muxOutput closes m and returns everything the operator received.
func muxOutput(t *testing.T, m *console.Mux, c *mem.Console) string {
	t.Helper()
	require.NoError(t, m.Close())
	out, err := io.ReadAll(c.Operator())
	require.NoError(t, err)
	return string(out)
}

func TestMuxLines(t *testing.T) {
	type step struct {
		w     string // writer name: "a" or "b"
		write string // text to write
		flush bool   // flush the writer instead of writing
		close bool   // close the writer instead of writing
	}
	tests := []struct {
		name  string
		opts  console.MuxOptions
		steps []step
		want  string
	}{
		{
			name:  "whole lines pass through",
			steps: []step{{w: "a", write: "one\ntwo\n"}, {w: "b", write: "three\n"}},
			want:  "one\ntwo\nthree\n",
		},
		{
			name: "partial line waits for its newline",
			steps: []step{
				{w: "a", write: "hel"}, {w: "b", write: "B\n"}, {w: "a", write: "lo\nwor"},
				{w: "b", write: "B2\n"}, {w: "a", write: "ld\n"},
			},
			want: "B\nhello\nB2\nworld\n",
		},
		{
			name:  "flushed prompt is continued by the same writer",
			steps: []step{{w: "a", write: "login: "}, {w: "a", flush: true}, {w: "a", write: "root\n"}},
			want:  "login: root\n",
		},
		{
			name: "another writer after a flushed prompt starts a new line",
			steps: []step{
				{w: "a", write: "login: "}, {w: "a", flush: true}, {w: "b", write: "eth0 up\n"},
				{w: "a", write: "root\n"},
			},
			want: "login: \neth0 up\nroot\n",
		},
		{
			name:  "close flushes the partial line",
			steps: []step{{w: "a", write: "no newline"}, {w: "a", close: true}, {w: "b", write: "next\n"}},
			want:  "no newline\nnext\n",
		},
		{
			name:  "flush of an empty buffer writes nothing",
			steps: []step{{w: "a", flush: true}, {w: "b", write: "x\n"}, {w: "a", flush: true}},
			want:  "x\n",
		},
		{
			name: "partial line over the limit goes out in pieces",
			opts: console.MuxOptions{MaxLine: 4},
			steps: []step{
				{w: "a", write: "0123456789"}, {w: "a", write: "ab\n"},
				{w: "a", write: "xyzw"}, {w: "b", write: "B\n"}, {w: "a", write: "!\n"},
			},
			want: "0123456789ab\nxyzw\nB\n!\n",
		},
		{
			name: "labels mark every line",
			opts: console.MuxOptions{Label: true},
			steps: []step{
				{w: "a", write: "x\ny"}, {w: "b", write: "z\n"}, {w: "a", write: "w\n"},
				{w: "a", write: "p> "}, {w: "a", flush: true}, {w: "b", write: "log\n"},
				{w: "a", write: "q\n"}, {w: "", write: "anonymous\n"},
			},
			want: "a: x\nb: z\na: yw\na: p> \nb: log\na: q\nanonymous\n",
		},
		{
			name: "labelled continuation keeps one label",
			opts: console.MuxOptions{Label: true},
			steps: []step{
				{w: "a", write: "ab"}, {w: "a", flush: true}, {w: "a", write: "cd"},
				{w: "a", flush: true}, {w: "a", write: "e\nf\n"},
			},
			want: "a: abcde\na: f\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mem.NewConsole()
			m := console.NewMux(c, tt.opts)
			writers := map[string]*console.Writer{}
			for _, s := range tt.steps {
				w, ok := writers[s.w]
				if !ok {
					w = m.Writer(s.w)
					writers[s.w] = w
				}
				switch {
				case s.flush:
					require.NoError(t, w.Flush())
				case s.close:
					require.NoError(t, w.Close())
				default:
					n, err := w.Write([]byte(s.write))
					require.NoError(t, err)
					require.Equal(t, len(s.write), n)
				}
			}
			assert.Equal(t, tt.want, muxOutput(t, m, c))
		})
	}
}

func TestMuxEachWriteIsOneConsoleWrite(t *testing.T) {
	// Lines completed by one Write reach the console in one Write, so even
	// a console with small atomic writes cannot split them from each other.
	rec := &recordingConsole{}
	m := console.NewMux(rec, console.MuxOptions{})
	w := m.Writer("a")
	_, err := w.Write([]byte("par"))
	require.NoError(t, err)
	_, err = w.Write([]byte("tial\nsecond\nthird"))
	require.NoError(t, err)
	require.NoError(t, w.Flush())
	assert.Equal(t, []string{"partial\nsecond\n", "third"}, rec.writes)
}

func TestMuxConcurrentWritersNeverInterleave(t *testing.T) {
	const (
		ownWriters = 6  // each driven by one goroutine writing random fragments
		shared     = 2  // each shared by several goroutines writing whole lines
		perShared  = 4  // goroutines per shared writer
		lines      = 80 // lines per goroutine
	)
	c := mem.NewConsole()
	m := console.NewMux(c, console.MuxOptions{MaxLine: 1 << 16})

	// The operator drains concurrently, as a terminal would.
	got := make(chan string)
	go func() {
		out, err := io.ReadAll(c.Operator())
		assert.NoError(t, err)
		got <- string(out)
	}()

	want := map[string]int{}
	line := func(who string, i int) string {
		// Lines of varied length, some longer than 512 bytes.
		return fmt.Sprintf("%s#%03d:%s", who, i, strings.Repeat(string(rune('a'+i%26)), (i*37)%700))
	}
	var wg sync.WaitGroup
	for g := range ownWriters {
		who := fmt.Sprintf("own%d", g)
		for i := range lines {
			want[line(who, i)]++
		}
		w := m.Writer(who)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var text strings.Builder
			for i := range lines {
				text.WriteString(line(who, i) + "\n")
			}
			rest := text.String()
			for len(rest) > 0 {
				n := min(len(rest), 1+rng.IntN(90))
				_, err := w.Write([]byte(rest[:n]))
				assert.NoError(t, err)
				rest = rest[n:]
			}
		})
	}
	for s := range shared {
		w := m.Writer(fmt.Sprintf("shared%d", s))
		for g := range perShared {
			who := fmt.Sprintf("shared%d-%d", s, g)
			for i := range lines {
				want[line(who, i)]++
			}
			wg.Go(func() {
				for i := range lines {
					_, err := w.Write([]byte(line(who, i) + "\n"))
					assert.NoError(t, err)
				}
			})
		}
	}
	// A logger through its own writer joins in.
	logW := m.Writer("klog")
	logger := slog.New(console.NewHandler(logW, &console.HandlerOptions{Clock: mem.NewClock(boot)}))
	wg.Go(func() {
		for i := range lines {
			logger.Info("tick", "i", i)
		}
	})
	for i := range lines {
		want[fmt.Sprintf("[    0.000000] INFO  tick i=%d", i)]++
	}

	wg.Wait()
	require.NoError(t, m.Close())
	out := <-got

	require.True(t, strings.HasSuffix(out, "\n"))
	gotLines := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		gotLines[l]++
	}
	for l, n := range gotLines {
		if want[l] != n {
			t.Errorf("line %.60q... appears %d times, want %d (interleaved output?)", l, n, want[l])
		}
	}
	assert.Equal(t, len(want), len(gotLines), "distinct lines")
}

func TestMuxRead(t *testing.T) {
	c := mem.NewConsole()
	m := console.NewMux(c, console.MuxOptions{})
	w := m.Writer("shell")
	_, err := w.Write([]byte("$ "))
	require.NoError(t, err)

	_, err = c.Operator().Write([]byte("ls\n"))
	require.NoError(t, err)
	buf := make([]byte, 16)
	n, err := m.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "ls\n", string(buf[:n]))

	// Reading flushed the prompt before waiting for input.
	prompt := make([]byte, 2)
	_, err = io.ReadFull(c.Operator(), prompt)
	require.NoError(t, err)
	assert.Equal(t, "$ ", string(prompt))

	require.NoError(t, c.Operator().Close())
	_, err = m.Read(buf)
	assert.ErrorIs(t, err, io.EOF, "operator hang-up")
	require.NoError(t, m.Close())
}

func TestMuxCloseUnblocksRead(t *testing.T) {
	c := mem.NewConsole()
	m := console.NewMux(c, console.MuxOptions{})
	errc := make(chan error)
	go func() {
		_, err := m.Read(make([]byte, 1))
		errc <- err
	}()
	// Close may run before or during Read; either way Read fails closed.
	require.NoError(t, m.Close())
	assert.ErrorIs(t, <-errc, hal.ErrClosed)
}

func TestMuxClosed(t *testing.T) {
	c := mem.NewConsole()
	m := console.NewMux(c, console.MuxOptions{})
	w := m.Writer("prog")
	_, err := w.Write([]byte("pending"))
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "second Close")

	_, err = w.Write([]byte("x"))
	assert.ErrorIs(t, err, hal.ErrClosed)
	assert.Contains(t, err.Error(), `writer "prog"`)
	_, err = m.Writer("late").Write([]byte("x"))
	assert.ErrorIs(t, err, hal.ErrClosed, "writer made after Close")
	assert.NoError(t, w.Close(), "closing a closed writer")

	out, err := io.ReadAll(c.Operator())
	require.NoError(t, err)
	assert.Equal(t, "pending", string(out), "Close flushed the partial line")
}

func TestMuxConsoleError(t *testing.T) {
	boom := errors.New("uart on fire")
	rec := &recordingConsole{err: boom}
	m := console.NewMux(rec, console.MuxOptions{})
	w := m.Writer("prog")
	n, err := w.Write([]byte("line\n"))
	assert.ErrorIs(t, err, boom)
	assert.Zero(t, n)
	assert.Contains(t, err.Error(), `console: writer "prog": write`)

	_, err = w.Write([]byte("partial"))
	require.NoError(t, err, "nothing reaches the console yet")
	assert.ErrorIs(t, m.Flush(), boom)
}

// recordingConsole records each Write and can fail them all.
type recordingConsole struct {
	mu     sync.Mutex
	writes []string
	err    error
}

func (r *recordingConsole) Read([]byte) (int, error) { return 0, io.EOF }

func (r *recordingConsole) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recordingConsole) Close() error { return nil }

var _ hal.Console = (*recordingConsole)(nil)

func TestHandlerThroughMuxWithManualClock(t *testing.T) {
	c := mem.NewConsole()
	clk := mem.NewClock(boot)
	m := console.NewMux(c, console.MuxOptions{})
	kernel := slog.New(console.NewHandler(m.Writer("klog"), &console.HandlerOptions{Clock: clk, Prefix: "virtio-net"}))
	prog := m.Writer("prog")

	_, err := prog.Write([]byte("starting"))
	require.NoError(t, err)
	clk.Advance(1250 * time.Millisecond)
	kernel.Info("link up", "mtu", 1500)
	_, err = prog.Write([]byte(" server\n"))
	require.NoError(t, err)

	assert.Equal(t, "[    1.250000] INFO  virtio-net: link up mtu=1500\nstarting server\n", muxOutput(t, m, c))
}
