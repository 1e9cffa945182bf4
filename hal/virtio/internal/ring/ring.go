// Package ring holds the split-virtqueue memory layout (virtio 1.2 §2.7)
// and the ordered accesses both sides of a queue make to shared memory.
//
// The ring indices and event fields are shared between the driver and the
// device while both run. They are read and written with sequentially
// consistent atomic operations on the naturally aligned 32-bit word that
// contains them: that is the memory barrier the specification asks for
// (§2.7.13), it is what keeps the Go race detector informed when the device
// is a goroutine, and on amd64 it compiles to the plain loads and locked
// stores a C driver would issue. A 16-bit field is updated with a
// compare-and-swap on its containing word, so the neighbouring field is
// never overwritten.
//
// Every access is bounds- and alignment-checked against the slice it is
// given; a failed check is reported, never a panic.
package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Split virtqueue layout (virtio 1.2 §2.7.5-§2.7.8).
const (
	DescSize     = 16 // struct virtq_desc
	UsedElemSize = 8  // struct virtq_used_elem

	VIRTQ_DESC_F_NEXT     = 1
	VIRTQ_DESC_F_WRITE    = 2
	VIRTQ_DESC_F_INDIRECT = 4

	VIRTQ_AVAIL_F_NO_INTERRUPT = 1
	VIRTQ_USED_F_NO_NOTIFY     = 1

	MaxQueueSize = 32768
)

// ErrLayout reports a ring field outside its memory or misaligned.
var ErrLayout = errors.New("virtqueue memory layout")

// Sizes of the three areas of a queue of n entries, including the event
// field at the end of each ring.
func DescBytes(n int) int  { return DescSize * n }
func AvailBytes(n int) int { return 6 + 2*n }
func UsedBytes(n int) int  { return 6 + UsedElemSize*n }

// Field offsets within the available ring.
func AvailFlagsOff() int     { return 0 }
func AvailIdxOff() int       { return 2 }
func AvailRingOff(i int) int { return 4 + 2*i }
func UsedEventOff(n int) int { return 4 + 2*n }

// Field offsets within the used ring.
func UsedFlagsOff() int       { return 0 }
func UsedIdxOff() int         { return 2 }
func UsedElemOff(i int) int   { return 4 + UsedElemSize*i }
func AvailEventOff(n int) int { return 4 + UsedElemSize*n }

// Desc is a decoded descriptor.
type Desc struct {
	Addr  uint64
	Len   uint32
	Flags uint16
	Next  uint16
}

// ReadDesc decodes descriptor i of the table t.
func ReadDesc(t []byte, i int) (Desc, error) {
	off := i * DescSize
	if i < 0 || off+DescSize > len(t) {
		return Desc{}, fmt.Errorf("%w: descriptor %d beyond %d-byte table", ErrLayout, i, len(t))
	}
	b := t[off : off+DescSize]
	return Desc{
		Addr:  binary.LittleEndian.Uint64(b),
		Len:   binary.LittleEndian.Uint32(b[8:]),
		Flags: binary.LittleEndian.Uint16(b[12:]),
		Next:  binary.LittleEndian.Uint16(b[14:]),
	}, nil
}

// WriteDesc encodes d as descriptor i of the table t.
func WriteDesc(t []byte, i int, d Desc) error {
	off := i * DescSize
	if i < 0 || off+DescSize > len(t) {
		return fmt.Errorf("%w: descriptor %d beyond %d-byte table", ErrLayout, i, len(t))
	}
	b := t[off : off+DescSize]
	binary.LittleEndian.PutUint64(b, d.Addr)
	binary.LittleEndian.PutUint32(b[8:], d.Len)
	binary.LittleEndian.PutUint16(b[12:], d.Flags)
	binary.LittleEndian.PutUint16(b[14:], d.Next)
	return nil
}

// word returns the aligned 32-bit word of b that holds the 16-bit field at
// off, and the field's byte offset within the word.
func word(b []byte, off int) (*uint32, int, error) {
	if off < 0 || off&1 != 0 || off+2 > len(b) {
		return nil, 0, fmt.Errorf("%w: 16-bit field at %d of %d bytes", ErrLayout, off, len(b))
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	addr := base + uintptr(off)
	wa := addr &^ 3
	start := int(wa - base) // may be negative by 2 if b is only 2-aligned
	if start < 0 || start+4 > len(b) {
		return nil, 0, fmt.Errorf("%w: word around 16-bit field at %d of %d bytes", ErrLayout, off, len(b))
	}
	return (*uint32)(unsafe.Pointer(&b[start])), int(addr - wa), nil
}

// The word is loaded in host order; its bytes are the little-endian bytes
// of the ring, so the field is picked out through the host's byte order.

func field16(w uint32, at int) uint16 {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], w)
	return binary.LittleEndian.Uint16(b[at:])
}

func withField16(w uint32, at int, v uint16) uint32 {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], w)
	binary.LittleEndian.PutUint16(b[at:], v)
	return binary.NativeEndian.Uint32(b[:])
}

// Load16 atomically loads the little-endian 16-bit field at off.
func Load16(b []byte, off int) (uint16, error) {
	w, at, err := word(b, off)
	if err != nil {
		return 0, err
	}
	return field16(atomic.LoadUint32(w), at), nil
}

// Store16 atomically stores v into the little-endian 16-bit field at off,
// leaving the other half of its word as it is.
func Store16(b []byte, off int, v uint16) error {
	w, at, err := word(b, off)
	if err != nil {
		return err
	}
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, withField16(old, at, v)) {
			return nil
		}
	}
}

func word32(b []byte, off int) (*uint32, error) {
	if off < 0 || off&3 != 0 || off+4 > len(b) || uintptr(unsafe.Pointer(unsafe.SliceData(b)))&3 != 0 {
		return nil, fmt.Errorf("%w: 32-bit field at %d of %d bytes", ErrLayout, off, len(b))
	}
	return (*uint32)(unsafe.Pointer(&b[off])), nil
}

// Load32 atomically loads the aligned little-endian 32-bit field at off.
func Load32(b []byte, off int) (uint32, error) {
	w, err := word32(b, off)
	if err != nil {
		return 0, err
	}
	var x [4]byte
	binary.NativeEndian.PutUint32(x[:], atomic.LoadUint32(w))
	return binary.LittleEndian.Uint32(x[:]), nil
}

// Store32 atomically stores the aligned little-endian 32-bit field at off.
func Store32(b []byte, off int, v uint32) error {
	w, err := word32(b, off)
	if err != nil {
		return err
	}
	var x [4]byte
	binary.LittleEndian.PutUint32(x[:], v)
	atomic.StoreUint32(w, binary.NativeEndian.Uint32(x[:]))
	return nil
}

// NeedEvent reports whether moving an index from old to new crosses the
// event index ev (virtio 1.2 §2.7.10, vring_need_event).
func NeedEvent(ev, new, old uint16) bool {
	return new-ev-1 < new-old
}

// Layout places the three areas of a queue of n entries in one region:
// the descriptor table at 0, the available ring after it and the used ring
// at the next 8-byte boundary, with room for a whole word at each event
// field. It returns the offsets and the region size.
func Layout(n int) (availOff, usedOff, size int) {
	availOff = DescBytes(n)
	usedOff = (availOff + AvailBytes(n) + 2 + 7) &^ 7
	size = (usedOff + UsedBytes(n) + 2 + 7) &^ 7
	return availOff, usedOff, size
}
