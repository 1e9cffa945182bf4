//go:build !linux

package host

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/anykernel/anykernel/hal"
)

// The host devices exist on Linux only. Elsewhere the types keep the same
// method sets so programs still compile, and everything fails with an error
// wrapping errors.ErrUnsupported.

func unsupported(what string) error {
	return fmt.Errorf("host: %s on %s: %w", what, runtime.GOOS, errors.ErrUnsupported)
}

// TAP is a Linux TAP interface; unavailable on this system.
type TAP struct{}

// OpenTAP fails with errors.ErrUnsupported on this system.
func OpenTAP(name string, opts TAPOptions) (*TAP, error) { return nil, unsupported("TAP") }

func (t *TAP) Name() string                                { return "" }
func (t *TAP) MTU() int                                    { return hal.DefaultMTU }
func (t *TAP) MAC() hal.MAC                                { return hal.MAC{} }
func (t *TAP) Close() error                                { return nil }
func (t *TAP) ReadFrame(p []byte) (int, error)             { return 0, unsupported("TAP") }
func (t *TAP) WriteFrame(p []byte) error                   { return unsupported("TAP") }
func (t *TAP) ReadFrames(b [][]byte, s []int) (int, error) { return 0, unsupported("TAP") }
func (t *TAP) WriteFrames(f [][]byte) (int, error)         { return 0, unsupported("TAP") }
func (t *TAP) SupportedOffload() hal.Offload               { return 0 }
func (t *TAP) SetOffload(want hal.Offload) (hal.Offload, error) {
	return 0, unsupported("TAP")
}
func (t *TAP) ReadFrameHdr(p []byte) (int, hal.NetHdr, error) {
	return 0, hal.NetHdr{}, unsupported("TAP")
}
func (t *TAP) WriteFrameHdr(h *hal.NetHdr, p []byte) error { return unsupported("TAP") }

// File is a host block device; unavailable on this system.
type File struct{}

// OpenFile fails with errors.ErrUnsupported on this system.
func OpenFile(path string, opts FileOptions) (*File, error) { return nil, unsupported("block device") }

func (d *File) ReadAt(p []byte, off int64) (int, error)     { return 0, unsupported("block device") }
func (d *File) WriteAt(p []byte, off int64) (int, error)    { return 0, unsupported("block device") }
func (d *File) WriteAtFUA(p []byte, off int64) (int, error) { return 0, unsupported("block device") }
func (d *File) SectorSize() int                             { return 512 }
func (d *File) Size() int64                                 { return 0 }
func (d *File) Sync() error                                 { return unsupported("block device") }
func (d *File) Discard(off, length int64) error             { return unsupported("block device") }
func (d *File) ReadOnly() bool                              { return true }
func (d *File) Path() string                                { return "" }
func (d *File) Close() error                                { return nil }

// Console is a host terminal or file pair; unavailable on this system.
type Console struct{}

// OpenConsole fails with errors.ErrUnsupported on this system.
func OpenConsole(in, out *os.File, opts ConsoleOptions) (*Console, error) {
	return nil, unsupported("console")
}

// Stdio fails with errors.ErrUnsupported on this system.
func Stdio() (*Console, error) { return nil, unsupported("console") }

func (c *Console) Read(p []byte) (int, error)  { return 0, unsupported("console") }
func (c *Console) Write(p []byte) (int, error) { return 0, unsupported("console") }
func (c *Console) WindowSize() (int, int, error) {
	return 0, 0, unsupported("console")
}
func (c *Console) SetRaw(raw bool) error { return unsupported("console") }
func (c *Console) Close() error          { return nil }

// Entropy is the host's random number generator; unavailable on this
// system (use crypto/rand).
type Entropy struct{}

// NewEntropy returns a source whose reads fail with errors.ErrUnsupported.
func NewEntropy() *Entropy { return &Entropy{} }

func (e *Entropy) Read(p []byte) (int, error) { return 0, unsupported("getrandom") }
