package host

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/hal"
)

// File is a regular image file or a block device used as a hal.BlockDevice.
//
// Reads and writes are pread/pwrite on one file descriptor and may run
// concurrently. Sync is fdatasync on a file and fsync on a block device.
// File also implements hal.Discarder (hole punching on a file, BLKDISCARD on
// a block device; where the host cannot discard, Discard does nothing, which
// the contract allows), hal.FUAWriter (pwritev2 with RWF_DSYNC, or a write
// followed by fdatasync on kernels without it) and hal.ReadOnlyDevice.
//
// Size and sector size are fixed when the device is opened; a file that
// another process truncates afterwards reads short, which File reports as an
// I/O error.
type File struct {
	f        *os.File
	rc       syscall.RawConn
	path     string
	size     int64
	sector   int
	ro       bool
	blockdev bool
	direct   bool
	memAlign int // required buffer address alignment with O_DIRECT

	noDSync atomic.Bool // pwritev2 RWF_DSYNC unavailable: write + fdatasync
	closed  atomic.Bool
	once    sync.Once
	cerr    error
}

var (
	_ hal.BlockDevice    = (*File)(nil)
	_ hal.Discarder      = (*File)(nil)
	_ hal.FUAWriter      = (*File)(nil)
	_ hal.ReadOnlyDevice = (*File)(nil)
)

// bounceSize is the largest chunk copied through an aligned buffer when an
// O_DIRECT caller's buffer is not aligned in memory.
const bounceSize = 1 << 20

// OpenFile opens the regular file or block device at path. See
// [FileOptions] for the choices; errors from the open itself are
// *fs.PathError.
func OpenFile(path string, opts FileOptions) (*File, error) {
	fail := func(err error) (*File, error) {
		return nil, &fs.PathError{Op: "host: open block device", Path: path, Err: err}
	}
	if opts.SectorSize != 0 && (opts.SectorSize < 512 || opts.SectorSize&(opts.SectorSize-1) != 0) {
		return fail(fmt.Errorf("sector size %d is not a power of two >= 512", opts.SectorSize))
	}
	if opts.Create > 0 && opts.ReadOnly {
		return fail(errors.New("Create and ReadOnly cannot be combined"))
	}
	flags := os.O_RDWR
	if opts.ReadOnly {
		flags = os.O_RDONLY
	}
	if opts.Direct {
		flags |= unix.O_DIRECT
	}

	var f *os.File
	var err error
	if opts.Create > 0 {
		f, err = os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			if err := f.Truncate(opts.Create); err != nil {
				f.Close()
				os.Remove(path)
				return fail(err)
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	if f == nil {
		if f, err = os.OpenFile(path, flags, 0); err != nil {
			return nil, err
		}
	}
	d, err := newFile(f, path, opts)
	if err != nil {
		f.Close()
		return fail(err)
	}
	return d, nil
}

func newFile(f *os.File, path string, opts FileOptions) (*File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	d := &File{f: f, rc: rc, path: path, ro: opts.ReadOnly, direct: opts.Direct, memAlign: os.Getpagesize()}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var size int64
	minSector := 512
	switch {
	case fi.Mode().IsRegular():
		size = fi.Size()
	case fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0:
		d.blockdev = true
		var ierr error
		var lss int
		var bytes uint64
		if err := rc.Control(func(fd uintptr) {
			if lss, ierr = unix.IoctlGetInt(int(fd), unix.BLKSSZGET); ierr != nil {
				ierr = fmt.Errorf("BLKSSZGET: %w", ierr)
				return
			}
			if bytes, ierr = unix.IoctlGetUint64(int(fd), unix.BLKGETSIZE64); ierr != nil {
				ierr = fmt.Errorf("BLKGETSIZE64: %w", ierr)
			}
		}); err != nil {
			return nil, err
		}
		if ierr != nil {
			return nil, ierr
		}
		if lss < 512 || lss&(lss-1) != 0 {
			return nil, fmt.Errorf("device reports logical sector size %d", lss)
		}
		minSector = lss
		size = int64(bytes)
	default:
		return nil, fmt.Errorf("%v is neither a regular file nor a block device", fi.Mode().Type())
	}

	if opts.Direct {
		// Linux 6.1+ reports the alignment O_DIRECT needs (STATX_DIOALIGN).
		var stx unix.Statx_t
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.Statx(int(fd), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx)
		}); err == nil && serr == nil && stx.Mask&unix.STATX_DIOALIGN != 0 {
			if stx.Dio_offset_align == 0 {
				return nil, errors.New("file system does not support O_DIRECT on this file")
			}
			if int(stx.Dio_offset_align) > minSector && !d.blockdev {
				minSector = int(stx.Dio_offset_align)
			}
			if int(stx.Dio_mem_align) > d.memAlign {
				d.memAlign = int(stx.Dio_mem_align)
			}
		}
	}

	d.sector = opts.SectorSize
	if d.sector == 0 {
		d.sector = minSector
	}
	if d.sector%minSector != 0 {
		return nil, fmt.Errorf("sector size %d is not a multiple of the required %d", d.sector, minSector)
	}
	d.size = size - size%int64(d.sector)
	return d, nil
}

// SectorSize returns the sector size chosen at open.
func (d *File) SectorSize() int { return d.sector }

// Size returns the capacity at open, rounded down to whole sectors.
func (d *File) Size() int64 { return d.size }

// ReadOnly reports whether the device was opened read-only.
func (d *File) ReadOnly() bool { return d.ro }

// Path returns the path the device was opened with.
func (d *File) Path() string { return d.path }

func (d *File) err(op string, off int64, err error) error {
	if d.closed.Load() || errors.Is(err, os.ErrClosed) {
		err = hal.ErrClosed
	}
	return fmt.Errorf("host: %s: %s at %d: %w", d.path, op, off, err)
}

// check applies the hal.BlockDevice preconditions common to all I/O.
func (d *File) check(op string, off int64, n int, write bool) error {
	if d.closed.Load() {
		return d.err(op, off, hal.ErrClosed)
	}
	if write && d.ro {
		return d.err(op, off, hal.ErrReadOnly)
	}
	if err := hal.CheckRange(d, op, off, int64(n)); err != nil {
		return fmt.Errorf("host: %s: %w", d.path, err)
	}
	return nil
}

// aligned reports whether p may be handed to the kernel with O_DIRECT.
func (d *File) aligned(p []byte) bool {
	return !d.direct || uintptr(unsafe.Pointer(unsafe.SliceData(p)))%uintptr(d.memAlign) == 0
}

// bounce returns a buffer of n bytes aligned to d.memAlign.
func (d *File) bounce(n int) []byte {
	b := make([]byte, n+d.memAlign)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % uintptr(d.memAlign)); r != 0 {
		skip = d.memAlign - r
	}
	return b[skip : skip+n : skip+n]
}

// ReadAt reads whole sectors; see hal.BlockDevice.
func (d *File) ReadAt(p []byte, off int64) (int, error) {
	if err := d.check("read", off, len(p), false); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if d.aligned(p) {
		return d.readAt(p, off)
	}
	buf := d.bounce(min(len(p), bounceSize))
	done := 0
	for done < len(p) {
		chunk := buf[:min(len(buf), len(p)-done)]
		n, err := d.readAt(chunk, off+int64(done))
		done += copy(p[done:], chunk[:n])
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (d *File) readAt(p []byte, off int64) (int, error) {
	n, err := d.f.ReadAt(p, off)
	if err == io.EOF {
		// The file shrank under us: a device cannot end early.
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, d.err("read", off, err)
	}
	return n, nil
}

// WriteAt writes whole sectors; see hal.BlockDevice.
func (d *File) WriteAt(p []byte, off int64) (int, error) {
	return d.write(p, off, false)
}

// WriteAtFUA writes whole sectors and returns when they are durable; see
// hal.FUAWriter.
func (d *File) WriteAtFUA(p []byte, off int64) (int, error) {
	return d.write(p, off, true)
}

func (d *File) write(p []byte, off int64, fua bool) (int, error) {
	op := "write"
	if fua {
		op = "FUA write"
	}
	if err := d.check(op, off, len(p), true); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if d.aligned(p) {
		return d.writeAt(p, off, fua)
	}
	buf := d.bounce(min(len(p), bounceSize))
	done := 0
	for done < len(p) {
		chunk := buf[:copy(buf, p[done:])]
		n, err := d.writeAt(chunk, off+int64(done), fua)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (d *File) writeAt(p []byte, off int64, fua bool) (int, error) {
	if !fua {
		n, err := d.f.WriteAt(p, off)
		if err != nil {
			return n, d.err("write", off, err)
		}
		return n, nil
	}
	if !d.noDSync.Load() {
		done := 0
		var werr error
		err := d.rc.Control(func(fd uintptr) {
			for done < len(p) {
				n, err := unix.Pwritev2(int(fd), [][]byte{p[done:]}, off+int64(done), unix.RWF_DSYNC)
				switch {
				case err == unix.EINTR:
					continue
				case err != nil:
					werr = err
					return
				case n == 0:
					werr = io.ErrShortWrite
					return
				}
				done += n
			}
		})
		if err == nil {
			err = werr
		}
		switch {
		case err == nil:
			return done, nil
		case done == 0 && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)):
			// No pwritev2 or no RWF_DSYNC here: fall back for good.
			d.noDSync.Store(true)
		default:
			return done, d.err("FUA write", off, err)
		}
	}
	n, err := d.f.WriteAt(p, off)
	if err != nil {
		return n, d.err("FUA write", off, err)
	}
	if err := d.datasync(); err != nil {
		return n, d.err("FUA write: sync", off, err)
	}
	return n, nil
}

func (d *File) datasync() error {
	var serr error
	err := d.rc.Control(func(fd uintptr) {
		for {
			if d.blockdev {
				serr = unix.Fsync(int(fd))
			} else {
				serr = unix.Fdatasync(int(fd))
			}
			if serr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// Sync flushes completed writes to stable storage (fdatasync; fsync on a
// block device); see hal.BlockDevice.
func (d *File) Sync() error {
	if d.closed.Load() {
		return d.err("sync", 0, hal.ErrClosed)
	}
	if err := d.datasync(); err != nil {
		return d.err("sync", 0, err)
	}
	return nil
}

// Discard tells the host the range holds no data: it punches a hole in a
// file (the range then reads as zeros) or issues BLKDISCARD on a block
// device. Where the host supports neither it does nothing and returns nil.
func (d *File) Discard(off, length int64) error {
	if d.closed.Load() {
		return d.err("discard", off, hal.ErrClosed)
	}
	if d.ro {
		return d.err("discard", off, hal.ErrReadOnly)
	}
	if err := hal.CheckRange(d, "discard", off, length); err != nil {
		return fmt.Errorf("host: %s: %w", d.path, err)
	}
	if length == 0 {
		return nil
	}
	var derr error
	err := d.rc.Control(func(fd uintptr) {
		for {
			if d.blockdev {
				rng := [2]uint64{uint64(off), uint64(length)}
				_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.BLKDISCARD, uintptr(unsafe.Pointer(&rng)))
				if e != 0 {
					derr = e
				} else {
					derr = nil
				}
			} else {
				derr = unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
			}
			if derr != unix.EINTR {
				return
			}
		}
	})
	if err == nil {
		err = derr
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY) {
		return nil
	}
	if err != nil {
		return d.err("discard", off, err)
	}
	return nil
}

// Close closes the file descriptor. It does not sync.
func (d *File) Close() error {
	d.once.Do(func() {
		d.closed.Store(true)
		if err := d.f.Close(); err != nil {
			d.cerr = fmt.Errorf("host: %s: close: %w", d.path, err)
		}
	})
	return d.cerr
}
