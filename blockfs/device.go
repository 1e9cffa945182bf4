package blockfs

import (
	"fmt"
)

// readAt reads len(p) bytes at byte offset off from the device, handling
// ranges that are not sector aligned.
func (f *FS) readAt(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > f.devSize || off+int64(len(p)) < off {
		return fmt.Errorf("blockfs: read %d bytes at %d: beyond the device (%d bytes)", len(p), off, f.devSize)
	}
	ss := int64(f.sectorSize)
	if off%ss == 0 && int64(len(p))%ss == 0 {
		if _, err := f.dev.ReadAt(p, off); err != nil {
			return fmt.Errorf("blockfs: read at %d: %w", off, err)
		}
		return nil
	}
	start := off / ss * ss
	end := (off + int64(len(p)) + ss - 1) / ss * ss
	buf := make([]byte, end-start)
	if _, err := f.dev.ReadAt(buf, start); err != nil {
		return fmt.Errorf("blockfs: read at %d: %w", start, err)
	}
	copy(p, buf[off-start:])
	return nil
}

// writeAt writes p at byte offset off, reading and merging partial sectors.
func (f *FS) writeAt(p []byte, off int64) error {
	if f.readOnly {
		return fmt.Errorf("blockfs: write at %d: %w", off, errReadOnlyFS)
	}
	if off < 0 || off+int64(len(p)) > f.devSize || off+int64(len(p)) < off {
		return fmt.Errorf("blockfs: write %d bytes at %d: beyond the device (%d bytes)", len(p), off, f.devSize)
	}
	ss := int64(f.sectorSize)
	if off%ss == 0 && int64(len(p))%ss == 0 {
		if _, err := f.dev.WriteAt(p, off); err != nil {
			return fmt.Errorf("blockfs: write at %d: %w", off, err)
		}
		return nil
	}
	start := off / ss * ss
	end := (off + int64(len(p)) + ss - 1) / ss * ss
	buf := make([]byte, end-start)
	if _, err := f.dev.ReadAt(buf, start); err != nil {
		return fmt.Errorf("blockfs: read at %d: %w", start, err)
	}
	copy(buf[off-start:], p)
	if _, err := f.dev.WriteAt(buf, start); err != nil {
		return fmt.Errorf("blockfs: write at %d: %w", start, err)
	}
	return nil
}

// cblock is a cached metadata block.
type cblock struct {
	data  []byte
	dirty bool
}

func (f *FS) checkBlock(blk uint64) error {
	if blk >= f.blocksCount || blk < uint64(f.firstDataBlock) && blk != 0 {
		return fmt.Errorf("blockfs: block %d outside the file system (%d blocks): %w", blk, f.blocksCount, ErrCorrupt)
	}
	return nil
}

// bread returns the cached contents of metadata block blk, reading it on a
// miss. Callers that modify the slice call bdirty.
func (f *FS) bread(blk uint64) ([]byte, error) {
	if c, ok := f.cache[blk]; ok {
		return c.data, nil
	}
	if err := f.checkBlock(blk); err != nil {
		return nil, err
	}
	buf := make([]byte, f.bs)
	if err := f.readAt(buf, int64(blk)*int64(f.bs)); err != nil {
		return nil, err
	}
	f.cacheInsert(blk, &cblock{data: buf})
	return buf, nil
}

// bnew returns a zeroed cache block for blk without reading the device.
func (f *FS) bnew(blk uint64) []byte {
	buf := make([]byte, f.bs)
	f.cacheInsert(blk, &cblock{data: buf, dirty: true})
	return buf
}

// bdirty marks blk, whose contents are data, as modified.
func (f *FS) bdirty(blk uint64, data []byte) {
	c, ok := f.cache[blk]
	if !ok || &c.data[0] != &data[0] {
		f.cacheInsert(blk, &cblock{data: data, dirty: true})
		return
	}
	if !c.dirty {
		c.dirty = true
		f.ndirty++
	}
}

// bforget drops blk from the cache (it was freed).
func (f *FS) bforget(blk uint64) {
	if c, ok := f.cache[blk]; ok {
		if c.dirty {
			f.ndirty--
		}
		delete(f.cache, blk)
	}
}

// cacheInsert puts c in the cache as blk, keeping the dirty count.
func (f *FS) cacheInsert(blk uint64, c *cblock) {
	if old, ok := f.cache[blk]; ok && old.dirty {
		f.ndirty--
	}
	if c.dirty {
		f.ndirty++
	}
	f.cache[blk] = c
}

// lock takes the file system lock and, between operations (when no
// caller holds cached blocks or inodes), trims the caches.
func (f *FS) lock() {
	f.mu.Lock()
	if len(f.cache) >= f.cacheLimit {
		for k, v := range f.cache {
			if !v.dirty {
				delete(f.cache, k)
				if len(f.cache) < f.cacheLimit/2 {
					break
				}
			}
		}
	}
	if (len(f.cache) >= 2*f.cacheLimit || f.journalFilling()) && !f.readOnly && !f.closed {
		// Mostly dirty, or the journal filling up: write the metadata
		// back (a consistent state, as every operation leaves one); with
		// a journal that is a transaction, as in Sync.
		if _, err := f.writeback(); err != nil {
			f.log.Warn("blockfs: background writeback failed", "err", err)
		}
	}
	if len(f.inodes) >= inodeCacheLimit {
		for k, v := range f.inodes {
			if !v.dirty && !v.mapDirty && v.opens == 0 && !v.orphan {
				delete(f.inodes, k)
				if len(f.inodes) < inodeCacheLimit/2 {
					break
				}
			}
		}
	}
}

const inodeCacheLimit = 4096

// journalCheckEvery is how many operations may pass between counts of the
// dirty inodes, which journalFilling does not track as they change. One
// operation dirties a handful of blocks, so the count trails the truth by
// far less than the half of the journal's capacity left as margin.
const journalCheckEvery = 32

// journalFilling reports whether the next write-back would use half the
// journal's capacity: then it runs now, before an operation could make it
// too large to be atomic. Dirty inodes and extent maps become dirty
// blocks only at write-back, so they are estimated (a block for each, two
// for a changed extent map), and only every journalCheckEvery operations.
func (f *FS) journalFilling() bool {
	if f.jw == nil {
		return false
	}
	half := f.jw.maxData / 2
	if f.ndirty >= half {
		return true
	}
	f.opsSinceCheck++
	if f.opsSinceCheck < journalCheckEvery || f.ndirty+len(f.inodes)*3 < half {
		return false
	}
	f.opsSinceCheck = 0
	n := f.ndirty
	for _, in := range f.inodes {
		if in.dirty {
			n++
		}
		if in.mapDirty {
			n += 2
		}
	}
	return n >= half
}

// dirtyBlocks lists the dirty cached blocks in ascending order.
func (f *FS) dirtyBlocks() []uint64 {
	blks := make([]uint64, 0, f.ndirty)
	for k, v := range f.cache {
		if v.dirty {
			blks = append(blks, k)
		}
	}
	sortU64(blks)
	return blks
}

// flushCache writes every dirty cached block in place.
func (f *FS) flushCache() error {
	blks := f.dirtyBlocks()
	// Write runs of consecutive blocks with one call each.
	var buf []byte
	for i := 0; i < len(blks); {
		j := i + 1
		for j < len(blks) && blks[j] == blks[j-1]+1 && j-i < 256 {
			j++
		}
		data := f.cache[blks[i]].data
		if j-i > 1 {
			buf = buf[:0]
			for _, b := range blks[i:j] {
				buf = append(buf, f.cache[b].data...)
			}
			data = buf
		}
		if err := f.writeAt(data, int64(blks[i])*int64(f.bs)); err != nil {
			return err
		}
		for _, b := range blks[i:j] {
			f.cache[b].dirty = false
		}
		f.ndirty -= j - i
		i = j
	}
	return nil
}
