package pc

import "unsafe"

// Page-table entry bits (Intel SDM vol. 3, §4.5).
const (
	ptP    = 1 << 0
	ptW    = 1 << 1
	ptPWT  = 1 << 3
	ptPCD  = 1 << 4
	ptPS   = 1 << 7
	ptAddr = 0x000F_FFFF_FFFF_F000
)

// Boot page tables built by multibootEntry.
const (
	bootPML4 = 0x10000
	bootPD0  = 0x12000 // maps 0-1 GiB
	bootPD3  = 0x15000 // maps 3-4 GiB
)

func entry(table, i uint64) *uint64 {
	return (*uint64)(unsafe.Add(unsafe.Pointer(nil), uintptr(table+i*8)))
}

func zeroFrame(pa uint64) { clear(mem(pa, 4096)) }

// setupPaging finishes the boot page tables: the first 4 KiB page is left
// unmapped so nil dereferences fault, and the 3-4 GiB range (device
// memory) is mapped uncached.
func setupPaging() {
	pt, ok := frames.Alloc()
	if !ok {
		puts("anyk: no memory for page tables\n")
		exit(exitNoMemory)
	}
	for i := uint64(0); i < 512; i++ {
		*entry(pt, i) = i*4096 | ptP | ptW
	}
	*entry(pt, 0) = 0
	*entry(bootPD0, 0) = pt | ptP | ptW
	for i := uint64(0); i < 512; i++ {
		*entry(bootPD3, i) |= ptPCD | ptPWT
	}
	writeCR3(readCR3())
}

// leaf walks to the 4 KiB entry for va, creating intermediate tables if
// create is set. huge reports that a large page maps va (the kernel's
// identity map); ok is false if a table is missing (or memory ran out).
func leaf(va uint64, create bool) (e *uint64, huge, ok bool) {
	t := readCR3() & ptAddr
	for lvl := uint64(3); lvl >= 1; lvl-- {
		p := entry(t, (va>>(12+9*lvl))&511)
		if *p&ptP == 0 {
			if !create {
				return nil, false, false
			}
			f, ok := frames.Alloc()
			if !ok {
				return nil, false, false
			}
			zeroFrame(f)
			*p = f | ptP | ptW
		} else if *p&ptPS != 0 {
			return p, true, true
		}
		t = *p & ptAddr
	}
	return entry(t, (va>>12)&511), false, true
}

// populate maps a zeroed frame at every absent page of [addr, addr+n).
func populate(addr, n uint64) bool {
	end := addr + n
	for va := addr &^ 4095; va < end; va += 4096 {
		e, huge, ok := leaf(va, true)
		if !ok {
			return false
		}
		if huge || *e&ptP != 0 {
			continue
		}
		f, ok := frames.Alloc()
		if !ok {
			return false
		}
		zeroFrame(f)
		*e = f | ptP | ptW
	}
	return true
}

// release unmaps the 4 KiB pages of [addr, addr+n) and frees their frames,
// skipping whole tables that are absent. Large pages are left alone.
func release(addr, n uint64) {
	end := addr + n
	if end < addr {
		end = ^uint64(0)
	}
	root := readCR3() & ptAddr
	flushed := 0
	for va := addr &^ 4095; va < end; {
		t := root
		skip := uint64(0)
		for lvl := uint64(3); lvl >= 1; lvl-- {
			p := entry(t, (va>>(12+9*lvl))&511)
			if *p&ptP == 0 || *p&ptPS != 0 {
				skip = uint64(1) << (12 + 9*lvl)
				break
			}
			t = *p & ptAddr
		}
		if skip != 0 {
			next := (va &^ (skip - 1)) + skip
			if next <= va {
				break
			}
			va = next
			continue
		}
		e := entry(t, (va>>12)&511)
		if *e&ptP != 0 {
			frames.Free(*e & ptAddr)
			*e = 0
			if flushed < 64 {
				invlpg(va)
			}
			flushed++
		}
		va += 4096
	}
	if flushed >= 64 {
		writeCR3(readCR3())
	}
}
