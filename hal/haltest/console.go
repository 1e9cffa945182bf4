package haltest

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// TestConsole checks the hal.Console contract. makeConsole returns the
// console under test and the operator's end: bytes written to c must be read
// from operator unchanged, and bytes written to operator must be read from c.
// The console must pass bytes through untranslated (a terminal must be in
// raw mode). The suite closes c.
func TestConsole(t *testing.T, makeConsole func(t *testing.T) (c hal.Console, operator io.ReadWriter)) {
	t.Helper()
	run := func(name string, f func(t *testing.T, c hal.Console, op io.ReadWriter)) {
		t.Run(name, func(t *testing.T) {
			c, op := makeConsole(t)
			defer c.Close()
			f(t, c, op)
		})
	}
	run("Output", testConsoleOutput)
	run("Input", testConsoleInput)
	run("Binary", testConsoleBinary)
	run("ConcurrentWrites", testConsoleConcurrentWrites)
	run("CloseUnblocksRead", testConsoleCloseUnblocksRead)
	run("UseAfterClose", testConsoleUseAfterClose)
}

// readFull reads exactly n bytes from r, failing on a hang.
func readFull(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		ch <- res{b, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("reading %d bytes: %v", n, r.err)
		}
		return r.b
	case <-time.After(hangTimeout):
		t.Fatalf("reading %d bytes hung for %v", n, hangTimeout)
	}
	return nil
}

func writeAll(t *testing.T, w io.Writer, p []byte) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		n, err := w.Write(p)
		if err == nil && n != len(p) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Write(%d bytes): %v", len(p), err)
		}
	case <-time.After(hangTimeout):
		t.Fatalf("Write(%d bytes) hung", len(p))
	}
}

func testConsoleOutput(t *testing.T, c hal.Console, op io.ReadWriter) {
	msg := []byte("hello, operator\n")
	writeAll(t, c, msg)
	if got := readFull(t, op, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("operator read %q, want %q", got, msg)
	}
}

func testConsoleInput(t *testing.T, c hal.Console, op io.ReadWriter) {
	msg := []byte("typed input\n")
	writeAll(t, op, msg)
	if got := readFull(t, c, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("console read %q, want %q", got, msg)
	}
}

func testConsoleBinary(t *testing.T, c hal.Console, op io.ReadWriter) {
	// Printable bytes plus tab and newline: what a raw terminal passes
	// unchanged in both directions; 4 KiB crosses any small internal buffer.
	msg := make([]byte, 4096)
	for i := range msg {
		switch i % 67 {
		case 65:
			msg[i] = '\n'
		case 66:
			msg[i] = '\t'
		default:
			msg[i] = byte(' ' + i%95)
		}
	}
	go func() { c.Write(msg) }()
	if got := readFull(t, op, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("4 KiB of output altered on the way to the operator")
	}
	go func() { op.Write(msg) }()
	if got := readFull(t, c, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("4 KiB of input altered on the way to the console")
	}
}

func testConsoleConcurrentWrites(t *testing.T, c hal.Console, op io.ReadWriter) {
	// Writes of at most 512 bytes are atomic with respect to each other.
	const writers, per, size = 4, 20, 64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := bytes.Repeat([]byte{byte('a' + w)}, size-1)
			line = append(line, '\n')
			for range per {
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}()
	}
	got := readFull(t, op, writers*per*size)
	wg.Wait()
	counts := make(map[byte]int)
	for i := 0; i < len(got); i += size {
		chunk := got[i : i+size]
		if chunk[size-1] != '\n' || bytes.Count(chunk, chunk[:1]) != size-1 {
			t.Fatalf("write %d interleaved with another: %q", i/size, chunk)
		}
		counts[chunk[0]]++
	}
	for w := range writers {
		if counts[byte('a'+w)] != per {
			t.Fatalf("writer %d: %d writes arrived, want %d", w, counts[byte('a'+w)], per)
		}
	}
}

func testConsoleCloseUnblocksRead(t *testing.T, c hal.Console, op io.ReadWriter) {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Read block; correctness does not depend on it
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("Read interrupted by Close = %v, want hal.ErrClosed", err)
		}
	case <-time.After(hangTimeout):
		t.Fatalf("Close did not unblock Read within %v", hangTimeout)
	}
}

func testConsoleUseAfterClose(t *testing.T, c hal.Console, op io.ReadWriter) {
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("Write after Close = %v, want hal.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("Read after Close = %v, want hal.ErrClosed", err)
	}
}
