package netstack

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/anykernel/anykernel/hal"
)

// scatterNIC gives an OffloadNIC the hal.VecNIC method by reading each frame
// flat and spreading it over the caller's buffers, so that the link's
// scatter receive path runs over hal/mem.
type scatterNIC struct {
	hal.OffloadNIC
	vecReads atomic.Int64 // frames delivered through ReadFrameHdrVec
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
