package blockfs

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type jtx struct {
	seq      uint32
	blocks   map[uint64][]byte
	revokes  []uint64
	noCommit bool // torn transaction: no commit block
	badCsum  bool // commit block with a wrong checksum
}

type jopts struct {
	is64  bool
	csum  int    // 0, 2 or 3
	start uint32 // first log block (wrap-around tests)
}

// writeJournal writes txs into the image's journal as jbd2 would and
// marks the file system as needing recovery.
func writeJournal(t *testing.T, img []byte, o jopts, txs []jtx) {
	f, err := Mount(newDev(t, img), Options{ReadOnly: true})
	require.NoError(t, err)
	j, err := f.openJournal()
	require.NoError(t, err)
	bs := f.bs
	sb := j.sb
	incompat := uint32(JBD2_FEATURE_INCOMPAT_REVOKE)
	if o.is64 {
		incompat |= JBD2_FEATURE_INCOMPAT_64BIT
	}
	switch o.csum {
	case 2:
		incompat |= JBD2_FEATURE_INCOMPAT_CSUM_V2
	case 3:
		incompat |= JBD2_FEATURE_INCOMPAT_CSUM_V3
	}
	putBE32(sb, js_feature_incompat, incompat)
	if o.csum != 0 {
		sb[js_checksum_type] = JBD2_CRC32C_CHKSUM
	}
	start := o.start
	if start == 0 {
		start = j.first
	}
	putBE32(sb, js_start, start)
	putBE32(sb, js_sequence, txs[0].seq)
	j.sb = sb
	j.incompat = incompat
	j.csum = o.csum != 0
	putBE32(sb, js_checksum, j.sbCsum())
	seed := crc32c(^uint32(0), sb[js_uuid:js_uuid+16])
	put := func(jb uint32, b []byte) {
		p, _, ok := j.in.bmap(jb)
		require.True(t, ok)
		copy(img[int(p)*bs:], b)
	}
	put(0, sb)
	tail := func(b []byte) {
		if o.csum != 0 {
			c := crc32c(seed, b[:bs-4])
			putBE32(b, bs-4, crc32c(c, []byte{0, 0, 0, 0}))
		}
	}
	header := func(typ, seq uint32) []byte {
		b := make([]byte, bs)
		putBE32(b, h_magic, JBD2_MAGIC_NUMBER)
		putBE32(b, h_blocktype, typ)
		putBE32(b, h_sequence, seq)
		return b
	}
	jb := start
	next := func() uint32 {
		cur := jb
		jb++
		if jb >= j.maxlen {
			jb = j.first
		}
		return cur
	}
	for _, tx := range txs {
		if len(tx.revokes) > 0 {
			r := header(JBD2_REVOKE_BLOCK, tx.seq)
			off := 16
			for _, b := range tx.revokes {
				if o.is64 {
					putBE32(r, off, uint32(b>>32))
					putBE32(r, off+4, uint32(b))
					off += 8
				} else {
					putBE32(r, off, uint32(b))
					off += 4
				}
			}
			putBE32(r, jr_count, uint32(off))
			tail(r)
			put(next(), r)
		}
		desc := header(JBD2_DESCRIPTOR_BLOCK, tx.seq)
		off := jbd2HeaderSize
		var datas [][]byte
		i := 0
		for target, data := range tx.blocks {
			flags := uint32(0)
			if i > 0 {
				flags |= JBD2_FLAG_SAME_UUID
			}
			if i == len(tx.blocks)-1 {
				flags |= JBD2_FLAG_LAST_TAG
			}
			d := bytes.Clone(data)
			if be32(d, 0) == JBD2_MAGIC_NUMBER {
				flags |= JBD2_FLAG_ESCAPE
				putBE32(d, 0, 0)
			}
			if o.csum == 3 {
				putBE32(desc, off, uint32(target))
				putBE32(desc, off+4, flags)
				putBE32(desc, off+8, uint32(target>>32))
				off += 16
			} else {
				putBE32(desc, off, uint32(target))
				desc[off+6], desc[off+7] = byte(flags>>8), byte(flags)
				sz := 12
				if o.csum == 2 {
					sz += 2
				}
				if o.is64 {
					putBE32(desc, off+8, uint32(target>>32))
				} else {
					sz -= 4
				}
				off += sz
			}
			if i == 0 {
				off += 16 // the UUID
			}
			datas = append(datas, d)
			i++
		}
		tail(desc)
		put(next(), desc)
		for _, d := range datas {
			put(next(), d)
		}
		if tx.noCommit {
			continue
		}
		c := header(JBD2_COMMIT_BLOCK, tx.seq)
		if o.csum != 0 {
			c[12] = JBD2_CRC32C_CHKSUM
			c[13] = 4
			v := crc32c(seed, c[:16])
			v = crc32c(v, []byte{0, 0, 0, 0})
			v = crc32c(v, c[20:])
			if tx.badCsum {
				v++
			}
			putBE32(c, 16, v)
		}
		put(next(), c)
	}
	sbo := superblockOffset
	put32(img[sbo:], s_feature_incompat, le32(img[sbo:], s_feature_incompat)|EXT4_FEATURE_INCOMPAT_RECOVER)
	if le32(img[sbo:], s_feature_ro_compat)&EXT4_FEATURE_RO_COMPAT_METADATA_CSUM != 0 {
		put32(img[sbo:], s_checksum, crc32c(^uint32(0), img[sbo:sbo+s_checksum]))
	}
	require.NoError(t, f.Close())
}

func TestJournalReplayCases(t *testing.T) {
	marked := func(s string) []byte {
		b := make([]byte, 1024)
		copy(b[100:], s)
		return b
	}
	escaped := marked("escaped")
	putBE32(escaped, 0, JBD2_MAGIC_NUMBER)
	// Free blocks near the end of the 8 MiB test image.
	const a, b, c = 8000, 8001, 8002
	cases := []struct {
		name string
		o    jopts
		txs  []jtx
		want map[uint64][]byte // nil value: the block must not change
	}{
		{"v3-64bit-revoke", jopts{is64: true, csum: 3}, []jtx{
			{seq: 10, blocks: map[uint64][]byte{a: marked("a1"), b: marked("b1")}},
			{seq: 11, blocks: map[uint64][]byte{c: marked("c2")}, revokes: []uint64{a}},
		}, map[uint64][]byte{a: nil, b: marked("b1"), c: marked("c2")}},
		{"v2-32bit-escape", jopts{csum: 2}, []jtx{
			{seq: 3, blocks: map[uint64][]byte{a: escaped}},
		}, map[uint64][]byte{a: escaped}},
		{"nocsum-torn-tail", jopts{}, []jtx{
			{seq: 5, blocks: map[uint64][]byte{a: marked("a5")}},
			{seq: 6, blocks: map[uint64][]byte{b: marked("b6")}, noCommit: true},
		}, map[uint64][]byte{a: marked("a5"), b: nil}},
		{"v3-bad-commit", jopts{is64: true, csum: 3}, []jtx{
			{seq: 1, blocks: map[uint64][]byte{a: marked("a1")}},
			{seq: 2, blocks: map[uint64][]byte{b: marked("b2")}, badCsum: true},
		}, map[uint64][]byte{a: marked("a1"), b: nil}},
		{"later-rewrite-wins", jopts{is64: true, csum: 3}, []jtx{
			{seq: 20, blocks: map[uint64][]byte{a: marked("old")}},
			{seq: 21, blocks: map[uint64][]byte{a: marked("new")}},
		}, map[uint64][]byte{a: marked("new")}},
		{"revoke-then-relog", jopts{is64: true, csum: 3}, []jtx{
			{seq: 30, blocks: map[uint64][]byte{a: marked("x")}, revokes: []uint64{b}},
			{seq: 31, blocks: map[uint64][]byte{b: marked("y")}},
		}, map[uint64][]byte{a: marked("x"), b: marked("y")}},
		{"wrap-around", jopts{is64: true, csum: 3, start: 1020}, []jtx{
			{seq: 40, blocks: map[uint64][]byte{a: marked("w1"), b: marked("w2"), c: marked("w3")}},
			{seq: 41, blocks: map[uint64][]byte{c: marked("w4")}},
		}, map[uint64][]byte{a: marked("w1"), b: marked("w2"), c: marked("w4")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dev := newDev(t, make([]byte, 8<<20))
			require.NoError(t, Mkfs(dev, MkfsOptions{BlockSize: 1024, JournalBlocks: 1024}))
			img := dev.Image()
			orig := bytes.Clone(img)
			writeJournal(t, img, tc.o, tc.txs)
			for _, ro := range []bool{true, false} {
				d := newDev(t, img)
				f, err := Mount(d, Options{ReadOnly: ro})
				require.NoError(t, err)
				for blk, w := range tc.want {
					got, err := f.bread(blk)
					require.NoError(t, err)
					if w == nil {
						w = orig[blk*1024 : (blk+1)*1024]
					}
					assert.Equal(t, w, got, "block %d ro=%v", blk, ro)
				}
				require.NoError(t, f.Close())
				if !ro {
					fsck(t, d.Image())
				}
			}
		})
	}
}
