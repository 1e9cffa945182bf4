package blockfs

import (
	"errors"
	"fmt"
)

// jtag is one logged block: the journal block holding the data and the
// file system block it belongs to.
type jtag struct {
	jblk   uint32
	target uint64
	escape bool
}

type jtrans struct {
	seq  uint32
	tags []jtag
}

type journal struct {
	f        *FS
	in       *inode
	sb       []byte
	bs       int
	first    uint32
	maxlen   uint32
	incompat uint32
	csum     bool // checksum v2 or v3
	seed     uint32
	tagBytes int
}

var errJournal = errors.New("blockfs: bad journal")

func (j *journal) read(jblk uint32) ([]byte, error) {
	p, _, ok := j.in.bmap(jblk)
	if !ok {
		return nil, fmt.Errorf("journal block %d is not mapped: %w", jblk, errJournal)
	}
	buf := make([]byte, j.bs)
	if err := j.f.checkBlock(p); err != nil {
		return nil, err
	}
	if err := j.f.readAt(buf, int64(p)*int64(j.bs)); err != nil {
		return nil, err
	}
	return buf, nil
}

func (j *journal) write(jblk uint32, b []byte) error {
	p, _, ok := j.in.bmap(jblk)
	if !ok {
		return fmt.Errorf("journal block %d is not mapped: %w", jblk, errJournal)
	}
	return j.f.writeAt(b, int64(p)*int64(j.bs))
}

func (f *FS) openJournal() (*journal, error) {
	ino := le32(f.sb, s_journal_inum)
	if ino == 0 {
		return nil, fmt.Errorf("external journals: %w", ErrUnsupportedFeature)
	}
	in, err := f.iget(ino)
	if err != nil {
		return nil, err
	}
	if err := f.loadMapping(in); err != nil {
		return nil, err
	}
	j := &journal{f: f, in: in, bs: f.bs}
	sb, err := j.read(0)
	if err != nil {
		return nil, err
	}
	if be32(sb, h_magic) != JBD2_MAGIC_NUMBER {
		return nil, fmt.Errorf("journal superblock magic %#x: %w", be32(sb, h_magic), errJournal)
	}
	bt := be32(sb, h_blocktype)
	if bt != JBD2_SUPERBLOCK_V1 && bt != JBD2_SUPERBLOCK_V2 {
		return nil, fmt.Errorf("journal superblock type %d: %w", bt, errJournal)
	}
	if int(be32(sb, js_blocksize)) != f.bs {
		return nil, fmt.Errorf("journal block size %d differs from the file system's: %w", be32(sb, js_blocksize), errJournal)
	}
	j.sb = sb
	j.first = be32(sb, js_first)
	j.maxlen = be32(sb, js_maxlen)
	if uint64(j.maxlen) > uint64(in.size())/uint64(f.bs) || j.first == 0 || j.first >= j.maxlen {
		return nil, fmt.Errorf("journal geometry first %d maxlen %d: %w", j.first, j.maxlen, errJournal)
	}
	if bt == JBD2_SUPERBLOCK_V2 {
		j.incompat = be32(sb, js_feature_incompat)
	}
	if bad := j.incompat &^ jbd2KnownIncompat; bad != 0 {
		return nil, fmt.Errorf("journal incompatible features %#x: %w", bad, ErrUnsupportedFeature)
	}
	j.csum = j.incompat&(JBD2_FEATURE_INCOMPAT_CSUM_V2|JBD2_FEATURE_INCOMPAT_CSUM_V3) != 0
	if j.csum {
		if sb[js_checksum_type] != JBD2_CRC32C_CHKSUM {
			return nil, fmt.Errorf("journal checksum type %d: %w", sb[js_checksum_type], errJournal)
		}
		if got, want := be32(sb, js_checksum), j.sbCsum(); got != want {
			return nil, fmt.Errorf("journal superblock checksum %#x, computed %#x: %w", got, want, errJournal)
		}
		j.seed = crc32c(^uint32(0), sb[js_uuid:js_uuid+16])
	}
	switch {
	case j.incompat&JBD2_FEATURE_INCOMPAT_CSUM_V3 != 0:
		j.tagBytes = 16
	default:
		j.tagBytes = 12
		if j.incompat&JBD2_FEATURE_INCOMPAT_CSUM_V2 != 0 {
			j.tagBytes += 2
		}
		if j.incompat&JBD2_FEATURE_INCOMPAT_64BIT == 0 {
			j.tagBytes -= 4
		}
	}
	return j, nil
}

func (j *journal) sbCsum() uint32 {
	c := crc32c(^uint32(0), j.sb[:js_checksum])
	c = crc32c(c, []byte{0, 0, 0, 0})
	return crc32c(c, j.sb[js_checksum+4:1024])
}

// blockCsumOK verifies a descriptor or revoke block's tail checksum.
func (j *journal) tailCsumOK(b []byte) bool {
	if !j.csum {
		return true
	}
	want := be32(b, j.bs-4)
	c := crc32c(j.seed, b[:j.bs-4])
	c = crc32c(c, []byte{0, 0, 0, 0})
	return c == want
}

func (j *journal) commitCsumOK(b []byte) bool {
	if !j.csum {
		return true
	}
	want := be32(b, 16)
	c := crc32c(j.seed, b[:16])
	c = crc32c(c, []byte{0, 0, 0, 0})
	c = crc32c(c, b[20:])
	return c == want
}

func (j *journal) next(b uint32) uint32 {
	b++
	if b >= j.maxlen {
		b = j.first
	}
	return b
}

// scan walks the log from s_start and returns the committed transactions
// and the revocations they carry.
func (j *journal) scan() ([]jtrans, map[uint64]uint32, uint32, error) {
	seq := be32(j.sb, js_sequence)
	blk := be32(j.sb, js_start)
	if blk < j.first || blk >= j.maxlen {
		return nil, nil, 0, fmt.Errorf("journal start %d outside the log: %w", blk, errJournal)
	}
	var done []jtrans
	revoked := map[uint64]uint32{}
	cur := jtrans{seq: seq}
	curRevokes := map[uint64]bool{}
	steps := uint32(0)
	for steps < j.maxlen {
		b, err := j.read(blk)
		if err != nil {
			return nil, nil, 0, err
		}
		if be32(b, h_magic) != JBD2_MAGIC_NUMBER || be32(b, h_sequence) != seq {
			break
		}
		typ := be32(b, h_blocktype)
		steps++
		switch typ {
		case JBD2_DESCRIPTOR_BLOCK:
			if !j.tailCsumOK(b) {
				return done, revoked, seq, nil
			}
			end := j.bs
			if j.csum {
				end -= 4
			}
			off := jbd2HeaderSize
			for off+j.tagBytes <= end {
				var target uint64
				var flags uint32
				if j.incompat&JBD2_FEATURE_INCOMPAT_CSUM_V3 != 0 {
					target = uint64(be32(b, off))
					flags = be32(b, off+4)
					if j.incompat&JBD2_FEATURE_INCOMPAT_64BIT != 0 {
						target |= uint64(be32(b, off+8)) << 32
					}
				} else {
					target = uint64(be32(b, off))
					flags = uint32(be16(b, off+6))
					if j.incompat&JBD2_FEATURE_INCOMPAT_64BIT != 0 {
						target |= uint64(be32(b, off+8)) << 32
					}
				}
				off += j.tagBytes
				if flags&JBD2_FLAG_SAME_UUID == 0 {
					off += 16
				}
				blk = j.next(blk)
				steps++
				cur.tags = append(cur.tags, jtag{jblk: blk, target: target, escape: flags&JBD2_FLAG_ESCAPE != 0})
				if flags&JBD2_FLAG_LAST_TAG != 0 {
					break
				}
				if steps > j.maxlen {
					return nil, nil, 0, fmt.Errorf("descriptor runs past the log: %w", errJournal)
				}
			}
		case JBD2_COMMIT_BLOCK:
			if !j.commitCsumOK(b) {
				return done, revoked, seq, nil
			}
			done = append(done, cur)
			for r := range curRevokes {
				if s, ok := revoked[r]; !ok || int32(seq-s) > 0 {
					revoked[r] = seq
				}
			}
			seq++
			cur = jtrans{seq: seq}
			curRevokes = map[uint64]bool{}
		case JBD2_REVOKE_BLOCK:
			if !j.tailCsumOK(b) {
				return done, revoked, seq, nil
			}
			count := int(be32(b, jr_count))
			if count > j.bs {
				return nil, nil, 0, fmt.Errorf("revoke block count %d: %w", count, errJournal)
			}
			rsz := 4
			if j.incompat&JBD2_FEATURE_INCOMPAT_64BIT != 0 {
				rsz = 8
			}
			for off := 16; off+rsz <= count; off += rsz {
				var r uint64
				if rsz == 8 {
					r = uint64(be32(b, off))<<32 | uint64(be32(b, off+4))
				} else {
					r = uint64(be32(b, off))
				}
				curRevokes[r] = true
			}
		default:
			return done, revoked, seq, nil
		}
		blk = j.next(blk)
	}
	return done, revoked, seq, nil
}

// replayJournal applies committed journal transactions to the file system
// (or, read-only, to the block cache).
func (f *FS) replayJournal() error {
	j, err := f.openJournal()
	if err != nil {
		return err
	}
	if be32(j.sb, js_start) == 0 {
		return nil
	}
	trans, revoked, nextSeq, err := j.scan()
	if err != nil {
		return err
	}
	f.replayed = map[uint64][]byte{}
	for _, t := range trans {
		for _, tag := range t.tags {
			if s, ok := revoked[tag.target]; ok && int32(s-t.seq) >= 0 {
				continue
			}
			if tag.target >= f.blocksCount {
				return fmt.Errorf("journal block targets %d beyond the file system: %w", tag.target, errJournal)
			}
			data, err := j.read(tag.jblk)
			if err != nil {
				return err
			}
			if tag.escape {
				putBE32(data, 0, JBD2_MAGIC_NUMBER)
			}
			if f.readOnly {
				f.replayed[tag.target] = data
				continue
			}
			if err := f.writeAt(data, int64(tag.target)*int64(f.bs)); err != nil {
				return err
			}
		}
	}
	if f.readOnly {
		return nil
	}
	if err := f.dev.Sync(); err != nil {
		return fmt.Errorf("blockfs: device sync: %w", err)
	}
	putBE32(j.sb, js_sequence, nextSeq)
	putBE32(j.sb, js_start, 0)
	if j.csum {
		putBE32(j.sb, js_checksum, j.sbCsum())
	}
	if err := j.write(0, j.sb); err != nil {
		return err
	}
	return nil
}
