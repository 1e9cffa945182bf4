package blockfs

import "encoding/binary"

// On-disk format constants and field offsets, spelled as in the ext4 disk
// layout documentation (Documentation/filesystems/ext4, "Data Structures and
// Algorithms") and include/linux/jbd2.h. All ext4 fields are little-endian;
// all jbd2 fields are big-endian.

// Superblock (ext4 "The Super Block").
const (
	superblockOffset = 1024
	superblockSize   = 1024

	EXT4_SUPER_MAGIC = 0xEF53

	s_inodes_count         = 0x0
	s_blocks_count_lo      = 0x4
	s_r_blocks_count_lo    = 0x8
	s_free_blocks_count_lo = 0xC
	s_free_inodes_count    = 0x10
	s_first_data_block     = 0x14
	s_log_block_size       = 0x18
	s_log_cluster_size     = 0x1C
	s_blocks_per_group     = 0x20
	s_clusters_per_group   = 0x24
	s_inodes_per_group     = 0x28
	s_mtime                = 0x2C
	s_wtime                = 0x30
	s_mnt_count            = 0x34
	s_max_mnt_count        = 0x36
	s_magic                = 0x38
	s_state                = 0x3A
	s_errors               = 0x3C
	s_minor_rev_level      = 0x3E
	s_lastcheck            = 0x40
	s_checkinterval        = 0x44
	s_creator_os           = 0x48
	s_rev_level            = 0x4C
	s_def_resuid           = 0x50
	s_def_resgid           = 0x52
	s_first_ino            = 0x54
	s_inode_size           = 0x58
	s_block_group_nr       = 0x5A
	s_feature_compat       = 0x5C
	s_feature_incompat     = 0x60
	s_feature_ro_compat    = 0x64
	s_uuid                 = 0x68
	s_volume_name          = 0x78
	s_last_mounted         = 0x88
	s_reserved_gdt_blocks  = 0xCE
	s_journal_uuid         = 0xD0
	s_journal_inum         = 0xE0
	s_journal_dev          = 0xE4
	s_last_orphan          = 0xE8
	s_hash_seed            = 0xEC
	s_def_hash_version     = 0xFC
	s_jnl_backup_type      = 0xFD
	s_desc_size            = 0xFE
	s_default_mount_opts   = 0x100
	s_first_meta_bg        = 0x104
	s_mkfs_time            = 0x108
	s_jnl_blocks           = 0x10C
	s_blocks_count_hi      = 0x150
	s_r_blocks_count_hi    = 0x154
	s_free_blocks_count_hi = 0x158
	s_min_extra_isize      = 0x15C
	s_want_extra_isize     = 0x15E
	s_flags                = 0x160
	s_log_groups_per_flex  = 0x174
	s_checksum_type        = 0x175
	s_kbytes_written       = 0x178
	s_overhead_clusters    = 0x248
	s_checksum_seed        = 0x270
	s_usr_quota_inum       = 0x240
	s_grp_quota_inum       = 0x244
	s_prj_quota_inum       = 0x26C
	s_orphan_file_inum     = 0x280
	s_checksum             = 0x3FC

	EXT4_VALID_FS  = 0x0001
	EXT4_ERROR_FS  = 0x0002
	EXT4_ORPHAN_FS = 0x0004

	EXT2_FLAGS_SIGNED_HASH   = 0x0001
	EXT2_FLAGS_UNSIGNED_HASH = 0x0002

	EXT4_GOOD_OLD_REV        = 0
	EXT4_DYNAMIC_REV         = 1
	EXT4_GOOD_OLD_FIRST_INO  = 11
	EXT4_GOOD_OLD_INODE_SIZE = 128

	EXT4_CRC32C_CHKSUM = 1
)

// Feature flags (ext4 "The Super Block", s_feature_*).
const (
	EXT4_FEATURE_COMPAT_DIR_PREALLOC  = 0x0001
	EXT4_FEATURE_COMPAT_IMAGIC_INODES = 0x0002
	EXT4_FEATURE_COMPAT_HAS_JOURNAL   = 0x0004
	EXT4_FEATURE_COMPAT_EXT_ATTR      = 0x0008
	EXT4_FEATURE_COMPAT_RESIZE_INODE  = 0x0010
	EXT4_FEATURE_COMPAT_DIR_INDEX     = 0x0020
	EXT4_FEATURE_COMPAT_SPARSE_SUPER2 = 0x0200
	EXT4_FEATURE_COMPAT_FAST_COMMIT   = 0x0400
	EXT4_FEATURE_COMPAT_STABLE_INODES = 0x0800
	EXT4_FEATURE_COMPAT_ORPHAN_FILE   = 0x1000

	EXT4_FEATURE_INCOMPAT_COMPRESSION = 0x0001
	EXT4_FEATURE_INCOMPAT_FILETYPE    = 0x0002
	EXT4_FEATURE_INCOMPAT_RECOVER     = 0x0004
	EXT4_FEATURE_INCOMPAT_JOURNAL_DEV = 0x0008
	EXT4_FEATURE_INCOMPAT_META_BG     = 0x0010
	EXT4_FEATURE_INCOMPAT_EXTENTS     = 0x0040
	EXT4_FEATURE_INCOMPAT_64BIT       = 0x0080
	EXT4_FEATURE_INCOMPAT_MMP         = 0x0100
	EXT4_FEATURE_INCOMPAT_FLEX_BG     = 0x0200
	EXT4_FEATURE_INCOMPAT_EA_INODE    = 0x0400
	EXT4_FEATURE_INCOMPAT_DIRDATA     = 0x1000
	EXT4_FEATURE_INCOMPAT_CSUM_SEED   = 0x2000
	EXT4_FEATURE_INCOMPAT_LARGEDIR    = 0x4000
	EXT4_FEATURE_INCOMPAT_INLINE_DATA = 0x8000
	EXT4_FEATURE_INCOMPAT_ENCRYPT     = 0x10000
	EXT4_FEATURE_INCOMPAT_CASEFOLD    = 0x20000

	EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER   = 0x0001
	EXT4_FEATURE_RO_COMPAT_LARGE_FILE     = 0x0002
	EXT4_FEATURE_RO_COMPAT_BTREE_DIR      = 0x0004
	EXT4_FEATURE_RO_COMPAT_HUGE_FILE      = 0x0008
	EXT4_FEATURE_RO_COMPAT_GDT_CSUM       = 0x0010
	EXT4_FEATURE_RO_COMPAT_DIR_NLINK      = 0x0020
	EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE    = 0x0040
	EXT4_FEATURE_RO_COMPAT_HAS_SNAPSHOT   = 0x0080
	EXT4_FEATURE_RO_COMPAT_QUOTA          = 0x0100
	EXT4_FEATURE_RO_COMPAT_BIGALLOC       = 0x0200
	EXT4_FEATURE_RO_COMPAT_METADATA_CSUM  = 0x0400
	EXT4_FEATURE_RO_COMPAT_REPLICA        = 0x0800
	EXT4_FEATURE_RO_COMPAT_READONLY       = 0x1000
	EXT4_FEATURE_RO_COMPAT_PROJECT        = 0x2000
	EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS  = 0x4000
	EXT4_FEATURE_RO_COMPAT_VERITY         = 0x8000
	EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT = 0x10000
)

var incompatNames = map[uint32]string{
	EXT4_FEATURE_INCOMPAT_COMPRESSION: "compression",
	EXT4_FEATURE_INCOMPAT_FILETYPE:    "filetype",
	EXT4_FEATURE_INCOMPAT_RECOVER:     "needs_recovery",
	EXT4_FEATURE_INCOMPAT_JOURNAL_DEV: "journal_dev",
	EXT4_FEATURE_INCOMPAT_META_BG:     "meta_bg",
	EXT4_FEATURE_INCOMPAT_EXTENTS:     "extent",
	EXT4_FEATURE_INCOMPAT_64BIT:       "64bit",
	EXT4_FEATURE_INCOMPAT_MMP:         "mmp",
	EXT4_FEATURE_INCOMPAT_FLEX_BG:     "flex_bg",
	EXT4_FEATURE_INCOMPAT_EA_INODE:    "ea_inode",
	EXT4_FEATURE_INCOMPAT_DIRDATA:     "dirdata",
	EXT4_FEATURE_INCOMPAT_CSUM_SEED:   "metadata_csum_seed",
	EXT4_FEATURE_INCOMPAT_LARGEDIR:    "large_dir",
	EXT4_FEATURE_INCOMPAT_INLINE_DATA: "inline_data",
	EXT4_FEATURE_INCOMPAT_ENCRYPT:     "encrypt",
	EXT4_FEATURE_INCOMPAT_CASEFOLD:    "casefold",
}

var roCompatNames = map[uint32]string{
	EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER:   "sparse_super",
	EXT4_FEATURE_RO_COMPAT_LARGE_FILE:     "large_file",
	EXT4_FEATURE_RO_COMPAT_BTREE_DIR:      "btree_dir",
	EXT4_FEATURE_RO_COMPAT_HUGE_FILE:      "huge_file",
	EXT4_FEATURE_RO_COMPAT_GDT_CSUM:       "uninit_bg",
	EXT4_FEATURE_RO_COMPAT_DIR_NLINK:      "dir_nlink",
	EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE:    "extra_isize",
	EXT4_FEATURE_RO_COMPAT_HAS_SNAPSHOT:   "snapshot",
	EXT4_FEATURE_RO_COMPAT_QUOTA:          "quota",
	EXT4_FEATURE_RO_COMPAT_BIGALLOC:       "bigalloc",
	EXT4_FEATURE_RO_COMPAT_METADATA_CSUM:  "metadata_csum",
	EXT4_FEATURE_RO_COMPAT_REPLICA:        "replica",
	EXT4_FEATURE_RO_COMPAT_READONLY:       "read-only",
	EXT4_FEATURE_RO_COMPAT_PROJECT:        "project",
	EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS:  "shared_blocks",
	EXT4_FEATURE_RO_COMPAT_VERITY:         "verity",
	EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT: "orphan_present",
}

// Features this package reads and writes. Incompatible features outside
// supportedIncompat refuse the mount; read-only-compatible features outside
// writableROCompat force a read-only mount.
const (
	supportedIncompat = EXT4_FEATURE_INCOMPAT_FILETYPE | EXT4_FEATURE_INCOMPAT_RECOVER |
		EXT4_FEATURE_INCOMPAT_META_BG | EXT4_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_64BIT |
		EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_CSUM_SEED | EXT4_FEATURE_INCOMPAT_LARGEDIR
	writableROCompat = EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT4_FEATURE_RO_COMPAT_LARGE_FILE |
		EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_GDT_CSUM | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
		EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM
)

// Block group descriptor (ext4 "Block Group Descriptors").
const (
	bg_block_bitmap_lo      = 0x0
	bg_inode_bitmap_lo      = 0x4
	bg_inode_table_lo       = 0x8
	bg_free_blocks_count_lo = 0xC
	bg_free_inodes_count_lo = 0xE
	bg_used_dirs_count_lo   = 0x10
	bg_flags                = 0x12
	bg_block_bitmap_csum_lo = 0x18
	bg_inode_bitmap_csum_lo = 0x1A
	bg_itable_unused_lo     = 0x1C
	bg_checksum             = 0x1E
	bg_block_bitmap_hi      = 0x20
	bg_inode_bitmap_hi      = 0x24
	bg_inode_table_hi       = 0x28
	bg_free_blocks_count_hi = 0x2C
	bg_free_inodes_count_hi = 0x2E
	bg_used_dirs_count_hi   = 0x30
	bg_itable_unused_hi     = 0x32
	bg_block_bitmap_csum_hi = 0x38
	bg_inode_bitmap_csum_hi = 0x3A

	EXT4_BG_INODE_UNINIT = 0x0001
	EXT4_BG_BLOCK_UNINIT = 0x0002
	EXT4_BG_INODE_ZEROED = 0x0004

	EXT4_MIN_DESC_SIZE       = 32
	EXT4_MIN_DESC_SIZE_64BIT = 64
)

// Inode (ext4 "Inode Table").
const (
	i_mode            = 0x0
	i_uid             = 0x2
	i_size_lo         = 0x4
	i_atime           = 0x8
	i_ctime           = 0xC
	i_mtime           = 0x10
	i_dtime           = 0x14
	i_gid             = 0x18
	i_links_count     = 0x1A
	i_blocks_lo       = 0x1C
	i_flags           = 0x20
	i_block           = 0x28
	i_generation      = 0x64
	i_file_acl_lo     = 0x68
	i_size_high       = 0x6C
	l_i_blocks_high   = 0x74
	l_i_file_acl_high = 0x76
	l_i_uid_high      = 0x78
	l_i_gid_high      = 0x7A
	l_i_checksum_lo   = 0x7C
	i_extra_isize     = 0x80
	i_checksum_hi     = 0x82
	i_ctime_extra     = 0x84
	i_mtime_extra     = 0x88
	i_atime_extra     = 0x8C
	i_crtime          = 0x90
	i_crtime_extra    = 0x94

	iBlockLen = 60

	EXT4_INODE_CSUM_HI_EXTRA_END = 4 // i_extra_isize needed to hold i_checksum_hi

	EXT4_SECRM_FL       = 0x1
	EXT4_SYNC_FL        = 0x8
	EXT4_IMMUTABLE_FL   = 0x10
	EXT4_APPEND_FL      = 0x20
	EXT4_INDEX_FL       = 0x1000
	EXT4_HUGE_FILE_FL   = 0x40000
	EXT4_EXTENTS_FL     = 0x80000
	EXT4_EA_INODE_FL    = 0x200000
	EXT4_INLINE_DATA_FL = 0x10000000

	EXT4_BAD_INO         = 1
	EXT4_ROOT_INO        = 2
	EXT4_USR_QUOTA_INO   = 3
	EXT4_GRP_QUOTA_INO   = 4
	EXT4_BOOT_LOADER_INO = 5
	EXT4_UNDEL_DIR_INO   = 6
	EXT4_RESIZE_INO      = 7
	EXT4_JOURNAL_INO     = 8

	EXT4_NDIR_BLOCKS = 12
	EXT4_IND_BLOCK   = 12
	EXT4_DIND_BLOCK  = 13
	EXT4_TIND_BLOCK  = 14
)

// File mode bits (i_mode).
const (
	S_IFMT   = 0xF000
	S_IFSOCK = 0xC000
	S_IFLNK  = 0xA000
	S_IFREG  = 0x8000
	S_IFBLK  = 0x6000
	S_IFDIR  = 0x4000
	S_IFCHR  = 0x2000
	S_IFIFO  = 0x1000
	S_ISUID  = 0x800
	S_ISGID  = 0x400
	S_ISVTX  = 0x200
)

// Extent tree (ext4 "Extent Tree").
const (
	EXT4_EXT_MAGIC = 0xF30A

	eh_magic      = 0x0
	eh_entries    = 0x2
	eh_max        = 0x4
	eh_depth      = 0x6
	eh_generation = 0x8

	ee_block    = 0x0
	ee_len      = 0x4
	ee_start_hi = 0x6
	ee_start_lo = 0x8

	ei_block   = 0x0
	ei_leaf_lo = 0x4
	ei_leaf_hi = 0x8

	extentHeaderSize = 12
	extentEntrySize  = 12
	extentTailSize   = 4

	EXT_INIT_MAX_LEN      = 1 << 15
	EXT_UNINIT_MAX_LEN    = EXT_INIT_MAX_LEN - 1
	EXT4_MAX_EXTENT_DEPTH = 5
)

// Directory entries (ext4 "Directory Entries", "Hash Tree Directories").
const (
	EXT4_NAME_LEN = 255

	EXT4_FT_UNKNOWN  = 0
	EXT4_FT_REG_FILE = 1
	EXT4_FT_DIR      = 2
	EXT4_FT_CHRDEV   = 3
	EXT4_FT_BLKDEV   = 4
	EXT4_FT_FIFO     = 5
	EXT4_FT_SOCK     = 6
	EXT4_FT_SYMLINK  = 7
	EXT4_FT_DIR_CSUM = 0xDE

	direntHeaderSize = 8
	direntTailSize   = 12

	DX_HASH_LEGACY            = 0
	DX_HASH_HALF_MD4          = 1
	DX_HASH_TEA               = 2
	DX_HASH_LEGACY_UNSIGNED   = 3
	DX_HASH_HALF_MD4_UNSIGNED = 4
	DX_HASH_TEA_UNSIGNED      = 5
	DX_HASH_SIPHASH           = 6

	dxRootInfoOffset     = 0x18 // after the "." and ".." entries
	dxRootEntries        = 0x20
	dxNodeEntries        = 0x8
	dxEntrySize          = 8
	dxTailSize           = 8
	EXT4_HTREE_EOF_32BIT = 0x7fffffff
)

// Extended attributes (ext4 "Extended Attributes").
const (
	EXT4_XATTR_MAGIC                   = 0xEA020000
	xattrHeaderSize                    = 32
	xattrIbodyHeaderSize               = 4
	xattrEntryHeaderSize               = 16
	h_magic_xattr                      = 0x0
	h_refcount                         = 0x4
	h_blocks                           = 0x8
	h_hash                             = 0xC
	h_checksum_xattr                   = 0x10
	e_name_len                         = 0x0
	e_name_index                       = 0x1
	e_value_offs                       = 0x2
	e_value_inum                       = 0x4
	e_value_size                       = 0x8
	e_hash                             = 0xC
	EXT4_XATTR_INDEX_USER              = 1
	EXT4_XATTR_INDEX_POSIX_ACL_ACCESS  = 2
	EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT = 3
	EXT4_XATTR_INDEX_TRUSTED           = 4
	EXT4_XATTR_INDEX_SECURITY          = 6
	EXT4_XATTR_INDEX_SYSTEM            = 7
)

// jbd2 journal (include/linux/jbd2.h); big-endian.
const (
	JBD2_MAGIC_NUMBER = 0xC03B3998

	JBD2_DESCRIPTOR_BLOCK = 1
	JBD2_COMMIT_BLOCK     = 2
	JBD2_SUPERBLOCK_V1    = 3
	JBD2_SUPERBLOCK_V2    = 4
	JBD2_REVOKE_BLOCK     = 5
	JBD2_FC_BLOCK         = 6

	JBD2_FEATURE_COMPAT_CHECKSUM       = 0x1
	JBD2_FEATURE_INCOMPAT_REVOKE       = 0x1
	JBD2_FEATURE_INCOMPAT_64BIT        = 0x2
	JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT = 0x4
	JBD2_FEATURE_INCOMPAT_CSUM_V2      = 0x8
	JBD2_FEATURE_INCOMPAT_CSUM_V3      = 0x10
	JBD2_FEATURE_INCOMPAT_FAST_COMMIT  = 0x20
	jbd2KnownIncompat                  = 0x3F

	JBD2_FLAG_ESCAPE    = 1
	JBD2_FLAG_SAME_UUID = 2
	JBD2_FLAG_DELETED   = 4
	JBD2_FLAG_LAST_TAG  = 8

	JBD2_CRC32C_CHKSUM = 4

	h_magic     = 0x0
	h_blocktype = 0x4
	h_sequence  = 0x8

	js_blocksize         = 0xC
	js_maxlen            = 0x10
	js_first             = 0x14
	js_sequence          = 0x18
	js_start             = 0x1C
	js_errno             = 0x20
	js_feature_compat    = 0x24
	js_feature_incompat  = 0x28
	js_feature_ro_compat = 0x2C
	js_uuid              = 0x30
	js_nr_users          = 0x40
	js_max_transaction   = 0x48
	js_max_trans_data    = 0x4C
	js_checksum_type     = 0x50
	js_num_fc_blks       = 0x54
	js_checksum          = 0xFC
	js_users             = 0x100

	jr_count       = 0xC // revoke block: bytes used, header included
	jbd2HeaderSize = 12
)

// Little-endian field access on raw structures.
func le16(b []byte, off int) uint16       { return binary.LittleEndian.Uint16(b[off:]) }
func le32(b []byte, off int) uint32       { return binary.LittleEndian.Uint32(b[off:]) }
func le64(b []byte, off int) uint64       { return binary.LittleEndian.Uint64(b[off:]) }
func put16(b []byte, off int, v uint16)   { binary.LittleEndian.PutUint16(b[off:], v) }
func put32(b []byte, off int, v uint32)   { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64)   { binary.LittleEndian.PutUint64(b[off:], v) }
func be32(b []byte, off int) uint32       { return binary.BigEndian.Uint32(b[off:]) }
func putBE32(b []byte, off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
func be16(b []byte, off int) uint16       { return binary.BigEndian.Uint16(b[off:]) }
func putBE16(b []byte, off int, v uint16) { binary.BigEndian.PutUint16(b[off:], v) }
