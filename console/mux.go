package console

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/anykernel/anykernel/hal"
)

// DefaultMaxLine is the partial-line limit of a [Mux] whose options leave
// MaxLine zero.
const DefaultMaxLine = 4096

// MuxOptions configures a [Mux]. The zero value holds back partial lines of
// up to DefaultMaxLine bytes and writes lines unlabelled.
type MuxOptions struct {
	// MaxLine is the most bytes of an unfinished line a Writer holds back.
	// When a partial line reaches it, the Writer writes it out as if
	// flushed and keeps going. Zero means DefaultMaxLine.
	MaxLine int

	// Label starts every line with the name of the Writer it came from and
	// ": " (for writers with a non-empty name).
	Label bool
}

// Mux shares one console among several output streams and one input
// consumer. Output goes through Writers from [Mux.Writer]; each writes only
// whole lines to the console, with one console Write per Writer Write, so
// lines from different streams never mix.
//
// A Writer's unfinished line stays in its buffer until the newline comes,
// or until Flush, Close, [Mux.Flush], [Mux.Read] or the MaxLine limit
// sends it out anyway. Such a partial line leaves the console cursor in mid
// line: if the same Writer writes next, its text continues that line; if
// another Writer does, the Mux first ends the line with "\n".
//
// The Mux owns the console: Close closes it. All methods are safe for
// concurrent use.
type Mux struct {
	c       hal.Console
	maxLine int
	label   bool

	out     sync.Mutex // serialises console writes and guards the cursor
	last    *Writer    // the Writer that wrote the console's current line
	midLine bool       // the console's current line is unfinished

	reg     sync.Mutex // guards writers and closed
	writers map[*Writer]struct{}
	closed  bool
}

// NewMux returns a multiplexer over c.
func NewMux(c hal.Console, opts MuxOptions) *Mux {
	m := &Mux{c: c, maxLine: opts.MaxLine, label: opts.Label, writers: make(map[*Writer]struct{})}
	if m.maxLine <= 0 {
		m.maxLine = DefaultMaxLine
	}
	return m
}

// Writer returns a new output stream named name. The name labels its lines
// when MuxOptions.Label is set and appears in its errors. A Writer is safe
// for concurrent use, but text written by several goroutines through the
// same Writer interleaves at the granularity of their Write calls; give
// each concurrent producer of partial lines its own Writer.
//
// After the Mux is closed, the returned Writer fails every Write.
func (m *Mux) Writer(name string) *Writer {
	w := &Writer{m: m, name: name}
	m.reg.Lock()
	defer m.reg.Unlock()
	if m.closed {
		w.closed = true
	} else {
		m.writers[w] = struct{}{}
	}
	return w
}

// Read reads operator input from the console, after flushing every
// Writer's partial line so that a prompt is visible before the program
// waits for the answer. Input is meant for one consumer: concurrent Reads
// each get some of the bytes, in no particular split.
func (m *Mux) Read(p []byte) (int, error) {
	if err := m.Flush(); err != nil {
		return 0, err
	}
	n, err := m.c.Read(p)
	if err != nil {
		return n, fmt.Errorf("console: read: %w", err)
	}
	return n, nil
}

// Flush writes out every Writer's partial line. It returns the first error.
func (m *Mux) Flush() error {
	var first error
	for _, w := range m.snapshot() {
		if err := w.Flush(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close closes every Writer, writing out their partial lines, then closes
// the console. Calling it again returns nil.
func (m *Mux) Close() error {
	m.reg.Lock()
	if m.closed {
		m.reg.Unlock()
		return nil
	}
	m.closed = true
	m.reg.Unlock()

	var first error
	for _, w := range m.snapshot() {
		if err := w.Close(); err != nil && first == nil {
			first = err
		}
	}
	if err := m.c.Close(); err != nil && first == nil {
		first = fmt.Errorf("console: close: %w", err)
	}
	return first
}

func (m *Mux) snapshot() []*Writer {
	m.reg.Lock()
	defer m.reg.Unlock()
	ws := make([]*Writer, 0, len(m.writers))
	for w := range m.writers {
		ws = append(ws, w)
	}
	return ws
}

func (m *Mux) unregister(w *Writer) {
	m.reg.Lock()
	defer m.reg.Unlock()
	delete(m.writers, w)
}

// emit writes text from w to the console in one Write, ending another
// Writer's unfinished line first and adding labels at line starts.
func (m *Mux) emit(w *Writer, text []byte) error {
	if len(text) == 0 {
		return nil
	}
	m.out.Lock()
	defer m.out.Unlock()
	continuing := m.midLine && m.last == w
	var out []byte
	if m.midLine && !continuing {
		out = append(out, '\n')
	}
	if m.label && w.name != "" {
		lineStart := !continuing
		for len(text) > 0 {
			if lineStart {
				out = append(out, w.name...)
				out = append(out, ": "...)
			}
			i := bytes.IndexByte(text, '\n') + 1
			if i == 0 {
				i = len(text)
			}
			out = append(out, text[:i]...)
			text = text[i:]
			lineStart = true
		}
	} else {
		out = append(out, text...)
	}
	m.last = w
	m.midLine = out[len(out)-1] != '\n'
	if _, err := m.c.Write(out); err != nil {
		return fmt.Errorf("console: %s: write: %w", w.displayName(), err)
	}
	return nil
}

// Writer is one output stream of a [Mux]: an io.WriteCloser that passes
// whole lines to the console and holds back the unfinished one.
type Writer struct {
	m    *Mux
	name string

	mu     sync.Mutex
	buf    []byte // the unfinished line
	closed bool
}

// Write buffers p and writes out every line it completes. It returns
// len(p) unless the console write fails; the failed text is dropped.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, fmt.Errorf("console: %s: write: %w", w.displayName(), hal.ErrClosed)
	}
	w.buf = append(w.buf, p...)
	cut := bytes.LastIndexByte(w.buf, '\n') + 1
	// A partial line at the limit goes out too, cut at a multiple of the
	// limit so a long line leaves in pieces of MaxLine bytes.
	if rest := len(w.buf) - cut; rest >= w.m.maxLine {
		cut += rest - rest%w.m.maxLine
	}
	if cut == 0 {
		return len(p), nil
	}
	err := w.m.emit(w, w.buf[:cut])
	w.buf = append(w.buf[:0], w.buf[cut:]...)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out the unfinished line, without ending it.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

// Close flushes the unfinished line and detaches the Writer from its Mux;
// later Writes fail with an error wrapping hal.ErrClosed. Calling it again
// returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	err := w.flushLocked()
	w.closed = true
	w.m.unregister(w)
	return err
}

func (w *Writer) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.m.emit(w, w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *Writer) displayName() string {
	if w.name == "" {
		return "writer"
	}
	return fmt.Sprintf("writer %q", w.name)
}
