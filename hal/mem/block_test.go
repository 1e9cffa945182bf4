package mem

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
)

// blockTestPattern returns n pseudo-random bytes determined by seed.
func blockTestPattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func TestBlockConformance(t *testing.T) {
	cases := []struct {
		name       string
		size       int64
		sectorSize int
	}{
		{"512B sectors, one short chunk", 100 * 512, 0},
		{"512B sectors, chunks and a tail", 1<<20 + 3*512, 512},
		{"4KiB sectors", 1 << 20, 4096},
		{"128KiB sectors, larger than a chunk", 64 * 128 << 10, 128 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestBlockDevice(t, func(t *testing.T) hal.BlockDevice {
				b, err := NewBlock(tc.size, BlockOptions{SectorSize: tc.sectorSize})
				require.NoError(t, err)
				return b
			})
		})
	}
}

func TestNewBlockErrors(t *testing.T) {
	cases := []struct {
		name    string
		size    int64
		opts    BlockOptions
		wantErr bool
	}{
		{"default sector size", 4096, BlockOptions{}, false},
		{"4KiB sectors", 8192, BlockOptions{SectorSize: 4096}, false},
		{"zero size", 0, BlockOptions{}, true},
		{"negative size", -512, BlockOptions{}, true},
		{"size not a multiple of the sector", 1000, BlockOptions{}, true},
		{"size not a multiple of 4KiB sectors", 512 * 3, BlockOptions{SectorSize: 4096}, true},
		{"sector below 512", 256, BlockOptions{SectorSize: 256}, true},
		{"sector not a power of two", 3 * 1024, BlockOptions{SectorSize: 1536}, true},
		{"negative sector size", 4096, BlockOptions{SectorSize: -512}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewBlock(tc.size, tc.opts)
			if tc.wantErr {
				require.Error(t, err)
				assert.Nil(t, b)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.size, b.Size())
			assert.Equal(t, make([]byte, tc.size), b.Image())
		})
	}
}

func TestBlockFromImage(t *testing.T) {
	img := blockTestPattern(1, 3*blockChunkSize+1024)
	clear(img[blockChunkSize : 2*blockChunkSize]) // one all-zero chunk
	b, err := NewBlockFromImage(img, BlockOptions{})
	require.NoError(t, err)
	require.Equal(t, img, b.Image())
	assert.Nil(t, b.chunks[1], "an all-zero chunk should not be allocated")

	// The Block holds a copy.
	img[0] ^= 0xff
	got := make([]byte, 512)
	_, err = b.ReadAt(got, 0)
	require.NoError(t, err)
	assert.NotEqual(t, img[0], got[0])

	_, err = NewBlockFromImage(make([]byte, 1000), BlockOptions{})
	require.Error(t, err)
	_, err = NewBlockFromImage(nil, BlockOptions{})
	require.Error(t, err)
}

func TestBlockIOAcrossChunks(t *testing.T) {
	const size = 4*blockChunkSize + 8*512
	b, err := NewBlock(size, BlockOptions{})
	require.NoError(t, err)
	model := make([]byte, size)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 200 {
		sectors := int64(size / 512)
		first := r.Int64N(sectors)
		n := 1 + r.Int64N(min(sectors-first, 300))
		data := blockTestPattern(uint64(i), int(n*512))
		if r.IntN(4) == 0 {
			clear(data)
		}
		switch r.IntN(3) {
		case 0, 1:
			_, err := b.WriteAt(data, first*512)
			require.NoError(t, err)
			copy(model[first*512:], data)
		case 2:
			require.NoError(t, b.Discard(first*512, n*512))
			clear(model[first*512 : (first+n)*512])
		}
		got := make([]byte, n*512)
		_, err := b.ReadAt(got, first*512)
		require.NoError(t, err)
		require.Equal(t, model[first*512:(first+n)*512], got)
	}
	require.Equal(t, model, b.Image())
}

func TestBlockSparse(t *testing.T) {
	b, err := NewBlock(1<<34, BlockOptions{}) // 16 GiB, mostly never touched
	require.NoError(t, err)
	data := blockTestPattern(3, 4096)
	_, err = b.WriteAt(data, 1<<33)
	require.NoError(t, err)
	_, err = b.WriteAt(make([]byte, 4096), 1<<32)
	require.NoError(t, err)
	allocated := 0
	for _, c := range b.chunks {
		if c != nil {
			allocated++
		}
	}
	assert.Equal(t, 1, allocated, "zero writes to fresh chunks must not allocate")

	got := make([]byte, 4096)
	_, err = b.ReadAt(got, 1<<33)
	require.NoError(t, err)
	assert.Equal(t, data, got)

	require.NoError(t, b.Discard(1<<33-blockChunkSize, 3*blockChunkSize))
	for _, c := range b.chunks {
		require.Nil(t, c, "a fully discarded chunk must be freed")
	}
	_, err = b.ReadAt(got, 1<<33)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 4096), got)
}

func TestBlockReadOnly(t *testing.T) {
	img := blockTestPattern(5, 8*512)
	b, err := NewBlockFromImage(img, BlockOptions{ReadOnly: true})
	require.NoError(t, err)
	assert.True(t, b.ReadOnly())
	assert.True(t, hal.IsReadOnly(b))

	ops := []struct {
		name string
		do   func() error
	}{
		{"WriteAt", func() error { _, err := b.WriteAt(make([]byte, 512), 0); return err }},
		{"WriteAtFUA", func() error { _, err := b.WriteAtFUA(make([]byte, 512), 0); return err }},
		{"Discard", func() error { return b.Discard(0, 512) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			require.ErrorIs(t, op.do(), hal.ErrReadOnly)
		})
	}
	got := make([]byte, len(img))
	_, err = b.ReadAt(got, 0)
	require.NoError(t, err)
	assert.Equal(t, img, got)
	assert.NoError(t, b.Sync())
	assert.Equal(t, img, b.Image())

	w, err := NewBlock(512, BlockOptions{})
	require.NoError(t, err)
	assert.False(t, hal.IsReadOnly(w))
}

func TestBlockErrorsWrapSentinels(t *testing.T) {
	b, err := NewBlock(16*512, BlockOptions{})
	require.NoError(t, err)
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"misaligned offset", func() error { _, err := b.ReadAt(make([]byte, 512), 1); return err }, hal.ErrMisaligned},
		{"misaligned length", func() error { _, err := b.WriteAt(make([]byte, 100), 0); return err }, hal.ErrMisaligned},
		{"past the end", func() error { _, err := b.WriteAt(make([]byte, 1024), 15*512); return err }, hal.ErrOutOfRange},
		{"negative offset", func() error { _, err := b.ReadAt(make([]byte, 512), -512); return err }, hal.ErrOutOfRange},
		{"discard past the end", func() error { return b.Discard(16*512, 512) }, hal.ErrOutOfRange},
		{"discard negative length", func() error { return b.Discard(0, -512) }, hal.ErrOutOfRange},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.do(), tc.want)
		})
	}
	require.NoError(t, b.Close())
	_, err = b.ReadAt(make([]byte, 512), 0)
	require.ErrorIs(t, err, hal.ErrClosed)
	require.ErrorIs(t, b.Discard(0, 512), hal.ErrClosed)
	_, err = b.WriteAtFUA(make([]byte, 512), 0)
	require.ErrorIs(t, err, hal.ErrClosed)
	assert.Len(t, b.Image(), 16*512, "Image works after Close")
}

func TestBlockStats(t *testing.T) {
	b, err := NewBlock(64*512, BlockOptions{})
	require.NoError(t, err)
	buf := make([]byte, 1024)
	_, err = b.WriteAt(buf, 0)
	require.NoError(t, err)
	_, err = b.WriteAtFUA(buf[:512], 512)
	require.NoError(t, err)
	for range 3 {
		_, err = b.ReadAt(buf, 1024)
		require.NoError(t, err)
	}
	_, err = b.ReadAt(buf, 1) // rejected: not counted
	require.Error(t, err)
	require.NoError(t, b.Sync())
	require.NoError(t, b.Discard(0, 512))
	assert.Equal(t, BlockStats{
		Reads: 3, Writes: 2, Syncs: 1, Discards: 1,
		BytesRead: 3 * 1024, BytesWritten: 1024 + 512,
	}, b.Stats())
}

// TestBlockConcurrentSectorAtomicity has writers overwrite the same sectors
// with whole-sector patterns while readers check that every sector they see
// is one whole pattern.
func TestBlockConcurrentSectorAtomicity(t *testing.T) {
	const sectors = 256
	b, err := NewBlock(sectors*512, BlockOptions{})
	require.NoError(t, err)
	fill := func(v byte) []byte { return bytes.Repeat([]byte{v}, sectors*512) }
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := b.WriteAt(fill(byte(w+1)), 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var bad error
	var mu sync.Mutex
	for range 2 {
		wg.Go(func() {
			got := make([]byte, sectors*512)
			for range 50 {
				if _, err := b.ReadAt(got, 0); err != nil {
					t.Error(err)
					return
				}
				for s := range sectors {
					sec := got[s*512 : (s+1)*512]
					if !bytes.Equal(sec, bytes.Repeat(sec[:1], 512)) {
						mu.Lock()
						bad = errors.New("torn sector")
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, bad)
}
