package hal

// MaxVecBufs is the largest number of buffers a [VecNIC] must accept in one
// ReadFrameHdrVec or WriteFrameHdrVec call.
const MaxVecBufs = 16

// VecNIC is an OffloadNIC that can scatter a received frame across several
// buffers, and gather a frame to send from several, in one call. A stack
// that keeps packets in buffers of its own (a small one for the headers, a
// larger one or several for the payload) can then have the device fill and
// drain them directly instead of copying each frame through a flat buffer.
//
// Everything OffloadNIC says about ReadFrameHdr applies to ReadFrameHdrVec:
// the same frames, the same header, the same ordering, the same effect of
// SetOffload and Close. Reads through either method (or ReadFrame) may be
// mixed; each frame is delivered to exactly one of them.
type VecNIC interface {
	OffloadNIC

	// ReadFrameHdrVec blocks until a frame has been received and stores it
	// across bufs in order: the frame's first len(bufs[0]) bytes in
	// bufs[0], the next len(bufs[1]) bytes in bufs[1], and so on. It returns
	// the frame's length n and its header. Bytes of bufs beyond the first n
	// are not modified. The buffers are the caller's: the NIC neither keeps
	// them nor touches them after ReadFrameHdrVec returns. Empty buffers are
	// allowed and skipped.
	//
	// If the buffers' total length is shorter than the frame, the frame is
	// consumed and discarded and ReadFrameHdrVec returns 0 and an error
	// wrapping io.ErrShortBuffer; a total of MaxOffloadFrame bytes is always
	// large enough (MaxFrameLen(nic) while no Rx offload is enabled).
	//
	// More than MaxVecBufs buffers may be refused with an error wrapping
	// errors.ErrUnsupported before anything is read; no frame is consumed
	// then.
	//
	// After an error the contents of bufs are unspecified: a device may
	// have stored part of a frame before finding that it does not fit or
	// that the device failed.
	ReadFrameHdrVec(bufs [][]byte) (n int, hdr NetHdr, err error)

	// WriteFrameHdrVec sends the frame formed by bufs in order, exactly as
	// WriteFrameHdr(hdr, frame) would send their concatenation: the same
	// checks of the header and of the frame's total length, the same
	// errors, the same ordering with other writes. Empty buffers are
	// allowed and skipped. As with WriteFrameHdr, the NIC keeps no
	// reference to the buffers after it returns.
	//
	// More than MaxVecBufs buffers may be refused with an error wrapping
	// errors.ErrUnsupported; nothing is sent then.
	WriteFrameHdrVec(hdr *NetHdr, bufs [][]byte) error
}
