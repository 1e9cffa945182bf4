package blockfs

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"syscall"
)

// blocksInGroup is the number of blocks group g covers.
func (f *FS) blocksInGroup(g uint32) uint64 {
	first := f.groupFirstBlock(g)
	if n := f.blocksCount - first; n < uint64(f.bpg) {
		return n
	}
	return uint64(f.bpg)
}

func setBit(b []byte, i uint64)       { b[i>>3] |= 1 << (i & 7) }
func clearBit(b []byte, i uint64)     { b[i>>3] &^= 1 << (i & 7) }
func testBit(b []byte, i uint64) bool { return b[i>>3]&(1<<(i&7)) != 0 }

// blockBitmap returns group g's block bitmap, materializing it if the group
// is BLOCK_UNINIT (the flag is then cleared).
func (f *FS) blockBitmap(g uint32) ([]byte, error) {
	blk := f.blockBitmapBlock(g)
	if f.groupFlags(g)&EXT4_BG_BLOCK_UNINIT != 0 && (f.metaCsum || f.gdtCsum) {
		if f.readOnly {
			buf := make([]byte, f.bs)
			f.initBlockBitmap(g, buf)
			return buf, nil
		}
		buf := f.bnew(blk)
		f.verified[blk] = true
		f.initBlockBitmap(g, buf)
		f.setGroupFlags(g, f.groupFlags(g)&^EXT4_BG_BLOCK_UNINIT)
		return buf, nil
	}
	return f.readBitmap(g, blk, bg_block_bitmap_csum_lo, bg_block_bitmap_csum_hi, f.bpg/8)
}

// readBitmap reads a bitmap block, verifying its checksum the first time.
func (f *FS) readBitmap(g uint32, blk uint64, lo, hi int, size uint32) ([]byte, error) {
	b, err := f.bread(blk)
	if err != nil || !f.metaCsum || f.verified[blk] {
		return b, err
	}
	c := crc32c(f.csumSeed, b[:size])
	got, want := uint32(le16(f.gd(g), lo)), c&0xFFFF
	if f.descSize >= EXT4_MIN_DESC_SIZE_64BIT {
		got |= uint32(le16(f.gd(g), hi)) << 16
		want = c
	}
	if got != want {
		return nil, fmt.Errorf("blockfs: group %d bitmap block %d checksum %#x, computed %#x: %w", g, blk, got, want, ErrCorrupt)
	}
	f.verified[blk] = true
	return b, nil
}

func (f *FS) initBlockBitmap(g uint32, buf []byte) {
	clear(buf)
	first := f.groupFirstBlock(g)
	n := f.blocksInGroup(g)
	for i := uint64(0); i < f.groupOverhead(g) && i < n; i++ {
		setBit(buf, i)
	}
	mark := func(b, cnt uint64) {
		for i := uint64(0); i < cnt; i++ {
			if b+i >= first && b+i < first+n {
				setBit(buf, b+i-first)
			}
		}
	}
	itBlocks := (uint64(f.ipg)*uint64(f.inodeSize) + uint64(f.bs) - 1) / uint64(f.bs)
	for h := uint32(0); h < f.groups; h++ {
		mark(f.blockBitmapBlock(h), 1)
		mark(f.inodeBitmapBlock(h), 1)
		mark(f.inodeTableBlock(h), itBlocks)
	}
	for i := n; i < uint64(f.bs)*8; i++ {
		setBit(buf, i)
	}
}

// inodeBitmap returns group g's inode bitmap, materializing it if the group
// is INODE_UNINIT.
func (f *FS) inodeBitmap(g uint32) ([]byte, error) {
	blk := f.inodeBitmapBlock(g)
	if f.groupFlags(g)&EXT4_BG_INODE_UNINIT != 0 && (f.metaCsum || f.gdtCsum) {
		var buf []byte
		if f.readOnly {
			buf = make([]byte, f.bs)
		} else {
			buf = f.bnew(blk)
			f.verified[blk] = true
			f.setGroupFlags(g, f.groupFlags(g)&^EXT4_BG_INODE_UNINIT)
		}
		for i := uint64(f.ipg); i < uint64(f.bs)*8; i++ {
			setBit(buf, i)
		}
		return buf, nil
	}
	return f.readBitmap(g, blk, bg_inode_bitmap_csum_lo, bg_inode_bitmap_csum_hi, f.ipg/8)
}

func (f *FS) updateGroupCsums(g uint32) error {
	if f.metaCsum {
		if f.groupFlags(g)&EXT4_BG_BLOCK_UNINIT == 0 {
			bm, err := f.bread(f.blockBitmapBlock(g))
			if err != nil {
				return err
			}
			c := crc32c(f.csumSeed, bm[:f.bpg/8])
			put16(f.gd(g), bg_block_bitmap_csum_lo, uint16(c))
			if f.descSize >= EXT4_MIN_DESC_SIZE_64BIT {
				put16(f.gd(g), bg_block_bitmap_csum_hi, uint16(c>>16))
			}
		}
		if f.groupFlags(g)&EXT4_BG_INODE_UNINIT == 0 {
			bm, err := f.bread(f.inodeBitmapBlock(g))
			if err != nil {
				return err
			}
			c := crc32c(f.csumSeed, bm[:f.ipg/8])
			put16(f.gd(g), bg_inode_bitmap_csum_lo, uint16(c))
			if f.descSize >= EXT4_MIN_DESC_SIZE_64BIT {
				put16(f.gd(g), bg_inode_bitmap_csum_hi, uint16(c>>16))
			}
		}
	}
	if f.metaCsum || f.gdtCsum {
		put16(f.gd(g), bg_checksum, f.groupDescCsum(g))
	}
	return nil
}

func (f *FS) freeBlocksTotal() uint64 {
	var n uint64
	for g := uint32(0); g < f.groups; g++ {
		n += f.freeBlocksInGroup(g)
	}
	return n
}

var errNoSpace = syscall.ENOSPC

// allocBlocks allocates a run of at most want (at least one) contiguous
// blocks, preferring goal. It returns the first block and the run length.
func (f *FS) allocBlocks(goal uint64, want uint64) (uint64, uint64, error) {
	if f.readOnly {
		return 0, 0, errReadOnlyFS
	}
	if goal < uint64(f.firstDataBlock) || goal >= f.blocksCount {
		goal = f.allocGoal
		if goal < uint64(f.firstDataBlock) || goal >= f.blocksCount {
			goal = uint64(f.firstDataBlock)
		}
	}
	g0 := uint32((goal - uint64(f.firstDataBlock)) / uint64(f.bpg))
	for i := uint32(0); i <= f.groups; i++ {
		g := (g0 + i) % f.groups
		if f.freeBlocksInGroup(g) == 0 {
			continue
		}
		bm, err := f.blockBitmap(g)
		if err != nil {
			return 0, 0, err
		}
		n := f.blocksInGroup(g)
		start := uint64(0)
		if i == 0 {
			start = goal - f.groupFirstBlock(g)
		}
		first := f.groupFirstBlock(g)
		bit, ok := f.findFree(bm, first, start, n)
		if !ok && start > 0 {
			bit, ok = f.findFree(bm, first, 0, n)
		}
		if !ok {
			continue
		}
		run := uint64(1)
		for run < want && bit+run < n && !testBit(bm, bit+run) && !f.quarantined(first+bit+run) {
			run++
		}
		for j := uint64(0); j < run; j++ {
			setBit(bm, bit+j)
		}
		f.bdirty(f.blockBitmapBlock(g), bm)
		free := f.freeBlocksInGroup(g)
		if free < run {
			return 0, 0, fmt.Errorf("blockfs: group %d free block count %d below its bitmap: %w", g, free, ErrCorrupt)
		}
		f.setGDField(g, bg_free_blocks_count_lo, bg_free_blocks_count_hi, 16, free-run)
		blk := f.groupFirstBlock(g) + bit
		f.allocGoal = blk + run
		return blk, run, nil
	}
	if len(f.quar) > 0 {
		// The only free blocks left were freed since the last journal
		// transaction. Handing them out gives up the guarantee that data
		// written in place never lands in a block committed metadata
		// still uses, but refusing would report a full disk that is not.
		f.log.Debug("blockfs: reusing blocks freed since the last commit", "ranges", len(f.quar))
		f.quar = f.quar[:0]
		return f.allocBlocks(goal, want)
	}
	return 0, 0, errNoSpace
}

// blkRange is a run of blocks.
type blkRange struct{ start, n uint64 }

// quarantine keeps blocks freed since the last journal transaction from
// being allocated again until it commits: data is written in place at
// once, and must not land in a block that the committed metadata (what a
// crash would leave) still uses, as a file's or a directory's block.
func (f *FS) quarantine(start, n uint64) {
	if f.jw == nil || n == 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(f.quar, start, func(r blkRange, b uint64) int { return cmp.Compare(r.start, b) })
	f.quar = slices.Insert(f.quar, i, blkRange{start, n})
}

// quarantineEnd returns the end of the quarantined run holding blk, or 0.
func (f *FS) quarantineEnd(blk uint64) uint64 {
	i, found := slices.BinarySearchFunc(f.quar, blk, func(r blkRange, b uint64) int { return cmp.Compare(r.start, b) })
	if !found {
		if i == 0 {
			return 0
		}
		i--
	}
	if r := f.quar[i]; blk < r.start+r.n {
		return r.start + r.n
	}
	return 0
}

func (f *FS) quarantined(blk uint64) bool { return len(f.quar) > 0 && f.quarantineEnd(blk) != 0 }

// findFree returns the first bit in [from, n) of group bitmap bm (whose
// bit 0 is block first) that is clear and not quarantined.
func (f *FS) findFree(bm []byte, first, from, n uint64) (uint64, bool) {
	for {
		bit, ok := findZero(bm, from, n)
		if !ok || len(f.quar) == 0 {
			return bit, ok
		}
		end := f.quarantineEnd(first + bit)
		if end == 0 {
			return bit, true
		}
		from = end - first
	}
}

// findZero returns the first clear bit in [from, n).
func findZero(bm []byte, from, n uint64) (uint64, bool) {
	i := from
	for i < n {
		if i&63 == 0 && i+64 <= n {
			w := uint64(bm[i>>3]) | uint64(bm[i>>3+1])<<8 | uint64(bm[i>>3+2])<<16 | uint64(bm[i>>3+3])<<24 |
				uint64(bm[i>>3+4])<<32 | uint64(bm[i>>3+5])<<40 | uint64(bm[i>>3+6])<<48 | uint64(bm[i>>3+7])<<56
			if w == ^uint64(0) {
				i += 64
				continue
			}
			return i + uint64(bits.TrailingZeros64(^w)), true
		}
		if !testBit(bm, i) {
			return i, true
		}
		i++
	}
	return 0, false
}

// freeBlocks releases n blocks starting at start.
func (f *FS) freeBlocks(start, n uint64) error {
	f.quarantine(start, n)
	for n > 0 {
		if start < uint64(f.firstDataBlock) || start >= f.blocksCount {
			return fmt.Errorf("blockfs: free block %d outside the file system: %w", start, ErrCorrupt)
		}
		g := uint32((start - uint64(f.firstDataBlock)) / uint64(f.bpg))
		bm, err := f.blockBitmap(g)
		if err != nil {
			return err
		}
		bit := start - f.groupFirstBlock(g)
		cnt := uint64(0)
		for n > 0 && bit < f.blocksInGroup(g) {
			if testBit(bm, bit) {
				clearBit(bm, bit)
				cnt++
			}
			f.bforget(start)
			bit++
			start++
			n--
		}
		f.bdirty(f.blockBitmapBlock(g), bm)
		f.setGDField(g, bg_free_blocks_count_lo, bg_free_blocks_count_hi, 16, f.freeBlocksInGroup(g)+cnt)
	}
	return nil
}

// allocInode allocates an inode number, preferring group pref.
func (f *FS) allocInode(pref uint32, dir bool) (uint32, error) {
	if f.readOnly {
		return 0, errReadOnlyFS
	}
	for i := uint32(0); i < f.groups; i++ {
		g := (pref + i) % f.groups
		if f.freeInodesInGroup(g) == 0 {
			continue
		}
		if f.groupFlags(g)&EXT4_BG_BLOCK_UNINIT != 0 {
			if _, err := f.blockBitmap(g); err != nil {
				return 0, err
			}
		}
		bm, err := f.inodeBitmap(g)
		if err != nil {
			return 0, err
		}
		start := uint64(0)
		if g == 0 {
			start = uint64(f.firstIno - 1)
		}
		bit, ok := findZero(bm, start, uint64(f.ipg))
		if !ok {
			continue
		}
		setBit(bm, bit)
		f.bdirty(f.inodeBitmapBlock(g), bm)
		f.setGDField(g, bg_free_inodes_count_lo, bg_free_inodes_count_hi, 16, f.freeInodesInGroup(g)-1)
		if dir {
			f.setGDField(g, bg_used_dirs_count_lo, bg_used_dirs_count_hi, 16, f.usedDirsInGroup(g)+1)
		}
		if f.metaCsum || f.gdtCsum {
			if unused := f.itableUnused(g); bit >= uint64(f.ipg)-unused {
				f.setGDField(g, bg_itable_unused_lo, bg_itable_unused_hi, 16, uint64(f.ipg)-bit-1)
			}
		}
		return g*f.ipg + uint32(bit) + 1, nil
	}
	return 0, errNoSpace
}

func (f *FS) freeInode(ino uint32, dir bool) error {
	g := (ino - 1) / f.ipg
	bit := uint64((ino - 1) % f.ipg)
	bm, err := f.inodeBitmap(g)
	if err != nil {
		return err
	}
	if !testBit(bm, bit) {
		return fmt.Errorf("blockfs: inode %d freed twice: %w", ino, ErrCorrupt)
	}
	clearBit(bm, bit)
	f.bdirty(f.inodeBitmapBlock(g), bm)
	f.setGDField(g, bg_free_inodes_count_lo, bg_free_inodes_count_hi, 16, f.freeInodesInGroup(g)+1)
	if dir {
		if u := f.usedDirsInGroup(g); u > 0 {
			f.setGDField(g, bg_used_dirs_count_lo, bg_used_dirs_count_hi, 16, u-1)
		}
	}
	return nil
}
