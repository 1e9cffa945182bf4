package dev

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hosted, the private system calls are unknown to Linux: everything
// reports that the platform is absent.
func TestHostedNotAvailable(t *testing.T) {
	assert.False(t, Available())
	_, err := AllocDMA(4096, 0)
	assert.True(t, errors.Is(err, ErrNotAvailable), "got %v", err)
	_, err = OpenIRQ(5)
	assert.True(t, errors.Is(err, ErrNotAvailable), "got %v", err)
}

func TestArgumentChecks(t *testing.T) {
	tests := []struct {
		name string
		err  func() error
	}{
		{"zero-size DMA", func() error { _, err := AllocDMA(0, 0); return err }},
		{"odd alignment", func() error { _, err := AllocDMA(4096, 3000); return err }},
		{"cascade line", func() error { _, err := OpenIRQ(2); return err }},
		{"line out of range", func() error { _, err := OpenIRQ(16); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err())
		})
	}
}

func TestPCIAddress(t *testing.T) {
	assert.Equal(t, uint32(0x80000000), pciAddr(0, 0, 0, 0))
	assert.Equal(t, uint32(0x8001_1a3c), pciAddr(1, 3, 2, 0x3f), "offset is dword aligned")
}

func TestRegsBounds(t *testing.T) {
	m := MMIO{Base: 0xfebf0000, Size: 0x1000}
	tests := []struct {
		name       string
		off, width uint32
		ok         bool
		wantAddr   uintptr
	}{
		{"first dword", 0, 4, true, 0xfebf0000},
		{"last byte", 0xfff, 1, true, 0xfebf0fff},
		{"past the end", 0xffe, 4, false, 0},
		{"misaligned", 2, 4, false, 0},
		{"beyond", 0x2000, 1, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := m.at(tc.off, tc.width)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.wantAddr, a)
		})
	}
	// Outside the window: all ones, and nothing touched (no port I/O).
	c := Config{}
	assert.Equal(t, uint8(0xFF), c.Read8(256))
	assert.Equal(t, uint32(0xFFFFFFFF), MMIO{}.Read32(0))
	c.Write32(300, 1)
}

func TestDMAPoolHosted(t *testing.T) {
	var p DMAPool
	_, _, err := p.Alloc(100, 3)
	assert.Error(t, err, "alignment not a power of two")
	_, _, err = p.Alloc(100, 8192)
	assert.Error(t, err, "alignment above a page")
	_, _, err = p.Alloc(100, 64)
	assert.True(t, errors.Is(err, ErrNotAvailable), "got %v", err)
	p.Free(nil)
}
