package host

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/anykernel/anykernel/hal"
)

// TAP is a Linux TAP interface seen from the user-space side: frames written
// to it are received by the host kernel on the interface, and frames the
// kernel transmits on the interface are read from it.
//
// TAP implements hal.NIC and hal.BatchNIC. It also has the methods of
// hal.OffloadNIC; they grant abilities only when the device was opened with
// [TAPOptions.VNetHdr] (otherwise SupportedOffload is empty).
//
// Offload settings (TUNSETOFFLOAD) belong to the interface, not to the file
// descriptor: on a persistent TAP (ip tuntap add) they outlive Close.
// OpenTAP therefore resets them to none, and SetOffload changes them.
type TAP struct {
	f    *os.File
	rc   syscall.RawConn
	name string
	mac  hal.MAC
	mtu  int
	vnet bool

	offload atomic.Uint32 // hal.Offload enabled by SetOffload
	closed  atomic.Bool
	once    sync.Once
	cerr    error
}

var (
	_ hal.NIC        = (*TAP)(nil)
	_ hal.BatchNIC   = (*TAP)(nil)
	_ hal.OffloadNIC = (*TAP)(nil)
	_ hal.VecNIC     = (*TAP)(nil)
)

// tapTxOffload is what the kernel accepts in written headers no matter what
// TUNSETOFFLOAD says.
const tapTxOffload = hal.OffloadTxCsum | hal.OffloadTxTSO4 | hal.OffloadTxTSO6

// tapRxOffload is what TUNSETOFFLOAD can grant for frames we read.
const tapRxOffload = hal.OffloadRxCsum | hal.OffloadRxTSO4 | hal.OffloadRxTSO6

// tapMaxRead is the longest frame the kernel may hand us: with receive
// segmentation offload a 64 KiB IP packet plus its Ethernet header. Without
// it frames are MTU-sized, but a smaller buffer than this is backed by a
// scratch buffer so that an oversized frame is detected, not truncated.
const tapMaxRead = hal.MaxOffloadFrame

// rxOp is the state of one read call, pooled so that a read allocates
// nothing: the callback handed to the poller is created once per rxOp.
type rxOp struct {
	t       *TAP
	hb      [hal.NetHdrLen]byte
	iov     [][]byte // header, frame buffers, scratch
	one1    [1][]byte
	scratch []byte // catches the rest of a frame longer than the buffer

	// one frame (ReadFrame, ReadFrameHdr; ReadFrameHdrVec scatters it
	// across vec)
	p   []byte
	vec [][]byte
	fr  frame
	// a batch (ReadFrames)
	bufs  [][]byte
	sizes []int
	got   int

	iovs iovecs
	err  error
	one  func(fd uintptr) bool
	many func(fd uintptr) bool
	sc   func(fd uintptr) bool
}

var rxPool = sync.Pool{New: func() any {
	op := &rxOp{scratch: make([]byte, tapMaxRead), iov: make([][]byte, 0, hal.MaxVecBufs+2)}
	op.one = op.readOne
	op.many = op.readMany
	op.sc = op.readVec
	return op
}}

func (t *TAP) getRx() *rxOp {
	op := rxPool.Get().(*rxOp)
	op.t = t
	return op
}

func putRx(op *rxOp) {
	op.t, op.p, op.bufs, op.sizes, op.err = nil, nil, nil, nil, nil
	clear(op.iov[:cap(op.iov)])
	op.iov = op.iov[:0]
	op.one1[0], op.vec = nil, nil
	op.iovs.clear()
	rxPool.Put(op)
}

// txOp is the state of one write call, pooled like rxOp.
type txOp struct {
	fd   func(fd uintptr) bool
	hb   [hal.NetHdrLen]byte
	iov  [1 + hal.MaxVecBufs][]byte // the header, then the frame's pieces
	niov int
	iovs iovecs
	n    int
	err  error
}

var txPool = sync.Pool{New: func() any {
	op := &txOp{}
	op.fd = op.write
	return op
}}

func (op *txOp) write(fd uintptr) bool {
	for {
		op.n, op.err = rawWritev(int(fd), &op.iovs, op.iov[:op.niov])
		if op.err != unix.EINTR {
			return op.err != unix.EAGAIN
		}
	}
}

// OpenTAP opens (creating if needed) the TAP interface name in the calling
// thread's network namespace. An empty name lets the kernel choose one
// (tap0, tap1, ...); Name reports it. The interface is not brought up: that
// and its addresses are the host administrator's business.
func OpenTAP(name string, opts TAPOptions) (*TAP, error) {
	label := name
	if label == "" {
		label = "tap"
	}
	fail := func(what string, err error) (*TAP, error) {
		return nil, fmt.Errorf("host: TAP %s: %s: %w", label, what, err)
	}
	if opts.MTU != 0 && (opts.MTU < hal.MinMTU || opts.MTU > 65535) {
		return fail("options", fmt.Errorf("MTU %d outside [%d, 65535]", opts.MTU, hal.MinMTU))
	}
	mac := opts.MAC
	if mac == (hal.MAC{}) {
		if _, err := rand.Read(mac[:]); err != nil {
			return fail("random MAC", err)
		}
		mac[0] = mac[0]&^1 | 2 // unicast, locally administered
	} else if mac.IsMulticast() {
		return fail("options", fmt.Errorf("MAC %v is a group address", mac))
	}

	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fail("name", err)
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if opts.VNetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)

	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("open /dev/net/tun", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fail("TUNSETIFF", err)
	}
	name = ifr.Name()
	label = name
	if opts.VNetHdr {
		// A persistent device may have been left with another header size.
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, hal.NetHdrLen); err != nil {
			return fail("TUNSETVNETHDRSZ", err)
		}
		// The legacy header is in the host's byte order; hal.NetHdr is
		// little endian. Only a big-endian host needs the switch to work.
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1); err != nil && !littleEndian() {
			return fail("TUNSETVNETLE", err)
		}
	}
	// Offload settings outlive the file descriptor on persistent devices:
	// start from none, as hal.OffloadNIC requires.
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0); err != nil {
		return fail("TUNSETOFFLOAD", err)
	}

	mtu, err := interfaceMTU(name, opts.MTU)
	if err != nil {
		return fail("MTU", err)
	}

	f := os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		ok = true // f owns fd now
		return fail("file", err)
	}
	ok = true
	return &TAP{f: f, rc: rc, name: name, mac: mac, mtu: mtu, vnet: opts.VNetHdr}, nil
}

// interfaceMTU sets the interface's MTU to want if want is non-zero, and
// returns the MTU the interface has afterwards.
func interfaceMTU(name string, want int) (int, error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if want != 0 {
		ifr.SetUint32(uint32(want))
		if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
			return 0, fmt.Errorf("SIOCSIFMTU %d: %w", want, err)
		}
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFMTU, ifr); err != nil {
		return 0, fmt.Errorf("SIOCGIFMTU: %w", err)
	}
	mtu := int(ifr.Uint32())
	if mtu < hal.MinMTU {
		return 0, fmt.Errorf("interface MTU %d below %d", mtu, hal.MinMTU)
	}
	return mtu, nil
}

func littleEndian() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 1
}

// Name returns the interface's name.
func (t *TAP) Name() string { return t.name }

// MTU returns the interface MTU read (or set) when the TAP was opened.
func (t *TAP) MTU() int { return t.mtu }

// MAC returns the address of our side of the link (TAPOptions.MAC).
func (t *TAP) MAC() hal.MAC { return t.mac }

// Close closes the file descriptor, which unblocks pending reads and writes.
// A non-persistent interface disappears with it.
func (t *TAP) Close() error {
	t.once.Do(func() {
		t.closed.Store(true)
		if err := t.f.Close(); err != nil {
			t.cerr = fmt.Errorf("host: TAP %s: close: %w", t.name, err)
		}
	})
	return t.cerr
}

// ioErr turns an error from the file descriptor into the error a caller
// sees, reporting hal.ErrClosed once Close has been called.
func (t *TAP) ioErr(op string, err error) error {
	if t.closed.Load() || errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("host: TAP %s: %s: %w", t.name, op, hal.ErrClosed)
	}
	return fmt.Errorf("host: TAP %s: %s: %w", t.name, op, err)
}

// frame is the outcome of reading one frame from the file descriptor.
type frame struct {
	n     int // frame length in the caller's buffer; -1 if it did not fit
	hdr   hal.NetHdr
	again bool // nothing to read now
}

// recv reads one frame from fd into p (and its header, with IFF_VNET_HDR).
// It must run inside a RawConn callback. A frame longer than p is consumed
// and reported with n = -1.
func (op *rxOp) recv(fd int, p []byte) (frame, error) {
	op.one1[0] = p
	return op.recvVec(fd, op.one1[:], len(p))
}

// recvVec is recv scattering the frame across bufs, whose lengths add up
// to total.
func (op *rxOp) recvVec(fd int, bufs [][]byte, total int) (frame, error) {
	t := op.t
	iov := op.iov[:0]
	if t.vnet {
		iov = append(iov, op.hb[:])
	}
	iov = append(iov, bufs...)
	if total < tapMaxRead {
		iov = append(iov, op.scratch[:tapMaxRead-total])
	}
	op.iov = iov
	var n int
	var err error
	for {
		n, err = rawReadv(fd, &op.iovs, iov)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.EAGAIN {
		return frame{again: true}, nil
	}
	if err != nil {
		return frame{}, err
	}
	if t.vnet {
		if n < hal.NetHdrLen {
			return frame{}, fmt.Errorf("%d-byte read shorter than the virtio-net header", n)
		}
		n -= hal.NetHdrLen
		h, err := hal.DecodeNetHdr(op.hb[:])
		if err != nil {
			return frame{}, err
		}
		if n > total {
			return frame{n: -1}, nil
		}
		return frame{n: n, hdr: h}, nil
	}
	if n > total {
		return frame{n: -1}, nil
	}
	return frame{n: n}, nil
}

// readOne is the poller callback of a single-frame read.
func (op *rxOp) readOne(fd uintptr) bool {
	op.fr, op.err = op.recv(int(fd), op.p)
	return op.err != nil || !op.fr.again
}

// readVec is the poller callback of a scattered single-frame read.
func (op *rxOp) readVec(fd uintptr) bool {
	total := 0
	for _, b := range op.vec {
		total += len(b)
	}
	op.fr, op.err = op.recvVec(int(fd), op.vec, total)
	return op.err != nil || !op.fr.again
}

// readMany is the poller callback of ReadFrames: it waits for the first
// frame only, then takes what is queued.
func (op *rxOp) readMany(fd uintptr) bool {
	t := op.t
	for op.got < len(op.bufs) {
		buf := op.bufs[op.got]
		fr, err := op.recv(int(fd), buf)
		if err != nil {
			op.err = err
			return true
		}
		if fr.again {
			return op.got > 0
		}
		if !t.plain(&fr, buf) || (fr.n >= 0 && fr.n < hal.EthernetHeaderLen) {
			continue
		}
		op.sizes[op.got] = fr.n
		op.got++
	}
	return true
}

// plain turns a received frame into what a reader that did not ask for
// offload must see: a complete checksum and no header. It reports false for
// a frame such a reader cannot get (a segmentation super-frame, possible
// only while receive segmentation offload is enabled), which is dropped.
func (t *TAP) plain(fr *frame, p []byte) bool {
	if fr.n < 0 {
		return true
	}
	if fr.hdr.GSOType&^hal.GSOECN != hal.GSONone {
		return false
	}
	if fr.hdr.Flags&hal.NetHdrFNeedsCsum != 0 {
		if err := finishChecksum(&fr.hdr, p[:fr.n]); err != nil {
			return false
		}
	}
	fr.hdr = hal.NetHdr{}
	return true
}

// ReadFrame reads one frame; see hal.NIC. While receive offloads are
// enabled, ReadFrame completes partial checksums itself and drops
// segmentation super-frames (use ReadFrameHdr to get them).
func (t *TAP) ReadFrame(p []byte) (int, error) {
	for {
		fr, err := t.readOne(p)
		if err != nil {
			return 0, err
		}
		if !t.plain(&fr, p) {
			continue
		}
		if fr.n < 0 {
			return 0, t.shortErr(len(p))
		}
		if fr.n < hal.EthernetHeaderLen {
			continue // not a frame; the kernel does not send these
		}
		return fr.n, nil
	}
}

func (t *TAP) shortErr(have int) error {
	return fmt.Errorf("host: TAP %s: read: frame longer than %d-byte buffer: %w", t.name, have, io.ErrShortBuffer)
}

// readOne waits for and reads one frame.
func (t *TAP) readOne(p []byte) (frame, error) {
	if t.closed.Load() {
		return frame{}, t.ioErr("read", hal.ErrClosed)
	}
	op := t.getRx()
	defer putRx(op)
	op.p = p
	err := t.rc.Read(op.one)
	if err == nil {
		err = op.err
	}
	if err != nil {
		return frame{}, t.ioErr("read", err)
	}
	return op.fr, nil
}

// ReadFrameHdr reads one frame and its virtio-net header; see
// hal.OffloadNIC. Without receive offloads the header is all zero and the
// frame's checksums complete.
func (t *TAP) ReadFrameHdr(p []byte) (int, hal.NetHdr, error) {
	rxOn := hal.Offload(t.offload.Load())&tapRxOffload != 0
	for {
		fr, err := t.readOne(p)
		if err != nil {
			return 0, hal.NetHdr{}, err
		}
		if !rxOn && !t.plain(&fr, p) {
			continue
		}
		if fr.n < 0 {
			return 0, hal.NetHdr{}, t.shortErr(len(p))
		}
		if fr.n < hal.EthernetHeaderLen {
			continue
		}
		if rxOn {
			// Report only what the granted abilities allow.
			fr.hdr.Flags &= hal.NetHdrFNeedsCsum | hal.NetHdrFDataValid
		}
		return fr.n, fr.hdr, nil
	}
}

// ReadFrameHdrVec reads one frame and its virtio-net header, scattering the
// frame across bufs with one readv(2); see hal.VecNIC. It accepts up to
// hal.MaxVecBufs buffers.
func (t *TAP) ReadFrameHdrVec(bufs [][]byte) (int, hal.NetHdr, error) {
	if len(bufs) > hal.MaxVecBufs {
		return 0, hal.NetHdr{}, fmt.Errorf("host: TAP %s: read: %d buffers, at most %d: %w", t.name, len(bufs), hal.MaxVecBufs, errors.ErrUnsupported)
	}
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	rxOn := hal.Offload(t.offload.Load())&tapRxOffload != 0
	for {
		fr, err := t.readScatter(bufs)
		if err != nil {
			return 0, hal.NetHdr{}, err
		}
		if !rxOn && fr.n >= 0 && (fr.hdr.GSOType&^hal.GSOECN != hal.GSONone || fr.hdr.Flags&hal.NetHdrFNeedsCsum != 0) {
			// A frame left over from a time offload was on; plain
			// needs it flat.
			flat := make([]byte, fr.n)
			gather(flat, bufs)
			if !t.plain(&fr, flat) {
				continue
			}
			scatter(bufs, flat)
		}
		fr.hdr = t.rxHdr(fr.hdr, rxOn)
		if fr.n < 0 {
			return 0, hal.NetHdr{}, t.shortErr(total)
		}
		if fr.n < hal.EthernetHeaderLen {
			continue
		}
		return fr.n, fr.hdr, nil
	}
}

// gather copies the start of bufs into dst.
func gather(dst []byte, bufs [][]byte) {
	n := 0
	for _, b := range bufs {
		if n == len(dst) {
			return
		}
		n += copy(dst[n:], b)
	}
}

// scatter copies src across the start of bufs.
func scatter(bufs [][]byte, src []byte) {
	for _, b := range bufs {
		if len(src) == 0 {
			return
		}
		src = src[copy(b, src):]
	}
}

// rxHdr is the header a reader gets: only what the granted abilities allow.
func (t *TAP) rxHdr(h hal.NetHdr, rxOn bool) hal.NetHdr {
	if !rxOn {
		return hal.NetHdr{}
	}
	h.Flags &= hal.NetHdrFNeedsCsum | hal.NetHdrFDataValid
	return h
}

// readScatter waits for and reads one frame into bufs.
func (t *TAP) readScatter(bufs [][]byte) (frame, error) {
	if t.closed.Load() {
		return frame{}, t.ioErr("read", hal.ErrClosed)
	}
	op := t.getRx()
	defer putRx(op)
	op.vec = bufs
	err := t.rc.Read(op.sc)
	if err == nil {
		err = op.err
	}
	if err != nil {
		return frame{}, t.ioErr("read", err)
	}
	return op.fr, nil
}

// ReadFrames reads up to len(bufs) frames, waiting only for the first; see
// hal.BatchNIC. Frames are delivered as ReadFrame delivers them.
func (t *TAP) ReadFrames(bufs [][]byte, sizes []int) (int, error) {
	if len(sizes) < len(bufs) {
		return 0, fmt.Errorf("host: TAP %s: read: %d sizes for %d buffers", t.name, len(sizes), len(bufs))
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	if t.closed.Load() {
		return 0, t.ioErr("read", hal.ErrClosed)
	}
	op := t.getRx()
	defer putRx(op)
	op.bufs, op.sizes, op.got = bufs, sizes, 0
	err := t.rc.Read(op.many)
	if err == nil {
		err = op.err
	}
	got := op.got
	if err != nil {
		if got > 0 {
			return got, nil
		}
		return 0, t.ioErr("read", err)
	}
	return got, nil
}

// WriteFrame sends one frame; see hal.NIC.
func (t *TAP) WriteFrame(p []byte) error {
	if err := t.checkLen(len(p), false); err != nil {
		return err
	}
	return t.send(nil, [][]byte{p}, len(p))
}

// WriteFrames sends frames in order; see hal.BatchNIC.
func (t *TAP) WriteFrames(frames [][]byte) (int, error) {
	for i, p := range frames {
		if err := t.WriteFrame(p); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

// WriteFrameHdr sends a frame with a virtio-net header; see hal.OffloadNIC.
func (t *TAP) WriteFrameHdr(hdr *hal.NetHdr, p []byte) error {
	return t.writeHdr(hdr, [][]byte{p}, len(p))
}

// WriteFrameHdrVec sends a frame gathered from bufs with one writev(2);
// see hal.VecNIC. It accepts up to hal.MaxVecBufs buffers.
func (t *TAP) WriteFrameHdrVec(hdr *hal.NetHdr, bufs [][]byte) error {
	if len(bufs) > hal.MaxVecBufs {
		return fmt.Errorf("host: TAP %s: write: %d buffers, at most %d: %w", t.name, len(bufs), hal.MaxVecBufs, errors.ErrUnsupported)
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return t.writeHdr(hdr, bufs, n)
}

// writeHdr checks hdr against the n-byte frame in bufs and the enabled
// offloads, then sends it.
func (t *TAP) writeHdr(hdr *hal.NetHdr, bufs [][]byte, n int) error {
	var h hal.NetHdr
	if hdr != nil {
		h = *hdr
	}
	gso := h.GSOType&^hal.GSOECN != hal.GSONone
	if err := t.checkLen(n, gso); err != nil {
		return err
	}
	if h == (hal.NetHdr{}) {
		return t.send(nil, bufs, n)
	}
	bad := func(err error) error { return fmt.Errorf("host: TAP %s: write: %w", t.name, err) }
	on := hal.Offload(t.offload.Load())
	if h.Flags&(hal.NetHdrFDataValid|hal.NetHdrFRSCInfo) != 0 {
		// virtio 1.2 §5.1.6.2: the driver must not set these.
		return bad(fmt.Errorf("header flags %#x are receive-only: %w", h.Flags, errors.ErrUnsupported))
	}
	if h.Flags&hal.NetHdrFNeedsCsum != 0 && on&hal.OffloadTxCsum == 0 {
		return bad(fmt.Errorf("checksum offload not enabled: %w", errors.ErrUnsupported))
	}
	switch h.GSOType &^ hal.GSOECN {
	case hal.GSONone:
	case hal.GSOTCPv4:
		if on&hal.OffloadTxTSO4 == 0 {
			return bad(fmt.Errorf("TCPv4 segmentation offload not enabled: %w", errors.ErrUnsupported))
		}
	case hal.GSOTCPv6:
		if on&hal.OffloadTxTSO6 == 0 {
			return bad(fmt.Errorf("TCPv6 segmentation offload not enabled: %w", errors.ErrUnsupported))
		}
	default:
		return bad(fmt.Errorf("GSO type %#x not supported: %w", h.GSOType, errors.ErrUnsupported))
	}
	if err := h.Validate(n); err != nil {
		return bad(err)
	}
	return t.send(&h, bufs, n)
}

// checkLen applies hal.NIC's frame size rules to an n-byte frame
// (hal.MaxOffloadFrame for segmentation super-frames).
func (t *TAP) checkLen(n int, gso bool) error {
	limit := t.mtu + hal.EthernetHeaderLen
	if gso {
		limit = hal.MaxOffloadFrame
	}
	if n < hal.EthernetHeaderLen || n > limit {
		return fmt.Errorf("host: TAP %s: write: %d-byte frame outside [%d, %d]: %w", t.name, n, hal.EthernetHeaderLen, limit, hal.ErrFrameSize)
	}
	return nil
}

// send writes the n-byte frame in bufs (with hdr, or a zero header, on a
// VNetHdr device).
func (t *TAP) send(hdr *hal.NetHdr, bufs [][]byte, n int) error {
	if t.closed.Load() {
		return t.ioErr("write", hal.ErrClosed)
	}
	op := txPool.Get().(*txOp)
	defer func() {
		clear(op.iov[:op.niov])
		op.iovs.clear()
		op.niov = 0
		op.err = nil
		txPool.Put(op)
	}()
	want := n
	if t.vnet {
		if hdr != nil {
			hdr.Encode(op.hb[:])
		} else {
			op.hb = [hal.NetHdrLen]byte{}
		}
		op.iov[0], op.niov = op.hb[:], 1
		want += hal.NetHdrLen
	}
	for _, b := range bufs {
		if len(b) > 0 {
			op.iov[op.niov] = b
			op.niov++
		}
	}
	err := t.rc.Write(op.fd)
	if err == nil {
		err = op.err
	}
	if err != nil {
		return t.ioErr("write", err)
	}
	if n := op.n; n != want {
		return t.ioErr("write", io.ErrShortWrite)
	}
	return nil
}

// SupportedOffload returns TxCsum|TxTSO4|TxTSO6|RxCsum|RxTSO4|RxTSO6 on a
// device opened with VNetHdr, and nothing otherwise.
func (t *TAP) SupportedOffload() hal.Offload {
	if !t.vnet {
		return 0
	}
	return tapTxOffload | tapRxOffload
}

// SetOffload enables offload abilities; see hal.OffloadNIC. Transmit
// abilities are always available with VNetHdr; receive abilities are
// requested from the kernel with TUNSETOFFLOAD, which changes the
// interface's settings (they persist on a persistent TAP after Close).
func (t *TAP) SetOffload(want hal.Offload) (hal.Offload, error) {
	if t.closed.Load() {
		return hal.Offload(t.offload.Load()), t.ioErr("set offload", hal.ErrClosed)
	}
	got := want & t.SupportedOffload()
	if got&hal.OffloadTxCsum == 0 {
		got &^= hal.OffloadTxTSO4 | hal.OffloadTxTSO6
	}
	if got&hal.OffloadRxCsum == 0 {
		got &^= hal.OffloadRxTSO4 | hal.OffloadRxTSO6
	}
	if t.vnet {
		var tf int
		if got&hal.OffloadRxCsum != 0 {
			tf |= tunFCsum
		}
		if got&hal.OffloadRxTSO4 != 0 {
			tf |= tunFTSO4
		}
		if got&hal.OffloadRxTSO6 != 0 {
			tf |= tunFTSO6
		}
		var ierr error
		err := t.rc.Control(func(fd uintptr) {
			ierr = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, tf)
		})
		if err == nil {
			err = ierr
		}
		if err != nil {
			return hal.Offload(t.offload.Load()), t.ioErr(fmt.Sprintf("TUNSETOFFLOAD %#x", tf), err)
		}
	}
	t.offload.Store(uint32(got))
	return got, nil
}
