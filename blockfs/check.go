package blockfs

import (
	"fmt"
	"maps"
	"slices"
)

// Check verifies the file system's consistency without modifying it and
// returns the problems found (nil if clean). It checks every in-use
// inode's checksum and block mapping, every directory reachable from the
// root (entries, checksums, htree lookups), link counts, block and inode
// bitmaps and free counts. The error is non-nil only if checking itself
// failed (for example a device error).
func (f *FS) Check() ([]string, error) {
	f.lock()
	defer f.mu.Unlock()
	if err := f.checkOpen(); err != nil {
		return nil, err
	}
	if !f.readOnly {
		if err := f.syncLocked(); err != nil {
			return nil, err
		}
	}
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 1000 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	used := make([]bool, f.blocksCount)
	mark := func(owner uint32, b, n uint64) {
		for i := uint64(0); i < n; i++ {
			if b+i >= f.blocksCount {
				report("inode %d: block %d beyond the file system", owner, b+i)
				return
			}
			if used[b+i] {
				report("inode %d: block %d claimed twice", owner, b+i)
			}
			used[b+i] = true
		}
	}
	itb := (uint64(f.ipg)*uint64(f.inodeSize) + uint64(f.bs) - 1) / uint64(f.bs)
	for g := uint32(0); g < f.groups; g++ {
		mark(0, f.groupFirstBlock(g), f.groupOverhead(g))
		mark(0, f.blockBitmapBlock(g), 1)
		mark(0, f.inodeBitmapBlock(g), 1)
		mark(0, f.inodeTableBlock(g), itb)
	}
	if f.firstDataBlock == 1 {
		used[0] = true
	}
	// Inodes in use according to the bitmaps.
	inUse := map[uint32]*inode{}
	for g := uint32(0); g < f.groups; g++ {
		bm, err := f.inodeBitmap(g)
		if err != nil {
			return nil, err
		}
		free := uint64(0)
		for i := uint32(0); i < f.ipg; i++ {
			if !testBit(bm, uint64(i)) {
				free++
				continue
			}
			ino := g*f.ipg + i + 1
			if ino < f.firstIno && ino != EXT4_ROOT_INO && ino != le32(f.sb, s_journal_inum) && ino != EXT4_RESIZE_INO {
				continue
			}
			in, err := f.iget(ino)
			if err != nil {
				report("inode %d: %v", ino, err)
				continue
			}
			if in.links() == 0 && in.mode() == 0 {
				continue
			}
			inUse[ino] = in
			if ino == EXT4_RESIZE_INO {
				// Its map covers the reserved descriptor blocks, marked above.
				if dind := uint64(le32(in.raw, i_block+4*EXT4_DIND_BLOCK)); dind != 0 && dind < f.blocksCount {
					used[dind] = true
				}
				continue
			}
			if err := f.loadMapping(in); err != nil {
				report("inode %d: %v", ino, err)
				continue
			}
			for _, e := range in.ext {
				mark(ino, e.pblk, uint64(e.len))
			}
			for _, b := range in.meta {
				mark(ino, b, 1)
			}
			if acl := in.fileACL(); acl != 0 && acl < f.blocksCount && !used[acl] {
				used[acl] = true
			}
		}
		if free != f.freeInodesInGroup(g) {
			report("group %d: %d free inodes, descriptor says %d", g, free, f.freeInodesInGroup(g))
		}
	}
	// Directory tree and link counts.
	links := map[uint32]int{}
	// The entry through which each directory was first reached: a second
	// one is a hard-linked directory or a loop, and is not followed.
	type ref struct {
		dir  uint32
		name string
	}
	reached := map[uint32]ref{}
	var walk func(dir *inode, parent uint32, name string, depth int)
	walk = func(dir *inode, parent uint32, name string, depth int) {
		if dir.ino == EXT4_ROOT_INO && depth > 0 {
			report("directory inode %d: entry %q names the root directory", parent, name)
			return
		}
		if r, ok := reached[dir.ino]; ok {
			report("directory inode %d is named by entry %q in directory %d and by entry %q in directory %d", dir.ino, r.name, r.dir, name, parent)
			return
		}
		if depth > 4096 {
			report("directory inode %d: more than 4096 levels below the root", dir.ino)
			return
		}
		reached[dir.ino] = ref{parent, name}
		ents, err := f.readDirAll(dir)
		if err != nil {
			report("directory inode %d: %v", dir.ino, err)
			return
		}
		for _, e := range ents {
			switch e.name {
			case ".":
				if e.ino != dir.ino {
					report("directory inode %d: '.' points at %d", dir.ino, e.ino)
				}
				links[dir.ino]++
				continue
			case "..":
				if e.ino != parent {
					report("directory inode %d: '..' points at %d, parent is %d", dir.ino, e.ino, parent)
				}
				links[e.ino]++
				continue
			}
			child, ok := inUse[e.ino]
			if !ok {
				report("directory inode %d: entry %q points at unused inode %d", dir.ino, e.name, e.ino)
				continue
			}
			links[e.ino]++
			if f.incompat&EXT4_FEATURE_INCOMPAT_FILETYPE != 0 && e.ftype != modeToFT(child.mode()) {
				report("directory inode %d: entry %q has file type %d, inode mode %#o", dir.ino, e.name, e.ftype, child.mode())
			}
			if ino, _, err := f.lookup(dir, e.name); err != nil || ino != e.ino {
				report("directory inode %d: lookup of %q finds %d (%v), want %d", dir.ino, e.name, ino, err, e.ino)
			}
			if child.isDir() {
				walk(child, dir.ino, e.name, depth+1)
			}
		}
	}
	root, ok := inUse[EXT4_ROOT_INO]
	if !ok || !root.isDir() {
		report("root inode is missing or not a directory")
	} else {
		walk(root, EXT4_ROOT_INO, ".", 0)
	}
	internal := map[uint32]bool{}
	for _, off := range []int{s_journal_inum, s_usr_quota_inum, s_grp_quota_inum, s_prj_quota_inum, s_orphan_file_inum} {
		internal[le32(f.sb, off)] = true
	}
	for _, ino := range slices.Sorted(maps.Keys(inUse)) {
		in := inUse[ino]
		if ino < f.firstIno || internal[ino] {
			continue
		}
		want := links[ino]
		got := int(in.links())
		if in.isDir() && got == 1 && want > 65000 {
			continue
		}
		if got != want {
			report("inode %d: link count %d, found %d references", ino, got, want)
		}
	}
	// Block bitmaps and free counts.
	var totalFree uint64
	for g := uint32(0); g < f.groups; g++ {
		bm, err := f.blockBitmap(g)
		if err != nil {
			return nil, err
		}
		first := f.groupFirstBlock(g)
		free := uint64(0)
		for i := uint64(0); i < f.blocksInGroup(g); i++ {
			inBitmap := testBit(bm, i)
			if !inBitmap {
				free++
			}
			if used[first+i] && !inBitmap {
				report("block %d in use but free in the bitmap", first+i)
			}
			if !used[first+i] && inBitmap {
				report("block %d marked in the bitmap but unused", first+i)
			}
		}
		if free != f.freeBlocksInGroup(g) {
			report("group %d: %d free blocks, descriptor says %d", g, free, f.freeBlocksInGroup(g))
		}
		totalFree += free
	}
	return problems, nil
}
