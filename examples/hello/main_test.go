package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, "Hello, anykernel!\n"},
		{"arguments", []string{"a", "b"}, "Hello, a b!\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(tc.args, &out))
			assert.Equal(t, tc.want, out.String())
		})
	}
}
