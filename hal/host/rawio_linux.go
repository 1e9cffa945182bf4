package host

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/hal"
)

// maxIovecs bounds one rawReadv/rawWritev: a virtio-net header, the frame's
// pieces and a scratch buffer.
const maxIovecs = 2 + hal.MaxVecBufs

// iovecs is the kernel's view of a [][]byte, kept in the operation that
// issues the call so that building it allocates nothing.
type iovecs struct {
	v [maxIovecs]unix.Iovec
}

// set fills the vector from bufs and returns how many entries are used,
// or false if bufs do not fit.
func (io *iovecs) set(bufs [][]byte) (int, bool) {
	if len(bufs) > maxIovecs {
		return 0, false
	}
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		io.v[n].Base = &b[0]
		io.v[n].SetLen(len(b))
		n++
	}
	return n, true
}

// clear drops the references the vector holds into the caller's buffers.
func (io *iovecs) clear() { clear(io.v[:]) }

// rawReadv is readv(2) on a non-blocking descriptor without telling the Go
// scheduler: the call never sleeps, so handing the thread's P to another
// thread while it runs (what unix.Readv does once the call outlasts a
// scheduler tick) would cost a thread wake-up for nothing.
func rawReadv(fd int, io *iovecs, bufs [][]byte) (int, error) {
	return rawIov(unix.SYS_READV, fd, io, bufs)
}

// rawWritev is writev(2) on a non-blocking descriptor, like rawReadv.
func rawWritev(fd int, io *iovecs, bufs [][]byte) (int, error) {
	return rawIov(unix.SYS_WRITEV, fd, io, bufs)
}

// rawIov issues readv or writev (trap) with bufs as its vector.
func rawIov(trap uintptr, fd int, io *iovecs, bufs [][]byte) (int, error) {
	n, ok := io.set(bufs)
	if !ok {
		return 0, unix.EINVAL
	}
	r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&io.v[0])), uintptr(n))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
