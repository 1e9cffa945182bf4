package blockfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// strictDev fails the test on any access outside the device.
type strictDev struct {
	*mem.Block
	t testing.TB
}

func (d *strictDev) ReadAt(p []byte, off int64) (int, error) {
	if err := hal.CheckRange(d, "read", off, int64(len(p))); err != nil {
		d.t.Errorf("read outside the device: %v", err)
		return 0, err
	}
	return d.Block.ReadAt(p, off)
}

func (d *strictDev) WriteAt(p []byte, off int64) (int, error) {
	if err := hal.CheckRange(d, "write", off, int64(len(p))); err != nil {
		d.t.Errorf("write outside the device: %v", err)
		return 0, err
	}
	return d.Block.WriteAt(p, off)
}

var fixedNow = func() time.Time { return time.Unix(1700000000, 0) }

type zeroRand struct{}

func (zeroRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*31 + 7)
	}
	return len(p), nil
}

// fuzzBase builds a small deterministic image with files, an htree
// directory, symlinks, xattrs and a journal transaction to replay.
func fuzzBase(t testing.TB) ([]byte, []uint64) {
	dev := newDev(t, make([]byte, 2<<20))
	require.NoError(t, Mkfs(dev, MkfsOptions{BlockSize: 1024, Rand: zeroRand{}, Now: fixedNow, UUID: [16]byte{1, 2, 3}}))
	f, err := Mount(dev, Options{Now: fixedNow})
	require.NoError(t, err)
	require.NoError(t, f.Mkdir("d", 0o755))
	for i := 0; i < 60; i++ {
		fl, err := f.OpenFile(fmt.Sprintf("d/file-with-a-long-name-%03d", i), os.O_RDWR|os.O_CREATE, 0o644)
		require.NoError(t, err)
		_, err = fl.Write([]byte(strings.Repeat("x", i)))
		require.NoError(t, err)
		require.NoError(t, fl.Close())
	}
	fl, err := f.OpenFile("frag", os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	for i := 0; i < 12; i++ { // many extents: a depth-1 tree
		_, err = fl.WriteAt([]byte("z"), int64(i)*3000)
		require.NoError(t, err)
	}
	require.NoError(t, fl.Close())
	require.NoError(t, f.Symlink("d/file-with-a-long-name-001", "fast"))
	require.NoError(t, f.Symlink(strings.Repeat("./", 40)+"frag", "slow"))
	require.NoError(t, f.Setxattr("frag", "user.a", bytes.Repeat([]byte("v"), 300)))
	var blocks []uint64
	blocks = append(blocks, 1, 2) // superblock, descriptors
	for g := uint32(0); g < f.groups; g++ {
		blocks = append(blocks, f.blockBitmapBlock(g), f.inodeBitmapBlock(g), f.inodeTableBlock(g))
	}
	for _, n := range []string{".", "d", "frag", "slow"} {
		in, err := f.walk(n, false)
		require.NoError(t, err)
		require.NoError(t, f.loadMapping(in))
		blocks = append(blocks, in.meta...)
		for _, e := range in.ext {
			blocks = append(blocks, e.pblk)
		}
		if in.fileACL() != 0 {
			blocks = append(blocks, in.fileACL())
		}
	}
	require.NoError(t, f.Close())
	img := dev.Image()
	jblocks := addJournalTransaction(t, img, blocks[len(blocks)-1])
	return img, append(blocks, jblocks...)
}

// addJournalTransaction logs a copy of block target (with a marker) as a
// committed transaction and sets needs_recovery; it returns the journal's
// device blocks used.
func addJournalTransaction(t testing.TB, img []byte, target uint64) []uint64 {
	dev := newDev(t, img)
	f, err := Mount(dev, Options{ReadOnly: true})
	require.NoError(t, err)
	j, err := f.openJournal()
	require.NoError(t, err)
	bs := f.bs
	devBlk := func(jb uint32) uint64 { p, _, _ := j.in.bmap(jb); return p }
	// Switch the journal to 64-bit tags with checksum v3.
	sb := j.sb
	putBE32(sb, js_feature_incompat, JBD2_FEATURE_INCOMPAT_64BIT|JBD2_FEATURE_INCOMPAT_CSUM_V3|JBD2_FEATURE_INCOMPAT_REVOKE)
	sb[js_checksum_type] = JBD2_CRC32C_CHKSUM
	putBE32(sb, js_start, 1)
	putBE32(sb, js_sequence, 7)
	j.sb = sb
	putBE32(sb, js_checksum, j.sbCsum())
	seed := crc32c(^uint32(0), sb[js_uuid:js_uuid+16])
	desc := make([]byte, bs)
	putBE32(desc, h_magic, JBD2_MAGIC_NUMBER)
	putBE32(desc, h_blocktype, JBD2_DESCRIPTOR_BLOCK)
	putBE32(desc, h_sequence, 7)
	putBE32(desc, 12, uint32(target))
	putBE32(desc, 16, JBD2_FLAG_LAST_TAG)
	putBE32(desc, 20, uint32(target>>32))
	c := crc32c(seed, desc[:bs-4])
	putBE32(desc, bs-4, crc32c(c, []byte{0, 0, 0, 0}))
	data := make([]byte, bs)
	copy(data, img[int(target)*bs:])
	copy(data[bs-8:], "REPLAYED")
	commit := make([]byte, bs)
	putBE32(commit, h_magic, JBD2_MAGIC_NUMBER)
	putBE32(commit, h_blocktype, JBD2_COMMIT_BLOCK)
	putBE32(commit, h_sequence, 7)
	commit[12] = JBD2_CRC32C_CHKSUM
	commit[13] = 4
	c = crc32c(seed, commit[:16])
	c = crc32c(c, []byte{0, 0, 0, 0})
	putBE32(commit, 16, crc32c(c, commit[20:]))
	for i, b := range [][]byte{sb, desc, data, commit} {
		copy(img[int(devBlk(uint32(i)))*bs:], b)
	}
	sbo := superblockOffset
	put32(img[sbo:], s_feature_incompat, le32(img[sbo:], s_feature_incompat)|EXT4_FEATURE_INCOMPAT_RECOVER)
	put32(img[sbo:], s_checksum, crc32c(^uint32(0), img[sbo:sbo+s_checksum]))
	return []uint64{devBlk(0), devBlk(1), devBlk(2), devBlk(3)}
}

func TestReplaySyntheticJournal(t *testing.T) {
	img, blocks := fuzzBase(t)
	target := blocks[len(blocks)-5]
	for _, ro := range []bool{true, false} {
		dev := newDev(t, append([]byte(nil), img...))
		_, err := Mount(dev, Options{NoRecovery: true})
		require.ErrorIs(t, err, ErrNeedsRecovery)
		f, err := Mount(dev, Options{ReadOnly: ro})
		require.NoError(t, err)
		got, err := f.bread(target)
		require.NoError(t, err)
		assert.Equal(t, "REPLAYED", string(got[len(got)-8:]))
		require.NoError(t, f.Close())
		if !ro {
			assert.Equal(t, "REPLAYED", string(dev.Image()[int(target+1)*1024-8:int(target+1)*1024]))
			fsck(t, dev.Image())
		}
	}
}

var (
	fuzzOnce   sync.Once
	fuzzImg    []byte
	fuzzBlocks []uint64
)

// FuzzMount mutates metadata blocks of a small image; each 4-byte group
// of the input picks a block, an offset in it and an xor value. Mount,
// a full walk and a few writes must return errors, never panic, hang or
// touch bytes outside the device.
func FuzzMount(f *testing.F) {
	fuzzOnce.Do(func() { fuzzImg, fuzzBlocks = fuzzBase(f) })
	f.Add([]byte{})
	for i := range fuzzBlocks {
		f.Add([]byte{byte(i), 0, 0, 0xff})
		f.Add([]byte{byte(i), 0x0, 0x10, 0x01, byte(i), 0x3, 0x20, 0x80})
	}
	f.Fuzz(func(t *testing.T, muts []byte) {
		img := mutateFuzzImage(muts)
		for _, ro := range []bool{true, false} {
			dev := &strictDev{Block: newDev(t, img), t: t}
			fsys, err := Mount(dev, Options{ReadOnly: ro})
			if err != nil {
				continue
			}
			walkAll(fsys)
			if !ro {
				_ = fsys.Mkdir("new", 0o755)
				if fl, err := fsys.OpenFile("d/new-file", os.O_RDWR|os.O_CREATE, 0o644); err == nil {
					_, _ = fl.Write(make([]byte, 5000))
					_ = fl.Close()
				}
				_ = fsys.Remove("d/file-with-a-long-name-007")
				_ = fsys.Rename("frag", "d/frag")
				_ = fsys.Truncate("d/frag", 1)
				_ = fsys.Setxattr("fast", "user.b", []byte("x"))
			}
			_ = fsys.Close()
		}
	})
}

// mutateFuzzImage returns a copy of the fuzz base image with FuzzMount's
// mutations applied.
func mutateFuzzImage(muts []byte) []byte {
	img := append([]byte(nil), fuzzImg...)
	for i := 0; i+4 <= len(muts) && i < 64; i += 4 {
		blk := fuzzBlocks[int(muts[i])%len(fuzzBlocks)]
		off := int(blk)*1024 + int(binary.LittleEndian.Uint16(muts[i+1:])%1024)
		if off < len(img) {
			img[off] ^= muts[i+3]
		}
	}
	return img
}

func walkAll(fsys *FS) {
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrInvalid) {
				return fs.SkipDir
			}
			return nil
		}
		_, _ = fsys.Lstat(p)
		_, _ = fsys.Listxattr(p)
		if d.Type()&fs.ModeSymlink != 0 {
			_, _ = fsys.Readlink(p)
		} else if d.Type().IsRegular() {
			if fl, err := fsys.Open(p); err == nil {
				_, _ = io.CopyN(io.Discard, fl, 1<<20)
				_ = fl.Close()
			}
		}
		return nil
	})
	_, _ = fsys.Statfs()
}
