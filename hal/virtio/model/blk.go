package model

import (
	"encoding/binary"
	"errors"
	"sync/atomic"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/virtio"
)

// BlockOptions configures a modelled virtio-blk device. The zero value
// offers flush, discard (if the disk can), seg_max 32 and size_max 64 KiB.
type BlockOptions struct {
	// SegMax and SizeMax are offered in the configuration; zero means 32
	// and 64 KiB.
	SegMax, SizeMax uint32
	// NoFlush, NoDiscard, NoSizeMax, NoSegMax withhold those features.
	NoFlush, NoDiscard, NoSizeMax, NoSegMax bool
	// ReadOnly offers VIRTIO_BLK_F_RO (also offered if the disk says it is
	// read-only).
	ReadOnly bool
}

// Block is the device side of virtio-blk (virtio 1.2 §5.2) over a
// hal.BlockDevice.
type Block struct {
	disk     hal.BlockDevice
	o        BlockOptions
	capacity atomic.Int64 // bytes offered; the disk's size until SetCapacity
	dev      atomic.Pointer[Device]
}

// NewBlock models a virtio-blk device over disk.
func NewBlock(disk hal.BlockDevice, o BlockOptions) *Block {
	if o.SegMax == 0 {
		o.SegMax = 32
	}
	if o.SizeMax == 0 {
		o.SizeMax = 64 << 10
	}
	b := &Block{disk: disk, o: o}
	b.capacity.Store(disk.Size())
	return b
}

// Bind tells the backend its device, for configuration interrupts.
func (b *Block) Bind(d *Device) { b.dev.Store(d) }

// SetCapacity changes the capacity the device reports (a disk resized
// under the driver) and raises a configuration interrupt. Requests beyond
// the new capacity fail with VIRTIO_BLK_S_IOERR.
func (b *Block) SetCapacity(bytes int64) {
	b.capacity.Store(min(bytes, b.disk.Size()))
	if d := b.dev.Load(); d != nil {
		d.ConfigChanged()
	}
}

// DeviceID implements Backend.
func (b *Block) DeviceID() virtio.DeviceID { return virtio.DeviceBlock }

// NumQueues implements Backend.
func (b *Block) NumQueues() int { return 1 }

// Features implements Backend.
func (b *Block) Features() uint64 {
	f := uint64(1)<<virtio.VIRTIO_BLK_F_BLK_SIZE | 1<<virtio.VIRTIO_BLK_F_SIZE_MAX | 1<<virtio.VIRTIO_BLK_F_SEG_MAX |
		1<<virtio.VIRTIO_BLK_F_FLUSH
	if _, ok := b.disk.(hal.Discarder); ok && !b.o.NoDiscard {
		f |= 1 << virtio.VIRTIO_BLK_F_DISCARD
	}
	if b.o.NoFlush {
		f &^= 1 << virtio.VIRTIO_BLK_F_FLUSH
	}
	if b.o.NoSizeMax {
		f &^= 1 << virtio.VIRTIO_BLK_F_SIZE_MAX
	}
	if b.o.NoSegMax {
		f &^= 1 << virtio.VIRTIO_BLK_F_SEG_MAX
	}
	if b.o.ReadOnly || hal.IsReadOnly(b.disk) {
		f |= 1 << virtio.VIRTIO_BLK_F_RO
	}
	return f
}

// ConfigLen implements Backend.
func (b *Block) ConfigLen() int { return virtio.VirtioBlkCfgLen }

// Config implements Backend.
func (b *Block) Config(p []byte) {
	clear(p)
	binary.LittleEndian.PutUint64(p[virtio.VirtioBlkCfgCapacity:], uint64(b.capacity.Load()/virtio.VirtioBlkSectorSize))
	binary.LittleEndian.PutUint32(p[virtio.VirtioBlkCfgSizeMax:], b.o.SizeMax)
	binary.LittleEndian.PutUint32(p[virtio.VirtioBlkCfgSegMax:], b.o.SegMax)
	binary.LittleEndian.PutUint32(p[virtio.VirtioBlkCfgBlkSize:], uint32(b.disk.SectorSize()))
	binary.LittleEndian.PutUint32(p[virtio.VirtioBlkCfgMaxDiscardSectors:], 1<<20)
	binary.LittleEndian.PutUint32(p[virtio.VirtioBlkCfgMaxDiscardSeg:], 1)
	binary.LittleEndian.PutUint32(p[virtio.VirtioBlkCfgDiscardAlignment:], uint32(b.disk.SectorSize()/virtio.VirtioBlkSectorSize))
}

// Start implements Backend.
func (b *Block) Start(r *Run) {
	q := r.Queues[0]
	r.Go(func() {
		var c Chain
		buf := make([]byte, 0, 1<<20)
		for {
			for {
				ok, err := q.Pop(&c)
				if err != nil || !ok {
					break
				}
				r.Delay()
				var written int
				buf, written = b.serve(&c, buf, r.Features)
				q.Push(&c, written)
			}
			if !q.Wait(r.Stop) {
				return
			}
		}
	})
}

// serve carries out one request and returns the bytes written to the
// driver (data and status).
func (b *Block) serve(c *Chain, buf []byte, features uint64) ([]byte, int) {
	var hdr [virtio.VirtioBlkReqHdrLen]byte
	if c.ReadLen < len(hdr) || c.WriteLen < 1 {
		return buf, 0 // no room for a status: nothing can be reported
	}
	c.CopyFrom(0, hdr[:])
	typ := binary.LittleEndian.Uint32(hdr[0:])
	sector := binary.LittleEndian.Uint64(hdr[8:])
	dataOut := c.ReadLen - len(hdr) // driver-to-device payload
	dataIn := c.WriteLen - 1        // device-to-driver payload
	status := byte(virtio.VIRTIO_BLK_S_OK)
	written := 0
	ro := features&(1<<virtio.VIRTIO_BLK_F_RO) != 0
	fail := func(err error) {
		status = virtio.VIRTIO_BLK_S_IOERR
		if errors.Is(err, errors.ErrUnsupported) {
			status = virtio.VIRTIO_BLK_S_UNSUPP
		}
	}
	off := int64(sector) * virtio.VirtioBlkSectorSize
	if sector > 1<<54 {
		off = -1
	}
	limit := b.capacity.Load()
	beyond := func(n int) bool { return off < 0 || off+int64(n) > limit }
	switch typ {
	case virtio.VIRTIO_BLK_T_IN:
		if cap(buf) < dataIn {
			buf = make([]byte, dataIn)
		}
		buf = buf[:dataIn]
		if beyond(dataIn) {
			status = virtio.VIRTIO_BLK_S_IOERR
			break
		}
		if _, err := b.disk.ReadAt(buf, off); err != nil {
			fail(err)
			break
		}
		written = c.CopyTo(0, buf)
	case virtio.VIRTIO_BLK_T_OUT:
		if ro {
			status = virtio.VIRTIO_BLK_S_IOERR
			break
		}
		if cap(buf) < dataOut {
			buf = make([]byte, dataOut)
		}
		buf = buf[:dataOut]
		c.CopyFrom(len(hdr), buf)
		if beyond(dataOut) {
			status = virtio.VIRTIO_BLK_S_IOERR
			break
		}
		if _, err := b.disk.WriteAt(buf, off); err != nil {
			fail(err)
		}
	case virtio.VIRTIO_BLK_T_FLUSH:
		if features&(1<<virtio.VIRTIO_BLK_F_FLUSH) == 0 {
			status = virtio.VIRTIO_BLK_S_UNSUPP
		} else if err := b.disk.Sync(); err != nil {
			fail(err)
		}
	case virtio.VIRTIO_BLK_T_DISCARD:
		dsc, ok := b.disk.(hal.Discarder)
		if !ok || features&(1<<virtio.VIRTIO_BLK_F_DISCARD) == 0 {
			status = virtio.VIRTIO_BLK_S_UNSUPP
			break
		}
		if ro {
			status = virtio.VIRTIO_BLK_S_IOERR
			break
		}
		var seg [virtio.VirtioBlkDiscardSegLen]byte
		for p := len(hdr); p+len(seg) <= c.ReadLen; p += len(seg) {
			c.CopyFrom(p, seg[:])
			s := binary.LittleEndian.Uint64(seg[0:])
			n := binary.LittleEndian.Uint32(seg[8:])
			if s > 1<<54 {
				status = virtio.VIRTIO_BLK_S_IOERR
				break
			}
			if err := dsc.Discard(int64(s)*virtio.VirtioBlkSectorSize, int64(n)*virtio.VirtioBlkSectorSize); err != nil {
				fail(err)
				break
			}
		}
	default:
		status = virtio.VIRTIO_BLK_S_UNSUPP
	}
	c.CopyTo(c.WriteLen-1, []byte{status})
	return buf, written + 1
}
