package blockfs

import (
	"fmt"
	"math"
)

// Journalled write-back.
//
// On a read-write mount of a file system with an internal jbd2 journal,
// every write-back of metadata is one journal transaction, so that a power
// cut at any point leaves either the state before it or the state after
// it, as jbd2 replay (ours at the next Mount, the kernel's, e2fsck's) sees
// it. The log is split into two slots, used in turn:
//
//  1. the descriptor blocks and copies of the modified blocks go to the
//     slot; device flush, which also makes the previous transaction's home
//     writes durable;
//  2. the journal superblock points at the slot (s_start, s_sequence) and
//     the commit block follows; device flush: the transaction is durable,
//     and so is every write issued before it;
//  3. the blocks go to their home locations, without a flush of their own.
//
// The committed transaction stays in the log, and replaying it is
// harmless, until the next one: only after that one's first flush, which
// makes these home writes durable, does the journal superblock stop
// pointing at this slot, which the transaction after next overwrites. A
// cut between the two flushes of step 2 finds the superblock pointing at
// either transaction, each complete or, for the new one, without its
// commit (nothing to replay, and its home writes not yet issued).
// Two flushes per write-back, like jbd2's commit. No revocation records
// are needed: a block the last transaction logged is only handed out for
// in-place data once the next transaction has committed (see quarantine
// in alloc.go), when the logged copy can no longer be replayed. Close
// (and a write-back too large for a slot, which goes in place) empties
// the log first: flush, s_start = 0, flush. The file system superblock
// carries needs_recovery for the whole read-write mount, as the kernel's
// does (the kernel wipes a journal it finds non-empty without that flag).
//
// An I/O error anywhere in a write-back aborts the journal, as in jbd2:
// the log may then hold a transaction that was not checkpointed, and
// writing another over it could leave a mix of the two for replay, so
// every later write-back fails until the file system is mounted again,
// which recovers from the log.
//
// File data is written in place at once, before the metadata that refers
// to it commits (the kernel's data=ordered). Blocks freed since the last
// transaction are not handed out again until it commits (see quarantine in
// alloc.go), so in-place data never lands in a block that committed
// metadata still uses.

// jwriter writes transactions to an internal journal.
type jwriter struct {
	j       *journal
	seq     uint32 // sequence number of the next transaction
	perDesc int    // tags one descriptor block holds
	maxData int    // largest number of blocks one transaction can log
	slotLen uint32 // log blocks in each of the two slots
	slot    uint32 // log block the next transaction starts at
	aborted error  // set by a failed write-back: no transaction follows
}

// openJournalWriter returns the journal writer for a read-write mount, or
// nil with a reason when the journal cannot take our transactions (then
// write-back stays unjournalled, as before).
func (f *FS) openJournalWriter() (*jwriter, string, error) {
	if f.compat&EXT4_FEATURE_COMPAT_HAS_JOURNAL == 0 {
		return nil, "", nil
	}
	if le32(f.sb, s_journal_inum) == 0 {
		return nil, "external journal", nil
	}
	j, err := f.openJournal()
	if err != nil {
		return nil, "", err
	}
	if be32(j.sb, js_start) != 0 {
		return nil, "", fmt.Errorf("journal not empty after recovery: %w", errJournal)
	}
	if j.incompat&(JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT|JBD2_FEATURE_INCOMPAT_FAST_COMMIT) != 0 {
		return nil, fmt.Sprintf("journal features %#x", j.incompat), nil
	}
	if be32(j.sb, h_blocktype) == JBD2_SUPERBLOCK_V2 && be32(j.sb, js_feature_compat)&JBD2_FEATURE_COMPAT_CHECKSUM != 0 && !j.csum {
		return nil, "journal checksum v1", nil
	}
	if j.incompat&JBD2_FEATURE_INCOMPAT_64BIT == 0 && f.blocksCount > math.MaxUint32 {
		return nil, "32-bit journal on a 64-bit file system", nil
	}
	w := &jwriter{j: j, seq: be32(j.sb, js_sequence), slot: j.first, slotLen: (j.maxlen - j.first) / 2}
	room := f.bs - jbd2HeaderSize - 16 // the first tag carries the UUID
	if j.csum {
		room -= 4 // block tail
	}
	w.perDesc = room / j.tagBytes
	// Data blocks, one descriptor per perDesc of them, and the commit.
	w.maxData = (int(w.slotLen) - 1) * w.perDesc / (w.perDesc + 1)
	if w.perDesc < 1 || w.maxData < 1 {
		return nil, fmt.Sprintf("journal of %d blocks", j.maxlen), nil
	}
	return w, "", nil
}

// tagCsum is a logged block's checksum (jbd2_block_tag_csum_set).
func (w *jwriter) tagCsum(data []byte) uint32 {
	var seq [4]byte
	putBE32(seq[:], 0, w.seq)
	return crc32c(crc32c(w.j.seed, seq[:]), data)
}

// putTag writes the tag for target at b[off:] and returns its length.
func (w *jwriter) putTag(b []byte, off int, target uint64, flags uint32, data []byte) int {
	j := w.j
	if j.incompat&JBD2_FEATURE_INCOMPAT_CSUM_V3 != 0 {
		putBE32(b, off, uint32(target))
		putBE32(b, off+4, flags)
		putBE32(b, off+8, uint32(target>>32))
		putBE32(b, off+12, w.tagCsum(data))
		return j.tagBytes
	}
	putBE32(b, off, uint32(target))
	if j.incompat&JBD2_FEATURE_INCOMPAT_CSUM_V2 != 0 {
		putBE16(b, off+4, uint16(w.tagCsum(data)))
	}
	putBE16(b, off+6, uint16(flags))
	if j.incompat&JBD2_FEATURE_INCOMPAT_64BIT != 0 {
		putBE32(b, off+8, uint32(target>>32))
	}
	return j.tagBytes
}

func (w *jwriter) header(b []byte, typ uint32) {
	putBE32(b, h_magic, JBD2_MAGIC_NUMBER)
	putBE32(b, h_blocktype, typ)
	putBE32(b, h_sequence, w.seq)
}

// writeSuper writes the journal superblock with start and the current
// sequence.
func (w *jwriter) writeSuper(start uint32) error {
	j := w.j
	putBE32(j.sb, js_sequence, w.seq)
	putBE32(j.sb, js_start, start)
	if j.csum {
		putBE32(j.sb, js_checksum, j.sbCsum())
	}
	return j.write(0, j.sb)
}

// commit logs blks (sorted block numbers, their contents in f's cache) as
// one transaction and makes it durable (steps 1 and 2 above).
func (w *jwriter) commit(f *FS, blks []uint64) error {
	j := w.j
	if len(blks) > w.maxData {
		return fmt.Errorf("transaction of %d blocks exceeds the journal's %d", len(blks), w.maxData)
	}
	pos := w.slot
	for i := 0; i < len(blks); i += w.perDesc {
		group := blks[i:min(i+w.perDesc, len(blks))]
		desc := make([]byte, f.bs)
		w.header(desc, JBD2_DESCRIPTOR_BLOCK)
		off := jbd2HeaderSize
		descPos := pos
		pos++
		for k, blk := range group {
			data := f.cache[blk].data
			flags := uint32(0)
			if be32(data, 0) == JBD2_MAGIC_NUMBER {
				// The log copy must not look like a journal block:
				// replay restores the magic.
				data = append([]byte(nil), data...)
				putBE32(data, 0, 0)
				flags |= JBD2_FLAG_ESCAPE
			}
			if k > 0 {
				flags |= JBD2_FLAG_SAME_UUID
			}
			if k == len(group)-1 {
				flags |= JBD2_FLAG_LAST_TAG
			}
			off += w.putTag(desc, off, blk, flags, data)
			if k == 0 {
				copy(desc[off:], j.sb[js_uuid:js_uuid+16])
				off += 16
			}
			if err := j.write(pos, data); err != nil {
				return err
			}
			pos++
		}
		if j.csum {
			putBE32(desc, f.bs-4, crc32c(j.seed, desc))
		}
		if err := j.write(descPos, desc); err != nil {
			return err
		}
	}
	// The log, and the previous transaction's home writes, become durable
	// before the journal superblock stops pointing at that transaction.
	if err := f.dev.Sync(); err != nil {
		return fmt.Errorf("blockfs: journal: device sync: %w", err)
	}
	if err := w.writeSuper(w.slot); err != nil {
		return err
	}
	c := make([]byte, f.bs)
	w.header(c, JBD2_COMMIT_BLOCK)
	now := f.now()
	putBE32(c, 48, uint32(uint64(now.Unix())>>32))
	putBE32(c, 52, uint32(now.Unix()))
	putBE32(c, 56, uint32(now.Nanosecond()))
	if j.csum {
		putBE32(c, 16, crc32c(j.seed, c))
	}
	if err := j.write(pos, c); err != nil {
		return err
	}
	if err := f.dev.Sync(); err != nil {
		return fmt.Errorf("blockfs: journal: device sync: %w", err)
	}
	w.seq++
	if w.slot == j.first {
		w.slot = j.first + w.slotLen
	} else {
		w.slot = j.first
	}
	return nil
}

// reset empties the log once every home write is durable: flush, s_start
// = 0, flush.
func (w *jwriter) reset(f *FS) error {
	if err := f.dev.Sync(); err != nil {
		return fmt.Errorf("blockfs: journal: device sync: %w", err)
	}
	if err := w.writeSuper(0); err != nil {
		return err
	}
	if err := f.dev.Sync(); err != nil {
		return fmt.Errorf("blockfs: journal: device sync: %w", err)
	}
	w.slot = w.j.first
	return nil
}
