package console

import (
	"bytes"
	"context"
	"encoding"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/sched"
)

// HandlerOptions configures a [Handler]. The zero value logs at Info and
// above with timestamps from the system clock and no prefix.
type HandlerOptions struct {
	// Level is the minimum level logged; nil means slog.LevelInfo.
	Level slog.Leveler

	// Clock supplies the timestamps: each line is stamped with
	// Clock.Monotonic() when it is handled, as seconds since boot. nil
	// means sched.System(), whose Monotonic counts from process start.
	Clock hal.Clock

	// Prefix names the subsystem logging through this handler. When not
	// empty, every message is preceded by Prefix and ": ".
	Prefix string
}

// Handler is a slog.Handler writing records as kernel-log lines:
//
//	[    1.234567] INFO  netstack: link up mtu=1500 peer="10.0.0.1 (gw)"
//
// The bracket holds Clock.Monotonic() in seconds with microseconds (it is
// left out for a record whose Time is zero); then the level padded to five
// columns, the prefix, the message, and the attributes as key=value. Group
// members are written group.key=value. A message, key or value that is
// empty or contains spaces, quotes, '=' or non-printing characters is
// written as a Go string literal, so every record is one line.
//
// Each record is written with a single Write call under a lock shared by
// all handlers derived with WithAttrs and WithGroup, so records never
// interleave on w even if w itself is not safe for concurrent use.
type Handler struct {
	w      io.Writer
	mu     *sync.Mutex
	level  slog.Leveler
	clock  hal.Clock
	prefix string
	attrs  []byte // attributes from WithAttrs, already formatted
	group  string // prefix for keys of later attributes: "g.h." or ""
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler returns a handler writing to w, which is typically a
// hal.Console or a [Writer] of a [Mux]. opts may be nil.
func NewHandler(w io.Writer, opts *HandlerOptions) *Handler {
	h := &Handler{w: w, mu: new(sync.Mutex), level: slog.LevelInfo}
	if opts != nil {
		if opts.Level != nil {
			h.level = opts.Level
		}
		h.clock = opts.Clock
		h.prefix = opts.Prefix
	}
	if h.clock == nil {
		h.clock = sched.System()
	}
	return h
}

// Enabled reports whether level is at least the handler's minimum level.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle formats r as one line and writes it.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 128)
	if !r.Time.IsZero() {
		buf = appendStamp(buf, h.clock.Monotonic())
	}
	buf = appendLevel(buf, r.Level)
	levelEnd := len(buf)
	if h.prefix != "" || r.Message != "" {
		buf = append(buf, ' ')
	}
	if h.prefix != "" {
		buf = append(buf, h.prefix...)
		buf = append(buf, ": "...)
	}
	buf = appendMessage(buf, r.Message)
	buf = append(buf, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		buf = appendAttr(buf, h.group, a)
		return true
	})
	if len(buf) == levelEnd {
		buf = bytes.TrimRight(buf, " ") // level padding with nothing after it
	}
	buf = append(buf, '\n')

	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.w.Write(buf); err != nil {
		return fmt.Errorf("console: write log record: %w", err)
	}
	return nil
}

// WithAttrs returns a handler that adds attrs to every record, inside the
// groups opened so far.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.attrs = h.attrs[:len(h.attrs):len(h.attrs)]
	for _, a := range attrs {
		h2.attrs = appendAttr(h2.attrs, h.group, a)
	}
	return &h2
}

// WithGroup returns a handler that puts the attributes of later records
// and later WithAttrs calls in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

// appendStamp appends "[sssss.uuuuuu] ", the kernel log's time since boot.
func appendStamp(buf []byte, mono time.Duration) []byte {
	mono = max(mono, 0)
	sec := int64(mono / time.Second)
	usec := int64(mono%time.Second) / int64(time.Microsecond)
	return fmt.Appendf(buf, "[%5d.%06d] ", sec, usec)
}

// appendLevel appends the level's name padded to five columns.
func appendLevel(buf []byte, l slog.Level) []byte {
	return fmt.Appendf(buf, "%-5s", l.String())
}

// appendMessage appends the message, quoted only if it would otherwise
// break the line (or be mistaken for something else).
func appendMessage(buf []byte, msg string) []byte {
	for _, r := range msg {
		if r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' {
			return strconv.AppendQuote(buf, msg)
		}
	}
	return append(buf, msg...)
}

// appendAttr appends " key=value" for a, or one such pair per member of a
// group, with keys prefixed by group. Empty attributes and empty groups
// append nothing.
func appendAttr(buf []byte, group string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		members := a.Value.Group()
		if len(members) == 0 {
			return buf
		}
		if a.Key != "" {
			group += a.Key + "."
		}
		for _, m := range members {
			buf = appendAttr(buf, group, m)
		}
		return buf
	}
	buf = append(buf, ' ')
	buf = appendString(buf, group+a.Key)
	buf = append(buf, '=')
	return appendString(buf, valueString(a.Value))
}

// valueString renders a resolved, non-group value.
func valueString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return x.Error()
		case encoding.TextMarshaler:
			b, err := x.MarshalText()
			if err != nil {
				return "!ERROR:" + err.Error()
			}
			return string(b)
		case []byte:
			return string(x)
		default:
			return fmt.Sprint(x)
		}
	default:
		return v.String()
	}
}

// appendString appends s, quoted if it is empty or contains anything that
// would make key=value pairs ambiguous.
func appendString(buf []byte, s string) []byte {
	if needsQuote(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		switch {
		case r == '=' || r == '"' || r == ' ' || r == utf8.RuneError:
			return true
		case !unicode.IsPrint(r):
			return true
		}
	}
	return false
}
