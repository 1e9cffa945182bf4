package netstack

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/anykernel/anykernel/hal"
)

// scatterNIC gives an OffloadNIC the hal.VecNIC methods by reading each frame
// flat and spreading it over the caller's buffers, and by gathering written
// pieces into one flat frame, so that the link's scatter receive and gather
// send paths run over hal/mem.
type scatterNIC struct {
	hal.OffloadNIC
	vecReads  atomic.Int64 // frames delivered through ReadFrameHdrVec
	vecWrites atomic.Int64 // frames sent through WriteFrameHdrVec
}

var _ hal.VecNIC = (*scatterNIC)(nil)

func (n *scatterNIC) ReadFrameHdrVec(bufs [][]byte) (int, hal.NetHdr, error) {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	flat := make([]byte, hal.MaxOffloadFrame)
	k, h, err := n.ReadFrameHdr(flat)
	if err != nil {
		return 0, h, err
	}
	if k > total {
		return 0, hal.NetHdr{}, fmt.Errorf("scatter: %d-byte frame, %d bytes of buffers: %w", k, total, io.ErrShortBuffer)
	}
	rest := flat[:k]
	for _, b := range bufs {
		rest = rest[copy(b, rest):]
	}
	n.vecReads.Add(1)
	return k, h, nil
}

func (n *scatterNIC) WriteFrameHdrVec(h *hal.NetHdr, bufs [][]byte) error {
	if len(bufs) > hal.MaxVecBufs {
		return fmt.Errorf("gather: %d buffers: %w", len(bufs), errors.ErrUnsupported)
	}
	var flat []byte
	for _, b := range bufs {
		flat = append(flat, b...)
	}
	if err := n.WriteFrameHdr(h, flat); err != nil {
		return err
	}
	n.vecWrites.Add(1)
	return nil
}
