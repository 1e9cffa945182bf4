package linux

// MaxFDs bounds the file-descriptor table; MaxWatches bounds the
// descriptors one epoll instance watches.
const (
	MaxFDs     = 64
	MaxWatches = 32
	maxEpolls  = 4
)

type fdKind uint8

const (
	fdNone fdKind = iota
	fdConsole
	fdEventfd
	fdEpoll
)

type file struct {
	kind  fdKind
	flags uint32
	count uint64 // eventfd counter
	gen   uint64 // eventfd writes, for edge-triggered watches
	ep    int8   // epoll instance
}

type watch struct {
	fd     int32
	events uint32
	data   uint64
	// For EPOLLET watches: the write generation and the output readiness
	// already reported.
	seenGen uint64
	seenOut bool
}

type epollSet struct {
	used bool
	n    int
	w    [MaxWatches]watch
}

// Files is a process's descriptor table: the console on 0, 1 and 2,
// eventfds and epoll instances. The zero value is empty; call Init.
type Files struct {
	f  [MaxFDs]file
	ep [maxEpolls]epollSet
}

// Init opens the console on descriptors 0, 1 and 2.
func (fs *Files) Init() {
	*fs = Files{}
	for i := 0; i < 3; i++ {
		fs.f[i] = file{kind: fdConsole, flags: O_RDWR}
	}
}

func (fs *Files) get(fd uint64) *file {
	if fd >= MaxFDs || fs.f[fd].kind == fdNone {
		return nil
	}
	return &fs.f[fd]
}

func (fs *Files) alloc() int {
	for i := range fs.f {
		if fs.f[i].kind == fdNone {
			return i
		}
	}
	return -1
}

// Eventfd creates an eventfd with the given counter and flags.
func (fs *Files) Eventfd(initval uint64, flags uint32) (int, Errno) {
	fd := fs.alloc()
	if fd < 0 {
		return -1, EMFILE
	}
	fs.f[fd] = file{kind: fdEventfd, count: initval, flags: O_RDWR | flags&O_NONBLOCK}
	return fd, 0
}

// EpollCreate creates an epoll instance.
func (fs *Files) EpollCreate() (int, Errno) {
	fd := fs.alloc()
	if fd < 0 {
		return -1, EMFILE
	}
	for i := range fs.ep {
		if !fs.ep[i].used {
			fs.ep[i] = epollSet{used: true}
			fs.f[fd] = file{kind: fdEpoll, ep: int8(i), flags: O_RDWR}
			return fd, 0
		}
	}
	return -1, ENOMEM
}

// Close closes fd, dropping it from every epoll set.
func (fs *Files) Close(fd uint64) Errno {
	f := fs.get(fd)
	if f == nil {
		return EBADF
	}
	if f.kind == fdEpoll {
		fs.ep[f.ep].used = false
	}
	*f = file{}
	for i := range fs.ep {
		fs.ep[i].remove(int32(fd))
	}
	return 0
}

func (e *epollSet) find(fd int32) int {
	for i := 0; i < e.n; i++ {
		if e.w[i].fd == fd {
			return i
		}
	}
	return -1
}

func (e *epollSet) remove(fd int32) bool {
	i := e.find(fd)
	if i < 0 {
		return false
	}
	e.n--
	e.w[i] = e.w[e.n]
	return true
}

// EpollCtl adds, modifies or deletes fd's watch in epoll instance epfd.
func (fs *Files) EpollCtl(epfd uint64, op int, fd uint64, events uint32, data uint64) Errno {
	ef := fs.get(epfd)
	if ef == nil || fs.get(fd) == nil {
		return EBADF
	}
	if ef.kind != fdEpoll || epfd == fd {
		return EINVAL
	}
	e := &fs.ep[ef.ep]
	i := e.find(int32(fd))
	switch op {
	case EPOLL_CTL_ADD:
		if i >= 0 {
			return EEXIST
		}
		if e.n == MaxWatches {
			return ENOMEM
		}
		e.w[e.n] = watch{fd: int32(fd), events: events, data: data}
		e.n++
	case EPOLL_CTL_MOD:
		if i < 0 {
			return ENOENT
		}
		e.w[i].events, e.w[i].data = events, data
	case EPOLL_CTL_DEL:
		if i < 0 {
			return ENOENT
		}
		e.remove(int32(fd))
	default:
		return EINVAL
	}
	return 0
}

// ready returns the events f has now.
func (f *file) ready() uint32 {
	switch f.kind {
	case fdEventfd:
		r := uint32(EPOLLOUT)
		if f.count > 0 {
			r |= EPOLLIN
		}
		return r
	case fdConsole:
		r := uint32(EPOLLOUT)
		if f.count > 0 {
			r |= EPOLLIN
		}
		return r
	}
	return 0
}

// EpollReady fills out with up to len(out)/12 ready events of epoll
// instance epfd in the x86-64 epoll_event layout (packed: u32 events, u64
// data) and returns their number. Level-triggered watches report while the
// condition holds; EPOLLET watches report input once per write to the
// eventfd and output readiness once.
func (fs *Files) EpollReady(epfd uint64, out []byte) (int, Errno) {
	ef := fs.get(epfd)
	if ef == nil {
		return 0, EBADF
	}
	if ef.kind != fdEpoll {
		return 0, EINVAL
	}
	e := &fs.ep[ef.ep]
	n := 0
	for i := 0; i < e.n && (n+1)*12 <= len(out); i++ {
		w := &e.w[i]
		f := fs.get(uint64(w.fd))
		if f == nil {
			continue
		}
		r := f.ready() & (w.events | EPOLLERR | EPOLLHUP)
		if w.events&EPOLLET != 0 {
			if w.seenGen == f.gen {
				r &^= EPOLLIN
			}
			if w.seenOut {
				r &^= EPOLLOUT
			}
			if r&EPOLLIN != 0 {
				w.seenGen = f.gen
			}
			if r&EPOLLOUT != 0 {
				w.seenOut = true
			}
		}
		if r == 0 {
			continue
		}
		put32(out[n*12:], r)
		put64(out[n*12+4:], w.data)
		n++
	}
	return n, 0
}

// EventfdWrite adds v to eventfd fd's counter.
func (fs *Files) EventfdWrite(fd uint64, v uint64) Errno {
	f := fs.get(fd)
	if f == nil {
		return EBADF
	}
	if f.kind != fdEventfd || v == 1<<64-1 {
		return EINVAL
	}
	if f.count+v < f.count || f.count+v == 1<<64-1 {
		return EAGAIN
	}
	f.count += v
	f.gen++
	return 0
}

// setConsoleInput records whether console input is waiting: the console
// descriptors' counter is 1 while it is, and each arrival is a new edge.
func (fs *Files) setConsoleInput(ready bool) {
	for i := range fs.f {
		f := &fs.f[i]
		if f.kind != fdConsole {
			continue
		}
		if ready {
			f.count = 1
			f.gen++
		} else {
			f.count = 0
		}
	}
}

// IsEventfd reports whether fd is an eventfd.
func (fs *Files) IsEventfd(fd uint64) bool {
	f := fs.get(fd)
	return f != nil && f.kind == fdEventfd
}

// EventfdRead takes eventfd fd's counter, or fails with EAGAIN if it is 0.
func (fs *Files) EventfdRead(fd uint64) (uint64, Errno) {
	f := fs.get(fd)
	if f == nil {
		return 0, EBADF
	}
	if f.kind != fdEventfd {
		return 0, EINVAL
	}
	if f.count == 0 {
		return 0, EAGAIN
	}
	v := f.count
	f.count = 0
	return v, 0
}

func put16(b []byte, v uint16) {
	_ = b[1]
	b[0] = byte(v)
	b[1] = byte(v >> 8)
}

func put32(b []byte, v uint32) {
	_ = b[3]
	b[0] = byte(v)
	b[1] = byte(v >> 8)
	b[2] = byte(v >> 16)
	b[3] = byte(v >> 24)
}

func put64(b []byte, v uint64) {
	_ = b[7]
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

func get32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func get64(b []byte) uint64 {
	_ = b[7]
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}
