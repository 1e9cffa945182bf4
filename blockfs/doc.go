// Package blockfs is an ext4-compatible file system over any hal.BlockDevice.
//
// It reads and writes the on-disk format described in the Linux kernel's
// "ext4 Data Structures and Algorithms" (Documentation/filesystems/ext4):
// superblock, 32- and 64-byte group descriptors, block and inode bitmaps,
// 128- and 256-byte inodes with extra fields (nanosecond and post-2038
// timestamps), extent trees (growing, splitting and shrinking, unwritten
// extents), ext2/ext3 block maps, linear and hashed-tree (htree, legacy,
// half_md4 and tea hashes) directories, extended attributes in the inode
// and in a block, and crc32c metadata checksums (metadata_csum,
// metadata_csum_seed) or crc16 group descriptor checksums (uninit_bg).
//
// Feature coverage:
//
//   - read and write: ext2, ext3 and ext4 with has_journal, ext_attr,
//     resize_inode, dir_index, filetype, extent, 64bit, flex_bg, meta_bg,
//     sparse_super, sparse_super2, large_file, huge_file, dir_nlink,
//     extra_isize, uninit_bg, metadata_csum, metadata_csum_seed, large_dir,
//     orphan_file (left untouched);
//   - read-only, with a warning: any other read-only-compatible feature
//     (quota, project, verity, ...), since writes would not maintain it;
//   - refused at mount, naming the feature: any other incompatible feature
//     (inline_data, encrypt, casefold, mmp, journal_dev, ...) and bigalloc.
//
// A journal that needs recovery (jbd2 as written by Linux and e2fsprogs:
// descriptor, revoke and commit blocks, 32- or 64-bit tags, checksum v2 or
// v3) is replayed at mount, or in memory only for a read-only mount;
// Options.NoRecovery refuses such a file system instead. The orphan list
// left by an unclean shutdown is processed at a read-write mount.
//
// Mount opens an existing file system; Mkfs creates one. The mounted FS
// implements io/fs.FS (with ReadDirFS, StatFS, ReadFileFS and ReadLinkFS)
// and an os-like writable API (OpenFile, Mkdir, Remove, Rename, Symlink,
// Link, Chmod, Chown, Chtimes, Truncate, extended attributes, Statfs, Sync).
// Check verifies a file system's consistency.
//
// A corrupt image gets errors, never a panic or a hang. In particular a
// directory has one name: path resolution requires a directory named by
// an entry to point back at that directory with its "..", and ReadDir
// refuses a listing that names a directory twice (or the directory itself,
// or the root), so walking a tree that a damaged image links back on
// itself ends with an error instead of looping or repeating subtrees.
//
// Names follow io/fs rules (fs.ValidPath): slash-separated, unrooted, with
// no "." or ".." elements; "." names the root directory. Symbolic links
// are followed where os would follow them.
//
// Writes are kept in a write-back cache of metadata blocks (file data goes
// to the device at once) and reach the device in Sync and Close; when Sync
// returns nil the image on the device is consistent (e2fsck finds nothing
// to repair, apart from releasing files that are unlinked but still open)
// and durable.
//
// On a file system with an internal journal (ext3 and ext4 have one by
// default), every write-back of metadata (Sync, Close, and the background
// write-back when the cache or the journal fills up) is one jbd2
// transaction, committed (two device flushes) before the write-back returns
// and kept in the log until the next one, and blocks freed since the last
// transaction are not allocated again until it commits, so that data
// written in place never lands in a block the committed metadata still
// uses. A power cut at any point then leaves an image that, once its
// journal is recovered (by Mount, the kernel or e2fsck), e2fsck accepts and
// that holds everything the last successful Sync made durable. While
// mounted read-write the file system carries needs_recovery, as under the
// kernel, set and cleared by in-place superblock writes at mount and Close.
// Like the kernel's ext4, blockfs assumes the device writes the
// superblock's 1 KiB whole: on a device with 512-byte sectors a cut in the
// middle of a superblock write (at mount, at Close, or when a transaction's
// blocks go home) can tear it; Mount then refuses the image (ErrCorrupt),
// and e2fsck repairs it from a backup superblock, replaying the journal. A
// write-back larger than the journal can hold is written in place, with a
// warning in the log. An I/O error during a write-back aborts the journal,
// as the kernel's jbd2 does: later write-backs (Sync, Close) fail until the
// file system is mounted again, which recovers it from the log.
//
// Without a journal (ext2), or with one this package cannot write
// (external, fast_commit, async_commit or v1 checksums; Mount logs which),
// write-back goes in place and a power cut between syncs can leave an
// inconsistent image.
//
// All methods of FS and File are safe for concurrent use; one lock per
// file system serializes them.
package blockfs
