package pc

// MaxFrames bounds the physical memory the frame allocator manages: 4 GiB
// of 4 KiB frames.
const MaxFrames = 1 << 20

// Frames is a bitmap allocator of 4 KiB physical page frames, numbered by
// physical address / 4096. The zero value manages no memory; AddRange
// donates ranges. It is pointer-free and never allocates, so the kernel can
// keep it in a global.
type Frames struct {
	free  [MaxFrames / 64]uint64 // bit set = frame free
	next  int                    // word to start searching from
	total uint64
	used  uint64
}

// AddRange makes the whole frames inside [start, end) (bytes) available.
func (f *Frames) AddRange(start, end uint64) {
	s := (start + 4095) / 4096
	e := end / 4096
	if e > MaxFrames {
		e = MaxFrames
	}
	for n := s; n < e; n++ {
		w, b := n/64, n%64
		if f.free[w]&(1<<b) == 0 {
			f.free[w] |= 1 << b
			f.total++
		}
	}
}

// Reserve takes the frames overlapping [start, end) out of the free pool
// (for memory in use before the allocator existed).
func (f *Frames) Reserve(start, end uint64) {
	s := start / 4096
	e := (end + 4095) / 4096
	if e > MaxFrames {
		e = MaxFrames
	}
	for n := s; n < e; n++ {
		w, b := n/64, n%64
		if f.free[w]&(1<<b) != 0 {
			f.free[w] &^= 1 << b
			f.total--
		}
	}
}

// Alloc returns the physical address of a free frame.
func (f *Frames) Alloc() (addr uint64, ok bool) {
	for i := 0; i < len(f.free); i++ {
		w := (f.next + i) % len(f.free)
		v := f.free[w]
		if v == 0 {
			continue
		}
		b := 0
		for v&1 == 0 {
			v >>= 1
			b++
		}
		f.free[w] &^= 1 << b
		f.next = w
		f.used++
		return uint64(w*64+b) * 4096, true
	}
	return 0, false
}

// Free returns the frame at physical address addr. Freeing a frame that is
// already free is ignored and reported false.
func (f *Frames) Free(addr uint64) bool {
	n := addr / 4096
	if n >= MaxFrames {
		return false
	}
	w, b := n/64, n%64
	if f.free[w]&(1<<b) != 0 {
		return false
	}
	f.free[w] |= 1 << b
	f.used--
	return true
}

// Used returns the number of frames allocated; Total the number managed.
func (f *Frames) Used() uint64  { return f.used }
func (f *Frames) Total() uint64 { return f.total }
