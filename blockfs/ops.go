package blockfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/anykernel/anykernel/hal"
)

const maxSymlinks = 40

func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

func cleanPath(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", fs.ErrInvalid
	}
	return name, nil
}

func (f *FS) checkOpen() error {
	if f.closed {
		return hal.ErrClosed
	}
	return nil
}

func (f *FS) checkWritable() error {
	if f.closed {
		return hal.ErrClosed
	}
	if f.readOnly {
		return syscall.EROFS
	}
	return nil
}

// walk resolves name to an inode; follow says whether a final symlink is
// followed.
func (f *FS) walk(name string, follow bool) (*inode, error) {
	p, err := cleanPath(name)
	if err != nil {
		return nil, err
	}
	cur, err := f.iget(EXT4_ROOT_INO)
	if err != nil {
		return nil, err
	}
	links := 0
	parts := strings.Split(p, "/")
	if p == "." {
		parts = nil
	}
	var stack []uint32 // ancestors for ".."
	for len(parts) > 0 {
		comp := parts[0]
		parts = parts[1:]
		if comp == "." || comp == "" {
			continue
		}
		if !cur.isDir() {
			return nil, syscall.ENOTDIR
		}
		ino, _, err := f.lookup(cur, comp)
		if err != nil {
			return nil, err
		}
		if ino == 0 {
			return nil, fs.ErrNotExist
		}
		next, err := f.iget(ino)
		if err != nil {
			return nil, err
		}
		if err := f.checkDirLink(cur, comp, next); err != nil {
			return nil, err
		}
		if next.isLink() && (len(parts) > 0 || follow) {
			links++
			if links > maxSymlinks {
				return nil, syscall.ELOOP
			}
			target, err := f.readLink(next)
			if err != nil {
				return nil, err
			}
			if target == "" {
				return nil, fs.ErrNotExist
			}
			if strings.HasPrefix(target, "/") {
				cur, err = f.iget(EXT4_ROOT_INO)
				if err != nil {
					return nil, err
				}
				stack = nil
			}
			parts = append(strings.Split(target, "/"), parts...)
			continue
		}
		stack = append(stack, cur.ino)
		cur = next
	}
	_ = stack
	return cur, nil
}

// checkDirLink verifies the entry name of dir, which names child: if child
// is a directory, the entry must be its one link from a parent, so child's
// ".." must point back at dir, and child must be neither dir itself nor the
// root. A corrupt image whose directory is named by entries in two
// directories, or by an entry below itself, is refused here, which leaves
// no cycle reachable by path resolution. The verified parent is kept on
// the in-memory inode, so the check costs one lookup of ".." per directory
// inode loaded.
func (f *FS) checkDirLink(dir *inode, name string, child *inode) error {
	if !child.isDir() || name == "." || name == ".." {
		return nil
	}
	if child.ino == EXT4_ROOT_INO || child.ino == dir.ino {
		return fmt.Errorf("blockfs: directory inode %d: entry %q names directory %d: %w", dir.ino, name, child.ino, ErrCorrupt)
	}
	if child.parent == dir.ino {
		return nil
	}
	up, _, err := f.lookup(child, "..")
	if err != nil {
		return err
	}
	if up != dir.ino {
		return fmt.Errorf("blockfs: directory inode %d: entry %q names directory %d whose parent is %d: %w", dir.ino, name, child.ino, up, ErrCorrupt)
	}
	child.parent = dir.ino
	return nil
}

// checkDirNames verifies that no directory is named by two entries of dir
// (or by an entry other than "." and ".." naming dir itself or the root);
// ents is dir's listing. Same-parent duplicates pass checkDirLink, and
// nested ones would make a tree walk visit exponentially many paths. A
// passed check is remembered on dir until its inode leaves the cache: our
// own writes never name a directory twice.
func (f *FS) checkDirNames(dir *inode, ents []dirent) error {
	inos := make([]uint32, 0, len(ents))
	for _, e := range ents {
		if e.name == "." || e.name == ".." {
			continue
		}
		if e.ino == dir.ino || e.ino == EXT4_ROOT_INO {
			return fmt.Errorf("blockfs: directory inode %d: entry %q names directory %d: %w", dir.ino, e.name, e.ino, ErrCorrupt)
		}
		inos = append(inos, e.ino)
	}
	slices.Sort(inos)
	for i := 1; i < len(inos); i++ {
		if inos[i] != inos[i-1] || i > 1 && inos[i] == inos[i-2] {
			continue
		}
		// A hard-linked file may have two names here; a directory not.
		// An unreadable inode is no directory to walk into: its own
		// error comes when it is opened.
		in, err := f.iget(inos[i])
		if err == nil && in.isDir() {
			return fmt.Errorf("blockfs: directory inode %d: directory %d has two entries: %w", dir.ino, in.ino, ErrCorrupt)
		}
	}
	dir.namesChecked = true
	return nil
}

// verifyDirNames runs checkDirNames on dir once per inode load; removing
// or moving a directory calls it first so that a corrupt image does not
// lose a directory still named by a second entry.
func (f *FS) verifyDirNames(dir *inode) error {
	if dir.namesChecked {
		return nil
	}
	ents, err := f.readDirAll(dir)
	if err != nil {
		return err
	}
	return f.checkDirNames(dir, ents)
}

// walkParent resolves the directory holding name and returns it with the
// final component.
func (f *FS) walkParent(name string) (*inode, string, error) {
	p, err := cleanPath(name)
	if err != nil {
		return nil, "", err
	}
	if p == "." {
		return nil, "", fs.ErrInvalid
	}
	dir, base := path.Dir(p), path.Base(p)
	if base == "." || base == ".." {
		return nil, "", fs.ErrInvalid
	}
	if len(base) > EXT4_NAME_LEN {
		return nil, "", syscall.ENAMETOOLONG
	}
	if dir == "" {
		dir = "."
	}
	d, err := f.walk(dir, true)
	if err != nil {
		return nil, "", err
	}
	if !d.isDir() {
		return nil, "", syscall.ENOTDIR
	}
	return d, base, nil
}

func (f *FS) readLink(in *inode) (string, error) {
	size := in.size()
	if size > uint64(f.bs) || size > 4096 {
		return "", fmt.Errorf("blockfs: symlink inode %d of %d bytes: %w", in.ino, size, ErrCorrupt)
	}
	if f.isFastSymlink(in) {
		if size > iBlockLen {
			return "", fmt.Errorf("blockfs: fast symlink inode %d of %d bytes: %w", in.ino, size, ErrCorrupt)
		}
		return string(in.raw[i_block : i_block+int(size)]), nil
	}
	buf := make([]byte, size)
	if err := f.readData(in, buf, 0); err != nil {
		return "", err
	}
	return string(buf), nil
}

// newInode allocates and initializes an inode.
func (f *FS) newInode(parent *inode, mode uint16, dir bool) (*inode, error) {
	pref := (parent.ino - 1) / f.ipg
	ino, err := f.allocInode(pref, dir)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, f.inodeSize)
	in := &inode{ino: ino, raw: raw, dirty: true, mapLoaded: true}
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
	if t := mode & S_IFMT; f.incompat&EXT4_FEATURE_INCOMPAT_EXTENTS != 0 && (t == S_IFREG || t == S_IFDIR) {
		put32(raw, i_flags, EXT4_EXTENTS_FL)
		put16(raw, i_block+eh_magic, EXT4_EXT_MAGIC)
		put16(raw, i_block+eh_max, (iBlockLen-extentHeaderSize)/extentEntrySize)
	}
	delete(f.inodes, ino)
	f.icacheInsert(in)
	return in, nil
}

// releaseInode frees an inode with no links and no open handles.
func (f *FS) releaseInode(in *inode) error {
	if in.links() > 0 {
		return nil
	}
	if in.opens > 0 {
		if !in.orphan {
			in.orphan = true
			// Chain it on the orphan list so the image stays consistent
			// while the file is open (ext4 "Orphan List").
			put32(in.raw, i_dtime, le32(f.sb, s_last_orphan))
			in.dirty = true
			put32(f.sb, s_last_orphan, in.ino)
			f.sbDirty = true
		}
		return nil
	}
	if in.orphan {
		if err := f.removeOrphan(in); err != nil {
			return err
		}
		in.orphan = false
	}
	if !f.isFastSymlink(in) {
		if err := f.truncateBlocks(in, 0); err != nil {
			return err
		}
		if err := f.writeMapping(in); err != nil {
			return err
		}
	}
	if acl := in.fileACL(); acl != 0 {
		if err := f.dropXattrBlock(in, acl); err != nil {
			return err
		}
	}
	for _, b := range in.meta {
		if err := f.freeBlocks(b, 1); err != nil {
			return err
		}
	}
	in.meta = nil
	in.setSize(0)
	put32(in.raw, i_dtime, uint32(f.now().Unix()))
	in.dirty = true
	if err := f.flushInode(in); err != nil {
		return err
	}
	delete(f.inodes, in.ino)
	return f.freeInode(in.ino, in.isDir())
}

func fileModeToExt(perm fs.FileMode) uint16 {
	m := uint16(perm.Perm())
	if perm&fs.ModeSetuid != 0 {
		m |= S_ISUID
	}
	if perm&fs.ModeSetgid != 0 {
		m |= S_ISGID
	}
	if perm&fs.ModeSticky != 0 {
		m |= S_ISVTX
	}
	return m
}

// Mkdir creates a directory.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	f.lock()
	defer f.mu.Unlock()
	return pathErr("mkdir", name, f.mkdir(name, perm))
}

func (f *FS) mkdir(name string, perm fs.FileMode) error {
	if err := f.checkWritable(); err != nil {
		return err
	}
	parent, base, err := f.walkParent(name)
	if err != nil {
		return err
	}
	if ino, _, err := f.lookup(parent, base); err != nil {
		return err
	} else if ino != 0 {
		return fs.ErrExist
	}
	if f.roCompat&EXT4_FEATURE_RO_COMPAT_DIR_NLINK == 0 && parent.links() >= 65000 {
		return syscall.EMLINK
	}
	in, err := f.newInode(parent, S_IFDIR|fileModeToExt(perm), true)
	if err != nil {
		return err
	}
	in.setLinks(2)
	_, b, p, err := f.newDirBlock(in)
	if err != nil {
		in.setLinks(0)
		return errors.Join(err, f.releaseInode(in))
	}
	f.initLeaf(b)
	put32(b, 0, in.ino)
	put16(b, 4, 12)
	b[6] = 1
	b[7] = f.ftype(EXT4_FT_DIR)
	b[8] = '.'
	put32(b, 12, parent.ino)
	put16(b, 16, uint16(f.dirUsable()-12))
	b[18] = 2
	b[19] = f.ftype(EXT4_FT_DIR)
	b[20], b[21] = '.', '.'
	f.setDirTail(in, b)
	f.bdirty(p, b)
	if err := f.addEntry(parent, base, in.ino, EXT4_FT_DIR); err != nil {
		in.setLinks(0)
		return errors.Join(err, f.releaseInode(in))
	}
	in.parent, in.namesChecked = parent.ino, true
	f.incLinks(parent)
	return nil
}

func (f *FS) incLinks(dir *inode) {
	n := dir.links()
	if n >= 64999 || n == 1 && dir.isDir() {
		dir.setLinks(1)
		return
	}
	dir.setLinks(n + 1)
}

func (f *FS) decDirLinks(dir *inode) {
	n := dir.links()
	if n == 1 {
		return
	}
	if n > 2 {
		dir.setLinks(n - 1)
	}
}

// Remove removes a file or an empty directory.
func (f *FS) Remove(name string) error {
	f.lock()
	defer f.mu.Unlock()
	return pathErr("remove", name, f.remove(name))
}

func (f *FS) remove(name string) error {
	if err := f.checkWritable(); err != nil {
		return err
	}
	parent, base, err := f.walkParent(name)
	if err != nil {
		return err
	}
	ino, _, err := f.lookup(parent, base)
	if err != nil {
		return err
	}
	if ino == 0 {
		return fs.ErrNotExist
	}
	in, err := f.iget(ino)
	if err != nil {
		return err
	}
	return f.unlinkEntry(parent, base, in)
}

// unlinkEntry removes the entry base → in from parent and drops a link.
func (f *FS) unlinkEntry(parent *inode, base string, in *inode) error {
	if in.isDir() {
		if err := f.checkDirLink(parent, base, in); err != nil {
			return err
		}
		if err := f.verifyDirNames(parent); err != nil {
			return err
		}
		empty, err := f.isEmptyDir(in)
		if err != nil {
			return err
		}
		if !empty {
			return syscall.ENOTEMPTY
		}
	}
	if err := f.removeEntry(parent, base); err != nil {
		return err
	}
	f.touch(in, false, true)
	if in.isDir() {
		f.decDirLinks(parent)
		in.setLinks(0)
	} else if in.links() > 0 {
		in.setLinks(in.links() - 1)
	}
	return f.releaseInode(in)
}

// Rename moves oldname to newname with rename(2) semantics: an existing
// newname is replaced (a directory only by a directory, and only if
// empty); renaming a name onto a hard link of itself does nothing.
func (f *FS) Rename(oldname, newname string) error {
	f.lock()
	defer f.mu.Unlock()
	err := f.rename(oldname, newname)
	if err != nil {
		return &fs.PathError{Op: "rename", Path: oldname + " " + newname, Err: unwrapPath(err)}
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (f *FS) rename(oldname, newname string) error {
	if err := f.checkWritable(); err != nil {
		return err
	}
	op, ob, err := f.walkParent(oldname)
	if err != nil {
		return err
	}
	np, nb, err := f.walkParent(newname)
	if err != nil {
		return err
	}
	sino, _, err := f.lookup(op, ob)
	if err != nil {
		return err
	}
	if sino == 0 {
		return fs.ErrNotExist
	}
	src, err := f.iget(sino)
	if err != nil {
		return err
	}
	dino, _, err := f.lookup(np, nb)
	if err != nil {
		return err
	}
	if dino == sino {
		return nil
	}
	if src.isDir() {
		if err := f.checkDirLink(op, ob, src); err != nil {
			return err
		}
		if err := f.verifyDirNames(op); err != nil {
			return err
		}
	}
	// The target must not be an ancestor of the source (the kernel says
	// ENOTEMPTY), and a directory must not move beneath itself (EINVAL).
	if dino != 0 {
		isAnc, err := f.isAncestor(dino, op)
		if err != nil {
			return err
		}
		if isAnc {
			return syscall.ENOTEMPTY
		}
	}
	if src.isDir() {
		if isAnc, err := f.isAncestor(src.ino, np); err != nil {
			return err
		} else if isAnc {
			return syscall.EINVAL
		}
	}
	ft := modeToFT(src.mode())
	if dino != 0 {
		dst, err := f.iget(dino)
		if err != nil {
			return err
		}
		if src.isDir() {
			if !dst.isDir() {
				return syscall.ENOTDIR
			}
			if err := f.checkDirLink(np, nb, dst); err != nil {
				return err
			}
			if err := f.verifyDirNames(np); err != nil {
				return err
			}
			empty, err := f.isEmptyDir(dst)
			if err != nil {
				return err
			}
			if !empty {
				return syscall.ENOTEMPTY
			}
		} else if dst.isDir() {
			return syscall.EISDIR
		}
		if err := f.setEntry(np, nb, src.ino, ft); err != nil {
			return err
		}
		f.touch(np, true, true)
		if dst.isDir() {
			dst.setLinks(0)
			f.decDirLinks(np)
		} else {
			dst.setLinks(dst.links() - 1)
		}
		f.touch(dst, false, true)
		if err := f.releaseInode(dst); err != nil {
			return err
		}
	} else if err := f.addEntry(np, nb, src.ino, ft); err != nil {
		return err
	}
	if err := f.removeEntry(op, ob); err != nil {
		return err
	}
	if src.isDir() && op.ino != np.ino {
		if err := f.setEntry(src, "..", np.ino, EXT4_FT_DIR); err != nil {
			return err
		}
		src.parent = np.ino
		f.decDirLinks(op)
		f.incLinks(np)
	}
	f.touch(src, false, true)
	return nil
}

// Link creates newname as a hard link to the non-directory oldname.
func (f *FS) Link(oldname, newname string) error {
	f.lock()
	defer f.mu.Unlock()
	err := f.link(oldname, newname)
	if err != nil {
		return &fs.PathError{Op: "link", Path: newname, Err: unwrapPath(err)}
	}
	return nil
}

func (f *FS) link(oldname, newname string) error {
	if err := f.checkWritable(); err != nil {
		return err
	}
	src, err := f.walk(oldname, false)
	if err != nil {
		return err
	}
	np, nb, err := f.walkParent(newname)
	if err != nil {
		return err
	}
	if ino, _, err := f.lookup(np, nb); err != nil {
		return err
	} else if ino != 0 {
		return fs.ErrExist
	}
	if src.isDir() {
		return syscall.EPERM
	}
	if src.links() >= 65000 {
		return syscall.EMLINK
	}
	if err := f.addEntry(np, nb, src.ino, modeToFT(src.mode())); err != nil {
		return err
	}
	src.setLinks(src.links() + 1)
	f.touch(src, false, true)
	return nil
}

// Symlink creates newname as a symbolic link to target.
func (f *FS) Symlink(target, newname string) error {
	f.lock()
	defer f.mu.Unlock()
	return pathErr("symlink", newname, f.symlink(target, newname))
}

func (f *FS) symlink(target, newname string) error {
	if err := f.checkWritable(); err != nil {
		return err
	}
	if len(target) == 0 || len(target) >= f.bs || len(target) >= 4096 {
		return syscall.ENAMETOOLONG
	}
	np, nb, err := f.walkParent(newname)
	if err != nil {
		return err
	}
	if ino, _, err := f.lookup(np, nb); err != nil {
		return err
	} else if ino != 0 {
		return fs.ErrExist
	}
	in, err := f.newInode(np, S_IFLNK|0o777, false)
	if err != nil {
		return err
	}
	in.setLinks(1)
	if len(target) < iBlockLen {
		copy(in.raw[i_block:], target)
	} else {
		if f.incompat&EXT4_FEATURE_INCOMPAT_EXTENTS != 0 {
			in.setFlags(EXT4_EXTENTS_FL)
			put16(in.raw, i_block+eh_magic, EXT4_EXT_MAGIC)
			put16(in.raw, i_block+eh_max, (iBlockLen-extentHeaderSize)/extentEntrySize)
		}
		buf := make([]byte, f.bs)
		copy(buf, target)
		if _, err := f.writeData(in, buf, 0); err != nil {
			in.setLinks(0)
			return errors.Join(err, f.releaseInode(in))
		}
	}
	in.setSize(uint64(len(target)))
	if err := f.addEntry(np, nb, in.ino, EXT4_FT_SYMLINK); err != nil {
		in.setLinks(0)
		return errors.Join(err, f.releaseInode(in))
	}
	return nil
}

// Readlink returns the target of the symbolic link name.
func (f *FS) Readlink(name string) (string, error) {
	f.lock()
	defer f.mu.Unlock()
	if err := f.checkOpen(); err != nil {
		return "", pathErr("readlink", name, err)
	}
	in, err := f.walk(name, false)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	if !in.isLink() {
		return "", pathErr("readlink", name, fs.ErrInvalid)
	}
	s, err := f.readLink(in)
	return s, pathErr("readlink", name, err)
}

// ReadLink implements fs.ReadLinkFS.
func (f *FS) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return f.Readlink(name)
}

func (f *FS) modifyInode(op, name string, follow bool, fn func(in *inode) error) error {
	f.lock()
	defer f.mu.Unlock()
	if err := f.checkWritable(); err != nil {
		return pathErr(op, name, err)
	}
	in, err := f.walk(name, follow)
	if err != nil {
		return pathErr(op, name, err)
	}
	return pathErr(op, name, fn(in))
}

// Chmod changes the permission bits of name.
func (f *FS) Chmod(name string, mode fs.FileMode) error {
	return f.modifyInode("chmod", name, true, func(in *inode) error {
		put16(in.raw, i_mode, in.mode()&S_IFMT|fileModeToExt(mode))
		f.touch(in, false, true)
		return nil
	})
}

// Chown changes the owner and group of name; -1 leaves a value unchanged.
func (f *FS) Chown(name string, uid, gid int) error {
	return f.modifyInode("chown", name, true, func(in *inode) error { return f.chown(in, uid, gid) })
}

// Lchown is Chown without following a final symlink.
func (f *FS) Lchown(name string, uid, gid int) error {
	return f.modifyInode("lchown", name, false, func(in *inode) error { return f.chown(in, uid, gid) })
}

func (f *FS) chown(in *inode, uid, gid int) error {
	if uid >= 0 {
		put16(in.raw, i_uid, uint16(uid))
		put16(in.raw, l_i_uid_high, uint16(uid>>16))
	}
	if gid >= 0 {
		put16(in.raw, i_gid, uint16(gid))
		put16(in.raw, l_i_gid_high, uint16(gid>>16))
	}
	f.touch(in, false, true)
	return nil
}

// Chtimes changes the access and modification times of name; a zero
// time leaves that time unchanged.
func (f *FS) Chtimes(name string, atime, mtime time.Time) error {
	return f.modifyInode("chtimes", name, true, func(in *inode) error {
		f.chtimes(in, atime, mtime)
		return nil
	})
}

// Lchtimes is Chtimes without following a final symlink.
func (f *FS) Lchtimes(name string, atime, mtime time.Time) error {
	return f.modifyInode("lchtimes", name, false, func(in *inode) error {
		f.chtimes(in, atime, mtime)
		return nil
	})
}

func (f *FS) chtimes(in *inode, atime, mtime time.Time) {
	if !atime.IsZero() {
		f.setTime(in, i_atime, i_atime_extra, atime)
	}
	if !mtime.IsZero() {
		f.setTime(in, i_mtime, i_mtime_extra, mtime)
	}
	f.touch(in, false, true)
}

// Truncate changes the size of the regular file name.
func (f *FS) Truncate(name string, size int64) error {
	return f.modifyInode("truncate", name, true, func(in *inode) error { return f.truncate(in, size) })
}

func (f *FS) truncate(in *inode, size int64) error {
	if in.isDir() {
		return syscall.EISDIR
	}
	if !in.isReg() {
		return syscall.EINVAL
	}
	if size < 0 {
		return syscall.EINVAL
	}
	if err := f.setFileSize(in, uint64(size)); err != nil {
		return err
	}
	f.touch(in, true, true)
	return nil
}

// Statfs describes file system usage.
type Statfs struct {
	BlockSize   int64
	Blocks      uint64
	BlocksFree  uint64
	BlocksAvail uint64
	Files       uint64
	FilesFree   uint64
	NameLen     int
	Label       string
	UUID        [16]byte
}

// Statfs reports file system usage.
func (f *FS) Statfs() (Statfs, error) {
	f.lock()
	defer f.mu.Unlock()
	if err := f.checkOpen(); err != nil {
		return Statfs{}, err
	}
	free := f.freeBlocksTotal()
	var fi uint64
	for g := uint32(0); g < f.groups; g++ {
		fi += f.freeInodesInGroup(g)
	}
	r := uint64(le32(f.sb, s_r_blocks_count_lo))
	if f.has64() {
		r |= uint64(le32(f.sb, s_r_blocks_count_hi)) << 32
	}
	avail := uint64(0)
	if free > r {
		avail = free - r
	}
	st := Statfs{
		BlockSize: int64(f.bs), Blocks: f.blocksCount, BlocksFree: free, BlocksAvail: avail,
		Files: uint64(f.inodesCount), FilesFree: fi, NameLen: EXT4_NAME_LEN,
		Label: strings.TrimRight(string(f.sb[s_volume_name:s_volume_name+16]), "\x00"),
	}
	copy(st.UUID[:], f.sb[s_uuid:s_uuid+16])
	return st, nil
}

// isAncestor reports whether inode anc is dir or one of its ancestors.
func (f *FS) isAncestor(anc uint32, dir *inode) (bool, error) {
	cur := dir
	for depth := 0; depth < 1<<16; depth++ {
		if cur.ino == anc {
			return true, nil
		}
		if cur.ino == EXT4_ROOT_INO {
			return false, nil
		}
		up, _, err := f.lookup(cur, "..")
		if err != nil {
			return false, err
		}
		if up == 0 || up == cur.ino {
			return false, nil
		}
		if cur, err = f.iget(up); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("blockfs: directory loop at inode %d: %w", dir.ino, ErrCorrupt)
}

// removeOrphan unlinks in from the superblock's orphan list.
func (f *FS) removeOrphan(in *inode) error {
	next := le32(in.raw, i_dtime)
	cur := le32(f.sb, s_last_orphan)
	if cur == in.ino {
		put32(f.sb, s_last_orphan, next)
		f.sbDirty = true
		return nil
	}
	for steps := uint32(0); cur != 0 && steps <= f.inodesCount; steps++ {
		ci, err := f.iget(cur)
		if err != nil {
			return err
		}
		if n := le32(ci.raw, i_dtime); n == in.ino {
			put32(ci.raw, i_dtime, next)
			ci.dirty = true
			return nil
		} else {
			cur = n
		}
	}
	return nil
}

// processOrphans releases the inodes left on the orphan list by an
// unclean shutdown (ours or the kernel's): unlinked inodes are freed,
// linked ones truncated to their size.
func (f *FS) processOrphans() error {
	ino := le32(f.sb, s_last_orphan)
	put32(f.sb, s_last_orphan, 0)
	f.sbDirty = true
	for steps := uint32(0); ino != 0 && steps <= f.inodesCount; steps++ {
		if ino < f.firstIno || ino > f.inodesCount {
			return fmt.Errorf("blockfs: orphan list holds inode %d: %w", ino, ErrCorrupt)
		}
		in, err := f.iget(ino)
		if err != nil {
			return err
		}
		next := le32(in.raw, i_dtime)
		put32(in.raw, i_dtime, 0)
		in.dirty = true
		if in.links() == 0 {
			if err := f.releaseInode(in); err != nil {
				return err
			}
		} else if in.isReg() {
			bs := uint64(f.bs)
			if err := f.truncateBlocks(in, (in.size()+bs-1)/bs); err != nil {
				return err
			}
		}
		ino = next
	}
	return nil
}

// Mknod creates a device node, fifo or socket: mode's type bits choose
// (fs.ModeDevice, with fs.ModeCharDevice for a character device,
// fs.ModeNamedPipe, fs.ModeSocket) and dev is the device number in Linux's
// encoding (major<<8 | minor for small numbers, as unix.Mkdev gives).
func (f *FS) Mknod(name string, mode fs.FileMode, dev uint64) error {
	f.lock()
	defer f.mu.Unlock()
	return pathErr("mknod", name, f.mknod(name, mode, dev))
}

func (f *FS) mknod(name string, mode fs.FileMode, dev uint64) error {
	if err := f.checkWritable(); err != nil {
		return err
	}
	var t uint16
	switch {
	case mode&fs.ModeNamedPipe != 0:
		t = S_IFIFO
	case mode&fs.ModeSocket != 0:
		t = S_IFSOCK
	case mode&fs.ModeCharDevice != 0:
		t = S_IFCHR
	case mode&fs.ModeDevice != 0:
		t = S_IFBLK
	default:
		return syscall.EINVAL
	}
	np, nb, err := f.walkParent(name)
	if err != nil {
		return err
	}
	if ino, _, err := f.lookup(np, nb); err != nil {
		return err
	} else if ino != 0 {
		return fs.ErrExist
	}
	in, err := f.newInode(np, t|fileModeToExt(mode), false)
	if err != nil {
		return err
	}
	in.setLinks(1)
	if t == S_IFCHR || t == S_IFBLK {
		major, minor := uint32((dev>>8)&0xfff|(dev>>32)&^0xfff), uint32(dev&0xff|(dev>>12)&^0xff)
		if major < 256 && minor < 256 {
			put32(in.raw, i_block, major<<8|minor)
		} else {
			put32(in.raw, i_block+4, minor&0xff|major<<8|(minor&^0xff)<<12)
		}
	}
	if err := f.addEntry(np, nb, in.ino, modeToFT(in.mode())); err != nil {
		in.setLinks(0)
		return errors.Join(err, f.releaseInode(in))
	}
	return nil
}

// rdev decodes a device inode's number into Linux's dev_t encoding.
func rdev(in *inode) uint64 {
	t := in.mode() & S_IFMT
	if t != S_IFCHR && t != S_IFBLK {
		return 0
	}
	var major, minor uint64
	if old := le32(in.raw, i_block); old != 0 {
		major, minor = uint64(old>>8&0xff), uint64(old&0xff)
	} else {
		n := le32(in.raw, i_block+4)
		major, minor = uint64(n&0xfff00>>8), uint64(n&0xff|n>>12&0xfff00)
	}
	return major<<8&0xfff00 | major<<32&^0xfffffffffff | minor&0xff | minor<<12&0xffffff00000
}
