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
