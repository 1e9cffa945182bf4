package linux

// MaxVMAs bounds the number of distinct mappings in an AddressSpace.
const MaxVMAs = 256

// VMA is a mapped range [Start, End) of page-aligned virtual addresses with
// one protection (PROT_* bits). A VMA with Prot PROT_NONE is a reservation:
// the range is taken but any access faults.
type VMA struct {
	Start, End uint64
	Prot       uint32
}

// AddressSpace is the bookkeeping of a process's anonymous mappings: which
// ranges are mapped with which protection, and where new mappings go. It
// does not touch page tables; the platform maps frames on demand and asks
// Access whether a faulting address may be mapped.
//
// The zero value is unusable: call Init.
type AddressSpace struct {
	v      [MaxVMAs]VMA
	n      int
	lo, hi uint64
}

// Init empties a and sets the range [lo, hi) in which mappings without a
// usable hint are placed (top down).
func (a *AddressSpace) Init(lo, hi uint64) {
	a.n = 0
	a.lo = lo &^ (PageSize - 1)
	a.hi = hi &^ (PageSize - 1)
}

// Len returns the number of VMAs.
func (a *AddressSpace) Len() int { return a.n }

// At returns the i'th VMA in address order.
func (a *AddressSpace) At(i int) VMA { return a.v[i] }

// Find returns the VMA containing addr.
func (a *AddressSpace) Find(addr uint64) (VMA, bool) {
	lo, hi := 0, a.n
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case addr < a.v[m].Start:
			hi = m
		case addr >= a.v[m].End:
			lo = m + 1
		default:
			return a.v[m], true
		}
	}
	return VMA{}, false
}

// Access reports whether every byte of [addr, addr+n) is mapped readable
// (and writable if write is set).
func (a *AddressSpace) Access(addr, n uint64, write bool) bool {
	if n == 0 {
		return true
	}
	end := addr + n
	if end < addr {
		return false
	}
	for addr < end {
		v, ok := a.Find(addr)
		if !ok || v.Prot&PROT_READ == 0 || (write && v.Prot&PROT_WRITE == 0) {
			return false
		}
		addr = v.End
	}
	return true
}

// free reports whether [s, e) overlaps no VMA.
func (a *AddressSpace) free(s, e uint64) bool {
	for i := 0; i < a.n; i++ {
		if a.v[i].Start < e && s < a.v[i].End {
			return false
		}
	}
	return true
}

func pageRound(n uint64) (uint64, bool) {
	r := (n + PageSize - 1) &^ (PageSize - 1)
	return r, r >= n
}

// Map adds a mapping of length bytes with protection prot and returns its
// address. Without fixed, a page-aligned hint whose range is free is
// honoured; otherwise the mapping goes at the highest free range below the
// placement limit. With fixed the mapping replaces whatever was at hint;
// with noReplace it fails with EEXIST instead if anything was there.
func (a *AddressSpace) Map(hint, length uint64, prot uint32, fixed, noReplace bool) (uint64, Errno) {
	length, ok := pageRound(length)
	if length == 0 || !ok {
		return 0, EINVAL
	}
	if fixed || noReplace {
		if hint&(PageSize-1) != 0 || hint+length < hint || hint+length > 1<<47 {
			return 0, EINVAL
		}
		if noReplace && !a.free(hint, hint+length) {
			return 0, EEXIST
		}
		if !a.set(hint, hint+length, prot, true) {
			return 0, ENOMEM
		}
		return hint, 0
	}
	if hint != 0 && hint&(PageSize-1) == 0 && hint+length > hint && hint+length <= 1<<47 && hint >= PageSize*16 && a.free(hint, hint+length) {
		if !a.set(hint, hint+length, prot, true) {
			return 0, ENOMEM
		}
		return hint, 0
	}
	// Highest gap below hi that fits.
	top := a.hi
	for i := a.n - 1; i >= -1; i-- {
		bottom := a.lo
		if i >= 0 {
			if a.v[i].Start >= top {
				continue
			}
			if a.v[i].End > bottom {
				bottom = a.v[i].End
			}
		}
		if top > bottom && top-bottom >= length {
			s := top - length
			if !a.set(s, top, prot, true) {
				return 0, ENOMEM
			}
			return s, 0
		}
		if i >= 0 && a.v[i].Start < top {
			top = a.v[i].Start
		}
		if top <= a.lo {
			break
		}
	}
	return 0, ENOMEM
}

// Unmap removes [addr, addr+length) from every mapping.
func (a *AddressSpace) Unmap(addr, length uint64) Errno {
	length, ok := pageRound(length)
	if addr&(PageSize-1) != 0 || length == 0 || !ok || addr+length < addr {
		return EINVAL
	}
	if !a.set(addr, addr+length, 0, false) {
		return ENOMEM
	}
	return 0
}

// Protect changes the protection of [addr, addr+length), which must be
// entirely mapped.
func (a *AddressSpace) Protect(addr, length uint64, prot uint32) Errno {
	length, ok := pageRound(length)
	if addr&(PageSize-1) != 0 || !ok || addr+length < addr {
		return EINVAL
	}
	if length == 0 {
		return 0
	}
	for p := addr; p < addr+length; {
		v, found := a.Find(p)
		if !found {
			return ENOMEM
		}
		p = v.End
	}
	if !a.set(addr, addr+length, prot, true) {
		return ENOMEM
	}
	return 0
}

// set makes [s, e) one VMA with prot (add) or unmapped (!add), splitting
// and merging neighbours. It reports false, changing nothing, if the result
// would need more than MaxVMAs entries.
func (a *AddressSpace) set(s, e uint64, prot uint32, add bool) bool {
	var out [MaxVMAs + 3]VMA
	n := 0
	placed := !add
	for i := 0; i < a.n; i++ {
		v := a.v[i]
		if v.End <= s {
			out[n] = v
			n++
			continue
		}
		if v.Start < s {
			out[n] = VMA{v.Start, s, v.Prot}
			n++
		}
		if !placed && v.Start >= s {
			out[n] = VMA{s, e, prot}
			n++
			placed = true
		}
		if v.Start >= e {
			if !placed {
				out[n] = VMA{s, e, prot}
				n++
				placed = true
			}
			out[n] = v
			n++
			continue
		}
		if !placed {
			out[n] = VMA{s, e, prot}
			n++
			placed = true
		}
		if v.End > e {
			out[n] = VMA{e, v.End, v.Prot}
			n++
		}
		if n > MaxVMAs+1 {
			return false
		}
	}
	if !placed {
		out[n] = VMA{s, e, prot}
		n++
	}
	// Merge neighbours with equal protection.
	m := 0
	for i := 0; i < n; i++ {
		if m > 0 && out[m-1].End == out[i].Start && out[m-1].Prot == out[i].Prot {
			out[m-1].End = out[i].End
			continue
		}
		out[m] = out[i]
		m++
	}
	if m > MaxVMAs {
		return false
	}
	copy(a.v[:], out[:m])
	a.n = m
	return true
}
