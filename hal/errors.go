package hal

import "errors"

// Sentinel errors. Backends wrap them with context
// (fmt.Errorf("tap0: write: %w", hal.ErrClosed)); callers test with errors.Is.
var (
	// ErrClosed is returned by every operation on a device after Close has
	// been called, and by operations that Close interrupted.
	ErrClosed = errors.New("hal: device closed")

	// ErrOutOfRange is returned by a block device when an I/O range does not
	// lie entirely within the device.
	ErrOutOfRange = errors.New("hal: offset out of range")

	// ErrMisaligned is returned by a block device when an offset or length is
	// not a multiple of its sector size.
	ErrMisaligned = errors.New("hal: offset or length not sector aligned")

	// ErrFrameSize is returned by a NIC for a frame shorter than an Ethernet
	// header or longer than the largest frame the device accepts.
	ErrFrameSize = errors.New("hal: frame size out of bounds")

	// ErrReadOnly is returned by writes, discards and similar operations on a
	// device that was opened, or is by nature, read-only.
	ErrReadOnly = errors.New("hal: device is read-only")

	// ErrIO is wrapped by errors a device reports for a failed transfer
	// (a medium error, a virtio-blk IOERR status): the request reached the
	// device and the device said it failed.
	ErrIO = errors.New("hal: device I/O error")

	// ErrTimeout is returned by operations that gave up waiting for a device
	// that did not answer in time (for example a stalled virtio queue).
	ErrTimeout = errors.New("hal: device timed out")
)
