package blockfs

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// MkfsOptions configure Mkfs. The zero value makes an ext4 file system
// filling the device with mke2fs's defaults: 1 KiB blocks below 512 MiB
// and 4 KiB above, one inode per 4 KiB (1 KiB blocks) or 16 KiB, a journal
// sized like mke2fs's, a random UUID and no label.
type MkfsOptions struct {
	// BlockSize is 1024, 2048 or 4096; 0 chooses by device size.
	BlockSize int
	// InodeCount is the number of inodes; 0 derives it from InodeRatio.
	InodeCount uint32
	// InodeRatio is bytes of space per inode; 0 means the default.
	InodeRatio int64
	// Label is the volume name (at most 16 bytes).
	Label string
	// UUID is the file system UUID; all zero picks a random one.
	UUID [16]byte
	// JournalBlocks is the journal size in blocks: 0 picks mke2fs's
	// default, a negative value makes no journal.
	JournalBlocks int
	// Root, if set, is copied into the new file system (like mke2fs -d):
	// directories, regular files and symlinks (through fs.ReadLinkFS),
	// with their permission bits and modification times.
	Root fs.FS
	// Rand supplies the UUID and hash seed; nil means crypto/rand.
	Rand io.Reader
	// Now is the creation time; nil means time.Now.
	Now func() time.Time
}

const mkfsInodeSize = 256

func defaultJournalBlocks(blocks uint64) int {
	switch {
	case blocks < 2048:
		return 0
	case blocks < 32768:
		return 1024
	case blocks < 256*1024:
		return 4096
	case blocks < 512*1024:
		return 8192
	case blocks < 4096*1024:
		return 16384
	default:
		return 32768
	}
}

// Mkfs writes a new, empty ext4 file system to dev (populated from
// opts.Root if set). Features: has_journal, ext_attr, dir_index, filetype,
// extent, 64bit, sparse_super, large_file, huge_file, dir_nlink,
// extra_isize, metadata_csum.
func Mkfs(dev hal.BlockDevice, opts MkfsOptions) error {
	if hal.IsReadOnly(dev) {
		return fmt.Errorf("blockfs: mkfs: %w", hal.ErrReadOnly)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	size := dev.Size()
	bs := opts.BlockSize
	if bs == 0 {
		bs = 4096
		if size < 512<<20 {
			bs = 1024
		}
	}
	if bs != 1024 && bs != 2048 && bs != 4096 {
		return fmt.Errorf("blockfs: mkfs: block size %d not supported", bs)
	}
	if bs < dev.SectorSize() {
		return fmt.Errorf("blockfs: mkfs: block size %d below the sector size %d", bs, dev.SectorSize())
	}
	if len(opts.Label) > 16 {
		return fmt.Errorf("blockfs: mkfs: label %q longer than 16 bytes", opts.Label)
	}
	logBS := uint(10)
	for 1<<logBS < bs {
		logBS++
	}
	blocks := uint64(size) >> logBS
	if blocks > 1<<32-1 {
		blocks = 1<<32 - 1
	}
	first := uint64(0)
	if bs == 1024 {
		first = 1
	}
	bpg := uint64(8 * bs)
	if blocks < 64 {
		return fmt.Errorf("blockfs: mkfs: device of %d bytes is too small", size)
	}
	ratio := opts.InodeRatio
	if ratio == 0 {
		ratio = 16384
		if bs == 1024 {
			ratio = 4096
		}
	}
	ipb := uint64(bs / mkfsInodeSize)
	var groups, ipg, itb uint64
	gdtBlocks := func(g uint64) uint64 { return (g*EXT4_MIN_DESC_SIZE_64BIT + uint64(bs) - 1) / uint64(bs) }
	for {
		groups = (blocks - first + bpg - 1) / bpg
		inodes := uint64(opts.InodeCount)
		if inodes == 0 {
			inodes = blocks * uint64(bs) / uint64(ratio)
		}
		inodes = max(inodes, EXT4_GOOD_OLD_FIRST_INO+5)
		ipg = (inodes + groups - 1) / groups
		ipg = (ipg + 7) &^ 7
		ipg = (ipg + ipb - 1) / ipb * ipb
		if ipg > uint64(8*bs) {
			ipg = uint64(8*bs) / ipb * ipb
		}
		itb = ipg / ipb
		// The last group must hold its own metadata plus some data.
		last := blocks - first - (groups-1)*bpg
		need := 2 + itb + 16
		if groups-1 == 0 || isSparseGroup(uint32(groups-1)) {
			need += 1 + gdtBlocks(groups)
		}
		if last >= need {
			break
		}
		if groups == 1 {
			return fmt.Errorf("blockfs: mkfs: device of %d bytes is too small", size)
		}
		blocks = first + (groups-1)*bpg
	}
	if groups*ipg > 1<<32-1 {
		return fmt.Errorf("blockfs: mkfs: too many inodes")
	}
	var uuid, hashSeed [16]byte
	uuid = opts.UUID
	if uuid == ([16]byte{}) {
		if _, err := io.ReadFull(rnd, uuid[:]); err != nil {
			return fmt.Errorf("blockfs: mkfs: uuid: %w", err)
		}
		uuid[6] = uuid[6]&0x0f | 0x40
		uuid[8] = uuid[8]&0x3f | 0x80
	}
	if _, err := io.ReadFull(rnd, hashSeed[:]); err != nil {
		return fmt.Errorf("blockfs: mkfs: hash seed: %w", err)
	}
	t := uint32(now().Unix())
	sb := make([]byte, superblockSize)
	put32(sb, s_inodes_count, uint32(groups*ipg))
	put32(sb, s_blocks_count_lo, uint32(blocks))
	put32(sb, s_blocks_count_hi, uint32(blocks>>32))
	r := blocks / 20
	put32(sb, s_r_blocks_count_lo, uint32(r))
	put32(sb, s_r_blocks_count_hi, uint32(r>>32))
	put32(sb, s_first_data_block, uint32(first))
	put32(sb, s_log_block_size, uint32(logBS-10))
	put32(sb, s_log_cluster_size, uint32(logBS-10))
	put32(sb, s_blocks_per_group, uint32(bpg))
	put32(sb, s_clusters_per_group, uint32(bpg))
	put32(sb, s_inodes_per_group, uint32(ipg))
	put32(sb, s_wtime, t)
	put16(sb, s_max_mnt_count, 0xFFFF)
	put16(sb, s_magic, EXT4_SUPER_MAGIC)
	put16(sb, s_state, EXT4_VALID_FS)
	put16(sb, s_errors, 1)
	put32(sb, s_lastcheck, t)
	put32(sb, s_rev_level, EXT4_DYNAMIC_REV)
	put32(sb, s_first_ino, EXT4_GOOD_OLD_FIRST_INO)
	put16(sb, s_inode_size, mkfsInodeSize)
	compat := uint32(EXT4_FEATURE_COMPAT_EXT_ATTR | EXT4_FEATURE_COMPAT_DIR_INDEX)
	put32(sb, s_feature_incompat, EXT4_FEATURE_INCOMPAT_FILETYPE|EXT4_FEATURE_INCOMPAT_EXTENTS|EXT4_FEATURE_INCOMPAT_64BIT)
	put32(sb, s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER|EXT4_FEATURE_RO_COMPAT_LARGE_FILE|
		EXT4_FEATURE_RO_COMPAT_HUGE_FILE|EXT4_FEATURE_RO_COMPAT_DIR_NLINK|EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE|
		EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)
	copy(sb[s_uuid:], uuid[:])
	copy(sb[s_volume_name:], opts.Label)
	copy(sb[s_hash_seed:], hashSeed[:])
	sb[s_def_hash_version] = DX_HASH_HALF_MD4
	put16(sb, s_desc_size, EXT4_MIN_DESC_SIZE_64BIT)
	put32(sb, s_default_mount_opts, 0x0004|0x0008) // user_xattr, acl
	put32(sb, s_mkfs_time, t)
	put16(sb, s_min_extra_isize, 32)
	put16(sb, s_want_extra_isize, 32)
	put32(sb, s_flags, EXT2_FLAGS_SIGNED_HASH)
	sb[s_checksum_type] = EXT4_CRC32C_CHKSUM
	put32(sb, s_feature_compat, compat)

	// Group layout: [superblock + descriptors] block bitmap, inode bitmap,
	// inode table, data.
	nGDT := gdtBlocks(groups)
	gdt := make([]byte, nGDT*uint64(bs))
	seed := crc32c(^uint32(0), uuid[:])
	type grp struct{ start, bb, ib, it, n uint64 }
	gs := make([]grp, groups)
	var freeBlocks uint64
	for g := uint64(0); g < groups; g++ {
		start := first + g*bpg
		n := min(bpg, blocks-start)
		meta := start
		if isSparseGroup(uint32(g)) {
			meta += 1 + nGDT
		}
		gs[g] = grp{start: start, bb: meta, ib: meta + 1, it: meta + 2, n: n}
		used := meta + 2 + itb - start
		freeBlocks += n - used
	}
	zero := make([]byte, bs)
	writeBlk := func(blk uint64, b []byte) error {
		if _, err := dev.WriteAt(b, int64(blk)*int64(bs)); err != nil {
			return fmt.Errorf("blockfs: mkfs: write block %d: %w", blk, err)
		}
		return nil
	}
	// Zero the boot area and the first inode table completely.
	if err := writeBlk(0, zero); err != nil {
		return err
	}
	for i := uint64(0); i < itb; i++ {
		if err := writeBlk(gs[0].it+i, zero); err != nil {
			return err
		}
	}
	for g := uint64(0); g < groups; g++ {
		gr := gs[g]
		bm := make([]byte, bs)
		used := gr.it + itb - gr.start
		for i := uint64(0); i < used; i++ {
			setBit(bm, i)
		}
		for i := gr.n; i < uint64(8*bs); i++ {
			setBit(bm, i)
		}
		ibm := make([]byte, bs)
		for i := ipg; i < uint64(8*bs); i++ {
			setBit(ibm, i)
		}
		freeInodes := ipg
		flags := uint16(EXT4_BG_INODE_UNINIT)
		unused := ipg
		if g == 0 {
			for i := uint64(0); i < EXT4_GOOD_OLD_FIRST_INO-1; i++ {
				setBit(ibm, i)
			}
			freeInodes -= EXT4_GOOD_OLD_FIRST_INO - 1
			flags = EXT4_BG_INODE_ZEROED
			unused = ipg - (EXT4_GOOD_OLD_FIRST_INO - 1)
		}
		if err := writeBlk(gr.bb, bm); err != nil {
			return err
		}
		if err := writeBlk(gr.ib, ibm); err != nil {
			return err
		}
		d := gdt[g*EXT4_MIN_DESC_SIZE_64BIT : (g+1)*EXT4_MIN_DESC_SIZE_64BIT]
		put32(d, bg_block_bitmap_lo, uint32(gr.bb))
		put32(d, bg_block_bitmap_hi, uint32(gr.bb>>32))
		put32(d, bg_inode_bitmap_lo, uint32(gr.ib))
		put32(d, bg_inode_bitmap_hi, uint32(gr.ib>>32))
		put32(d, bg_inode_table_lo, uint32(gr.it))
		put32(d, bg_inode_table_hi, uint32(gr.it>>32))
		fb := gr.n - used
		put16(d, bg_free_blocks_count_lo, uint16(fb))
		put16(d, bg_free_blocks_count_hi, uint16(fb>>16))
		put16(d, bg_free_inodes_count_lo, uint16(freeInodes))
		put16(d, bg_free_inodes_count_hi, uint16(freeInodes>>16))
		put16(d, bg_flags, flags)
		put16(d, bg_itable_unused_lo, uint16(unused))
		put16(d, bg_itable_unused_hi, uint16(unused>>16))
		c := crc32c(seed, bm[:bpg/8])
		put16(d, bg_block_bitmap_csum_lo, uint16(c))
		put16(d, bg_block_bitmap_csum_hi, uint16(c>>16))
		c = crc32c(seed, ibm[:ipg/8])
		put16(d, bg_inode_bitmap_csum_lo, uint16(c))
		put16(d, bg_inode_bitmap_csum_hi, uint16(c>>16))
		var le [4]byte
		put32(le[:], 0, uint32(g))
		c = crc32c(seed, le[:])
		c = crc32c(c, d[:bg_checksum])
		c = crc32c(c, []byte{0, 0})
		c = crc32c(c, d[bg_checksum+2:])
		put16(d, bg_checksum, uint16(c))
	}
	put32(sb, s_free_blocks_count_lo, uint32(freeBlocks))
	put32(sb, s_free_blocks_count_hi, uint32(freeBlocks>>32))
	put32(sb, s_free_inodes_count, uint32(groups*ipg-(EXT4_GOOD_OLD_FIRST_INO-1)))
	writeSB := func(g uint64) error {
		c := make([]byte, superblockSize)
		copy(c, sb)
		put16(c, s_block_group_nr, uint16(g))
		put32(c, s_checksum, crc32c(^uint32(0), c[:s_checksum]))
		off := int64(superblockOffset)
		if g > 0 {
			off = int64(gs[g].start) * int64(bs)
		}
		if _, err := dev.WriteAt(padSector(c, off, dev), alignDown(off, dev)); err != nil {
			return fmt.Errorf("blockfs: mkfs: write superblock: %w", err)
		}
		for i := uint64(0); i < nGDT; i++ {
			if err := writeBlk(gs[g].start+1+i, gdt[i*uint64(bs):(i+1)*uint64(bs)]); err != nil {
				return err
			}
		}
		return nil
	}
	for g := uint64(0); g < groups; g++ {
		if isSparseGroup(uint32(g)) {
			if err := writeSB(g); err != nil {
				return err
			}
		}
	}
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("blockfs: mkfs: sync: %w", err)
	}

	// Finish through the file system itself: root, lost+found, journal.
	f, err := Mount(dev, Options{Now: opts.Now})
	if err != nil {
		return fmt.Errorf("blockfs: mkfs: mount the new file system: %w", err)
	}
	f.lock()
	err = f.mkfsFinish(opts, blocks)
	f.mu.Unlock()
	if err != nil {
		f.Close()
		return err
	}
	if opts.Root != nil {
		if err := f.copyTree(opts.Root); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func alignDown(off int64, dev hal.BlockDevice) int64 {
	ss := int64(dev.SectorSize())
	return off / ss * ss
}

// padSector returns p widened to whole sectors around off (the bytes
// around are zero: only used for fresh superblock writes).
func padSector(p []byte, off int64, dev hal.BlockDevice) []byte {
	ss := int64(dev.SectorSize())
	start := off / ss * ss
	end := (off + int64(len(p)) + ss - 1) / ss * ss
	if start == off && end == off+int64(len(p)) {
		return p
	}
	buf := make([]byte, end-start)
	if _, err := dev.ReadAt(buf, start); err != nil {
		clear(buf)
	}
	copy(buf[off-start:], p)
	return buf
}

// isSparseGroup reports whether group g holds a superblock backup under
// sparse_super.
func isSparseGroup(g uint32) bool {
	if g <= 1 {
		return true
	}
	if g%2 == 0 {
		return false
	}
	for _, b := range []uint32{3, 5, 7} {
		n := g
		for n%b == 0 {
			n /= b
		}
		if n == 1 {
			return true
		}
	}
	return false
}

func (f *FS) mkfsFinish(opts MkfsOptions, blocks uint64) error {
	// Root directory, inode 2.
	root := &inode{ino: EXT4_ROOT_INO, raw: make([]byte, f.inodeSize), dirty: true, mapLoaded: true}
	f.initNewInode(root, S_IFDIR|0o755)
	root.setLinks(2)
	f.inodes[root.ino] = root
	g := uint32(0)
	f.setGDField(g, bg_used_dirs_count_lo, bg_used_dirs_count_hi, 16, 1)
	_, b, p, err := f.newDirBlock(root)
	if err != nil {
		return err
	}
	f.fillDotEntries(root, b, root.ino)
	f.bdirty(p, b)
	if err := f.mkdir("lost+found", 0o700); err != nil {
		return fmt.Errorf("blockfs: mkfs: lost+found: %w", err)
	}
	// Give lost+found a few spare blocks like mke2fs.
	lf, err := f.walk("lost+found", false)
	if err != nil {
		return err
	}
	for f.dirBlocks(lf)*uint32(f.bs) < 16384 && f.dirBlocks(lf) < 4 {
		_, b, p, err := f.newDirBlock(lf)
		if err != nil {
			return err
		}
		f.initLeaf(b)
		f.setDirTail(lf, b)
		f.bdirty(p, b)
	}
	jb := opts.JournalBlocks
	if jb == 0 {
		jb = defaultJournalBlocks(blocks)
	}
	if jb > 0 {
		if err := f.createJournal(uint32(jb)); err != nil {
			return err
		}
	}
	return f.syncLocked()
}

func (f *FS) fillDotEntries(dir *inode, b []byte, parent uint32) {
	f.initLeaf(b)
	put32(b, 0, dir.ino)
	put16(b, 4, 12)
	b[6] = 1
	b[7] = f.ftype(EXT4_FT_DIR)
	b[8] = '.'
	put32(b, 12, parent)
	put16(b, 16, uint16(f.dirUsable()-12))
	b[18] = 2
	b[19] = f.ftype(EXT4_FT_DIR)
	b[20], b[21] = '.', '.'
	f.setDirTail(dir, b)
}

func (f *FS) createJournal(n uint32) error {
	if n < 1024 {
		n = 1024
	}
	in := &inode{ino: EXT4_JOURNAL_INO, raw: make([]byte, f.inodeSize), dirty: true, mapLoaded: true}
	f.initNewInode(in, S_IFREG|0o600)
	in.setLinks(1)
	f.inodes[in.ino] = in
	// Place the journal in the middle of the file system like mke2fs.
	goal := f.groupFirstBlock(f.groups / 2)
	var l uint32
	for l < n {
		b, got, err := f.allocBlocks(goal, uint64(n-l))
		if err != nil {
			return fmt.Errorf("blockfs: mkfs: journal: %w", err)
		}
		in.insertExt(extent{lblk: l, len: uint32(got), pblk: b})
		f.addBlocks(in, int64(got))
		goal = b + got
		l += uint32(got)
	}
	in.setSize(uint64(n) * uint64(f.bs))
	zero := make([]byte, 64*f.bs)
	for _, e := range in.ext {
		for off := uint64(0); off < uint64(e.len); off += 64 {
			cnt := min(uint64(e.len)-off, 64)
			if err := f.writeAt(zero[:cnt*uint64(f.bs)], int64((e.pblk+off)*uint64(f.bs))); err != nil {
				return err
			}
		}
	}
	jsb := make([]byte, f.bs)
	putBE32(jsb, h_magic, JBD2_MAGIC_NUMBER)
	putBE32(jsb, h_blocktype, JBD2_SUPERBLOCK_V2)
	putBE32(jsb, js_blocksize, uint32(f.bs))
	putBE32(jsb, js_maxlen, n)
	putBE32(jsb, js_first, 1)
	putBE32(jsb, js_sequence, 1)
	copy(jsb[js_uuid:], f.sb[s_uuid:s_uuid+16])
	putBE32(jsb, js_nr_users, 1)
	if err := f.writeAt(jsb, int64(in.ext[0].pblk)*int64(f.bs)); err != nil {
		return err
	}
	if err := f.writeMapping(in); err != nil {
		return err
	}
	put32(f.sb, s_journal_inum, EXT4_JOURNAL_INO)
	copy(f.sb[s_jnl_blocks:s_jnl_blocks+iBlockLen], in.raw[i_block:i_block+iBlockLen])
	put32(f.sb, s_jnl_blocks+15*4, le32(in.raw, i_size_high))
	put32(f.sb, s_jnl_blocks+16*4, le32(in.raw, i_size_lo))
	f.sb[s_jnl_backup_type] = 1 // EXT3_JNL_BACKUP_BLOCKS
	f.compat |= EXT4_FEATURE_COMPAT_HAS_JOURNAL
	put32(f.sb, s_feature_compat, f.compat)
	f.sbDirty = true
	return nil
}

// initNewInode fills a fresh raw inode.
func (f *FS) initNewInode(in *inode, mode uint16) {
	raw := in.raw
	clear(raw)
	put16(raw, i_mode, mode)
	if f.inodeSize > EXT4_GOOD_OLD_INODE_SIZE {
		x := le16(f.sb, s_want_extra_isize)
		if x < 32 {
			x = 32
		}
		if int(x) > f.inodeSize-EXT4_GOOD_OLD_INODE_SIZE {
			x = uint16(f.inodeSize - EXT4_GOOD_OLD_INODE_SIZE)
		}
		put16(raw, i_extra_isize, x)
	}
	f.genCounter++
	put32(raw, i_generation, uint32(f.now().UnixNano())^f.genCounter*2654435761)
	t := f.now()
	f.setTime(in, i_atime, i_atime_extra, t)
	f.setTime(in, i_ctime, i_ctime_extra, t)
	f.setTime(in, i_mtime, i_mtime_extra, t)
	f.setTime(in, i_crtime, i_crtime_extra, t)
	if f.incompat&EXT4_FEATURE_INCOMPAT_EXTENTS != 0 && mode&S_IFMT != S_IFLNK {
		put32(raw, i_flags, EXT4_EXTENTS_FL)
		put16(raw, i_block+eh_magic, EXT4_EXT_MAGIC)
		put16(raw, i_block+eh_max, (iBlockLen-extentHeaderSize)/extentEntrySize)
	}
	in.dirty = true
}

// copyTree copies src into the root of f.
func (f *FS) copyTree(src fs.FS) error {
	type devIno struct{ dev, ino uint64 }
	seen := map[devIno]string{}
	return fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("blockfs: mkfs: walk %s: %w", p, err)
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("blockfs: mkfs: %s: %w", p, err)
		}
		mode := info.Mode()
		st, hosted := info.Sys().(*syscall.Stat_t)
		if hosted && !mode.IsDir() && st.Nlink > 1 {
			k := devIno{uint64(st.Dev), st.Ino}
			if first, ok := seen[k]; ok {
				return f.Link(first, p)
			}
			seen[k] = p
		}
		if err := f.copyEntry(src, p, mode); err != nil {
			return err
		}
		if hosted {
			if err := f.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if mt := info.ModTime(); !mt.IsZero() && mode&fs.ModeSymlink == 0 {
			return f.Chtimes(p, mt, mt)
		}
		return nil
	})
}

func (f *FS) copyEntry(src fs.FS, p string, mode fs.FileMode) error {
	{
		switch {
		case p == ".":
			return f.Chmod(".", mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		case mode.IsDir():
			return f.Mkdir(p, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		case mode&fs.ModeSymlink != 0:
			rl, ok := src.(fs.ReadLinkFS)
			if !ok {
				return fmt.Errorf("blockfs: mkfs: %s: symlink in a file system without ReadLink: %w", p, errors.ErrUnsupported)
			}
			target, err := rl.ReadLink(p)
			if err != nil {
				return err
			}
			return f.Symlink(target, p)
		case mode.IsRegular():
			return f.copyFile(src, p, mode)
		case mode&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
			var dev uint64
			if info, err := fs.Stat(src, p); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					dev = uint64(st.Rdev)
				}
			}
			return f.Mknod(p, mode, dev)
		}
		return nil
	}
}

func (f *FS) copyFile(src fs.FS, p string, mode fs.FileMode) error {
	in, err := src.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := f.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(out, in, buf); err != nil {
		out.Close()
		return fmt.Errorf("blockfs: mkfs: copy %s: %w", path.Clean(p), err)
	}
	return out.Close()
}
