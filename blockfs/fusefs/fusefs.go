package fusefs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/anykernel/anykernel/blockfs"
	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Options configure Mount. The zero value uses go-fuse's defaults with
// one-second attribute and entry caching.
type Options struct {
	// Debug logs every FUSE request.
	Debug bool
	// MountOptions are passed through to go-fuse (FsName, AllowOther,
	// DirectMount, MaxWrite...).
	MountOptions fuse.MountOptions
}

// Root returns the root node of a FUSE tree serving fsys.
func Root(fsys *blockfs.FS) gofs.InodeEmbedder { return &node{fsys: fsys} }

// Mount serves fsys at dir until the returned server is unmounted.
func Mount(dir string, fsys *blockfs.FS, opts Options) (*fuse.Server, error) {
	sec := time.Second
	mo := opts.MountOptions
	mo.Debug = mo.Debug || opts.Debug
	if mo.FsName == "" {
		mo.FsName = "blockfs"
	}
	if mo.Name == "" {
		mo.Name = "blockfs"
	}
	if mo.MaxWrite == 0 {
		mo.MaxWrite = 1 << 20
	}
	if mo.MaxReadAhead == 0 {
		mo.MaxReadAhead = 1 << 20
	}
	return gofs.Mount(dir, Root(fsys), &gofs.Options{
		MountOptions:   mo,
		EntryTimeout:   &sec,
		AttrTimeout:    &sec,
		RootStableAttr: &gofs.StableAttr{Ino: 2},
	})
}

type node struct {
	gofs.Inode
	fsys *blockfs.FS
}

var (
	_ gofs.NodeGetattrer     = (*node)(nil)
	_ gofs.NodeSetattrer     = (*node)(nil)
	_ gofs.NodeLookuper      = (*node)(nil)
	_ gofs.NodeReaddirer     = (*node)(nil)
	_ gofs.NodeMkdirer       = (*node)(nil)
	_ gofs.NodeCreater       = (*node)(nil)
	_ gofs.NodeUnlinker      = (*node)(nil)
	_ gofs.NodeRmdirer       = (*node)(nil)
	_ gofs.NodeRenamer       = (*node)(nil)
	_ gofs.NodeLinker        = (*node)(nil)
	_ gofs.NodeSymlinker     = (*node)(nil)
	_ gofs.NodeReadlinker    = (*node)(nil)
	_ gofs.NodeOpener        = (*node)(nil)
	_ gofs.NodeStatfser      = (*node)(nil)
	_ gofs.NodeGetxattrer    = (*node)(nil)
	_ gofs.NodeSetxattrer    = (*node)(nil)
	_ gofs.NodeListxattrer   = (*node)(nil)
	_ gofs.NodeRemovexattrer = (*node)(nil)
	_ gofs.NodeFsyncer       = (*node)(nil)
	_ gofs.NodeMknoder       = (*node)(nil)
)

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	var t fs.FileMode
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		t = fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		t = fs.ModeSocket
	case syscall.S_IFCHR:
		t = fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		t = fs.ModeDevice
	case syscall.S_IFREG, 0:
		f, err := n.fsys.OpenFile(n.child(name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(mode&0o777)|modeBits(mode))
		if err != nil {
			return nil, toErrno(err)
		}
		f.Close()
	default:
		return nil, syscall.EINVAL
	}
	p := n.child(name)
	if t != 0 {
		if err := n.fsys.Mknod(p, t|fs.FileMode(mode&0o777)|modeBits(mode), uint64(dev)); err != nil {
			return nil, toErrno(err)
		}
	}
	n.chownToCaller(ctx, p)
	fi, err := n.fsys.Lstat(p)
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newChild(ctx, fi, out), 0
}

// toErrno maps blockfs errors onto errno values.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var en syscall.Errno
	switch {
	case errors.As(err, &en):
		return en
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, fs.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, fs.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, fs.ErrPermission):
		return syscall.EPERM
	case errors.Is(err, fs.ErrClosed):
		return syscall.EBADF
	case errors.Is(err, blockfs.ErrUnsupportedFeature):
		return syscall.EOPNOTSUPP
	case errors.Is(err, blockfs.ErrCorrupt):
		return syscall.EUCLEAN // what Linux file systems return for corruption
	}
	return syscall.EIO
}

// rel is the node's path in blockfs terms ("." for the root).
func (n *node) rel() string {
	p := n.Path(n.Root())
	if p == "" {
		return "."
	}
	return p
}

func (n *node) child(name string) string {
	if p := n.rel(); p != "." {
		return path.Join(p, name)
	}
	return name
}

func fillAttr(st *blockfs.Stat, out *fuse.Attr) {
	out.Ino = uint64(st.Ino)
	out.Size = st.Size
	out.Blocks = st.Blocks
	out.Mode = uint32(st.Mode)
	out.Nlink = uint32(st.Nlink)
	out.Owner = fuse.Owner{Uid: st.Uid, Gid: st.Gid}
	out.Blksize = 4096
	out.Rdev = uint32(st.Rdev)
	out.SetTimes(&st.Atime, &st.Mtime, &st.Ctime)
}

func (n *node) newChild(ctx context.Context, fi fs.FileInfo, out *fuse.EntryOut) *gofs.Inode {
	st := fi.Sys().(*blockfs.Stat)
	fillAttr(st, &out.Attr)
	ch := &node{fsys: n.fsys}
	return n.NewInode(ctx, ch, gofs.StableAttr{Mode: uint32(st.Mode) & syscall.S_IFMT, Ino: uint64(st.Ino), Gen: uint64(st.Generation)})
}

func (n *node) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var fi fs.FileInfo
	var err error
	if h, ok := fh.(*handle); ok {
		fi, err = h.f.Stat()
	} else {
		fi, err = n.fsys.Lstat(n.rel())
	}
	if err != nil {
		return toErrno(err)
	}
	fillAttr(fi.Sys().(*blockfs.Stat), &out.Attr)
	return 0
}

func (n *node) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	p := n.rel()
	if m, ok := in.GetMode(); ok {
		if err := n.fsys.Chmod(p, fs.FileMode(m&0o777)|modeBits(m)); err != nil {
			return toErrno(err)
		}
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		u, g := -1, -1
		if uok {
			u = int(uid)
		}
		if gok {
			g = int(gid)
		}
		if err := n.fsys.Lchown(p, u, g); err != nil {
			return toErrno(err)
		}
	}
	if sz, ok := in.GetSize(); ok {
		var err error
		if h, hok := fh.(*handle); hok {
			err = h.f.Truncate(int64(sz))
		} else {
			err = n.fsys.Truncate(p, int64(sz))
		}
		if err != nil {
			return toErrno(err)
		}
	}
	at, aok := in.GetATime()
	mt, mok := in.GetMTime()
	if aok || mok {
		if !aok {
			at = time.Time{}
		}
		if !mok {
			mt = time.Time{}
		}
		if err := n.fsys.Lchtimes(p, at, mt); err != nil {
			return toErrno(err)
		}
	}
	return n.Getattr(ctx, fh, out)
}

func modeBits(m uint32) fs.FileMode {
	var r fs.FileMode
	if m&syscall.S_ISUID != 0 {
		r |= fs.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		r |= fs.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		r |= fs.ModeSticky
	}
	return r
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	fi, err := n.fsys.Lstat(n.child(name))
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newChild(ctx, fi, out), 0
}

func (n *node) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	ents, err := n.fsys.ReadDir(n.rel())
	if err != nil {
		return nil, toErrno(err)
	}
	list := make([]fuse.DirEntry, 0, len(ents))
	for _, e := range ents {
		de := fuse.DirEntry{Name: e.Name(), Mode: fileModeType(e.Type())}
		if ie, ok := e.(interface{ Ino() uint32 }); ok {
			de.Ino = uint64(ie.Ino())
		}
		list = append(list, de)
	}
	return gofs.NewListDirStream(list), 0
}

func fileModeType(m fs.FileMode) uint32 {
	switch {
	case m&fs.ModeDir != 0:
		return syscall.S_IFDIR
	case m&fs.ModeSymlink != 0:
		return syscall.S_IFLNK
	case m&fs.ModeNamedPipe != 0:
		return syscall.S_IFIFO
	case m&fs.ModeSocket != 0:
		return syscall.S_IFSOCK
	case m&fs.ModeCharDevice != 0:
		return syscall.S_IFCHR
	case m&fs.ModeDevice != 0:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	p := n.child(name)
	if err := n.fsys.Mkdir(p, fs.FileMode(mode&0o777)|modeBits(mode)); err != nil {
		return nil, toErrno(err)
	}
	n.chownToCaller(ctx, p)
	fi, err := n.fsys.Lstat(p)
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newChild(ctx, fi, out), 0
}

// chownToCaller gives a new file the calling process's owner.
func (n *node) chownToCaller(ctx context.Context, p string) {
	if c, ok := fuse.FromContext(ctx); ok && (c.Uid != 0 || c.Gid != 0) {
		_ = n.fsys.Lchown(p, int(c.Uid), int(c.Gid))
	}
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	p := n.child(name)
	// The kernel resolves O_APPEND offsets itself.
	f, err := n.fsys.OpenFile(p, int(flags)&^os.O_APPEND|os.O_CREATE, fs.FileMode(mode&0o777)|modeBits(mode))
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	n.chownToCaller(ctx, p)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, toErrno(err)
	}
	return n.newChild(ctx, fi, out), &handle{f: f}, 0, 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	p := n.child(name)
	fi, err := n.fsys.Lstat(p)
	if err != nil {
		return toErrno(err)
	}
	if fi.IsDir() {
		return syscall.EISDIR
	}
	return toErrno(n.fsys.Remove(p))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	p := n.child(name)
	fi, err := n.fsys.Lstat(p)
	if err != nil {
		return toErrno(err)
	}
	if !fi.IsDir() {
		return syscall.ENOTDIR
	}
	return toErrno(n.fsys.Remove(p))
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags != 0 {
		return syscall.EINVAL
	}
	return toErrno(n.fsys.Rename(n.child(name), np.child(newName)))
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	p := n.child(name)
	if err := n.fsys.Link(t.rel(), p); err != nil {
		return nil, toErrno(err)
	}
	fi, err := n.fsys.Lstat(p)
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newChild(ctx, fi, out), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	p := n.child(name)
	if err := n.fsys.Symlink(target, p); err != nil {
		return nil, toErrno(err)
	}
	n.chownToCaller(ctx, p)
	fi, err := n.fsys.Lstat(p)
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newChild(ctx, fi, out), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	s, err := n.fsys.Readlink(n.rel())
	if err != nil {
		return nil, toErrno(err)
	}
	return []byte(s), 0
}

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	f, err := n.fsys.OpenFile(n.rel(), int(flags)&^(os.O_CREATE|os.O_EXCL|os.O_APPEND), 0)
	if err != nil {
		return nil, 0, toErrno(err)
	}
	return &handle{f: f}, 0, 0
}

func (n *node) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	return toErrno(n.fsys.Sync())
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.fsys.Statfs()
	if err != nil {
		return toErrno(err)
	}
	out.Blocks = st.Blocks
	out.Bfree = st.BlocksFree
	out.Bavail = st.BlocksAvail
	out.Files = st.Files
	out.Ffree = st.FilesFree
	out.Bsize = uint32(st.BlockSize)
	out.Frsize = uint32(st.BlockSize)
	out.NameLen = uint32(st.NameLen)
	return 0
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, err := n.fsys.Getxattr(n.rel(), attr)
	if err != nil {
		return 0, toErrno(err)
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	p := n.rel()
	_, err := n.fsys.Getxattr(p, attr)
	exists := err == nil
	switch {
	case flags&0x1 != 0 && exists: // XATTR_CREATE
		return syscall.EEXIST
	case flags&0x2 != 0 && !exists: // XATTR_REPLACE
		return syscall.ENODATA
	}
	return toErrno(n.fsys.Setxattr(p, attr, data))
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, err := n.fsys.Listxattr(n.rel())
	if err != nil {
		return 0, toErrno(err)
	}
	var b []byte
	for _, a := range names {
		b = append(b, a...)
		b = append(b, 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return toErrno(n.fsys.Removexattr(n.rel(), attr))
}

// handle is an open blockfs file.
type handle struct {
	f *blockfs.File
}

var (
	_ gofs.FileReader    = (*handle)(nil)
	_ gofs.FileWriter    = (*handle)(nil)
	_ gofs.FileReleaser  = (*handle)(nil)
	_ gofs.FileFsyncer   = (*handle)(nil)
	_ gofs.FileGetattrer = (*handle)(nil)
	_ gofs.FileFlusher   = (*handle)(nil)
	_ gofs.FileLseeker   = (*handle)(nil)
	_ gofs.FileAllocater = (*handle)(nil)
)

func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	o, err := h.f.Seek(int64(off), int(whence))
	return uint64(o), toErrno(err)
}

const fallocKeepSize = 0x1 // FALLOC_FL_KEEP_SIZE

func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	if mode&^fallocKeepSize != 0 {
		return syscall.EOPNOTSUPP
	}
	return toErrno(h.f.Allocate(int64(off), int64(size), mode&fallocKeepSize != 0))
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.f.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, toErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.f.WriteAt(data, off)
	return uint32(n), toErrno(err)
}

func (h *handle) Release(ctx context.Context) syscall.Errno { return toErrno(h.f.Close()) }
func (h *handle) Flush(ctx context.Context) syscall.Errno   { return 0 }
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return toErrno(h.f.Sync())
}

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	fi, err := h.f.Stat()
	if err != nil {
		return toErrno(err)
	}
	fillAttr(fi.Sys().(*blockfs.Stat), &out.Attr)
	return 0
}
