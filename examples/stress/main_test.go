package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The same checks run hosted, on Linux, as they do in the unikernel boot
// tests of cmd/anyk.
func TestChecksHosted(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"goroutines", []string{"goroutines"}, "PASS goroutines\n", 0},
		{"timers", []string{"timers"}, "PASS timers\n", 0},
		{"gc", []string{"gc"}, "PASS gc\n", 0},
		{"preempt", []string{"preempt"}, "PASS preempt\n", 0},
		{"nilderef", []string{"nilderef"}, "PASS nilderef\n", 0},
		{"sha256", []string{"sha256", "abc"}, "sha256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n", 0},
		{"unknown check", []string{"bogus"}, "FAIL bogus: no such check\n", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(tc.args, &out)
			assert.Equal(t, tc.code, code, out.String())
			assert.Equal(t, tc.want, out.String())
		})
	}
}

func TestClockLine(t *testing.T) {
	var out bytes.Buffer
	assert.Zero(t, run([]string{"clock"}, &out))
	assert.True(t, strings.HasPrefix(out.String(), "clock "), out.String())
}
