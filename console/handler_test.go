package console_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/console"
	"github.com/anykernel/anykernel/hal/mem"
)

var boot = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// lazy is a LogValuer, to check that values are resolved.
type lazy string

func (l lazy) LogValue() slog.Value { return slog.StringValue("resolved:" + string(l)) }

func TestHandlerFormat(t *testing.T) {
	tests := []struct {
		name  string
		opts  console.HandlerOptions
		at    time.Duration // clock time when logging
		setup func(l *slog.Logger) *slog.Logger
		log   func(l *slog.Logger)
		want  string // "" means nothing written
	}{
		{
			name: "the kernel log line",
			opts: console.HandlerOptions{Prefix: "netstack"},
			at:   1234567 * time.Microsecond,
			log:  func(l *slog.Logger) { l.Info("link up", "mtu", 1500) },
			want: "[    1.234567] INFO  netstack: link up mtu=1500\n",
		},
		{
			name: "time at boot",
			log:  func(l *slog.Logger) { l.Info("hello") },
			want: "[    0.000000] INFO  hello\n",
		},
		{
			name: "sub-microsecond time truncates",
			at:   999*time.Microsecond + 999*time.Nanosecond,
			log:  func(l *slog.Logger) { l.Info("x") },
			want: "[    0.000999] INFO  x\n",
		},
		{
			name: "a long uptime widens the stamp",
			at:   123456*time.Second + 5*time.Microsecond,
			log:  func(l *slog.Logger) { l.Info("x") },
			want: "[123456.000005] INFO  x\n",
		},
		{
			name: "levels are padded to five columns",
			opts: console.HandlerOptions{Level: slog.LevelDebug},
			log: func(l *slog.Logger) {
				l.Debug("d")
				l.Warn("w")
				l.Error("e")
				l.Log(context.Background(), slog.LevelInfo+2, "custom")
			},
			want: "[    0.000000] DEBUG d\n" +
				"[    0.000000] WARN  w\n" +
				"[    0.000000] ERROR e\n" +
				"[    0.000000] INFO+2 custom\n",
		},
		{
			name: "records below the level are dropped",
			opts: console.HandlerOptions{Level: slog.LevelWarn},
			log:  func(l *slog.Logger) { l.Info("quiet"); l.Debug("quieter") },
		},
		{
			name: "values that need quoting",
			log: func(l *slog.Logger) {
				l.Info("q", "empty", "", "space", "a b", "eq", "a=b", "quote", `say "hi"`,
					"newline", "two\nlines", "plain", "ok/ok:ok", "unicode", "grüße")
			},
			want: `[    0.000000] INFO  q empty="" space="a b" eq="a=b" quote="say \"hi\"" newline="two\nlines" plain=ok/ok:ok unicode=grüße` + "\n",
		},
		{
			name: "keys that need quoting",
			log:  func(l *slog.Logger) { l.Info("k", "has space", 1, "", 2) },
			want: `[    0.000000] INFO  k "has space"=1 ""=2` + "\n",
		},
		{
			name: "message with a newline stays on one line",
			log:  func(l *slog.Logger) { l.Info("panic:\nstack") },
			want: `[    0.000000] INFO  "panic:\nstack"` + "\n",
		},
		{
			name: "message with spaces is not quoted",
			log:  func(l *slog.Logger) { l.Info("disk is full, retrying") },
			want: "[    0.000000] INFO  disk is full, retrying\n",
		},
		{
			name: "no message",
			log:  func(l *slog.Logger) { l.Info(""); l.Info("", "k", "v") },
			want: "[    0.000000] INFO\n[    0.000000] INFO  k=v\n",
		},
		{
			name: "value kinds",
			log: func(l *slog.Logger) {
				l.Info("kinds",
					"bool", true, "int", -3, "uint", uint64(7), "float", 2.5,
					"dur", 1500*time.Millisecond, "time", boot,
					"err", errors.New("boom: bad"), "addr", netip.MustParseAddr("10.0.0.1"),
					"bytes", []byte("raw"), "lazy", lazy("v"), "nil", nil)
			},
			want: "[    0.000000] INFO  kinds bool=true int=-3 uint=7 float=2.5 dur=1.5s time=2026-05-06T07:08:09Z " +
				`err="boom: bad" addr=10.0.0.1 bytes=raw lazy=resolved:v nil=<nil>` + "\n",
		},
		{
			name: "groups",
			log: func(l *slog.Logger) {
				l.Info("g", slog.Group("link", "mtu", 1500, slog.Group("mac", "hi", 1)), "after", 2)
			},
			want: "[    0.000000] INFO  g link.mtu=1500 link.mac.hi=1 after=2\n",
		},
		{
			name: "empty groups and empty attrs vanish; empty group keys inline",
			log: func(l *slog.Logger) {
				l.Info("g", slog.Group("none"), slog.Attr{}, slog.Group("", "inl", 1))
			},
			want: "[    0.000000] INFO  g inl=1\n",
		},
		{
			name: "WithAttrs and WithGroup",
			opts: console.HandlerOptions{Prefix: "blk"},
			setup: func(l *slog.Logger) *slog.Logger {
				return l.With("dev", "vda").WithGroup("io").With("op", "read").WithGroup("r")
			},
			log: func(l *slog.Logger) { l.Warn("slow", "ms", 250); l.Info("plain") },
			want: "[    0.000000] WARN  blk: slow dev=vda io.op=read io.r.ms=250\n" +
				"[    0.000000] INFO  blk: plain dev=vda io.op=read\n",
		},
		{
			name: "a group with nothing in it leaves no trace",
			setup: func(l *slog.Logger) *slog.Logger {
				return l.WithGroup("empty")
			},
			log:  func(l *slog.Logger) { l.Info("m") },
			want: "[    0.000000] INFO  m\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := mem.NewClock(boot)
			clk.Advance(tt.at)
			var out bytes.Buffer
			opts := tt.opts
			opts.Clock = clk
			l := slog.New(console.NewHandler(&out, &opts))
			if tt.setup != nil {
				l = tt.setup(l)
			}
			tt.log(l)
			assert.Equal(t, tt.want, out.String())
		})
	}
}

func TestHandlerTimestampsFollowTheClock(t *testing.T) {
	clk := mem.NewClock(boot)
	var out bytes.Buffer
	l := slog.New(console.NewHandler(&out, &console.HandlerOptions{Clock: clk}))
	l.Info("a")
	clk.Advance(2500 * time.Millisecond)
	l.Info("b")
	clk.AfterFunc(time.Second, func() { l.Info("from a timer") })
	clk.Advance(time.Minute)
	assert.Equal(t, "[    0.000000] INFO  a\n[    2.500000] INFO  b\n[    3.500000] INFO  from a timer\n", out.String())
}

func TestHandlerZeroTimeHasNoStamp(t *testing.T) {
	var out bytes.Buffer
	h := console.NewHandler(&out, &console.HandlerOptions{Clock: mem.NewClock(boot)})
	require.NoError(t, h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelError, "no time", 0)))
	assert.Equal(t, "ERROR no time\n", out.String())
}

func TestHandlerNilOptions(t *testing.T) {
	var out bytes.Buffer
	l := slog.New(console.NewHandler(&out, nil))
	l.Debug("hidden")
	l.Info("shown")
	// The stamp comes from the system clock, so only its shape is fixed.
	line := out.String()
	require.True(t, strings.HasPrefix(line, "["), "line %q", line)
	i := strings.Index(line, "] ")
	require.Positive(t, i, "line %q", line)
	_, err := strconv.ParseFloat(strings.TrimSpace(line[1:i]), 64)
	require.NoError(t, err, "stamp in %q", line)
	assert.Equal(t, "INFO  shown\n", line[i+2:])
}

func TestHandlerWriteError(t *testing.T) {
	c := mem.NewConsole()
	require.NoError(t, c.Close())
	h := console.NewHandler(c, &console.HandlerOptions{Clock: mem.NewClock(boot)})
	err := h.Handle(context.Background(), slog.NewRecord(boot, slog.LevelInfo, "m", 0))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "console: write log record")
}

func TestHandlerSlogtest(t *testing.T) {
	var out bytes.Buffer
	slogtest.Run(t,
		func(t *testing.T) slog.Handler {
			out.Reset()
			return console.NewHandler(&out, &console.HandlerOptions{Clock: mem.NewClock(boot)})
		},
		func(t *testing.T) map[string]any {
			return parseLine(t, out.String())
		})
}

// parseLine turns one handler line back into the map slogtest wants:
// time, level and msg, and attributes nested by their dotted keys.
func parseLine(t *testing.T, line string) map[string]any {
	t.Helper()
	line, ok := strings.CutSuffix(line, "\n")
	require.True(t, ok, "line %q lacks its newline", line)
	require.NotContains(t, line, "\n", "one record, one line")
	m := map[string]any{}
	if rest, ok := strings.CutPrefix(line, "["); ok {
		stamp, after, ok := strings.Cut(rest, "] ")
		require.True(t, ok, "unterminated stamp in %q", line)
		m[slog.TimeKey] = strings.TrimSpace(stamp)
		line = after
	}
	level, rest, _ := strings.Cut(line, " ")
	m[slog.LevelKey] = level
	var msg []string
	for _, tok := range tokenize(t, strings.TrimLeft(rest, " ")) {
		key, val, isAttr := splitAttr(t, tok)
		if !isAttr {
			msg = append(msg, tok)
			continue
		}
		dst := m
		parts := strings.Split(key, ".")
		for _, g := range parts[:len(parts)-1] {
			sub, ok := dst[g].(map[string]any)
			if !ok {
				sub = map[string]any{}
				dst[g] = sub
			}
			dst = sub
		}
		dst[parts[len(parts)-1]] = val
	}
	m[slog.MessageKey] = strings.Join(msg, " ")
	return m
}

// tokenize splits on spaces outside Go string literals.
func tokenize(t *testing.T, s string) []string {
	var toks []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			if cur.Len() > 0 {
				toks = append(toks, cur.String())
				cur.Reset()
			}
		case c == '"':
			q, err := strconv.QuotedPrefix(s[i:])
			require.NoError(t, err, "bad quoting in %q", s)
			cur.WriteString(q)
			i += len(q) - 1
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		toks = append(toks, cur.String())
	}
	return toks
}

// splitAttr splits key=value, unquoting either side.
func splitAttr(t *testing.T, tok string) (key, val string, ok bool) {
	unq := func(s string) string {
		if strings.HasPrefix(s, `"`) {
			u, err := strconv.Unquote(s)
			require.NoError(t, err)
			return u
		}
		return s
	}
	if strings.HasPrefix(tok, `"`) {
		q, err := strconv.QuotedPrefix(tok)
		require.NoError(t, err)
		rest, ok := strings.CutPrefix(tok[len(q):], "=")
		if !ok {
			return "", "", false
		}
		return unq(q), unq(rest), true
	}
	key, val, ok = strings.Cut(tok, "=")
	if !ok {
		return "", "", false
	}
	return key, unq(val), true
}

func BenchmarkHandler(b *testing.B) {
	h := console.NewHandler(io.Discard, &console.HandlerOptions{Clock: mem.NewClock(boot), Prefix: "netstack"})
	l := slog.New(h).With("if", "eth0")
	b.ReportAllocs()
	for b.Loop() {
		l.Info("segment retransmitted", "seq", 123456789, "rto", 200*time.Millisecond, "peer", "10.0.0.2:443")
	}
}
