package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/anykernel/anykernel/hal/pc/dev"
)

// Hosted there are no virtio devices; the transfer runs in cmd/anyk's
// boot tests.
func TestRunHosted(t *testing.T) {
	err := run(&bytes.Buffer{}, 1024)
	assert.True(t, errors.Is(err, dev.ErrNotAvailable), "got %v", err)
}
