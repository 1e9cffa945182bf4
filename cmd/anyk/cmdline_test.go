package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/pc"
)

func TestKernelCmdline(t *testing.T) {
	o := runOptions{Trace: true, Env: []string{"A=1 2"}, Args: []string{"x", "50%"}}
	assert.Equal(t, "anyk.trace A=1%202 -- x 50%25", kernelCmdline(o))
}

// FuzzCmdlineRoundTrip checks that arguments and environment encoded by
// anyk run come out of the kernel's parser unchanged.
func FuzzCmdlineRoundTrip(f *testing.F) {
	f.Add("hello world", "K=v w")
	f.Add("100%", "=")
	f.Add("\x00\xff\t", "A=%41")
	f.Fuzz(func(t *testing.T, arg, env string) {
		if arg == "" || !strings.Contains(env, "=") || len(arg) > 300 || len(env) > 300 {
			t.Skip()
		}
		line := "/path/img " + kernelCmdline(runOptions{Args: []string{arg, "second"}, Env: []string{env}, Summary: true})
		var c pc.Cmdline
		require.True(t, pc.ParseCmdline([]byte(line), &c))
		require.Equal(t, 3, c.Args.Len())
		assert.Equal(t, "img", string(c.Args.At(0)))
		assert.Equal(t, arg, string(c.Args.At(1)))
		assert.Equal(t, "second", string(c.Args.At(2)))
		require.Equal(t, 1, c.Env.Len())
		assert.Equal(t, env, string(c.Env.At(0)))
		assert.True(t, c.Summary)
	})
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  bool
	}{
		{"256M", 256 << 20, false},
		{"64", 64 << 20, false},
		{"1G", 1 << 30, false},
		{"512k", 512 << 10, false},
		{"lots", 0, true},
		{"0", 0, true},
	}
	for _, tc := range tests {
		got, err := parseMemory(tc.in)
		if tc.err {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}
