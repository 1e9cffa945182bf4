package hal

import "fmt"

// BlockDevice is a random-access storage device addressed in bytes but
// transferring whole sectors.
//
// ReadAt and WriteAt follow io.ReaderAt and io.WriterAt with stricter rules:
//
//   - off and len(p) must be multiples of SectorSize(), else the call returns
//     0 and an error wrapping [ErrMisaligned];
//   - the range [off, off+len(p)) must lie within [0, Size()), else the call
//     returns 0 and an error wrapping [ErrOutOfRange] and transfers nothing
//     (a block device never returns a short count with io.EOF);
//   - a zero-length call with an aligned off in [0, Size()] returns 0, nil;
//   - otherwise n < len(p) only together with a non-nil error (an I/O error),
//     in which case the contents of the sectors in the range are unspecified:
//     each sector holds either its old or its new contents if written.
//
// Neither call retains p. All methods are safe for concurrent use; calls on
// disjoint ranges do not interfere, and the outcome of concurrent writes to
// the same sector is one of the writes, sector by sector.
//
// Durability: a completed WriteAt may sit in a volatile cache. Sync is the
// barrier: when Sync returns nil, every write that completed before Sync was
// called is durable (survives a power cut). Writes not yet covered by a
// successful Sync may be lost, and after a power cut each such sector holds
// its old or its new contents, in any combination. A device without a
// volatile cache still implements Sync (as a no-op); a device that cannot
// guarantee durability must not claim to implement BlockDevice.
type BlockDevice interface {
	ReadAt(p []byte, off int64) (n int, err error)
	WriteAt(p []byte, off int64) (n int, err error)

	// SectorSize returns the transfer unit in bytes: a power of two, at least
	// 512. It does not change during the device's life.
	SectorSize() int

	// Size returns the capacity in bytes, a multiple of SectorSize. It does
	// not change during the device's life.
	Size() int64

	// Sync makes every write completed before the call durable (see above).
	// It returns an error if that could not be guaranteed; the caller must
	// then assume those writes may be lost.
	Sync() error

	// Close releases the device. It does not imply Sync. Afterwards every
	// method but Close, SectorSize and Size returns an error wrapping
	// [ErrClosed]. Calling Close again returns nil.
	Close() error
}

// Discarder is a BlockDevice that can be told a range no longer holds data
// (TRIM/UNMAP/virtio-blk DISCARD). After Discard the range reads as either
// its old contents or zeros; callers must not rely on either.
type Discarder interface {
	BlockDevice
	// Discard follows ReadAt's rules for alignment and range. A decorator
	// whose inner device cannot discard returns an error wrapping
	// errors.ErrUnsupported: callers must expect it.
	Discard(off, length int64) error
}

// FUAWriter is a BlockDevice that can write with Force Unit Access: when
// WriteAtFUA returns, the written sectors are durable, without making other
// writes durable as Sync would.
type FUAWriter interface {
	BlockDevice
	WriteAtFUA(p []byte, off int64) (n int, err error)
}

// ReadOnlyDevice is a BlockDevice that can report it refuses writes. A
// read-only device's WriteAt returns an error wrapping [ErrReadOnly].
type ReadOnlyDevice interface {
	BlockDevice
	ReadOnly() bool
}

// IsReadOnly reports whether d says it is read-only.
func IsReadOnly(d BlockDevice) bool {
	r, ok := d.(ReadOnlyDevice)
	return ok && r.ReadOnly()
}

// CheckRange checks off and length against d's sector size and capacity as
// the BlockDevice contract requires, returning an error wrapping
// [ErrMisaligned] or [ErrOutOfRange]. Backends call it first in ReadAt and
// WriteAt; op names the operation in the error ("read", "write").
func CheckRange(d BlockDevice, op string, off, length int64) error {
	ss := int64(d.SectorSize())
	if off%ss != 0 || length%ss != 0 {
		return fmt.Errorf("%s %d bytes at %d (sector size %d): %w", op, length, off, ss, ErrMisaligned)
	}
	if off < 0 || length < 0 || off > d.Size() || length > d.Size()-off {
		return fmt.Errorf("%s %d bytes at %d (device size %d): %w", op, length, off, d.Size(), ErrOutOfRange)
	}
	return nil
}
