// Package fusefs serves a mounted blockfs.FS over FUSE with go-fuse v2's
// fs API. It holds no format logic: every operation maps onto the
// blockfs path API, with inode numbers taken from the ext4 inodes so hard
// links share one FUSE node.
package fusefs
