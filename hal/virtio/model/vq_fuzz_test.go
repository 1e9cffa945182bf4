package model

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/virtio/internal/ring"
)

// FuzzVQPop gives the device side of a split queue an arbitrary descriptor
// table, available ring and indirect table, as a hostile or buggy driver
// could. Every chain it accepts must lie inside guest memory and respect
// the readable-then-writable order; everything else must be an error. It
// must never panic or loop.
func FuzzVQPop(f *testing.F) {
	// One good chain: head 0 -> 1, readable 16 bytes then writable 1.
	good := make([]byte, 0, 64)
	good = binary.LittleEndian.AppendUint16(good, 1) // avail idx
	good = append(good, make([]byte, 16)...)         // avail[0..7] = 0
	good = appendDesc(good, 0, 16, ring.VIRTQ_DESC_F_NEXT, 1)
	good = appendDesc(good, 1, 1, ring.VIRTQ_DESC_F_WRITE, 0)
	f.Add(uint8(0), good)
	f.Add(uint8(3), good)
	loop := binary.LittleEndian.AppendUint16(nil, 1)
	loop = append(loop, make([]byte, 16)...)
	loop = appendDesc(loop, 0, 16, ring.VIRTQ_DESC_F_NEXT, 0)
	f.Add(uint8(0), loop)
	ind := binary.LittleEndian.AppendUint16(nil, 1)
	ind = append(ind, make([]byte, 16)...)
	ind = appendDesc(ind, 3, 32, ring.VIRTQ_DESC_F_INDIRECT, 0)
	f.Add(uint8(2), ind)

	f.Fuzz(func(t *testing.T, shape uint8, data []byte) {
		mem := NewMemory()
		const n = 8
		availOff, usedOff, size := ring.Layout(n)
		rings, bus, err := mem.Alloc(size, 4096)
		require.NoError(t, err)
		// Four data buffers and an indirect-table area the descriptors can
		// point at by small "addresses" 0..3; other addresses are used raw.
		var bufs [4]uint64
		var bufMem [4][]byte
		for i := range bufs {
			bufMem[i], bufs[i], err = mem.Alloc(64, 16)
			require.NoError(t, err)
		}
		features := uint64(0)
		if shape&1 != 0 {
			features |= 1 << 29
		}
		if shape&2 != 0 {
			features |= 1 << 28
		}
		q, err := NewVQ(mem, 0, n, features, bus, bus+uint64(availOff), bus+uint64(usedOff))
		require.NoError(t, err)

		if len(data) >= 2 {
			binary.LittleEndian.PutUint16(rings[availOff+2:], binary.LittleEndian.Uint16(data))
			data = data[2:]
		}
		k := copy(rings[availOff+4:availOff+4+2*n], data)
		data = data[k:]
		k = copy(rings[:16*n], data)
		data = data[k:]
		copy(bufMem[3], data) // a possible indirect table
		for i := range n {
			off := i * 16
			if a := binary.LittleEndian.Uint64(rings[off:]); a < 4 {
				binary.LittleEndian.PutUint64(rings[off:], bufs[a])
			}
		}
		for i := 0; i+16 <= len(bufMem[3]); i += 16 {
			if a := binary.LittleEndian.Uint64(bufMem[3][i:]); a < 4 {
				binary.LittleEndian.PutUint64(bufMem[3][i:], bufs[a])
			}
		}

		var c Chain
		for range 2 * n {
			ok, err := q.Pop(&c)
			if err != nil {
				require.ErrorIs(t, err, ErrDriver)
				_, err2 := q.Pop(&c)
				require.Error(t, err2, "a failed queue stays failed")
				return
			}
			if !ok {
				return
			}
			total := 0
			for _, b := range c.Readable {
				total += len(b)
			}
			require.Equal(t, c.ReadLen, total)
			total = 0
			for _, b := range c.Writable {
				total += len(b)
			}
			require.Equal(t, c.WriteLen, total)
			require.LessOrEqual(t, len(c.Readable)+len(c.Writable), n*(1+n), "chain longer than any legal chain")
			q.Push(&c, 0)
		}
	})
}

func appendDesc(b []byte, addr uint64, l uint32, flags, next uint16) []byte {
	b = binary.LittleEndian.AppendUint64(b, addr)
	b = binary.LittleEndian.AppendUint32(b, l)
	b = binary.LittleEndian.AppendUint16(b, flags)
	return binary.LittleEndian.AppendUint16(b, next)
}
