package blockfs

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anykernel/anykernel/hal"
)

var (
	// ErrCorrupt is wrapped by every error caused by an inconsistent image:
	// bad checksums, out-of-range pointers, directory loops. Test with
	// errors.Is(err, blockfs.ErrCorrupt).
	ErrCorrupt    = errors.New("blockfs: file system is corrupt")
	errReadOnlyFS = errors.New("blockfs: file system is mounted read-only")
	// ErrUnsupportedFeature is wrapped by Mount's error when the image uses
	// an incompatible feature this package does not implement.
	ErrUnsupportedFeature = errors.New("blockfs: unsupported file system feature")
	// ErrNeedsRecovery is wrapped by Mount's error when the journal needs
	// recovery and Options.NoRecovery forbids replaying it.
	ErrNeedsRecovery = errors.New("blockfs: journal needs recovery")
)

// Options configure Mount. The zero value mounts read-write (read-only if
// the device is read-only or the image has read-only-compatible features
// this package cannot maintain), replaying the journal if needed, with no
// log output.
type Options struct {
	// ReadOnly mounts the file system read-only; nothing is written to the
	// device. A journal that needs recovery is replayed in memory only.
	ReadOnly bool
	// NoRecovery refuses to mount a file system whose journal needs
	// recovery instead of replaying it.
	NoRecovery bool
	// Logger receives warnings (for example a read-only fallback). Nil
	// discards them.
	Logger *slog.Logger
	// Now returns the time stamped on inodes and the superblock; nil means
	// time.Now.
	Now func() time.Time
	// CacheBlocks bounds the metadata blocks kept in memory between
	// operations (modified ones are written back when twice as many
	// accumulate); 0 means 8192.
	CacheBlocks int
}

// FS is a mounted ext4 file system.
type FS struct {
	mu sync.Mutex

	dev        hal.BlockDevice
	devSize    int64
	sectorSize int
	opts       Options
	readOnly   bool
	closed     bool
	log        *slog.Logger

	sb             []byte
	bs             int
	logBS          uint
	blocksCount    uint64
	firstDataBlock uint32
	bpg, ipg       uint32
	inodesCount    uint32
	inodeSize      int
	firstIno       uint32
	descSize       int
	groups         uint32
	compat         uint32
	incompat       uint32
	roCompat       uint32
	metaCsum       bool
	gdtCsum        bool
	csumSeed       uint32
	hashSeed       [4]uint32
	hashVersion    uint8
	gdt            []byte
	gdtBlocks      []uint64
	dirtyGroups    map[uint32]bool
	sbDirty        bool
	mountState     uint16 // s_state when mounted, restored by Close

	cache      map[uint64]*cblock
	ndirty     int // dirty blocks in cache
	cacheLimit int

	jw   *jwriter   // nil when write-back is not journalled
	quar []blkRange // blocks freed since the last transaction, sorted

	opsSinceCheck int // operations since journalFilling counted inodes
	inodes        map[uint32]*inode

	allocGoal  uint64
	genCounter uint32 // mixed into new inodes' i_generation

	replayed map[uint64][]byte
	verified map[uint64]bool // bitmap blocks whose checksum was checked
}

func (f *FS) has64() bool { return f.incompat&EXT4_FEATURE_INCOMPAT_64BIT != 0 }

func featureList(v uint32, names map[uint32]string) string {
	var out []string
	for bit := uint32(1); bit != 0; bit <<= 1 {
		if v&bit == 0 {
			continue
		}
		if n, ok := names[bit]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("FEATURE_%#x", bit))
		}
	}
	return strings.Join(out, ",")
}

// Mount opens the ext4 (or ext2/ext3) file system on dev.
func Mount(dev hal.BlockDevice, opts Options) (*FS, error) {
	f := &FS{
		dev:         dev,
		devSize:     dev.Size(),
		sectorSize:  dev.SectorSize(),
		opts:        opts,
		readOnly:    opts.ReadOnly || hal.IsReadOnly(dev),
		log:         opts.Logger,
		cache:       map[uint64]*cblock{},
		inodes:      map[uint32]*inode{},
		dirtyGroups: map[uint32]bool{},
		verified:    map[uint64]bool{},
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.cacheLimit = opts.CacheBlocks
	if f.cacheLimit <= 0 {
		f.cacheLimit = 8192
	}
	if err := f.loadSuper(); err != nil {
		return nil, err
	}
	if f.incompat&EXT4_FEATURE_INCOMPAT_RECOVER != 0 {
		if f.compat&EXT4_FEATURE_COMPAT_HAS_JOURNAL == 0 {
			return nil, fmt.Errorf("blockfs: needs_recovery set without a journal: %w", ErrCorrupt)
		}
		if opts.NoRecovery {
			return nil, fmt.Errorf("blockfs: mount: %w", ErrNeedsRecovery)
		}
		if err := f.replayJournal(); err != nil {
			return nil, fmt.Errorf("blockfs: journal recovery: %w", err)
		}
		// Replay may have rewritten the superblock and group descriptors.
		ro := f.readOnly
		if err := f.reloadAfterReplay(); err != nil {
			return nil, err
		}
		f.readOnly = ro
	}
	if !f.readOnly {
		f.touchMount()
		// Like the kernel, mark the file system not clean while it is
		// mounted read-write (restored by Close), so that a crash
		// between syncs makes e2fsck check it.
		f.mountState = le16(f.sb, s_state)
		put16(f.sb, s_state, f.mountState&^EXT4_VALID_FS)
		jw, why, err := f.openJournalWriter()
		if err != nil {
			return nil, fmt.Errorf("blockfs: journal: %w", err)
		}
		if why != "" {
			f.log.Warn("blockfs: metadata write-back is not journalled", "reason", why)
		}
		if jw != nil {
			// needs_recovery must be on the device before the first
			// transaction commits: the kernel wipes a non-empty journal
			// whose file system does not say it needs recovery.
			put32(f.sb, s_feature_incompat, le32(f.sb, s_feature_incompat)|EXT4_FEATURE_INCOMPAT_RECOVER)
			if err := f.writeSuperHome(); err != nil {
				return nil, err
			}
			f.jw = jw
		}
		if le32(f.sb, s_last_orphan) != 0 {
			if err := f.processOrphans(); err != nil {
				return nil, fmt.Errorf("blockfs: orphan list: %w", err)
			}
		}
		if err := f.syncLocked(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *FS) loadSuper() error {
	sb := make([]byte, superblockSize)
	if f.devSize < superblockOffset+superblockSize {
		return fmt.Errorf("blockfs: device of %d bytes is too small for a superblock: %w", f.devSize, ErrCorrupt)
	}
	if err := f.readAt(sb, superblockOffset); err != nil {
		return fmt.Errorf("blockfs: read superblock: %w", err)
	}
	return f.parseSuper(sb)
}

func (f *FS) parseSuper(sb []byte) error {
	if le16(sb, s_magic) != EXT4_SUPER_MAGIC {
		return fmt.Errorf("blockfs: bad superblock magic %#x: not an ext2/3/4 file system", le16(sb, s_magic))
	}
	f.sb = sb
	f.compat = le32(sb, s_feature_compat)
	f.incompat = le32(sb, s_feature_incompat)
	f.roCompat = le32(sb, s_feature_ro_compat)
	rev := le32(sb, s_rev_level)
	if rev == EXT4_GOOD_OLD_REV {
		f.compat, f.incompat, f.roCompat = 0, 0, 0
	}
	f.metaCsum = f.roCompat&EXT4_FEATURE_RO_COMPAT_METADATA_CSUM != 0
	if f.metaCsum {
		if sb[s_checksum_type] != EXT4_CRC32C_CHKSUM {
			return fmt.Errorf("blockfs: unknown metadata checksum type %d: %w", sb[s_checksum_type], ErrCorrupt)
		}
		// After journal replay the superblock copy from the log may carry a
		// stale checksum (the kernel rewrites it after recovery); we do too.
		if got, want := le32(sb, s_checksum), crc32c(^uint32(0), sb[:s_checksum]); got != want && f.replayed == nil {
			return fmt.Errorf("blockfs: superblock checksum %#x, computed %#x: %w", got, want, ErrCorrupt)
		}
	}
	f.gdtCsum = !f.metaCsum && f.roCompat&EXT4_FEATURE_RO_COMPAT_GDT_CSUM != 0
	if bad := f.incompat &^ supportedIncompat; bad != 0 {
		return fmt.Errorf("blockfs: incompatible feature %s: %w", featureList(bad, incompatNames), ErrUnsupportedFeature)
	}
	if bad := f.roCompat &^ writableROCompat; bad != 0 && !f.readOnly {
		f.log.Warn("blockfs: mounting read-only: unsupported read-only-compatible feature", "features", featureList(bad, roCompatNames))
		f.readOnly = true
	}
	logBS := le32(sb, s_log_block_size)
	if logBS > 6 {
		return fmt.Errorf("blockfs: block size 2^(10+%d) out of range: %w", logBS, ErrCorrupt)
	}
	f.logBS = uint(10 + logBS)
	f.bs = 1 << f.logBS
	if le32(sb, s_log_cluster_size) != logBS && f.roCompat&EXT4_FEATURE_RO_COMPAT_BIGALLOC == 0 {
		return fmt.Errorf("blockfs: cluster size differs from block size without bigalloc: %w", ErrCorrupt)
	}
	if f.roCompat&EXT4_FEATURE_RO_COMPAT_BIGALLOC != 0 {
		return fmt.Errorf("blockfs: feature bigalloc: %w", ErrUnsupportedFeature)
	}
	f.blocksCount = uint64(le32(sb, s_blocks_count_lo))
	if f.has64() {
		f.blocksCount |= uint64(le32(sb, s_blocks_count_hi)) << 32
	}
	f.firstDataBlock = le32(sb, s_first_data_block)
	f.bpg = le32(sb, s_blocks_per_group)
	f.ipg = le32(sb, s_inodes_per_group)
	f.inodesCount = le32(sb, s_inodes_count)
	f.inodeSize = EXT4_GOOD_OLD_INODE_SIZE
	f.firstIno = EXT4_GOOD_OLD_FIRST_INO
	if rev != EXT4_GOOD_OLD_REV {
		f.inodeSize = int(le16(sb, s_inode_size))
		f.firstIno = le32(sb, s_first_ino)
	}
	switch {
	case f.blocksCount == 0 || f.blocksCount > uint64(f.devSize)>>f.logBS:
		return fmt.Errorf("blockfs: %d blocks of %d bytes do not fit the %d-byte device: %w", f.blocksCount, f.bs, f.devSize, ErrCorrupt)
	case f.bs == 1024 && f.firstDataBlock != 1, f.bs > 1024 && f.firstDataBlock != 0:
		return fmt.Errorf("blockfs: first data block %d with %d-byte blocks: %w", f.firstDataBlock, f.bs, ErrCorrupt)
	case f.bpg == 0 || f.bpg > uint32(8*f.bs) || f.bpg%8 != 0:
		return fmt.Errorf("blockfs: %d blocks per group: %w", f.bpg, ErrCorrupt)
	case f.ipg == 0 || f.ipg > uint32(8*f.bs) || f.ipg%8 != 0:
		return fmt.Errorf("blockfs: %d inodes per group: %w", f.ipg, ErrCorrupt)
	case f.inodeSize < EXT4_GOOD_OLD_INODE_SIZE || f.inodeSize > f.bs || f.inodeSize&(f.inodeSize-1) != 0:
		return fmt.Errorf("blockfs: inode size %d: %w", f.inodeSize, ErrCorrupt)
	case f.firstIno < EXT4_GOOD_OLD_FIRST_INO || f.firstIno >= f.inodesCount:
		return fmt.Errorf("blockfs: first inode %d: %w", f.firstIno, ErrCorrupt)
	}
	f.groups = uint32((f.blocksCount - uint64(f.firstDataBlock) + uint64(f.bpg) - 1) / uint64(f.bpg))
	if uint64(f.groups)*uint64(f.ipg) != uint64(f.inodesCount) {
		return fmt.Errorf("blockfs: %d inodes is not %d groups of %d: %w", f.inodesCount, f.groups, f.ipg, ErrCorrupt)
	}
	f.descSize = EXT4_MIN_DESC_SIZE
	if f.has64() {
		f.descSize = int(le16(sb, s_desc_size))
		if f.descSize < EXT4_MIN_DESC_SIZE_64BIT || f.descSize > f.bs || f.descSize&(f.descSize-1) != 0 {
			return fmt.Errorf("blockfs: group descriptor size %d: %w", f.descSize, ErrCorrupt)
		}
	}
	if f.incompat&EXT4_FEATURE_INCOMPAT_CSUM_SEED != 0 {
		f.csumSeed = le32(sb, s_checksum_seed)
	} else {
		f.csumSeed = crc32c(^uint32(0), sb[s_uuid:s_uuid+16])
	}
	for i := range f.hashSeed {
		f.hashSeed[i] = le32(sb, s_hash_seed+4*i)
	}
	f.hashVersion = sb[s_def_hash_version]
	if f.hashVersion <= DX_HASH_TEA && le32(sb, s_flags)&EXT2_FLAGS_UNSIGNED_HASH != 0 {
		f.hashVersion += 3
	}
	return f.loadGroups()
}

// groupFirstBlock is the first block of group g.
func (f *FS) groupFirstBlock(g uint32) uint64 {
	return uint64(f.firstDataBlock) + uint64(g)*uint64(f.bpg)
}

// groupHasSuper reports whether group g holds a superblock backup.
func (f *FS) groupHasSuper(g uint32) bool {
	if g == 0 {
		return true
	}
	if f.compat&EXT4_FEATURE_COMPAT_SPARSE_SUPER2 != 0 {
		return g == le32(f.sb, 0x24C) || g == le32(f.sb, 0x250)
	}
	if f.roCompat&EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER == 0 || g == 1 {
		return true
	}
	if g%2 == 0 {
		return false
	}
	for _, base := range []uint32{3, 5, 7} {
		n := g
		for n%base == 0 {
			n /= base
		}
		if n == 1 {
			return true
		}
	}
	return false
}

func (f *FS) descPerBlock() uint32 { return uint32(f.bs / f.descSize) }

// gdtBlockCount is the number of group descriptor blocks.
func (f *FS) gdtBlockCount() uint64 {
	return (uint64(f.groups) + uint64(f.descPerBlock()) - 1) / uint64(f.descPerBlock())
}

// groupOverhead returns the number of blocks at the start of group g used
// by a superblock copy, group descriptors and reserved descriptor blocks.
func (f *FS) groupOverhead(g uint32) uint64 {
	if !f.groupHasSuper(g) {
		if f.incompat&EXT4_FEATURE_INCOMPAT_META_BG != 0 {
			return f.metaBGDescBlocks(g)
		}
		return 0
	}
	n := uint64(1)
	if f.incompat&EXT4_FEATURE_INCOMPAT_META_BG != 0 {
		firstMeta := uint64(le32(f.sb, s_first_meta_bg))
		if firstMeta > f.gdtBlockCount() {
			firstMeta = f.gdtBlockCount()
		}
		if uint64(g)/uint64(f.descPerBlock()) < firstMeta {
			n += firstMeta + uint64(le16(f.sb, s_reserved_gdt_blocks))
		}
		return n + f.metaBGDescBlocks(g)
	}
	return n + f.gdtBlockCount() + uint64(le16(f.sb, s_reserved_gdt_blocks))
}

// metaBGDescBlocks is 1 if group g holds a copy of its meta block group's
// descriptor block (first, second and last group of the meta group).
func (f *FS) metaBGDescBlocks(g uint32) uint64 {
	dpb := f.descPerBlock()
	if uint64(g/dpb) < uint64(le32(f.sb, s_first_meta_bg)) {
		return 0
	}
	r := g % dpb
	if r == 0 || r == 1 || r == dpb-1 {
		return 1
	}
	return 0
}

func (f *FS) loadGroups() error {
	n := f.gdtBlockCount()
	f.gdt = make([]byte, int(n)*f.bs)
	f.gdtBlocks = make([]uint64, n)
	firstMeta := uint64(^uint32(0))
	if f.incompat&EXT4_FEATURE_INCOMPAT_META_BG != 0 {
		firstMeta = uint64(le32(f.sb, s_first_meta_bg))
	}
	for i := uint64(0); i < n; i++ {
		var blk uint64
		if i < firstMeta {
			blk = uint64(f.firstDataBlock) + 1 + i
		} else {
			g := uint32(i) * f.descPerBlock()
			blk = f.groupFirstBlock(g)
			if f.groupHasSuper(g) {
				blk++
			}
		}
		if blk >= f.blocksCount {
			return fmt.Errorf("blockfs: group descriptor block %d beyond the file system: %w", blk, ErrCorrupt)
		}
		f.gdtBlocks[i] = blk
		buf, err := f.bread(blk)
		if err != nil {
			return fmt.Errorf("blockfs: read group descriptors: %w", err)
		}
		copy(f.gdt[int(i)*f.bs:], buf)
	}
	for g := uint32(0); g < f.groups; g++ {
		if err := f.checkGroup(g); err != nil {
			return err
		}
	}
	return nil
}

func (f *FS) gd(g uint32) []byte {
	o := int(g) * f.descSize
	return f.gdt[o : o+f.descSize]
}

func (f *FS) gdField(g uint32, lo, hi int, width int) uint64 {
	d := f.gd(g)
	var v uint64
	if width == 32 {
		v = uint64(le32(d, lo))
		if f.descSize >= EXT4_MIN_DESC_SIZE_64BIT {
			v |= uint64(le32(d, hi)) << 32
		}
	} else {
		v = uint64(le16(d, lo))
		if f.descSize >= EXT4_MIN_DESC_SIZE_64BIT {
			v |= uint64(le16(d, hi)) << 16
		}
	}
	return v
}

func (f *FS) setGDField(g uint32, lo, hi int, width int, v uint64) {
	d := f.gd(g)
	if width == 32 {
		put32(d, lo, uint32(v))
		if f.descSize >= EXT4_MIN_DESC_SIZE_64BIT {
			put32(d, hi, uint32(v>>32))
		}
	} else {
		put16(d, lo, uint16(v))
		if f.descSize >= EXT4_MIN_DESC_SIZE_64BIT {
			put16(d, hi, uint16(v>>16))
		}
	}
	f.dirtyGroups[g] = true
}

func (f *FS) blockBitmapBlock(g uint32) uint64 {
	return f.gdField(g, bg_block_bitmap_lo, bg_block_bitmap_hi, 32)
}
func (f *FS) inodeBitmapBlock(g uint32) uint64 {
	return f.gdField(g, bg_inode_bitmap_lo, bg_inode_bitmap_hi, 32)
}
func (f *FS) inodeTableBlock(g uint32) uint64 {
	return f.gdField(g, bg_inode_table_lo, bg_inode_table_hi, 32)
}
func (f *FS) freeBlocksInGroup(g uint32) uint64 {
	return f.gdField(g, bg_free_blocks_count_lo, bg_free_blocks_count_hi, 16)
}
func (f *FS) freeInodesInGroup(g uint32) uint64 {
	return f.gdField(g, bg_free_inodes_count_lo, bg_free_inodes_count_hi, 16)
}
func (f *FS) usedDirsInGroup(g uint32) uint64 {
	return f.gdField(g, bg_used_dirs_count_lo, bg_used_dirs_count_hi, 16)
}
func (f *FS) itableUnused(g uint32) uint64 {
	return f.gdField(g, bg_itable_unused_lo, bg_itable_unused_hi, 16)
}
func (f *FS) groupFlags(g uint32) uint16 { return le16(f.gd(g), bg_flags) }
func (f *FS) setGroupFlags(g uint32, v uint16) {
	put16(f.gd(g), bg_flags, v)
	f.dirtyGroups[g] = true
}

// groupDescCsum computes the checksum stored in bg_checksum.
func (f *FS) groupDescCsum(g uint32) uint16 {
	d := f.gd(g)
	var le [4]byte
	put32(le[:], 0, g)
	if f.metaCsum {
		c := crc32c(f.csumSeed, le[:])
		c = crc32c(c, d[:bg_checksum])
		c = crc32c(c, []byte{0, 0})
		if f.descSize > bg_checksum+2 {
			c = crc32c(c, d[bg_checksum+2:])
		}
		return uint16(c)
	}
	c := crc16(0xFFFF, f.sb[s_uuid:s_uuid+16])
	c = crc16(c, le[:])
	c = crc16(c, d[:bg_checksum])
	if f.descSize > bg_checksum+2 {
		c = crc16(c, d[bg_checksum+2:])
	}
	return c
}

func (f *FS) checkGroup(g uint32) error {
	if f.metaCsum || f.gdtCsum {
		if got, want := le16(f.gd(g), bg_checksum), f.groupDescCsum(g); got != want {
			return fmt.Errorf("blockfs: group %d descriptor checksum %#x, computed %#x: %w", g, got, want, ErrCorrupt)
		}
	}
	for _, b := range []uint64{f.blockBitmapBlock(g), f.inodeBitmapBlock(g), f.inodeTableBlock(g)} {
		if b < uint64(f.firstDataBlock) || b >= f.blocksCount {
			return fmt.Errorf("blockfs: group %d metadata block %d outside the file system: %w", g, b, ErrCorrupt)
		}
	}
	itBlocks := (uint64(f.ipg)*uint64(f.inodeSize) + uint64(f.bs) - 1) / uint64(f.bs)
	if f.inodeTableBlock(g)+itBlocks > f.blocksCount {
		return fmt.Errorf("blockfs: group %d inode table runs past the end: %w", g, ErrCorrupt)
	}
	return nil
}

func (f *FS) reloadAfterReplay() error {
	f.cache = map[uint64]*cblock{}
	f.verified = map[uint64]bool{}
	if f.readOnly {
		// Replayed blocks live only in the cache in read-only mode.
		for k, v := range f.replayed {
			f.cache[k] = &cblock{data: v, dirty: true}
		}
	}
	f.inodes = map[uint32]*inode{}
	sb := make([]byte, superblockSize)
	sbBlk := uint64(superblockOffset / f.bs)
	if c, ok := f.cache[sbBlk]; ok {
		copy(sb, c.data[superblockOffset%f.bs:])
	} else if err := f.readAt(sb, superblockOffset); err != nil {
		return err
	}
	put32(sb, s_feature_incompat, le32(sb, s_feature_incompat)&^EXT4_FEATURE_INCOMPAT_RECOVER)
	if f.replayed == nil {
		f.replayed = map[uint64][]byte{}
	}
	if err := f.parseSuper(sb); err != nil {
		return err
	}
	if !f.readOnly {
		f.replayed = nil
	}
	f.sbDirty = true
	if !f.readOnly {
		return f.syncLocked()
	}
	return nil
}

func (f *FS) now() time.Time {
	if f.opts.Now != nil {
		return f.opts.Now()
	}
	return time.Now()
}

func (f *FS) touchMount() {
	put32(f.sb, s_mtime, uint32(f.now().Unix()))
	put16(f.sb, s_mnt_count, le16(f.sb, s_mnt_count)+1)
	f.sbDirty = true
}

// ReadOnly reports whether the file system is mounted read-only.
func (f *FS) ReadOnly() bool { return f.readOnly }

// BlockSize returns the file system block size in bytes.
func (f *FS) BlockSize() int { return f.bs }

// Sync writes all modified metadata to the device and flushes the device.
// When it returns nil the image is consistent and durable.
func (f *FS) Sync() error {
	f.lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("blockfs: sync: %w", hal.ErrClosed)
	}
	return f.syncLocked()
}

func (f *FS) syncLocked() error {
	if f.readOnly {
		return nil
	}
	committed, err := f.writeback()
	if err != nil {
		return err
	}
	if committed {
		// The transaction's flushes made every earlier write durable,
		// and the transaction itself is in the log.
		return nil
	}
	if err := f.dev.Sync(); err != nil {
		return fmt.Errorf("blockfs: device sync: %w", err)
	}
	return nil
}

// writeback writes every modified inode, bitmap, descriptor and the
// superblock to the device. It reports whether it made everything durable
// itself (a committed journal transaction, whose flushes covered every
// earlier write, or an in-place write-back it flushed); otherwise it
// leaves the device unflushed.
func (f *FS) writeback() (bool, error) {
	for _, ino := range f.inodes {
		if err := f.flushInode(ino); err != nil {
			return false, err
		}
	}
	groups := make([]uint32, 0, len(f.dirtyGroups))
	for g := range f.dirtyGroups {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	gdtDirty := map[uint64]bool{}
	for _, g := range groups {
		if err := f.updateGroupCsums(g); err != nil {
			return false, err
		}
		gdtDirty[uint64(g/f.descPerBlock())] = true
	}
	for i := range gdtDirty {
		buf, err := f.bread(f.gdtBlocks[i])
		if err != nil {
			return false, err
		}
		copy(buf, f.gdt[int(i)*f.bs:int(i+1)*f.bs])
		f.bdirty(f.gdtBlocks[i], buf)
	}
	clear(f.dirtyGroups)
	if len(groups) > 0 || f.sbDirty {
		f.updateSuperCounts()
		put32(f.sb, s_wtime, uint32(f.now().Unix()))
		f.superCsum()
		if err := f.writeSuper(); err != nil {
			return false, err
		}
		f.sbDirty = false
	}
	return f.flushMeta()
}

// flushMeta writes the dirty metadata blocks back: as one journal
// transaction when the journal is in use (see jwrite.go), in place
// otherwise. It reports whether it made everything durable, as writeback.
func (f *FS) flushMeta() (bool, error) {
	if f.jw == nil {
		return false, f.flushCache()
	}
	if f.jw.aborted != nil {
		return false, fmt.Errorf("blockfs: journal aborted by an earlier I/O error, remount to recover: %w", f.jw.aborted)
	}
	committed, err := f.journalWriteback()
	if err != nil {
		// The log may now hold a transaction, committed or not, that
		// was not checkpointed: writing another over it could leave a
		// mix of the two for replay. Like jbd2, stop journalling; the
		// next Mount recovers from the log.
		f.jw.aborted = err
		f.log.Error("blockfs: journal aborted", "err", err)
		return false, err
	}
	return committed, nil
}

// journalWriteback is flushMeta with the journal in use.
func (f *FS) journalWriteback() (bool, error) {
	blks := f.dirtyBlocks()
	if len(blks) == 0 {
		return false, nil
	}
	if len(blks) > f.jw.maxData {
		// Cannot be atomic: write in place, as without a journal, once
		// the last transaction can no longer be replayed over it.
		f.log.Warn("blockfs: write-back larger than the journal, written in place", "blocks", len(blks), "journal", f.jw.maxData)
		if err := f.jw.reset(f); err != nil {
			return false, err
		}
		if err := f.flushCache(); err != nil {
			return false, err
		}
		if err := f.dev.Sync(); err != nil {
			return false, fmt.Errorf("blockfs: device sync: %w", err)
		}
	} else {
		if err := f.jw.commit(f, blks); err != nil {
			return false, fmt.Errorf("blockfs: journal commit: %w", err)
		}
		if err := f.flushCache(); err != nil {
			return false, err
		}
	}
	f.quar = f.quar[:0]
	return true, nil
}

// superCsum refreshes the superblock's checksum.
func (f *FS) superCsum() {
	if f.metaCsum {
		put32(f.sb, s_checksum, crc32c(^uint32(0), f.sb[:s_checksum]))
	}
}

// writeSuperHome writes the superblock in place and flushes the device,
// outside any transaction: for the needs_recovery flag.
func (f *FS) writeSuperHome() error {
	f.superCsum()
	if err := f.writeAt(f.sb, superblockOffset); err != nil {
		return err
	}
	if c, ok := f.cache[uint64(superblockOffset/f.bs)]; ok {
		copy(c.data[superblockOffset%f.bs:], f.sb)
	}
	if err := f.dev.Sync(); err != nil {
		return fmt.Errorf("blockfs: device sync: %w", err)
	}
	return nil
}

func (f *FS) writeSuper() error {
	blk := uint64(superblockOffset / f.bs)
	buf, err := f.bread(blk)
	if err != nil {
		return err
	}
	copy(buf[superblockOffset%f.bs:], f.sb)
	f.bdirty(blk, buf)
	return nil
}

func (f *FS) updateSuperCounts() {
	var fb, fi uint64
	for g := uint32(0); g < f.groups; g++ {
		fb += f.freeBlocksInGroup(g)
		fi += f.freeInodesInGroup(g)
	}
	put32(f.sb, s_free_blocks_count_lo, uint32(fb))
	if f.has64() {
		put32(f.sb, s_free_blocks_count_hi, uint32(fb>>32))
	}
	put32(f.sb, s_free_inodes_count, uint32(fi))
}

// Close syncs and releases the file system. It does not close the device.
func (f *FS) Close() error {
	f.lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	if !f.readOnly {
		put16(f.sb, s_state, f.mountState)
		f.sbDirty = true
	}
	err := f.syncLocked()
	if err == nil && f.jw != nil {
		err = f.jw.reset(f)
		if err == nil {
			put32(f.sb, s_feature_incompat, le32(f.sb, s_feature_incompat)&^EXT4_FEATURE_INCOMPAT_RECOVER)
			err = f.writeSuperHome()
		}
	}
	f.closed = true
	f.cache = nil
	f.inodes = nil
	return err
}

func sortU64(s []uint64) { slices.Sort(s) }
