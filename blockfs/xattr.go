package blockfs

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"syscall"
)

type xattr struct {
	index uint8
	name  string // without the namespace prefix
	value []byte
}

var xattrPrefixes = []struct {
	index  uint8
	prefix string
}{
	{EXT4_XATTR_INDEX_USER, "user."},
	{EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, "system.posix_acl_access"},
	{EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT, "system.posix_acl_default"},
	{EXT4_XATTR_INDEX_TRUSTED, "trusted."},
	{EXT4_XATTR_INDEX_SECURITY, "security."},
	{EXT4_XATTR_INDEX_SYSTEM, "system."},
}

func splitXattrName(full string) (uint8, string, bool) {
	for _, p := range xattrPrefixes {
		if strings.HasPrefix(full, p.prefix) {
			return p.index, full[len(p.prefix):], true
		}
	}
	return 0, "", false
}

func (x xattr) fullName() string {
	for _, p := range xattrPrefixes {
		if p.index == x.index {
			return p.prefix + x.name
		}
	}
	return fmt.Sprintf("unknown%d.%s", x.index, x.name)
}

func xattrEntryLen(nameLen int) int { return (nameLen + xattrEntryHeaderSize + 3) &^ 3 }
func xattrValueLen(n int) int       { return (n + 3) &^ 3 }

func xattrEntryHash(name string, value []byte) uint32 {
	var h uint32
	for i := 0; i < len(name); i++ {
		h = h<<5 ^ h>>27 ^ uint32(name[i])
	}
	padded := make([]byte, xattrValueLen(len(value)))
	copy(padded, value)
	for i := 0; i < len(padded); i += 4 {
		h = h<<16 ^ h>>16 ^ le32(padded, i)
	}
	return h
}

// parseXattrEntries reads entries starting at b[start:], values relative
// to b[base:], limited to b[:end].
func parseXattrEntries(b []byte, start, base, end int) ([]xattr, error) {
	var out []xattr
	for off := start; ; {
		if off+4 > end {
			return nil, fmt.Errorf("blockfs: xattr entries run off the end: %w", ErrCorrupt)
		}
		if le32(b, off) == 0 {
			return out, nil
		}
		if off+xattrEntryHeaderSize > end {
			return nil, fmt.Errorf("blockfs: truncated xattr entry: %w", ErrCorrupt)
		}
		nl := int(b[off+e_name_len])
		if off+xattrEntryHeaderSize+nl > end {
			return nil, fmt.Errorf("blockfs: xattr name runs off the end: %w", ErrCorrupt)
		}
		if le32(b, off+e_value_inum) != 0 {
			return nil, fmt.Errorf("blockfs: xattr value in inode: %w", ErrUnsupportedFeature)
		}
		vo, vs := int(le16(b, off+e_value_offs)), int(le32(b, off+e_value_size))
		if vs > end || base+vo+vs > end || base+vo < 0 {
			return nil, fmt.Errorf("blockfs: xattr value out of bounds: %w", ErrCorrupt)
		}
		out = append(out, xattr{
			index: b[off+e_name_index],
			name:  string(b[off+xattrEntryHeaderSize : off+xattrEntryHeaderSize+nl]),
			value: slices.Clone(b[base+vo : base+vo+vs]),
		})
		off += xattrEntryLen(nl)
		if len(out) > 1024 {
			return nil, fmt.Errorf("blockfs: too many xattrs: %w", ErrCorrupt)
		}
	}
}

func (f *FS) inodeXattrArea(in *inode) (int, bool) {
	if f.inodeSize <= EXT4_GOOD_OLD_INODE_SIZE {
		return 0, false
	}
	start := EXT4_GOOD_OLD_INODE_SIZE + int(le16(in.raw, i_extra_isize))
	if start+xattrIbodyHeaderSize+4 > f.inodeSize {
		return 0, false
	}
	return start, true
}

func (f *FS) xattrBlockCsum(blk uint64, b []byte) uint32 {
	var le [8]byte
	put64(le[:], 0, blk)
	c := crc32c(f.csumSeed, le[:])
	c = crc32c(c, b[:h_checksum_xattr])
	c = crc32c(c, []byte{0, 0, 0, 0})
	return crc32c(c, b[h_checksum_xattr+4:])
}

func (f *FS) listXattrs(in *inode) ([]xattr, error) {
	var out []xattr
	if start, ok := f.inodeXattrArea(in); ok && le32(in.raw, start) == EXT4_XATTR_MAGIC {
		xs, err := parseXattrEntries(in.raw, start+4, start+4, f.inodeSize)
		if err != nil {
			return nil, fmt.Errorf("inode %d: %w", in.ino, err)
		}
		out = append(out, xs...)
	}
	if acl := in.fileACL(); acl != 0 {
		b, err := f.bread(acl)
		if err != nil {
			return nil, err
		}
		if le32(b, h_magic_xattr) != EXT4_XATTR_MAGIC || le32(b, h_blocks) != 1 {
			return nil, fmt.Errorf("blockfs: inode %d: bad xattr block %d: %w", in.ino, acl, ErrCorrupt)
		}
		if f.metaCsum {
			if got, want := le32(b, h_checksum_xattr), f.xattrBlockCsum(acl, b); got != want {
				return nil, fmt.Errorf("blockfs: xattr block %d checksum %#x, computed %#x: %w", acl, got, want, ErrCorrupt)
			}
		}
		xs, err := parseXattrEntries(b, xattrHeaderSize, 0, f.bs)
		if err != nil {
			return nil, fmt.Errorf("inode %d: %w", in.ino, err)
		}
		out = append(out, xs...)
	}
	return out, nil
}

func sortXattrs(xs []xattr) {
	slices.SortFunc(xs, func(a, b xattr) int {
		if a.index != b.index {
			return int(a.index) - int(b.index)
		}
		if len(a.name) != len(b.name) {
			return len(a.name) - len(b.name)
		}
		return strings.Compare(a.name, b.name)
	})
}

// storeXattrs writes xs into the inode body and, for what does not fit, an
// xattr block.
func (f *FS) storeXattrs(in *inode, xs []xattr) error {
	sortXattrs(xs)
	var inBody, inBlock []xattr
	start, ok := f.inodeXattrArea(in)
	if ok {
		room := f.inodeSize - start - xattrIbodyHeaderSize - 4
		for _, x := range xs {
			need := xattrEntryLen(len(x.name)) + xattrValueLen(len(x.value))
			if need <= room && len(inBlock) == 0 {
				inBody = append(inBody, x)
				room -= need
			} else {
				inBlock = append(inBlock, x)
			}
		}
		area := in.raw[start:f.inodeSize]
		clear(area)
		if len(inBody) > 0 {
			put32(area, 0, EXT4_XATTR_MAGIC)
			f.packXattrs(area[4:], 0, inBody, false)
		}
		in.dirty = true
	} else {
		inBlock = xs
	}
	old := in.fileACL()
	if len(inBlock) == 0 {
		if old != 0 {
			in.setFileACL(0)
			return f.dropXattrBlock(in, old)
		}
		return nil
	}
	total := xattrHeaderSize + 4
	for _, x := range inBlock {
		total += xattrEntryLen(len(x.name)) + xattrValueLen(len(x.value))
	}
	if total > f.bs {
		return syscall.ENOSPC
	}
	blk := old
	if old != 0 {
		b, err := f.bread(old)
		if err != nil {
			return err
		}
		if le32(b, h_refcount) > 1 {
			if err := f.dropXattrBlock(in, old); err != nil {
				return err
			}
			blk = 0
		}
	}
	if blk == 0 {
		goal := uint64(0)
		if len(in.ext) > 0 {
			goal = in.ext[0].pblk
		}
		b, _, err := f.allocBlocks(goal, 1)
		if err != nil {
			return err
		}
		f.addBlocks(in, 1)
		blk = b
		in.setFileACL(blk)
	}
	b := f.bnew(blk)
	put32(b, h_magic_xattr, EXT4_XATTR_MAGIC)
	put32(b, h_refcount, 1)
	put32(b, h_blocks, 1)
	hashes := f.packXattrs(b[xattrHeaderSize:], xattrHeaderSize, inBlock, true)
	var bh uint32
	for _, h := range hashes {
		bh = bh<<16 ^ bh>>16 ^ h
	}
	put32(b, h_hash, bh)
	if f.metaCsum {
		put32(b, h_checksum_xattr, f.xattrBlockCsum(blk, b))
	}
	f.bdirty(blk, b)
	return nil
}

// packXattrs lays out entries at the front of area and values at its end.
// Value offsets are relative to area start minus base (block: base is the
// header size, so offsets are from the block start).
func (f *FS) packXattrs(area []byte, base int, xs []xattr, _ bool) []uint32 {
	off := 0
	vend := len(area)
	var hashes []uint32
	for _, x := range xs {
		vl := xattrValueLen(len(x.value))
		vend -= vl
		copy(area[vend:], x.value)
		e := area[off:]
		e[e_name_len] = byte(len(x.name))
		e[e_name_index] = x.index
		put16(e, e_value_offs, uint16(vend+base))
		put32(e, e_value_inum, 0)
		put32(e, e_value_size, uint32(len(x.value)))
		h := xattrEntryHash(x.name, x.value)
		put32(e, e_hash, h)
		hashes = append(hashes, h)
		copy(e[xattrEntryHeaderSize:], x.name)
		off += xattrEntryLen(len(x.name))
	}
	return hashes
}

// dropXattrBlock releases in's reference to xattr block blk.
func (f *FS) dropXattrBlock(in *inode, blk uint64) error {
	b, err := f.bread(blk)
	if err != nil {
		return err
	}
	in.setFileACL(0)
	f.addBlocks(in, -1)
	if rc := le32(b, h_refcount); rc > 1 {
		put32(b, h_refcount, rc-1)
		if f.metaCsum {
			put32(b, h_checksum_xattr, f.xattrBlockCsum(blk, b))
		}
		f.bdirty(blk, b)
		return nil
	}
	return f.freeBlocks(blk, 1)
}

// Getxattr returns the value of the extended attribute attr of name.
func (f *FS) Getxattr(name, attr string) ([]byte, error) {
	f.lock()
	defer f.mu.Unlock()
	if err := f.checkOpen(); err != nil {
		return nil, pathErr("getxattr", name, err)
	}
	in, err := f.walk(name, true)
	if err != nil {
		return nil, pathErr("getxattr", name, err)
	}
	xs, err := f.listXattrs(in)
	if err != nil {
		return nil, pathErr("getxattr", name, err)
	}
	for _, x := range xs {
		if x.fullName() == attr {
			return x.value, nil
		}
	}
	return nil, pathErr("getxattr", name, syscall.ENODATA)
}

// Listxattr lists the extended attribute names of name.
func (f *FS) Listxattr(name string) ([]string, error) {
	f.lock()
	defer f.mu.Unlock()
	if err := f.checkOpen(); err != nil {
		return nil, pathErr("listxattr", name, err)
	}
	in, err := f.walk(name, true)
	if err != nil {
		return nil, pathErr("listxattr", name, err)
	}
	xs, err := f.listXattrs(in)
	if err != nil {
		return nil, pathErr("listxattr", name, err)
	}
	var out []string
	for _, x := range xs {
		out = append(out, x.fullName())
	}
	slices.Sort(out)
	return out, nil
}

// Setxattr sets the extended attribute attr of name (user., trusted. and
// security. namespaces).
func (f *FS) Setxattr(name, attr string, value []byte) error {
	return f.modifyInode("setxattr", name, true, func(in *inode) error {
		idx, short, ok := splitXattrName(attr)
		if !ok || idx == EXT4_XATTR_INDEX_SYSTEM || short == "" && idx == EXT4_XATTR_INDEX_USER {
			return syscall.EOPNOTSUPP
		}
		if len(short) > 255 || len(value) > f.bs {
			return syscall.E2BIG
		}
		if f.compat&EXT4_FEATURE_COMPAT_EXT_ATTR == 0 {
			return syscall.EOPNOTSUPP
		}
		xs, err := f.listXattrs(in)
		if err != nil {
			return err
		}
		found := false
		for i := range xs {
			if xs[i].index == idx && xs[i].name == short {
				xs[i].value = slices.Clone(value)
				found = true
			}
		}
		if !found {
			xs = append(xs, xattr{index: idx, name: short, value: slices.Clone(value)})
		}
		if err := f.storeXattrs(in, xs); err != nil {
			return err
		}
		f.touch(in, false, true)
		return nil
	})
}

// Removexattr removes the extended attribute attr of name.
func (f *FS) Removexattr(name, attr string) error {
	return f.modifyInode("removexattr", name, true, func(in *inode) error {
		xs, err := f.listXattrs(in)
		if err != nil {
			return err
		}
		n := len(xs)
		xs = slices.DeleteFunc(xs, func(x xattr) bool { return x.fullName() == attr })
		if len(xs) == n {
			return syscall.ENODATA
		}
		if err := f.storeXattrs(in, xs); err != nil {
			return err
		}
		f.touch(in, false, true)
		return nil
	})
}

var _ fs.FS = (*FS)(nil)
