package blockfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Stat is the ext4-specific part of a FileInfo, returned by its Sys method.
type Stat struct {
	Ino        uint32
	Mode       uint16 // raw i_mode
	Nlink      uint16
	Uid        uint32
	Gid        uint32
	Size       uint64
	Blocks     uint64 // 512-byte units
	Atime      time.Time
	Mtime      time.Time
	Ctime      time.Time
	Crtime     time.Time
	Flags      uint32
	Generation uint32
	Rdev       uint64 // device number of a device node (Linux dev_t encoding)
}

type fileInfo struct {
	name string
	st   Stat
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return int64(fi.st.Size) }
func (fi *fileInfo) Mode() fs.FileMode  { return extToFileMode(fi.st.Mode) }
func (fi *fileInfo) ModTime() time.Time { return fi.st.Mtime }
func (fi *fileInfo) IsDir() bool        { return fi.st.Mode&S_IFMT == S_IFDIR }
func (fi *fileInfo) Sys() any           { return &fi.st }

func extToFileMode(m uint16) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & S_IFMT {
	case S_IFDIR:
		mode |= fs.ModeDir
	case S_IFLNK:
		mode |= fs.ModeSymlink
	case S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case S_IFBLK:
		mode |= fs.ModeDevice
	case S_IFIFO:
		mode |= fs.ModeNamedPipe
	case S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func (f *FS) statInode(in *inode, name string) *fileInfo {
	return &fileInfo{name: name, st: Stat{
		Ino: in.ino, Mode: in.mode(), Nlink: in.links(), Uid: in.uid(), Gid: in.gid(),
		Size: in.size(), Blocks: f.blocks512(in),
		Atime:  f.getTime(in, i_atime, i_atime_extra),
		Mtime:  f.getTime(in, i_mtime, i_mtime_extra),
		Ctime:  f.getTime(in, i_ctime, i_ctime_extra),
		Crtime: f.getTime(in, i_crtime, i_crtime_extra),
		Flags:  in.flags(), Generation: le32(in.raw, i_generation), Rdev: rdev(in),
	}}
}

func baseName(name string) string {
	p, err := cleanPath(name)
	if err != nil || p == "." {
		return "."
	}
	return path.Base(p)
}

// Stat describes the file name, following symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) { return f.stat("stat", name, true) }

// Lstat describes the file name without following a final symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) { return f.stat("lstat", name, false) }

func (f *FS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	f.lock()
	defer f.mu.Unlock()
	if err := f.checkOpen(); err != nil {
		return nil, pathErr(op, name, err)
	}
	in, err := f.walk(name, follow)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return f.statInode(in, baseName(name)), nil
}

type dirEntry struct {
	f    *FS
	name string
	ino  uint32
	ft   uint8
}

func (d *dirEntry) Name() string { return d.name }
func (d *dirEntry) IsDir() bool  { return d.Type().IsDir() }
func (d *dirEntry) Type() fs.FileMode {
	switch d.ft {
	case EXT4_FT_DIR:
		return fs.ModeDir
	case EXT4_FT_SYMLINK:
		return fs.ModeSymlink
	case EXT4_FT_CHRDEV:
		return fs.ModeDevice | fs.ModeCharDevice
	case EXT4_FT_BLKDEV:
		return fs.ModeDevice
	case EXT4_FT_FIFO:
		return fs.ModeNamedPipe
	case EXT4_FT_SOCK:
		return fs.ModeSocket
	case EXT4_FT_REG_FILE:
		return 0
	}
	fi, err := d.Info()
	if err != nil {
		return 0
	}
	return fi.Mode().Type()
}
func (d *dirEntry) Info() (fs.FileInfo, error) {
	d.f.lock()
	defer d.f.mu.Unlock()
	if err := d.f.checkOpen(); err != nil {
		return nil, err
	}
	in, err := d.f.iget(d.ino)
	if err != nil {
		return nil, err
	}
	return d.f.statInode(in, d.name), nil
}

// Ino returns the entry's inode number.
func (d *dirEntry) Ino() uint32 { return d.ino }

func (d *dirEntry) String() string { return fs.FormatDirEntry(d) }

func (f *FS) listDir(in *inode) ([]fs.DirEntry, error) {
	ents, err := f.readDirAll(in)
	if err != nil {
		return nil, err
	}
	if !in.namesChecked {
		if err := f.checkDirNames(in, ents); err != nil {
			return nil, err
		}
	}
	out := make([]fs.DirEntry, 0, len(ents))
	for _, e := range ents {
		if e.name == "." || e.name == ".." {
			continue
		}
		out = append(out, &dirEntry{f: f, name: e.name, ino: e.ino, ft: e.ftype})
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// ReadDir lists the directory name sorted by file name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.lock()
	defer f.mu.Unlock()
	if err := f.checkOpen(); err != nil {
		return nil, pathErr("readdir", name, err)
	}
	in, err := f.walk(name, true)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	if !in.isDir() {
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	ents, err := f.listDir(in)
	return ents, pathErr("readdir", name, err)
}

// ReadFile returns the contents of the file name.
func (f *FS) ReadFile(name string) ([]byte, error) {
	f.lock()
	defer f.mu.Unlock()
	if err := f.checkOpen(); err != nil {
		return nil, pathErr("read", name, err)
	}
	in, err := f.walk(name, true)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if in.isDir() {
		return nil, pathErr("read", name, syscall.EISDIR)
	}
	size := in.size()
	// A file larger than both 1 GiB and the device is sparse (or its size
	// is corrupt): read it through Open rather than into one buffer.
	if size > 1<<30 && size > uint64(f.devSize) || size > 1<<40 {
		return nil, pathErr("read", name, syscall.EFBIG)
	}
	buf := make([]byte, size)
	return buf, pathErr("read", name, f.readData(in, buf, 0))
}

// Open opens name for reading (io/fs.FS).
func (f *FS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	fl, err := f.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	return fl, nil
}

// Create creates or truncates name for writing.
func (f *FS) Create(name string) (*File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens name with os-style flags (O_RDONLY, O_WRONLY, O_RDWR,
// O_CREATE, O_EXCL, O_TRUNC, O_APPEND).
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (*File, error) {
	f.lock()
	defer f.mu.Unlock()
	fl, err := f.openFile(name, flag, perm, 0)
	return fl, pathErr("open", name, err)
}

func (f *FS) openFile(name string, flag int, perm fs.FileMode, depth int) (*File, error) {
	if err := f.checkOpen(); err != nil {
		return nil, err
	}
	write := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if (write || flag&(os.O_CREATE|os.O_TRUNC) != 0) && f.readOnly {
		return nil, syscall.EROFS
	}
	in, err := f.walk(name, true)
	switch {
	case errors.Is(err, fs.ErrNotExist) && flag&os.O_CREATE != 0:
		parent, base, perr := f.walkParent(name)
		if perr != nil {
			return nil, perr
		}
		// A dangling symlink as the final component: create its target.
		if ino, _, lerr := f.lookup(parent, base); lerr != nil {
			return nil, lerr
		} else if ino != 0 {
			link, err := f.iget(ino)
			if err != nil {
				return nil, err
			}
			if !link.isLink() || flag&os.O_EXCL != 0 || depth > maxSymlinks {
				if depth > maxSymlinks {
					return nil, syscall.ELOOP
				}
				return nil, fs.ErrExist
			}
			target, err := f.readLink(link)
			if err != nil {
				return nil, err
			}
			next := path.Join(path.Dir(name), target)
			if strings.HasPrefix(target, "/") {
				next = path.Clean(strings.TrimLeft(target, "/"))
			}
			if !fs.ValidPath(next) || next == "." {
				return nil, fs.ErrNotExist
			}
			return f.openFile(next, flag, perm, depth+1)
		}
		in, err = f.newInode(parent, S_IFREG|fileModeToExt(perm), false)
		if err != nil {
			return nil, err
		}
		in.setLinks(1)
		if err := f.addEntry(parent, base, in.ino, EXT4_FT_REG_FILE); err != nil {
			in.setLinks(0)
			_ = f.releaseInode(in)
			return nil, err
		}
	case err != nil:
		return nil, err
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, fs.ErrExist
	}
	if in.isDir() && (write || flag&os.O_TRUNC != 0) {
		return nil, syscall.EISDIR
	}
	if flag&os.O_TRUNC != 0 && in.isReg() && in.size() > 0 {
		if err := f.truncate(in, 0); err != nil {
			return nil, err
		}
	}
	in.opens++
	return &File{fs: f, in: in, name: name, flag: flag}, nil
}

// File is an open file or directory of an FS.
type File struct {
	fs      *FS
	in      *inode
	name    string
	flag    int
	off     int64
	closed  bool
	dirEnts []fs.DirEntry
	dirPos  int
	dirRead bool

	// Read-ahead for sequential readers issuing small reads.
	ra      []byte
	raOff   int64
	raGen   uint64
	lastEnd int64
}

const readAhead = 1 << 20

// Name returns the name given to OpenFile.
func (fl *File) Name() string { return fl.name }

func (fl *File) lock(op string) error {
	fl.fs.lock()
	if fl.closed {
		fl.fs.mu.Unlock()
		return &fs.PathError{Op: op, Path: fl.name, Err: fs.ErrClosed}
	}
	if fl.fs.closed {
		fl.fs.mu.Unlock()
		return &fs.PathError{Op: op, Path: fl.name, Err: fs.ErrClosed}
	}
	return nil
}

// Stat describes the open file.
func (fl *File) Stat() (fs.FileInfo, error) {
	if err := fl.lock("stat"); err != nil {
		return nil, err
	}
	defer fl.fs.mu.Unlock()
	return fl.fs.statInode(fl.in, baseName(fl.name)), nil
}

// Read reads from the current offset.
func (fl *File) Read(p []byte) (int, error) {
	if err := fl.lock("read"); err != nil {
		return 0, err
	}
	defer fl.fs.mu.Unlock()
	n, err := fl.readAt(p, fl.off)
	fl.off += int64(n)
	return n, err
}

// ReadAt reads len(p) bytes at off (io.ReaderAt).
func (fl *File) ReadAt(p []byte, off int64) (int, error) {
	if err := fl.lock("read"); err != nil {
		return 0, err
	}
	defer fl.fs.mu.Unlock()
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrInvalid}
	}
	return fl.readAt(p, off)
}

func (fl *File) readAt(p []byte, off int64) (int, error) {
	if fl.in.isDir() {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: syscall.EISDIR}
	}
	if fl.flag&(os.O_WRONLY|os.O_RDWR) == os.O_WRONLY {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: syscall.EBADF}
	}
	size := int64(fl.in.size())
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > size-off {
		n = int(size - off)
	}
	switch {
	case fl.ra != nil && fl.raGen == fl.in.dataGen && off >= fl.raOff && off+int64(n) <= fl.raOff+int64(len(fl.ra)):
		copy(p[:n], fl.ra[off-fl.raOff:])
	case off == fl.lastEnd && n < readAhead/2 && size-off > int64(n):
		// A sequential reader with small reads: fetch a larger window.
		w := min(int64(readAhead), size-off)
		if cap(fl.ra) < int(w) {
			fl.ra = make([]byte, readAhead)
		}
		fl.ra = fl.ra[:w]
		if err := fl.fs.readData(fl.in, fl.ra, uint64(off)); err != nil {
			fl.ra = nil
			return 0, &fs.PathError{Op: "read", Path: fl.name, Err: err}
		}
		fl.raOff, fl.raGen = off, fl.in.dataGen
		copy(p[:n], fl.ra)
	default:
		if err := fl.fs.readData(fl.in, p[:n], uint64(off)); err != nil {
			return 0, &fs.PathError{Op: "read", Path: fl.name, Err: err}
		}
	}
	fl.lastEnd = off + int64(n)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Write writes at the current offset (at the end with O_APPEND).
func (fl *File) Write(p []byte) (int, error) {
	if err := fl.lock("write"); err != nil {
		return 0, err
	}
	defer fl.fs.mu.Unlock()
	if fl.flag&os.O_APPEND != 0 {
		fl.off = int64(fl.in.size())
	}
	n, err := fl.writeAt(p, fl.off)
	fl.off += int64(n)
	return n, err
}

// WriteAt writes len(p) bytes at off (io.WriterAt).
func (fl *File) WriteAt(p []byte, off int64) (int, error) {
	if err := fl.lock("write"); err != nil {
		return 0, err
	}
	defer fl.fs.mu.Unlock()
	if fl.flag&os.O_APPEND != 0 {
		return 0, &fs.PathError{Op: "write", Path: fl.name, Err: errors.New("WriteAt with O_APPEND")}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: fl.name, Err: fs.ErrInvalid}
	}
	return fl.writeAt(p, off)
}

func (fl *File) writeAt(p []byte, off int64) (int, error) {
	if fl.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return 0, &fs.PathError{Op: "write", Path: fl.name, Err: syscall.EBADF}
	}
	if len(p) == 0 {
		return 0, nil
	}
	f := fl.fs
	if err := f.checkWritable(); err != nil {
		return 0, &fs.PathError{Op: "write", Path: fl.name, Err: err}
	}
	n, err := f.writeData(fl.in, p, uint64(off))
	if end := uint64(off) + uint64(n); n > 0 && end > fl.in.size() {
		fl.in.setSize(end)
	}
	if n > 0 {
		f.touch(fl.in, true, true)
	}
	if err != nil {
		// Blocks allocated past the bytes written are released so no
		// written extent reaches beyond the end of the file.
		bs := uint64(f.bs)
		if terr := f.truncateBlocks(fl.in, (fl.in.size()+bs-1)/bs); terr != nil {
			err = errors.Join(err, terr)
		}
		return n, &fs.PathError{Op: "write", Path: fl.name, Err: err}
	}
	return n, nil
}

// Seek sets the offset for the next Read or Write (io.Seeker).
func (fl *File) Seek(offset int64, whence int) (int64, error) {
	if err := fl.lock("seek"); err != nil {
		return 0, err
	}
	defer fl.fs.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += fl.off
	case io.SeekEnd:
		offset += int64(fl.in.size())
	case SeekData, SeekHole:
		o, err := fl.fs.seekDataHole(fl.in, offset, whence)
		if err != nil {
			return 0, &fs.PathError{Op: "seek", Path: fl.name, Err: err}
		}
		fl.off = o
		return o, nil
	default:
		return 0, &fs.PathError{Op: "seek", Path: fl.name, Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: fl.name, Err: fs.ErrInvalid}
	}
	fl.off = offset
	if fl.in.isDir() && offset == 0 {
		fl.dirRead, fl.dirPos, fl.dirEnts = false, 0, nil
	}
	return offset, nil
}

// Truncate changes the file's size.
func (fl *File) Truncate(size int64) error {
	if err := fl.lock("truncate"); err != nil {
		return err
	}
	defer fl.fs.mu.Unlock()
	if fl.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return &fs.PathError{Op: "truncate", Path: fl.name, Err: syscall.EBADF}
	}
	if err := fl.fs.checkWritable(); err != nil {
		return &fs.PathError{Op: "truncate", Path: fl.name, Err: err}
	}
	return pathErr("truncate", fl.name, fl.fs.truncate(fl.in, size))
}

// Allocate reserves blocks for [off, off+n) like fallocate(2): new blocks
// read as zeros; unless keepSize, the file grows to cover the range.
func (fl *File) Allocate(off, n int64, keepSize bool) error {
	if err := fl.lock("allocate"); err != nil {
		return err
	}
	defer fl.fs.mu.Unlock()
	if fl.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return &fs.PathError{Op: "allocate", Path: fl.name, Err: syscall.EBADF}
	}
	if err := fl.fs.checkWritable(); err != nil {
		return &fs.PathError{Op: "allocate", Path: fl.name, Err: err}
	}
	if off < 0 || n <= 0 {
		return &fs.PathError{Op: "allocate", Path: fl.name, Err: syscall.EINVAL}
	}
	if !fl.in.isReg() {
		return &fs.PathError{Op: "allocate", Path: fl.name, Err: syscall.ENODEV}
	}
	if err := fl.fs.allocateRange(fl.in, uint64(off), uint64(n)); err != nil {
		return &fs.PathError{Op: "allocate", Path: fl.name, Err: err}
	}
	if end := uint64(off + n); !keepSize && end > fl.in.size() {
		fl.in.setSize(end)
	}
	fl.fs.touch(fl.in, !keepSize, true)
	return nil
}

// Sync makes the file system (and so this file) durable.
func (fl *File) Sync() error {
	if err := fl.lock("sync"); err != nil {
		return err
	}
	defer fl.fs.mu.Unlock()
	return pathErr("sync", fl.name, fl.fs.syncLocked())
}

// Chmod changes the open file's permission bits.
func (fl *File) Chmod(mode fs.FileMode) error {
	if err := fl.lock("chmod"); err != nil {
		return err
	}
	defer fl.fs.mu.Unlock()
	if err := fl.fs.checkWritable(); err != nil {
		return &fs.PathError{Op: "chmod", Path: fl.name, Err: err}
	}
	put16(fl.in.raw, i_mode, fl.in.mode()&S_IFMT|fileModeToExt(mode))
	fl.fs.touch(fl.in, false, true)
	return nil
}

// ReadDir reads directory entries like os.File.ReadDir.
func (fl *File) ReadDir(n int) ([]fs.DirEntry, error) {
	if err := fl.lock("readdir"); err != nil {
		return nil, err
	}
	defer fl.fs.mu.Unlock()
	if !fl.in.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: fl.name, Err: syscall.ENOTDIR}
	}
	if !fl.dirRead {
		ents, err := fl.fs.listDir(fl.in)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: fl.name, Err: err}
		}
		fl.dirEnts, fl.dirRead, fl.dirPos = ents, true, 0
	}
	rest := fl.dirEnts[fl.dirPos:]
	if n <= 0 {
		fl.dirPos = len(fl.dirEnts)
		return slices.Clone(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	fl.dirPos += n
	return slices.Clone(rest[:n]), nil
}

// Close releases the file; an unlinked file's space is freed on its last
// close.
func (fl *File) Close() error {
	fl.fs.lock()
	defer fl.fs.mu.Unlock()
	if fl.closed {
		return &fs.PathError{Op: "close", Path: fl.name, Err: fs.ErrClosed}
	}
	fl.closed = true
	fl.in.opens--
	if fl.in.opens == 0 && fl.in.orphan && !fl.fs.closed {
		fl.in.orphan = false
		return pathErr("close", fl.name, fl.fs.releaseInode(fl.in))
	}
	return nil
}
