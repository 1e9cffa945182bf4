// Package blockfs is an ext4-compatible file system over any hal.BlockDevice.
//
// It reads and writes the on-disk format described in the Linux kernel's
// "ext4 Data Structures and Algorithms" (Documentation/filesystems/ext4):
// superblock, 32- and 64-byte group descriptors, block and inode bitmaps,
// 128- and 256-byte inodes with extra fields, extent trees (and, for reading,
// ext2/ext3 block maps), linear and hashed-tree (htree) directories,
// extended attributes, and crc32c metadata checksums (metadata_csum) or
// crc16 group descriptor checksums (uninit_bg). A journal written by Linux or
// e2fsprogs (jbd2, with 32- or 64-bit block tags and checksum v2 or v3) is
// replayed at mount when the file system needs recovery.
//
// Mount opens an existing file system; Mkfs creates one. The mounted FS
// implements io/fs.FS (with ReadDirFS, StatFS, ReadFileFS and ReadLinkFS)
// and an os-like writable API (OpenFile, Mkdir, Remove, Rename, Symlink,
// Link, Chmod, Chown, Chtimes, Truncate, extended attributes, Statfs, Sync).
//
// Writes are kept in a write-back cache of metadata blocks and reach the
// device in Sync and Close; when Sync returns nil the image on the device is
// consistent (e2fsck finds nothing to repair) and durable. Our own writes do
// not go through the journal.
//
// Names follow io/fs rules (fs.ValidPath): slash-separated, unrooted, with
// no "." or ".." elements; "." names the root directory. Symbolic links
// are followed where os would follow them.
//
// All methods of FS and File are safe for concurrent use.
package blockfs
