package blockfs

import (
	"fmt"
	"sort"
	"syscall"
	"time"
)

// extent maps file blocks [lblk, lblk+len) to device blocks starting at pblk.
type extent struct {
	lblk      uint32
	len       uint32
	pblk      uint64
	unwritten bool
}

// inode is an in-memory inode: its raw on-disk bytes and, once loaded, its
// block mapping as a sorted extent list (whatever the on-disk format).
type inode struct {
	ino   uint32
	raw   []byte
	dirty bool

	mapLoaded bool
	mapDirty  bool
	ext       []extent
	meta      []uint64 // blocks of the on-disk mapping (extent nodes or indirect blocks)

	dataGen uint64 // bumped whenever file data or mapping changes
	parent  uint32 // for directories: parent inode verified through '..'
	// namesChecked is set once a directory's listing was seen to name no
	// directory twice (our own writes never make it so).
	namesChecked bool
	opens        int  // open File handles
	orphan       bool // unlinked while open: freed on last close
	dxDirty      bool
}

func (f *FS) inodeLoc(ino uint32) (uint64, int, error) {
	if ino == 0 || ino > f.inodesCount {
		return 0, 0, fmt.Errorf("blockfs: inode %d out of range: %w", ino, ErrCorrupt)
	}
	g := (ino - 1) / f.ipg
	idx := uint64((ino - 1) % f.ipg)
	off := idx * uint64(f.inodeSize)
	return f.inodeTableBlock(g) + off/uint64(f.bs), int(off % uint64(f.bs)), nil
}

func (f *FS) inodeSeed(ino uint32, gen uint32) uint32 {
	var le [8]byte
	put32(le[:], 0, ino)
	put32(le[:], 4, gen)
	return crc32c(f.csumSeed, le[:])
}

func (f *FS) hasCsumHi(raw []byte) bool {
	return f.inodeSize > EXT4_GOOD_OLD_INODE_SIZE && int(le16(raw, i_extra_isize)) >= EXT4_INODE_CSUM_HI_EXTRA_END
}

func (f *FS) inodeCsum(ino uint32, raw []byte) uint32 {
	var zero [2]byte
	c := f.inodeSeed(ino, le32(raw, i_generation))
	c = crc32c(c, raw[:l_i_checksum_lo])
	c = crc32c(c, zero[:])
	c = crc32c(c, raw[l_i_checksum_lo+2:EXT4_GOOD_OLD_INODE_SIZE])
	if f.inodeSize > EXT4_GOOD_OLD_INODE_SIZE {
		if f.hasCsumHi(raw) {
			c = crc32c(c, raw[EXT4_GOOD_OLD_INODE_SIZE:i_checksum_hi])
			c = crc32c(c, zero[:])
			c = crc32c(c, raw[i_checksum_hi+2:f.inodeSize])
		} else {
			c = crc32c(c, raw[EXT4_GOOD_OLD_INODE_SIZE:f.inodeSize])
		}
	}
	return c
}

// iget returns the in-memory inode ino, reading it if needed.
func (f *FS) iget(ino uint32) (*inode, error) {
	if in, ok := f.inodes[ino]; ok {
		return in, nil
	}
	blk, off, err := f.inodeLoc(ino)
	if err != nil {
		return nil, err
	}
	buf, err := f.bread(blk)
	if err != nil {
		return nil, fmt.Errorf("blockfs: read inode %d: %w", ino, err)
	}
	raw := make([]byte, f.inodeSize)
	copy(raw, buf[off:])
	if f.inodeSize > EXT4_GOOD_OLD_INODE_SIZE {
		if x := int(le16(raw, i_extra_isize)); x > f.inodeSize-EXT4_GOOD_OLD_INODE_SIZE || x%4 != 0 {
			return nil, fmt.Errorf("blockfs: inode %d extra size %d: %w", ino, x, ErrCorrupt)
		}
	}
	if f.metaCsum && !allZero(raw) {
		c := f.inodeCsum(ino, raw)
		got := uint32(le16(raw, l_i_checksum_lo))
		want := c & 0xFFFF
		if f.hasCsumHi(raw) {
			got |= uint32(le16(raw, i_checksum_hi)) << 16
			want = c
		}
		if got != want {
			return nil, fmt.Errorf("blockfs: inode %d checksum %#x, computed %#x: %w", ino, got, want, ErrCorrupt)
		}
	}
	in := &inode{ino: ino, raw: raw}
	f.icacheInsert(in)
	return in, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (f *FS) icacheInsert(in *inode) { f.inodes[in.ino] = in }

// flushInode writes in's mapping and raw bytes into the cached inode table.
func (f *FS) flushInode(in *inode) error {
	if in.mapDirty {
		if err := f.writeMapping(in); err != nil {
			return err
		}
	}
	if !in.dirty {
		return nil
	}
	blk, off, err := f.inodeLoc(in.ino)
	if err != nil {
		return err
	}
	buf, err := f.bread(blk)
	if err != nil {
		return err
	}
	if f.metaCsum {
		c := f.inodeCsum(in.ino, in.raw)
		put16(in.raw, l_i_checksum_lo, uint16(c))
		if f.hasCsumHi(in.raw) {
			put16(in.raw, i_checksum_hi, uint16(c>>16))
		}
	}
	copy(buf[off:off+f.inodeSize], in.raw)
	f.bdirty(blk, buf)
	in.dirty = false
	return nil
}

func (in *inode) mode() uint16  { return le16(in.raw, i_mode) }
func (in *inode) isDir() bool   { return in.mode()&S_IFMT == S_IFDIR }
func (in *inode) isReg() bool   { return in.mode()&S_IFMT == S_IFREG }
func (in *inode) isLink() bool  { return in.mode()&S_IFMT == S_IFLNK }
func (in *inode) flags() uint32 { return le32(in.raw, i_flags) }
func (in *inode) setFlags(v uint32) {
	put32(in.raw, i_flags, v)
	in.dirty = true
}
func (in *inode) size() uint64 {
	return uint64(le32(in.raw, i_size_lo)) | uint64(le32(in.raw, i_size_high))<<32
}
func (in *inode) setSize(v uint64) {
	put32(in.raw, i_size_lo, uint32(v))
	put32(in.raw, i_size_high, uint32(v>>32))
	in.dirty = true
}
func (in *inode) links() uint16 { return le16(in.raw, i_links_count) }
func (in *inode) setLinks(n uint16) {
	put16(in.raw, i_links_count, n)
	in.dirty = true
}
func (in *inode) uid() uint32 {
	return uint32(le16(in.raw, i_uid)) | uint32(le16(in.raw, l_i_uid_high))<<16
}
func (in *inode) gid() uint32 {
	return uint32(le16(in.raw, i_gid)) | uint32(le16(in.raw, l_i_gid_high))<<16
}
func (in *inode) fileACL() uint64 {
	return uint64(le32(in.raw, i_file_acl_lo)) | uint64(le16(in.raw, l_i_file_acl_high))<<32
}
func (in *inode) setFileACL(v uint64) {
	put32(in.raw, i_file_acl_lo, uint32(v))
	put16(in.raw, l_i_file_acl_high, uint16(v>>32))
	in.dirty = true
}

// blocks512 returns i_blocks in 512-byte units.
func (f *FS) blocks512(in *inode) uint64 {
	v := uint64(le32(in.raw, i_blocks_lo))
	if f.roCompat&EXT4_FEATURE_RO_COMPAT_HUGE_FILE != 0 {
		v |= uint64(le16(in.raw, l_i_blocks_high)) << 32
		if in.flags()&EXT4_HUGE_FILE_FL != 0 {
			v <<= f.logBS - 9
		}
	}
	return v
}

// addBlocks adjusts i_blocks by n file system blocks.
func (f *FS) addBlocks(in *inode, n int64) {
	v := int64(f.blocks512(in)) + n<<(f.logBS-9)
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	fl := in.flags() &^ EXT4_HUGE_FILE_FL
	if u>>32 != 0 && f.roCompat&EXT4_FEATURE_RO_COMPAT_HUGE_FILE != 0 && u>>48 != 0 {
		fl |= EXT4_HUGE_FILE_FL
		u >>= f.logBS - 9
	}
	in.setFlags(fl)
	put32(in.raw, i_blocks_lo, uint32(u))
	if f.roCompat&EXT4_FEATURE_RO_COMPAT_HUGE_FILE != 0 {
		put16(in.raw, l_i_blocks_high, uint16(u>>32))
	}
	in.dirty = true
}

// Time fields: seconds in the base field, epoch bits and nanoseconds in the
// extra field when the inode is large enough.
func (f *FS) hasExtra(in *inode, field int) bool {
	return f.inodeSize > EXT4_GOOD_OLD_INODE_SIZE && EXT4_GOOD_OLD_INODE_SIZE+int(le16(in.raw, i_extra_isize)) >= field+4
}

func (f *FS) getTime(in *inode, base, extra int) time.Time {
	sec := int64(int32(le32(in.raw, base)))
	var nsec int64
	if extra != 0 && f.hasExtra(in, extra) {
		x := le32(in.raw, extra)
		sec += int64(x&3) << 32
		nsec = int64(x >> 2)
		if nsec > 999999999 {
			nsec = 0
		}
	}
	return time.Unix(sec, nsec)
}

func (f *FS) setTime(in *inode, base, extra int, t time.Time) {
	sec := t.Unix()
	put32(in.raw, base, uint32(sec))
	if extra != 0 && f.hasExtra(in, extra) {
		epoch := uint32((sec-int64(int32(sec)))>>32) & 3
		put32(in.raw, extra, uint32(t.Nanosecond())<<2|epoch)
	}
	in.dirty = true
}

func (f *FS) touch(in *inode, m, c bool) {
	t := f.now()
	if m {
		f.setTime(in, i_mtime, i_mtime_extra, t)
	}
	if c {
		f.setTime(in, i_ctime, i_ctime_extra, t)
	}
}

// ---- block mapping ----

func (f *FS) extentBlockCsum(in *inode, blk []byte, max int) uint32 {
	return crc32c(f.inodeSeed(in.ino, le32(in.raw, i_generation)), blk[:extentHeaderSize+max*extentEntrySize])
}

// loadMapping reads in's block mapping into in.ext.
func (f *FS) loadMapping(in *inode) error {
	if in.mapLoaded {
		return nil
	}
	in.ext, in.meta = nil, nil
	if in.flags()&EXT4_INLINE_DATA_FL != 0 {
		return fmt.Errorf("blockfs: inode %d: inline data: %w", in.ino, ErrUnsupportedFeature)
	}
	if t := in.mode() & S_IFMT; f.isFastSymlink(in) || t != S_IFREG && t != S_IFDIR && t != S_IFLNK {
		// Device numbers (not block pointers) live in i_block of device
		// nodes; fifos and sockets have no data.
		in.mapLoaded = true
		return nil
	}
	var err error
	if in.flags()&EXT4_EXTENTS_FL != 0 {
		err = f.loadExtentNode(in, in.raw[i_block:i_block+iBlockLen], -1, 0)
	} else {
		err = f.loadBlockMap(in)
	}
	if err != nil {
		in.ext, in.meta = nil, nil
		return err
	}
	// Validate order and overlap.
	for i := range in.ext {
		e := in.ext[i]
		if e.len == 0 || uint64(e.lblk)+uint64(e.len) > 1<<32 || e.pblk < uint64(f.firstDataBlock) || e.pblk+uint64(e.len) > f.blocksCount {
			return fmt.Errorf("blockfs: inode %d: bad extent %d+%d at %d: %w", in.ino, e.lblk, e.len, e.pblk, ErrCorrupt)
		}
		if i > 0 && in.ext[i-1].lblk+in.ext[i-1].len > e.lblk {
			return fmt.Errorf("blockfs: inode %d: overlapping extents: %w", in.ino, ErrCorrupt)
		}
	}
	in.mapLoaded = true
	return nil
}

func (f *FS) loadExtentNode(in *inode, node []byte, depth int, nodes int) error {
	if le16(node, eh_magic) != EXT4_EXT_MAGIC {
		return fmt.Errorf("blockfs: inode %d: bad extent header magic: %w", in.ino, ErrCorrupt)
	}
	n, max, d := int(le16(node, eh_entries)), int(le16(node, eh_max)), int(le16(node, eh_depth))
	if max*extentEntrySize+extentHeaderSize > len(node) || n > max || d > EXT4_MAX_EXTENT_DEPTH || (depth >= 0 && d != depth) {
		return fmt.Errorf("blockfs: inode %d: bad extent header (entries %d max %d depth %d): %w", in.ino, n, max, d, ErrCorrupt)
	}
	if uint64(len(in.meta)) > f.blocksCount || uint64(len(in.ext)) > f.blocksCount {
		return fmt.Errorf("blockfs: inode %d: extent tree too large: %w", in.ino, ErrCorrupt)
	}
	for i := 0; i < n; i++ {
		e := node[extentHeaderSize+i*extentEntrySize:]
		if d == 0 {
			l := uint32(le16(e, ee_len))
			unwritten := false
			if l > EXT_INIT_MAX_LEN {
				l -= EXT_INIT_MAX_LEN
				unwritten = true
			}
			in.ext = append(in.ext, extent{
				lblk:      le32(e, ee_block),
				len:       l,
				pblk:      uint64(le16(e, ee_start_hi))<<32 | uint64(le32(e, ee_start_lo)),
				unwritten: unwritten,
			})
			continue
		}
		child := uint64(le16(e, ei_leaf_hi))<<32 | uint64(le32(e, ei_leaf_lo))
		buf, err := f.bread(child)
		if err != nil {
			return fmt.Errorf("blockfs: inode %d: extent node: %w", in.ino, err)
		}
		cmax := int(le16(buf, eh_max))
		if f.metaCsum && extentHeaderSize+cmax*extentEntrySize+extentTailSize <= f.bs {
			if got, want := le32(buf, extentHeaderSize+cmax*extentEntrySize), f.extentBlockCsum(in, buf, cmax); got != want {
				return fmt.Errorf("blockfs: inode %d: extent block %d checksum %#x, computed %#x: %w", in.ino, child, got, want, ErrCorrupt)
			}
		}
		in.meta = append(in.meta, child)
		if err := f.loadExtentNode(in, buf, d-1, nodes+1); err != nil {
			return err
		}
	}
	return nil
}

func (f *FS) loadBlockMap(in *inode) error {
	per := uint64(f.bs / 4)
	var lblk uint64
	add := func(p uint64) error {
		if p != 0 {
			if lblk >= 1<<32 || uint64(len(in.ext)) > f.blocksCount {
				return fmt.Errorf("blockfs: inode %d: block map too large: %w", in.ino, ErrCorrupt)
			}
			if k := len(in.ext); k > 0 {
				last := &in.ext[k-1]
				if uint64(last.lblk)+uint64(last.len) == lblk && last.pblk+uint64(last.len) == p && last.len < EXT_INIT_MAX_LEN {
					last.len++
					lblk++
					return nil
				}
			}
			in.ext = append(in.ext, extent{lblk: uint32(lblk), len: 1, pblk: p})
		}
		lblk++
		return nil
	}
	var walk func(blk uint64, level int) error
	walk = func(blk uint64, level int) error {
		if blk == 0 {
			span := uint64(1)
			for i := 0; i < level; i++ {
				span *= per
			}
			lblk += span
			return nil
		}
		if level == 0 {
			return add(blk)
		}
		buf, err := f.bread(blk)
		if err != nil {
			return fmt.Errorf("blockfs: inode %d: indirect block: %w", in.ino, err)
		}
		in.meta = append(in.meta, blk)
		if uint64(len(in.meta)) > f.blocksCount {
			return fmt.Errorf("blockfs: inode %d: block map too large: %w", in.ino, ErrCorrupt)
		}
		ptrs := make([]uint32, per)
		for i := range ptrs {
			ptrs[i] = le32(buf, 4*i)
		}
		for _, p := range ptrs {
			if err := walk(uint64(p), level-1); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 0; i < EXT4_NDIR_BLOCKS; i++ {
		if err := add(uint64(le32(in.raw, i_block+4*i))); err != nil {
			return err
		}
	}
	for lvl := 1; lvl <= 3; lvl++ {
		if err := walk(uint64(le32(in.raw, i_block+4*(EXT4_NDIR_BLOCKS+lvl-1))), lvl); err != nil {
			return err
		}
	}
	return nil
}

func (f *FS) isFastSymlink(in *inode) bool {
	if !in.isLink() {
		return false
	}
	ea := uint64(0)
	if in.fileACL() != 0 {
		ea = uint64(f.bs) >> 9
	}
	return f.blocks512(in)-ea == 0 || (f.blocks512(in) < ea && in.size() < iBlockLen)
}

// findExt returns the index of the extent containing lblk, or -1 and the
// index of the first extent after lblk.
func (in *inode) findExt(lblk uint32) (int, int) {
	i := sort.Search(len(in.ext), func(i int) bool { return in.ext[i].lblk+in.ext[i].len > lblk })
	if i < len(in.ext) && in.ext[i].lblk <= lblk {
		return i, i
	}
	return -1, i
}

// bmap maps lblk to a device block; ok is false for holes and unwritten
// extents. n is how many following blocks share the answer (contiguously).
func (in *inode) bmap(lblk uint32) (pblk uint64, n uint32, ok bool) {
	i, next := in.findExt(lblk)
	if i < 0 {
		if next < len(in.ext) {
			return 0, in.ext[next].lblk - lblk, false
		}
		return 0, ^uint32(0) - lblk, false
	}
	e := in.ext[i]
	return e.pblk + uint64(lblk-e.lblk), e.lblk + e.len - lblk, !e.unwritten
}

// insertExt adds e (not overlapping any extent) keeping order, merging
// with neighbours.
func (in *inode) insertExt(e extent) {
	_, i := in.findExt(e.lblk)
	if i > 0 {
		p := &in.ext[i-1]
		if p.lblk+p.len == e.lblk && p.pblk+uint64(p.len) == e.pblk && p.unwritten == e.unwritten && uint64(p.len)+uint64(e.len) <= maxExtLen(e.unwritten) {
			p.len += e.len
			if i < len(in.ext) {
				n := in.ext[i]
				if p.lblk+p.len == n.lblk && p.pblk+uint64(p.len) == n.pblk && n.unwritten == p.unwritten && uint64(p.len)+uint64(n.len) <= maxExtLen(p.unwritten) {
					p.len += n.len
					in.ext = append(in.ext[:i], in.ext[i+1:]...)
				}
			}
			in.mapDirty = true
			return
		}
	}
	in.ext = append(in.ext, extent{})
	copy(in.ext[i+1:], in.ext[i:])
	in.ext[i] = e
	in.mapDirty = true
}

func maxExtLen(unwritten bool) uint64 {
	if unwritten {
		return EXT_UNINIT_MAX_LEN
	}
	return EXT_INIT_MAX_LEN
}

// removeRange unmaps [lblk, lblk+n) from the extent list (without freeing
// anything), splitting extents as needed.
func (in *inode) removeRange(lblk, n uint32) {
	end := uint64(lblk) + uint64(n)
	var out []extent
	for _, e := range in.ext {
		es, ee := uint64(e.lblk), uint64(e.lblk)+uint64(e.len)
		if ee <= uint64(lblk) || es >= end {
			out = append(out, e)
			continue
		}
		if es < uint64(lblk) {
			out = append(out, extent{lblk: e.lblk, len: lblk - e.lblk, pblk: e.pblk, unwritten: e.unwritten})
		}
		if ee > end {
			out = append(out, extent{lblk: uint32(end), len: uint32(ee - end), pblk: e.pblk + (end - es), unwritten: e.unwritten})
		}
	}
	in.ext = out
	in.mapDirty = true
}

// markWritten converts [lblk, lblk+n) inside the unwritten extent idx into
// a written extent.
func (in *inode) markWritten(idx int, lblk, n uint32) {
	e := in.ext[idx]
	var parts []extent
	if lblk > e.lblk {
		parts = append(parts, extent{lblk: e.lblk, len: lblk - e.lblk, pblk: e.pblk, unwritten: true})
	}
	parts = append(parts, extent{lblk: lblk, len: n, pblk: e.pblk + uint64(lblk-e.lblk)})
	if end := lblk + n; end < e.lblk+e.len {
		parts = append(parts, extent{lblk: end, len: e.lblk + e.len - end, pblk: e.pblk + uint64(end-e.lblk), unwritten: true})
	}
	in.ext = append(in.ext[:idx], append(parts, in.ext[idx+1:]...)...)
	in.mapDirty = true
}

// truncateBlocks frees every mapped block at or after file block from.
func (f *FS) truncateBlocks(in *inode, from uint64) error {
	if err := f.loadMapping(in); err != nil {
		return err
	}
	in.dataGen++
	keep := in.ext[:0]
	var freed int64
	for _, e := range in.ext {
		switch {
		case uint64(e.lblk)+uint64(e.len) <= from:
			keep = append(keep, e)
		case uint64(e.lblk) >= from:
			if err := f.freeBlocks(e.pblk, uint64(e.len)); err != nil {
				return err
			}
			freed += int64(e.len)
		default:
			cut := uint32(from - uint64(e.lblk))
			if err := f.freeBlocks(e.pblk+uint64(cut), uint64(e.len-cut)); err != nil {
				return err
			}
			freed += int64(e.len - cut)
			e.len = cut
			keep = append(keep, e)
		}
	}
	in.ext = keep
	in.mapDirty = true
	f.addBlocks(in, -freed)
	return nil
}

// writeMapping stores in.ext on disk as an extent tree (converting a
// block-mapped file), reusing the previous tree blocks where possible.
func (f *FS) writeMapping(in *inode) error {
	if f.incompat&EXT4_FEATURE_INCOMPAT_EXTENTS == 0 {
		return f.writeBlockMap(in)
	}
	// Merge neighbours and split over-long extents.
	var exts []extent
	for _, e := range in.ext {
		if k := len(exts); k > 0 {
			p := &exts[k-1]
			if p.lblk+p.len == e.lblk && p.pblk+uint64(p.len) == e.pblk && p.unwritten == e.unwritten && uint64(p.len)+uint64(e.len) <= maxExtLen(e.unwritten) {
				p.len += e.len
				continue
			}
		}
		for uint64(e.len) > maxExtLen(e.unwritten) {
			m := uint32(maxExtLen(e.unwritten))
			exts = append(exts, extent{lblk: e.lblk, len: m, pblk: e.pblk, unwritten: e.unwritten})
			e.lblk += m
			e.pblk += uint64(m)
			e.len -= m
		}
		exts = append(exts, e)
	}
	in.ext = exts

	per := (f.bs - extentHeaderSize) / extentEntrySize
	const rootMax = (iBlockLen - extentHeaderSize) / extentEntrySize
	// Plan levels bottom-up: level 0 holds extents.
	type entry struct {
		lblk uint32
		ptr  uint64
	}
	var levels [][]int // number of entries per node at each block level
	count := len(exts)
	for count > rootMax {
		nodes := (count + per - 1) / per
		sizes := make([]int, nodes)
		for i := range sizes {
			sizes[i] = per
		}
		sizes[nodes-1] = count - per*(nodes-1)
		levels = append(levels, sizes)
		count = nodes
	}
	need := 0
	for _, l := range levels {
		need += len(l)
	}
	if len(levels) > EXT4_MAX_EXTENT_DEPTH {
		return fmt.Errorf("blockfs: inode %d: extent tree too deep", in.ino)
	}
	old := in.meta
	var blocks []uint64
	for len(blocks) < need && len(old) > 0 {
		blocks = append(blocks, old[0])
		old = old[1:]
	}
	for len(blocks) < need {
		goal := uint64(0)
		if len(exts) > 0 {
			goal = exts[0].pblk
		}
		b, _, err := f.allocBlocks(goal, 1)
		if err != nil {
			return err
		}
		f.addBlocks(in, 1)
		blocks = append(blocks, b)
	}
	for _, b := range old {
		if err := f.freeBlocks(b, 1); err != nil {
			return err
		}
		f.addBlocks(in, -1)
	}
	in.meta = blocks

	// Current entries, starting with the extents themselves.
	cur := make([]entry, len(exts))
	for i, e := range exts {
		cur[i] = entry{lblk: e.lblk, ptr: uint64(i)}
	}
	gen := le32(in.raw, i_generation)
	_ = gen
	bi := 0
	writeNode := func(node []byte, max, depth int, ents []entry) {
		clear(node)
		put16(node, eh_magic, EXT4_EXT_MAGIC)
		put16(node, eh_entries, uint16(len(ents)))
		put16(node, eh_max, uint16(max))
		put16(node, eh_depth, uint16(depth))
		for i, en := range ents {
			o := extentHeaderSize + i*extentEntrySize
			if depth == 0 {
				e := exts[en.ptr]
				put32(node, o+ee_block, e.lblk)
				l := uint16(e.len)
				if e.unwritten {
					l += EXT_INIT_MAX_LEN
				}
				put16(node, o+ee_len, l)
				put16(node, o+ee_start_hi, uint16(e.pblk>>32))
				put32(node, o+ee_start_lo, uint32(e.pblk))
			} else {
				put32(node, o+ei_block, en.lblk)
				put32(node, o+ei_leaf_lo, uint32(en.ptr))
				put16(node, o+ei_leaf_hi, uint16(en.ptr>>32))
			}
		}
	}
	for depth, sizes := range levels {
		var next []entry
		pos := 0
		for _, n := range sizes {
			blk := blocks[bi]
			bi++
			node := f.bnew(blk)
			writeNode(node, per, depth, cur[pos:pos+n])
			if f.metaCsum {
				put32(node, extentHeaderSize+per*extentEntrySize, f.extentBlockCsum(in, node, per))
			}
			next = append(next, entry{lblk: cur[pos].lblk, ptr: blk})
			pos += n
		}
		cur = next
	}
	root := make([]byte, iBlockLen)
	writeNode(root, rootMax, len(levels), cur)
	copy(in.raw[i_block:], root)
	in.setFlags(in.flags() | EXT4_EXTENTS_FL)
	in.mapDirty = false
	in.dirty = true
	return nil
}

// blockMapLimit is the number of file blocks a block map can address.
func (f *FS) blockMapLimit() uint64 {
	per := uint64(f.bs / 4)
	return EXT4_NDIR_BLOCKS + per + per*per + per*per*per
}

// writeBlockMap stores in.ext as an ext2/ext3 block map (direct, indirect,
// double and triple indirect blocks), reusing old indirect blocks.
func (f *FS) writeBlockMap(in *inode) error {
	per := uint64(f.bs / 4)
	for _, e := range in.ext {
		if e.unwritten {
			return fmt.Errorf("blockfs: inode %d: unwritten extent in a block map: %w", in.ino, ErrCorrupt)
		}
		if uint64(e.lblk)+uint64(e.len) > f.blockMapLimit() || e.pblk+uint64(e.len) > 1<<32 {
			return fmt.Errorf("blockfs: inode %d: block beyond a block map's reach: %w", in.ino, syscall.EFBIG)
		}
	}
	pool := in.meta
	var meta []uint64
	getBlock := func() (uint64, []byte, error) {
		var b uint64
		if len(pool) > 0 {
			b, pool = pool[0], pool[1:]
		} else {
			goal := uint64(0)
			if len(in.ext) > 0 {
				goal = in.ext[0].pblk
			}
			nb, _, err := f.allocBlocks(goal, 1)
			if err != nil {
				return 0, nil, err
			}
			f.addBlocks(in, 1)
			b = nb
		}
		meta = append(meta, b)
		return b, f.bnew(b), nil
	}
	// mapped reports whether any block in [lo, lo+n) is mapped.
	mapped := func(lo, n uint64) bool {
		_, i := in.findExt(uint32(min(lo, 1<<32-1)))
		if i < len(in.ext) && uint64(in.ext[i].lblk) < lo+n && lo < 1<<32 {
			return true
		}
		return false
	}
	lookup := func(l uint64) uint32 {
		if l >= 1<<32 {
			return 0
		}
		p, _, ok := in.bmap(uint32(l))
		if !ok {
			return 0
		}
		return uint32(p)
	}
	// build writes the indirect tree of the given level covering file
	// blocks from base and returns its block (0 if nothing is mapped).
	var build func(level int, base uint64) (uint32, error)
	build = func(level int, base uint64) (uint32, error) {
		span := uint64(1)
		for i := 0; i < level; i++ {
			span *= per
		}
		if !mapped(base, span) {
			return 0, nil
		}
		blk, buf, err := getBlock()
		if err != nil {
			return 0, err
		}
		sub := span / per
		for i := uint64(0); i < per; i++ {
			var v uint32
			if level == 1 {
				v = lookup(base + i)
			} else if v, err = build(level-1, base+i*sub); err != nil {
				return 0, err
			}
			put32(buf, int(4*i), v)
		}
		f.bdirty(blk, buf)
		return uint32(blk), nil
	}
	var iblock [15]uint32
	for i := 0; i < EXT4_NDIR_BLOCKS; i++ {
		iblock[i] = lookup(uint64(i))
	}
	base := uint64(EXT4_NDIR_BLOCKS)
	span := per
	for lvl := 1; lvl <= 3; lvl++ {
		v, err := build(lvl, base)
		if err != nil {
			return err
		}
		iblock[EXT4_NDIR_BLOCKS+lvl-1] = v
		base += span
		span *= per
	}
	for _, b := range pool {
		if err := f.freeBlocks(b, 1); err != nil {
			return err
		}
		f.addBlocks(in, -1)
	}
	in.meta = meta
	for i, v := range iblock {
		put32(in.raw, i_block+4*i, v)
	}
	in.setFlags(in.flags() &^ EXT4_EXTENTS_FL)
	in.mapDirty = false
	in.dirty = true
	return nil
}
