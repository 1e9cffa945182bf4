package blockfs

import (
	"fmt"
	"slices"
	"syscall"
)

type dirent struct {
	ino   uint32
	ftype uint8
	name  string
}

func recLen(b []byte, off int) int {
	v := int(le16(b, off+4))
	if v == 0 || v == 65535 {
		return 65536
	}
	return v&^3 | (v&3)<<16
}

func direntSize(nameLen int) int { return (direntHeaderSize + nameLen + 3) &^ 3 }

// hasDirTail reports whether blk ends with a checksum tail entry.
func (f *FS) hasDirTail(b []byte) bool {
	t := b[f.bs-direntTailSize:]
	return le32(t, 0) == 0 && le16(t, 4) == direntTailSize && t[6] == 0 && t[7] == EXT4_FT_DIR_CSUM
}

func (f *FS) dirUsable() int {
	if f.metaCsum {
		return f.bs - direntTailSize
	}
	return f.bs
}

func (f *FS) setDirTail(dir *inode, b []byte) {
	if !f.metaCsum {
		return
	}
	t := b[f.bs-direntTailSize:]
	clear(t)
	put16(t, 4, direntTailSize)
	t[7] = EXT4_FT_DIR_CSUM
	put32(t, 8, crc32c(f.inodeSeed(dir.ino, le32(dir.raw, i_generation)), b[:f.bs-direntTailSize]))
}

// dirBlock returns the cached contents of directory block lblk and its
// device block number.
func (f *FS) dirBlock(dir *inode, lblk uint32) ([]byte, uint64, error) {
	if err := f.loadMapping(dir); err != nil {
		return nil, 0, err
	}
	p, _, ok := dir.bmap(lblk)
	if !ok {
		return nil, 0, nil
	}
	b, err := f.bread(p)
	if err != nil {
		return nil, 0, fmt.Errorf("blockfs: directory inode %d block %d: %w", dir.ino, lblk, err)
	}
	return b, p, nil
}

func (f *FS) dirBlocks(dir *inode) uint32 {
	n := dir.size() / uint64(f.bs)
	if n > 1<<31 {
		n = 1 << 31
	}
	return uint32(n)
}

// forEachDirBlock calls fn for each mapped block of dir below its size,
// in order; fn returns true to stop.
func (f *FS) forEachDirBlock(dir *inode, fn func(l uint32, b []byte, p uint64) (bool, error)) error {
	if err := f.loadMapping(dir); err != nil {
		return err
	}
	n := f.dirBlocks(dir)
	for i := 0; i < len(dir.ext); i++ {
		e := dir.ext[i]
		if e.unwritten {
			continue
		}
		for k := uint32(0); k < e.len && e.lblk+k < n; k++ {
			b, err := f.bread(e.pblk + uint64(k))
			if err != nil {
				return fmt.Errorf("blockfs: directory inode %d block %d: %w", dir.ino, e.lblk+k, err)
			}
			stop, err := fn(e.lblk+k, b, e.pblk+uint64(k))
			if err != nil || stop {
				return err
			}
		}
	}
	return nil
}

// walkBlock calls fn for each entry (live or free) in a leaf block; fn
// returns false to stop. It validates the entries.
func (f *FS) walkBlock(dir *inode, b []byte, fn func(off, rl int, ino uint32, name []byte, ft uint8) bool) error {
	end := f.bs
	if f.metaCsum && f.hasDirTail(b) {
		end -= direntTailSize
	}
	for off := 0; off < end; {
		if off+direntHeaderSize > end {
			return fmt.Errorf("blockfs: directory inode %d: truncated entry at %d: %w", dir.ino, off, ErrCorrupt)
		}
		rl := recLen(b, off)
		nl := int(b[off+6])
		if rl < direntHeaderSize || rl%4 != 0 || off+rl > end || direntHeaderSize+nl > rl {
			return fmt.Errorf("blockfs: directory inode %d: bad entry at %d (rec_len %d): %w", dir.ino, off, rl, ErrCorrupt)
		}
		if !fn(off, rl, le32(b, off), b[off+8:off+8+nl], b[off+7]) {
			return nil
		}
		off += rl
	}
	return nil
}

func (f *FS) verifyDirBlock(dir *inode, b []byte) error {
	if f.metaCsum && f.hasDirTail(b) {
		want := crc32c(f.inodeSeed(dir.ino, le32(dir.raw, i_generation)), b[:f.bs-direntTailSize])
		if got := le32(b, f.bs-4); got != want {
			return fmt.Errorf("blockfs: directory inode %d: block checksum %#x, computed %#x: %w", dir.ino, got, want, ErrCorrupt)
		}
	}
	return nil
}

// readDirAll lists every live entry of dir, "." and ".." included.
func (f *FS) readDirAll(dir *inode) ([]dirent, error) {
	var out []dirent
	err := f.forEachDirBlock(dir, func(l uint32, b []byte, _ uint64) (bool, error) {
		if f.isDxNode(dir, l, b) {
			if l == 0 {
				out = append(out, dirent{ino: dir.ino, ftype: EXT4_FT_DIR, name: "."}, dirent{ino: le32(b, 12), ftype: EXT4_FT_DIR, name: ".."})
			}
			return false, nil
		}
		if err := f.verifyDirBlock(dir, b); err != nil {
			return true, err
		}
		err := f.walkBlock(dir, b, func(_, _ int, ino uint32, name []byte, ft uint8) bool {
			if ino != 0 && len(name) > 0 {
				out = append(out, dirent{ino: ino, ftype: ft, name: string(name)})
			}
			return true
		})
		return false, err
	})
	return out, err
}

// isDxNode reports whether block lblk of dir is an htree index block.
func (f *FS) isDxNode(dir *inode, lblk uint32, b []byte) bool {
	if dir.flags()&EXT4_INDEX_FL == 0 {
		return false
	}
	if lblk == 0 {
		return true
	}
	return le32(b, 0) == 0 && recLen(b, 0) == f.bs && b[6] == 0
}

// lookup finds name in dir, returning its inode number (0 if absent).
func (f *FS) lookup(dir *inode, name string) (uint32, uint8, error) {
	if dir.flags()&EXT4_INDEX_FL != 0 && f.compat&EXT4_FEATURE_COMPAT_DIR_INDEX != 0 {
		ino, ft, err := f.dxLookup(dir, name)
		if err == nil {
			return ino, ft, nil
		}
		// A damaged index: fall back to a linear scan.
	}
	var ino uint32
	var ft uint8
	err := f.forEachDirBlock(dir, func(l uint32, b []byte, _ uint64) (bool, error) {
		if f.isDxNode(dir, l, b) {
			if l == 0 && name == ".." {
				ino, ft = le32(b, 12), EXT4_FT_DIR
				return true, nil
			}
			if l == 0 && name == "." {
				ino, ft = dir.ino, EXT4_FT_DIR
				return true, nil
			}
			return false, nil
		}
		var err error
		ino, ft, err = f.searchLeaf(dir, b, name)
		return ino != 0, err
	})
	return ino, ft, err
}

func (f *FS) searchLeaf(dir *inode, b []byte, name string) (uint32, uint8, error) {
	var ino uint32
	var ft uint8
	err := f.walkBlock(dir, b, func(_, _ int, i uint32, n []byte, t uint8) bool {
		if i != 0 && string(n) == name {
			ino, ft = i, t
			return false
		}
		return true
	})
	return ino, ft, err
}

// insertInBlock places an entry in leaf block b if it has room.
func (f *FS) insertInBlock(dir *inode, b []byte, name string, ino uint32, ft uint8) (bool, error) {
	need := direntSize(len(name))
	done := false
	err := f.walkBlock(dir, b, func(off, rl int, i uint32, n []byte, _ uint8) bool {
		used := 0
		if i != 0 {
			used = direntSize(len(n))
		}
		if rl-used < need {
			return true
		}
		if i != 0 {
			put16(b, off+4, uint16(used))
			off += used
			rl -= used
		}
		put32(b, off, ino)
		put16(b, off+4, uint16(rl))
		b[off+6] = byte(len(name))
		b[off+7] = f.ftype(ft)
		copy(b[off+8:], name)
		clear(b[off+8+len(name) : off+rl])
		done = true
		return false
	})
	return done, err
}

func (f *FS) ftype(ft uint8) uint8 {
	if f.incompat&EXT4_FEATURE_INCOMPAT_FILETYPE == 0 {
		return 0
	}
	return ft
}

// newDirBlock appends an empty block to dir and returns it.
func (f *FS) newDirBlock(dir *inode) (uint32, []byte, uint64, error) {
	if err := f.loadMapping(dir); err != nil {
		return 0, nil, 0, err
	}
	l := f.dirBlocks(dir)
	goal := uint64(0)
	if len(dir.ext) > 0 {
		e := dir.ext[len(dir.ext)-1]
		goal = e.pblk + uint64(e.len)
	}
	p, _, err := f.allocBlocks(goal, 1)
	if err != nil {
		return 0, nil, 0, err
	}
	if err := f.addExtent(dir, extent{lblk: l, len: 1, pblk: p}); err != nil {
		return 0, nil, 0, err
	}
	dir.setSize(uint64(l+1) * uint64(f.bs))
	b := f.bnew(p)
	return l, b, p, nil
}

func (f *FS) initLeaf(b []byte) {
	clear(b)
	put16(b, 4, uint16(f.dirUsable()))
}

// addEntry adds name → ino to dir. The caller checked name is absent.
func (f *FS) addEntry(dir *inode, name string, ino uint32, ft uint8) error {
	if len(name) == 0 || len(name) > EXT4_NAME_LEN {
		return syscall.ENAMETOOLONG
	}
	defer f.touch(dir, true, true)
	if dir.flags()&EXT4_INDEX_FL != 0 {
		if f.compat&EXT4_FEATURE_COMPAT_DIR_INDEX != 0 {
			return f.dxAdd(dir, name, ino, ft)
		}
		// An index we cannot maintain: keep it valid by rewriting.
	}
	done := false
	err := f.forEachDirBlock(dir, func(_ uint32, b []byte, p uint64) (bool, error) {
		ok, err := f.insertInBlock(dir, b, name, ino, ft)
		if err != nil || !ok {
			return err != nil, err
		}
		f.setDirTail(dir, b)
		f.bdirty(p, b)
		done = true
		return true, nil
	})
	if err != nil || done {
		return err
	}
	n := f.dirBlocks(dir)
	if f.compat&EXT4_FEATURE_COMPAT_DIR_INDEX != 0 && n >= 1 {
		return f.dxRebuild(dir, &dirent{ino: ino, ftype: f.ftype(ft), name: name})
	}
	_, b, p, err := f.newDirBlock(dir)
	if err != nil {
		return err
	}
	f.initLeaf(b)
	if _, err := f.insertInBlock(dir, b, name, ino, ft); err != nil {
		return err
	}
	f.setDirTail(dir, b)
	f.bdirty(p, b)
	return nil
}

// modifyEntry finds name in dir and calls fn on its block and offset.
func (f *FS) modifyEntry(dir *inode, name string, fn func(b []byte, prev, off int)) (bool, error) {
	found := false
	err := f.forEachDirBlock(dir, func(l uint32, b []byte, p uint64) (bool, error) {
		if f.isDxNode(dir, l, b) {
			return false, nil
		}
		prev, at := -1, -1
		err := f.walkBlock(dir, b, func(off, _ int, i uint32, nm []byte, _ uint8) bool {
			if i != 0 && string(nm) == name {
				at = off
				return false
			}
			prev = off
			return true
		})
		if err != nil || at < 0 {
			return err != nil, err
		}
		fn(b, prev, at)
		f.setDirTail(dir, b)
		f.bdirty(p, b)
		f.touch(dir, true, true)
		found = true
		return true, nil
	})
	return found, err
}

// removeEntry deletes name from dir.
func (f *FS) removeEntry(dir *inode, name string) error {
	ok, err := f.modifyEntry(dir, name, func(b []byte, prev, off int) {
		if prev >= 0 {
			put16(b, prev+4, uint16(recLen(b, prev)+recLen(b, off)))
			return
		}
		put32(b, off, 0)
	})
	if err == nil && !ok {
		err = fmt.Errorf("blockfs: directory inode %d: entry %q vanished: %w", dir.ino, name, ErrCorrupt)
	}
	return err
}

// setEntry points the existing entry name at ino.
func (f *FS) setEntry(dir *inode, name string, ino uint32, ft uint8) error {
	if name == ".." && dir.flags()&EXT4_INDEX_FL != 0 {
		b, p, err := f.dirBlock(dir, 0)
		if err != nil || b == nil {
			return fmt.Errorf("blockfs: directory inode %d: no root block: %w", dir.ino, ErrCorrupt)
		}
		put32(b, 12, ino)
		f.setDxTail(dir, b, 0)
		f.bdirty(p, b)
		return nil
	}
	ok, err := f.modifyEntry(dir, name, func(b []byte, _, off int) {
		put32(b, off, ino)
		b[off+7] = f.ftype(ft)
	})
	if err == nil && !ok {
		err = fmt.Errorf("blockfs: directory inode %d: entry %q vanished: %w", dir.ino, name, ErrCorrupt)
	}
	return err
}

// isEmptyDir reports whether dir holds only "." and "..".
func (f *FS) isEmptyDir(dir *inode) (bool, error) {
	ents, err := f.readDirAll(dir)
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		if e.name != "." && e.name != ".." {
			return false, nil
		}
	}
	return true, nil
}

func modeToFT(mode uint16) uint8 {
	switch mode & S_IFMT {
	case S_IFREG:
		return EXT4_FT_REG_FILE
	case S_IFDIR:
		return EXT4_FT_DIR
	case S_IFCHR:
		return EXT4_FT_CHRDEV
	case S_IFBLK:
		return EXT4_FT_BLKDEV
	case S_IFIFO:
		return EXT4_FT_FIFO
	case S_IFSOCK:
		return EXT4_FT_SOCK
	case S_IFLNK:
		return EXT4_FT_SYMLINK
	}
	return EXT4_FT_UNKNOWN
}

// ---- htree ----

type dxLevel struct {
	lblk  uint32
	b     []byte
	p     uint64
	coff  int // offset of count/limit
	idx   int // chosen entry
	count int
	limit int
}

func (f *FS) dxLimit(root bool) int {
	off := dxNodeEntries
	if root {
		off = dxRootEntries
	}
	n := (f.bs - off) / dxEntrySize
	if f.metaCsum {
		n--
	}
	return n
}

func (f *FS) dxHashVersion(root []byte) uint8 {
	v := root[dxRootInfoOffset+4]
	if v <= DX_HASH_TEA && le32(f.sb, s_flags)&EXT2_FLAGS_UNSIGNED_HASH != 0 {
		v += 3
	}
	return v
}

// dxProbe walks the index from the root to the leaf for hash.
func (f *FS) dxProbe(dir *inode, hash uint32) ([]dxLevel, uint8, error) {
	b, p, err := f.dirBlock(dir, 0)
	if err != nil {
		return nil, 0, err
	}
	if b == nil {
		return nil, 0, fmt.Errorf("blockfs: directory inode %d: missing htree root: %w", dir.ino, ErrCorrupt)
	}
	info := b[dxRootInfoOffset:]
	levels := int(info[6])
	maxLevels := 2
	if f.incompat&EXT4_FEATURE_INCOMPAT_LARGEDIR != 0 {
		maxLevels = 3
	}
	if le32(info, 0) != 0 || info[5] != 8 || levels >= maxLevels || info[7] != 0 {
		return nil, 0, fmt.Errorf("blockfs: directory inode %d: bad htree root: %w", dir.ino, ErrCorrupt)
	}
	ver := f.dxHashVersion(b)
	if ver > DX_HASH_TEA_UNSIGNED {
		return nil, 0, fmt.Errorf("blockfs: directory inode %d: hash version %d: %w", dir.ino, ver, ErrUnsupportedFeature)
	}
	var path []dxLevel
	lv := dxLevel{lblk: 0, b: b, p: p, coff: dxRootEntries}
	for depth := 0; ; depth++ {
		lv.limit = int(le16(lv.b, lv.coff))
		lv.count = int(le16(lv.b, lv.coff+2))
		if lv.count == 0 || lv.count > lv.limit || lv.coff+lv.limit*dxEntrySize > f.bs {
			return nil, 0, fmt.Errorf("blockfs: directory inode %d: bad htree node (count %d limit %d): %w", dir.ino, lv.count, lv.limit, ErrCorrupt)
		}
		// Last entry whose hash <= hash (entry 0 has an implicit hash of 0).
		lo, hi := 1, lv.count-1
		for lo <= hi {
			m := (lo + hi) / 2
			if le32(lv.b, lv.coff+m*dxEntrySize) > hash {
				hi = m - 1
			} else {
				lo = m + 1
			}
		}
		lv.idx = lo - 1
		path = append(path, lv)
		child := le32(lv.b, lv.coff+lv.idx*dxEntrySize+4)
		if depth == levels {
			return path, ver, nil
		}
		cb, cp, err := f.dirBlock(dir, child)
		if err != nil {
			return nil, 0, err
		}
		if cb == nil || child == 0 {
			return nil, 0, fmt.Errorf("blockfs: directory inode %d: htree points at a hole: %w", dir.ino, ErrCorrupt)
		}
		lv = dxLevel{lblk: child, b: cb, p: cp, coff: dxNodeEntries}
	}
}

func (f *FS) dxLeaf(path []dxLevel) uint32 {
	lv := path[len(path)-1]
	return le32(lv.b, lv.coff+lv.idx*dxEntrySize+4)
}

// dxNext advances path to the next leaf; it returns the new leaf's hash.
func (f *FS) dxNext(dir *inode, path []dxLevel) (uint32, bool, error) {
	i := len(path) - 1
	for i >= 0 && path[i].idx+1 >= path[i].count {
		i--
	}
	if i < 0 {
		return 0, false, nil
	}
	path[i].idx++
	hash := le32(path[i].b, path[i].coff+path[i].idx*dxEntrySize)
	for j := i + 1; j < len(path); j++ {
		child := le32(path[j-1].b, path[j-1].coff+path[j-1].idx*dxEntrySize+4)
		cb, cp, err := f.dirBlock(dir, child)
		if err != nil || cb == nil {
			return 0, false, fmt.Errorf("blockfs: directory inode %d: bad htree: %w", dir.ino, ErrCorrupt)
		}
		path[j] = dxLevel{lblk: child, b: cb, p: cp, coff: dxNodeEntries, count: int(le16(cb, dxNodeEntries+2)), limit: int(le16(cb, dxNodeEntries))}
		if path[j].count == 0 || path[j].count > path[j].limit {
			return 0, false, fmt.Errorf("blockfs: directory inode %d: bad htree node: %w", dir.ino, ErrCorrupt)
		}
	}
	return hash, true, nil
}

func (f *FS) dxLookup(dir *inode, name string) (uint32, uint8, error) {
	if name == "." || name == ".." {
		b, _, err := f.dirBlock(dir, 0)
		if err != nil || b == nil {
			return 0, 0, fmt.Errorf("blockfs: directory inode %d: no root: %w", dir.ino, ErrCorrupt)
		}
		if name == "." {
			return dir.ino, EXT4_FT_DIR, nil
		}
		return le32(b, 12), EXT4_FT_DIR, nil
	}
	b0, _, err := f.dirBlock(dir, 0)
	if err != nil || b0 == nil {
		return 0, 0, fmt.Errorf("blockfs: directory inode %d: no root: %w", dir.ino, ErrCorrupt)
	}
	hash, _ := dxHash([]byte(name), f.dxHashVersion(b0), f.hashSeed)
	path, _, err := f.dxProbe(dir, hash)
	if err != nil {
		return 0, 0, err
	}
	for steps := 0; steps < 1<<16; steps++ {
		b, _, err := f.dirBlock(dir, f.dxLeaf(path))
		if err != nil || b == nil {
			return 0, 0, fmt.Errorf("blockfs: directory inode %d: bad htree leaf: %w", dir.ino, ErrCorrupt)
		}
		ino, ft, err := f.searchLeaf(dir, b, name)
		if err != nil || ino != 0 {
			return ino, ft, err
		}
		next, ok, err := f.dxNext(dir, path)
		if err != nil || !ok {
			return 0, 0, err
		}
		if next&1 == 0 || next&^1 != hash {
			return 0, 0, nil
		}
	}
	return 0, 0, nil
}

func (f *FS) setDxTail(dir *inode, b []byte, coff int) {
	if !f.metaCsum {
		return
	}
	if coff == 0 {
		coff = dxRootEntries
	}
	limit := int(le16(b, coff))
	count := int(le16(b, coff+2))
	t := coff + limit*dxEntrySize
	if t+dxTailSize > f.bs || count > limit {
		return
	}
	c := crc32c(f.inodeSeed(dir.ino, le32(dir.raw, i_generation)), b[:coff+count*dxEntrySize])
	c = crc32c(c, b[t:t+4])
	c = crc32c(c, []byte{0, 0, 0, 0})
	put32(b, t+4, c)
}

// dxAdd inserts into an indexed directory, splitting the target leaf or
// rebuilding the whole index when needed.
func (f *FS) dxAdd(dir *inode, name string, ino uint32, ft uint8) error {
	b0, _, err := f.dirBlock(dir, 0)
	if err != nil || b0 == nil {
		return f.dxRebuild(dir, &dirent{ino: ino, ftype: f.ftype(ft), name: name})
	}
	hash, _ := dxHash([]byte(name), f.dxHashVersion(b0), f.hashSeed)
	path, ver, err := f.dxProbe(dir, hash)
	if err != nil {
		return f.dxRebuild(dir, &dirent{ino: ino, ftype: f.ftype(ft), name: name})
	}
	leaf := f.dxLeaf(path)
	b, p, err := f.dirBlock(dir, leaf)
	if err != nil || b == nil {
		return f.dxRebuild(dir, &dirent{ino: ino, ftype: f.ftype(ft), name: name})
	}
	ok, err := f.insertInBlock(dir, b, name, ino, ft)
	if err != nil {
		return err
	}
	if ok {
		f.setDirTail(dir, b)
		f.bdirty(p, b)
		return nil
	}
	parent := &path[len(path)-1]
	if parent.count >= parent.limit {
		return f.dxRebuild(dir, &dirent{ino: ino, ftype: f.ftype(ft), name: name})
	}
	// Split the leaf: entries sorted by hash, upper half to a new block.
	type he struct {
		d     dirent
		h, mh uint32
	}
	var ents []he
	err = f.walkBlock(dir, b, func(_, _ int, i uint32, n []byte, t uint8) bool {
		if i != 0 {
			h, m := dxHash(n, ver, f.hashSeed)
			ents = append(ents, he{dirent{i, t, string(n)}, h, m})
		}
		return true
	})
	if err != nil {
		return err
	}
	h, m := dxHash([]byte(name), ver, f.hashSeed)
	ents = append(ents, he{dirent{ino, f.ftype(ft), name}, h, m})
	slices.SortStableFunc(ents, func(a, b he) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		if a.mh < b.mh {
			return -1
		}
		if a.mh > b.mh {
			return 1
		}
		return 0
	})
	// Split by bytes near the middle.
	total := 0
	for _, e := range ents {
		total += direntSize(len(e.d.name))
	}
	split, acc := 0, 0
	for split < len(ents)-1 && acc+direntSize(len(ents[split].d.name)) <= total/2 {
		acc += direntSize(len(ents[split].d.name))
		split++
	}
	if split == 0 {
		split = 1
	}
	splitHash := ents[split].h
	if ents[split-1].h == splitHash {
		splitHash |= 1
	}
	nl, nb, np, err := f.newDirBlock(dir)
	if err != nil {
		return err
	}
	fill := func(blk []byte, es []he) error {
		f.initLeaf(blk)
		for _, e := range es {
			ok, err := f.insertInBlock(dir, blk, e.d.name, e.d.ino, e.d.ftype)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("blockfs: directory inode %d: split overflow: %w", dir.ino, ErrCorrupt)
			}
		}
		f.setDirTail(dir, blk)
		return nil
	}
	if err := fill(b, ents[:split]); err != nil {
		return err
	}
	if err := fill(nb, ents[split:]); err != nil {
		return err
	}
	f.bdirty(p, b)
	f.bdirty(np, nb)
	// Insert the new index entry after the current one.
	pb := parent.b
	at := parent.coff + (parent.idx+1)*dxEntrySize
	end := parent.coff + parent.count*dxEntrySize
	copy(pb[at+dxEntrySize:end+dxEntrySize], pb[at:end])
	put32(pb, at, splitHash)
	put32(pb, at+4, nl)
	put16(pb, parent.coff+2, uint16(parent.count+1))
	coff := parent.coff
	if parent.lblk == 0 {
		coff = 0
	}
	f.setDxTail(dir, pb, coff)
	f.bdirty(parent.p, pb)
	return nil
}

// dxRebuild rewrites dir as a fresh htree holding its current entries
// plus extra (if not nil).
func (f *FS) dxRebuild(dir *inode, extra *dirent) error {
	all, err := f.readDirAll(dir)
	if err != nil {
		return err
	}
	parent := dir.ino
	var ents []dirent
	for _, e := range all {
		switch e.name {
		case ".":
		case "..":
			parent = e.ino
		default:
			ents = append(ents, e)
		}
	}
	if extra != nil {
		ents = append(ents, *extra)
	}
	ver := f.sb[s_def_hash_version]
	if ver > DX_HASH_TEA {
		ver = DX_HASH_HALF_MD4
	}
	fullVer := ver
	if le32(f.sb, s_flags)&EXT2_FLAGS_UNSIGNED_HASH != 0 {
		fullVer += 3
	}
	type he struct {
		d     dirent
		h, mh uint32
	}
	hs := make([]he, len(ents))
	for i, e := range ents {
		h, m := dxHash([]byte(e.name), fullVer, f.hashSeed)
		hs[i] = he{e, h, m}
	}
	slices.SortStableFunc(hs, func(a, b he) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		case a.mh < b.mh:
			return -1
		case a.mh > b.mh:
			return 1
		}
		return 0
	})
	// Pack leaves to about three quarters.
	usable := f.dirUsable()
	target := usable * 3 / 4
	type leaf struct {
		start, end int
		hash       uint32
	}
	var leaves []leaf
	cur := leaf{}
	used := 0
	for i, e := range hs {
		sz := direntSize(len(e.d.name))
		if used > 0 && used+sz > target {
			cur.end = i
			leaves = append(leaves, cur)
			h := e.h
			if hs[i-1].h == h {
				h |= 1
			}
			cur = leaf{start: i, hash: h}
			used = 0
		}
		used += sz
	}
	cur.end = len(hs)
	leaves = append(leaves, cur)
	rootLimit, nodeLimit := f.dxLimit(true), f.dxLimit(false)
	var nodes [][]int // leaf indices per node (one level)
	if len(leaves) > rootLimit {
		for i := 0; i < len(leaves); i += nodeLimit {
			j := min(i+nodeLimit, len(leaves))
			idx := make([]int, 0, j-i)
			for k := i; k < j; k++ {
				idx = append(idx, k)
			}
			nodes = append(nodes, idx)
		}
		if len(nodes) > rootLimit {
			return fmt.Errorf("blockfs: directory inode %d: too many entries: %w", dir.ino, syscall.ENOSPC)
		}
	}
	total := uint32(1 + len(nodes) + len(leaves))
	// Grow or shrink the directory to exactly total blocks; check for room
	// first so that running out of space leaves the directory as it was.
	if cur := f.dirBlocks(dir); cur < total && f.freeBlocksTotal() < uint64(total-cur)+uint64(EXT4_MAX_EXTENT_DEPTH)+1 {
		return syscall.ENOSPC
	}
	for f.dirBlocks(dir) < total {
		_, b, p, err := f.newDirBlock(dir)
		if err != nil {
			return err
		}
		f.initLeaf(b)
		f.setDirTail(dir, b)
		f.bdirty(p, b)
	}
	if f.dirBlocks(dir) > total {
		if err := f.truncateBlocks(dir, uint64(total)); err != nil {
			return err
		}
		dir.setSize(uint64(total) * uint64(f.bs))
	}
	if err := f.loadMapping(dir); err != nil {
		return err
	}
	blockOf := func(l uint32) ([]byte, uint64, error) {
		p, _, ok := dir.bmap(l)
		if !ok {
			return nil, 0, fmt.Errorf("blockfs: directory inode %d: hole at block %d: %w", dir.ino, l, ErrCorrupt)
		}
		return f.bnew(p), p, nil
	}
	leafBase := uint32(1 + len(nodes))
	for i, lf := range leaves {
		b, p, err := blockOf(leafBase + uint32(i))
		if err != nil {
			return err
		}
		f.initLeaf(b)
		for _, e := range hs[lf.start:lf.end] {
			ok, err := f.insertInBlock(dir, b, e.d.name, e.d.ino, e.d.ftype)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("blockfs: directory inode %d: leaf overflow: %w", dir.ino, ErrCorrupt)
			}
		}
		f.setDirTail(dir, b)
		f.bdirty(p, b)
	}
	// Index nodes.
	writeEntries := func(b []byte, coff, limit int, hashes []uint32, blks []uint32) {
		put16(b, coff, uint16(limit))
		put16(b, coff+2, uint16(len(blks)))
		put32(b, coff+4, blks[0])
		for i := 1; i < len(blks); i++ {
			put32(b, coff+i*dxEntrySize, hashes[i])
			put32(b, coff+i*dxEntrySize+4, blks[i])
		}
	}
	var rootHashes []uint32
	var rootBlks []uint32
	if len(nodes) == 0 {
		for i, lf := range leaves {
			rootHashes = append(rootHashes, lf.hash)
			rootBlks = append(rootBlks, leafBase+uint32(i))
		}
	} else {
		for ni, idx := range nodes {
			b, p, err := blockOf(1 + uint32(ni))
			if err != nil {
				return err
			}
			put16(b, 4, uint16(f.bs))
			var hsh []uint32
			var blks []uint32
			for _, k := range idx {
				hsh = append(hsh, leaves[k].hash)
				blks = append(blks, leafBase+uint32(k))
			}
			writeEntries(b, dxNodeEntries, nodeLimit, hsh, blks)
			f.setDxTail(dir, b, dxNodeEntries)
			f.bdirty(p, b)
			rootHashes = append(rootHashes, leaves[idx[0]].hash)
			rootBlks = append(rootBlks, 1+uint32(ni))
		}
	}
	b, p, err := blockOf(0)
	if err != nil {
		return err
	}
	put32(b, 0, dir.ino)
	put16(b, 4, 12)
	b[6] = 1
	b[7] = f.ftype(EXT4_FT_DIR)
	b[8] = '.'
	put32(b, 12, parent)
	put16(b, 16, uint16(f.bs-12))
	b[18] = 2
	b[19] = f.ftype(EXT4_FT_DIR)
	b[20], b[21] = '.', '.'
	info := b[dxRootInfoOffset:]
	info[4] = ver
	info[5] = 8
	info[6] = 0
	if len(nodes) > 0 {
		info[6] = 1
	}
	writeEntries(b, dxRootEntries, rootLimit, rootHashes, rootBlks)
	f.setDxTail(dir, b, 0)
	f.bdirty(p, b)
	dir.setFlags(dir.flags() | EXT4_INDEX_FL)
	return nil
}
