package blockfs

import (
	"syscall"
)

// maxFileBlocks bounds logical block numbers (32-bit in extents).
const maxFileBlocks = 1 << 32

func (f *FS) maxFileSize() uint64 {
	if f.incompat&EXT4_FEATURE_INCOMPAT_EXTENTS == 0 {
		return min(f.blockMapLimit(), maxFileBlocks-1) << f.logBS
	}
	return uint64(maxFileBlocks-1) << f.logBS
}

// readData reads file data at off into p (which must lie within the file).
func (f *FS) readData(in *inode, p []byte, off uint64) error {
	if err := f.loadMapping(in); err != nil {
		return err
	}
	bs := uint64(f.bs)
	for len(p) > 0 {
		lblk := off / bs
		if lblk >= maxFileBlocks {
			clear(p)
			return nil
		}
		inBlk := off % bs
		pblk, n, ok := in.bmap(uint32(lblk))
		span := uint64(n)*bs - inBlk
		if span > uint64(len(p)) {
			span = uint64(len(p))
		}
		if !ok {
			clear(p[:span])
		} else if err := f.readAt(p[:span], int64(pblk*bs+inBlk)); err != nil {
			return err
		}
		p = p[span:]
		off += span
	}
	return nil
}

// writeData writes p at off, allocating blocks as needed, and returns
// how many bytes were written (all of them unless err != nil). It does
// not change the file size.
func (f *FS) writeData(in *inode, p []byte, off uint64) (int, error) {
	if err := f.loadMapping(in); err != nil {
		return 0, err
	}
	if off+uint64(len(p)) > f.maxFileSize() || off+uint64(len(p)) < off {
		return 0, syscall.EFBIG
	}
	total := len(p)
	in.dataGen++
	bs := uint64(f.bs)
	for len(p) > 0 {
		lblk := uint32(off / bs)
		inBlk := off % bs
		nblk := (inBlk + uint64(len(p)) + bs - 1) / bs
		idx, next := in.findExt(lblk)
		var pblk uint64
		var run uint64
		fresh := false
		if idx >= 0 {
			e := in.ext[idx]
			run = min(uint64(e.lblk+e.len-lblk), nblk)
			pblk = e.pblk + uint64(lblk-e.lblk)
			if e.unwritten {
				// Splitting may add two extents: reserve their tree room.
				if err := f.reserveMapping(in, 2); err != nil {
					return total - len(p), err
				}
				in.markWritten(idx, lblk, uint32(run))
				fresh = true
			}
		} else {
			hole := nblk
			if next < len(in.ext) {
				hole = min(hole, uint64(in.ext[next].lblk-lblk))
			}
			goal := uint64(0)
			if next > 0 {
				pe := in.ext[next-1]
				goal = pe.pblk + uint64(pe.len) + uint64(lblk-(pe.lblk+pe.len))
			} else if len(in.meta) > 0 {
				goal = in.meta[0] + 1
			}
			b, n, err := f.allocBlocks(goal, min(hole, EXT_INIT_MAX_LEN))
			if err != nil {
				return total - len(p), err
			}
			if err := f.addExtent(in, extent{lblk: lblk, len: uint32(n), pblk: b}); err != nil {
				return total - len(p), err
			}
			pblk, run, fresh = b, n, true
		}
		// Bytes of p covered by this run.
		span := min(run*bs-inBlk, uint64(len(p)))
		head := inBlk
		tail := (bs - (inBlk+span)%bs) % bs
		if head == 0 && tail == 0 {
			if err := f.writeAt(p[:span], int64(pblk*bs)); err != nil {
				return total - len(p), err
			}
		} else {
			buf := make([]byte, head+span+tail)
			if !fresh {
				if head != 0 {
					if err := f.readAt(buf[:bs], int64(pblk*bs)); err != nil {
						return total - len(p), err
					}
				}
				if tail != 0 {
					lastOff := uint64(len(buf)) - bs
					if err := f.readAt(buf[lastOff:], int64(pblk*bs+lastOff)); err != nil {
						return total - len(p), err
					}
				}
			}
			copy(buf[head:], p[:span])
			if err := f.writeAt(buf, int64(pblk*bs)); err != nil {
				return total - len(p), err
			}
		}
		p = p[span:]
		off += span
	}
	return total, nil
}

// setFileSize truncates or extends in to size.
func (f *FS) setFileSize(in *inode, size uint64) error {
	if size > f.maxFileSize() {
		return syscall.EFBIG
	}
	old := in.size()
	in.dataGen++
	bs := uint64(f.bs)
	if size < old {
		if err := f.truncateBlocks(in, (size+bs-1)/bs); err != nil {
			return err
		}
		// Zero the tail of the last block so a later extension reads zeros.
		if r := size % bs; r != 0 {
			pblk, _, ok := in.bmap(uint32(size / bs))
			if ok {
				z := make([]byte, bs-r)
				if err := f.writeAt(z, int64(pblk*bs+r)); err != nil {
					return err
				}
			}
		}
	} else if r := old % bs; size > old && r != 0 {
		if err := f.loadMapping(in); err != nil {
			return err
		}
		// Blocks past the old size are already zero (we zero on shrink and
		// fresh blocks are written whole), nothing to do.
		_ = r
	}
	in.setSize(size)
	return nil
}

// allocateRange backs [off, off+n) with blocks, leaving existing data in
// place; new blocks form unwritten extents that read as zeros.
func (f *FS) allocateRange(in *inode, off, n uint64) error {
	if f.incompat&EXT4_FEATURE_INCOMPAT_EXTENTS == 0 {
		return syscall.EOPNOTSUPP
	}
	if n == 0 {
		return syscall.EINVAL
	}
	if off+n > f.maxFileSize() || off+n < off {
		return syscall.EFBIG
	}
	if err := f.loadMapping(in); err != nil {
		return err
	}
	bs := uint64(f.bs)
	l, last := off/bs, (off+n-1)/bs
	for l <= last {
		idx, next := in.findExt(uint32(l))
		if idx >= 0 {
			e := in.ext[idx]
			l = uint64(e.lblk) + uint64(e.len)
			continue
		}
		hole := last - l + 1
		if next < len(in.ext) {
			hole = min(hole, uint64(in.ext[next].lblk)-l)
		}
		goal := uint64(0)
		if next > 0 {
			pe := in.ext[next-1]
			goal = pe.pblk + uint64(pe.len) + (l - uint64(pe.lblk+pe.len))
		}
		b, got, err := f.allocBlocks(goal, min(hole, EXT_UNINIT_MAX_LEN))
		if err != nil {
			return err
		}
		if err := f.addExtent(in, extent{lblk: uint32(l), len: uint32(got), pblk: b, unwritten: true}); err != nil {
			return err
		}
		l += got
	}
	return nil
}

// Whence values for File.Seek beyond io's (lseek(2) SEEK_DATA/SEEK_HOLE).
const (
	SeekData = 3
	SeekHole = 4
)

// seekDataHole implements SEEK_DATA and SEEK_HOLE; unwritten extents
// count as holes.
func (f *FS) seekDataHole(in *inode, off int64, whence int) (int64, error) {
	size := int64(in.size())
	if off < 0 || off >= size {
		return 0, syscall.ENXIO
	}
	if err := f.loadMapping(in); err != nil {
		return 0, err
	}
	bs := int64(f.bs)
	l := uint32(off / bs)
	idx, next := in.findExt(l)
	if whence == SeekData {
		for i := next; i < len(in.ext); i++ {
			e := in.ext[i]
			if e.unwritten {
				continue
			}
			start := int64(e.lblk) * bs
			if i == idx {
				return off, nil
			}
			if start >= size {
				break
			}
			return start, nil
		}
		return 0, syscall.ENXIO
	}
	if idx < 0 || in.ext[idx].unwritten {
		return off, nil
	}
	end := in.ext[idx].lblk + in.ext[idx].len
	for i := idx + 1; i < len(in.ext) && in.ext[i].lblk == end && !in.ext[i].unwritten; i++ {
		end = in.ext[i].lblk + in.ext[i].len
	}
	return min(int64(end)*bs, size), nil
}

// addExtent maps freshly allocated blocks into in and reserves the blocks
// its mapping will need on disk, so that a later flush cannot run out of
// space. On failure the blocks are freed and the mapping is unchanged.
func (f *FS) addExtent(in *inode, e extent) error {
	in.insertExt(e)
	f.addBlocks(in, int64(e.len))
	for need := f.mappingBlocks(in); len(in.meta) < need; {
		goal := e.pblk
		b, _, err := f.allocBlocks(goal, 1)
		if err != nil {
			in.removeRange(e.lblk, e.len)
			f.addBlocks(in, -int64(e.len))
			if ferr := f.freeBlocks(e.pblk, uint64(e.len)); ferr != nil {
				return ferr
			}
			return err
		}
		f.addBlocks(in, 1)
		in.meta = append(in.meta, b)
	}
	return nil
}

// reserveMapping makes sure in.meta holds enough blocks for the extent
// tree after extra more extents.
func (f *FS) reserveMapping(in *inode, extra int) error {
	for need := f.extentTreeBlocks(len(in.ext) + extra); len(in.meta) < need; {
		goal := uint64(0)
		if len(in.ext) > 0 {
			goal = in.ext[0].pblk
		}
		b, _, err := f.allocBlocks(goal, 1)
		if err != nil {
			return err
		}
		f.addBlocks(in, 1)
		in.meta = append(in.meta, b)
	}
	return nil
}

func (f *FS) extentTreeBlocks(n int) int {
	per := (f.bs - extentHeaderSize) / extentEntrySize
	const rootMax = (iBlockLen - extentHeaderSize) / extentEntrySize
	total := 0
	for n > rootMax {
		n = (n + per - 1) / per
		total += n
	}
	return total
}

// mappingBlocks is the number of blocks in.ext needs for its on-disk
// mapping: extent tree nodes, or indirect blocks of a block map.
func (f *FS) mappingBlocks(in *inode) int {
	if f.incompat&EXT4_FEATURE_INCOMPAT_EXTENTS != 0 {
		// Over-long extents are split in two or more on disk.
		n := 0
		for _, e := range in.ext {
			n += int((uint64(e.len) + maxExtLen(e.unwritten) - 1) / maxExtLen(e.unwritten))
		}
		return f.extentTreeBlocks(n)
	}
	per := uint64(f.bs / 4)
	type region struct{ base, levels uint64 }
	regions := []region{{EXT4_NDIR_BLOCKS, 1}, {EXT4_NDIR_BLOCKS + per, 2}, {EXT4_NDIR_BLOCKS + per + per*per, 3}}
	total := 0
	for _, r := range regions {
		span := uint64(1)
		for i := uint64(0); i < r.levels; i++ {
			span *= per
		}
		// Chunk sizes of the indirect blocks at each level of the region.
		for lvl, chunk := uint64(0), span; lvl < r.levels; lvl, chunk = lvl+1, chunk/per {
			last := int64(-1)
			for _, e := range in.ext {
				a, b := uint64(e.lblk), uint64(e.lblk)+uint64(e.len)
				if b <= r.base || a >= r.base+span {
					continue
				}
				a, b = max(a, r.base), min(b, r.base+span)
				c0, c1 := int64((a-r.base)/chunk), int64((b-1-r.base)/chunk)
				if c0 <= last {
					c0 = last + 1
				}
				if c1 >= c0 {
					total += int(c1 - c0 + 1)
					last = c1
				}
			}
		}
	}
	return total
}
