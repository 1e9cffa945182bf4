package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestProbesHosted(t *testing.T) {
	var out bytes.Buffer
	code := run(&out)
	assert.Zero(t, code, out.String())
	assert.Equal(t, 6, strings.Count(out.String(), "PASS "), out.String())
}
