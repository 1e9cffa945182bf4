package hal

// Console is a bidirectional byte stream to an operator: a serial port, a
// terminal, a virtio console port or an in-memory buffer.
//
// Read blocks until at least one byte is available and returns what is
// available, up to len(p) (io.Reader). Read returns io.EOF when the operator
// side has closed its end (if the device can tell), and an error wrapping
// [ErrClosed] after Close, which also unblocks a pending Read.
//
// Write writes all of p or returns an error (io.Writer); it may block while
// the device drains. Bytes are passed through unchanged: the console does no
// line-ending translation of its own (a terminal in cooked mode may).
//
// Read and Write may be called concurrently with each other. Concurrent
// Writes are each atomic with respect to one another only if len(p) is at
// most 512 bytes; package console provides multiplexing for larger or
// line-structured output.
type Console interface {
	Read(p []byte) (n int, err error)
	Write(p []byte) (n int, err error)
	// Close releases the console; calling it again returns nil.
	Close() error
}

// ConsoleSizer is a Console that knows the operator's window size.
type ConsoleSizer interface {
	Console
	// WindowSize returns the window size in character cells.
	WindowSize() (cols, rows int, err error)
}

// RawConsole is a Console whose line discipline can be switched off, so
// every keystroke reaches Read at once, unechoed and untranslated.
type RawConsole interface {
	Console
	// SetRaw switches raw mode on or off. Close restores the mode the console
	// had when it was opened.
	SetRaw(raw bool) error
}
