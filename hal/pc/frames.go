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

// AllocContig returns the physical address of n free frames in a row
// (for DMA buffers), the first aligned to align frames (a power of two;
// 0 or 1 for none).
func (f *Frames) AllocContig(n, align int) (addr uint64, ok bool) {
	if n <= 0 {
		return 0, false
	}
	if align < 1 {
		align = 1
	}
	for start := 0; start+n <= MaxFrames; start += align {
		run := 0
		for run < n && f.free[(start+run)/64]&(1<<((start+run)%64)) != 0 {
			run++
		}
		if run < n {
			// Skip past the frame in use.
			start = (start + run) &^ (align - 1)
			continue
		}
		for i := start; i < start+n; i++ {
			f.free[i/64] &^= 1 << (i % 64)
		}
		f.used += uint64(n)
		return uint64(start) * 4096, true
	}
	return 0, false
}
