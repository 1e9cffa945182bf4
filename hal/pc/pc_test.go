package pc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrames(t *testing.T) {
	f := new(Frames)
	f.AddRange(1<<20, 1<<20+10*4096)
	f.AddRange(1<<20+100, 1<<20+4096) // partial frames are not added twice
	f.Reserve(1<<20+4096, 1<<20+4097)
	require.Equal(t, uint64(9), f.Total())
	seen := map[uint64]bool{}
	for i := 0; i < 9; i++ {
		a, ok := f.Alloc()
		require.True(t, ok)
		require.Zero(t, a%4096)
		require.False(t, seen[a], "frame %#x handed out twice", a)
		require.NotEqual(t, uint64(1<<20+4096), a, "reserved frame")
		require.True(t, a >= 1<<20 && a < 1<<20+10*4096)
		seen[a] = true
	}
	_, ok := f.Alloc()
	assert.False(t, ok, "exhausted")
	assert.Equal(t, uint64(9), f.Used())
	assert.True(t, f.Free(1<<20))
	assert.False(t, f.Free(1<<20), "double free ignored")
	a, ok := f.Alloc()
	require.True(t, ok)
	assert.Equal(t, uint64(1<<20), a)
}

func TestParseCmdline(t *testing.T) {
	type want struct {
		args, env      []string
		trace, summary bool
		ok             bool
	}
	tests := []struct {
		name string
		in   string
		want want
	}{
		{"image only", "/tmp/x/hello.img", want{args: []string{"hello.img"}, ok: true}},
		{"options env args", "hello.img anyk.trace HOME=/ anyk.summary A=b%20c -- one two%25",
			want{args: []string{"hello.img", "one", "two%"}, env: []string{"HOME=/", "A=b c"}, trace: true, summary: true, ok: true}},
		{"options after -- are arguments", "h -- anyk.trace X=1", want{args: []string{"h", "anyk.trace", "X=1"}, ok: true}},
		{"unknown words ignored", "h   junk\tanyk.bogus", want{args: []string{"h"}, ok: true}},
		{"bad escapes kept", "h -- 100% %zz %4", want{args: []string{"h", "100%", "%zz", "%4"}, ok: true}},
		{"empty", "", want{ok: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Cmdline
			ok := ParseCmdline([]byte(tc.in), &c)
			assert.Equal(t, tc.want.ok, ok)
			assert.Equal(t, tc.want.args, strs(c.Args.Len(), c.Args.At))
			assert.Equal(t, tc.want.env, strs(c.Env.Len(), c.Env.At))
			assert.Equal(t, tc.want.trace, c.Trace)
			assert.Equal(t, tc.want.summary, c.Summary)
		})
	}
}

func strs(n int, at func(int) []byte) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, string(at(i)))
	}
	return out
}

func TestParseCmdlineOverflow(t *testing.T) {
	in := []byte("h --")
	for i := 0; i < 200; i++ {
		in = append(in, " arg"...)
	}
	var c Cmdline
	assert.False(t, ParseCmdline(in, &c), "too many arguments reported")
	assert.Equal(t, "h", string(c.Args.At(0)))
}

// FuzzParseCmdline checks the parser on arbitrary command lines: no
// panics, and every word it keeps is at most the input's length.
func FuzzParseCmdline(f *testing.F) {
	f.Add([]byte("hello.img anyk.trace A=b -- x%20y"))
	f.Add([]byte("%"))
	f.Add([]byte("a -- %4"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var c Cmdline
		ParseCmdline(in, &c)
		for i := 0; i < c.Args.Len(); i++ {
			require.LessOrEqual(t, len(c.Args.At(i)), len(in))
		}
		for i := 0; i < c.Env.Len(); i++ {
			require.Contains(t, string(c.Env.At(i)), "=")
		}
	})
}

func TestDaysFromCivil(t *testing.T) {
	tests := []struct {
		y, m, d int64
		want    int64
	}{
		{1970, 1, 1, 0},
		{2000, 3, 1, 11017},
		{2026, 11, 28, 20785},
		{1969, 12, 31, -1},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, daysFromCivil(tc.y, tc.m, tc.d), "%d-%d-%d", tc.y, tc.m, tc.d)
	}
}

func TestFramesAllocContig(t *testing.T) {
	tests := []struct {
		name     string
		n, align int
		want     uint64
		ok       bool
	}{
		{"first run", 2, 1, 0x100000, true},
		{"skips the hole", 3, 1, 0x103000, true},
		{"aligned", 3, 2, 0x104000, true},
		{"too long", 20, 1, 0, false},
		{"zero", 0, 1, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := new(Frames)
			f.AddRange(0x100000, 0x10a000) // frames 256..265
			f.Reserve(0x102000, 0x103000)  // hole at 258
			got, ok := f.AllocContig(tc.n, tc.align)
			require.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, tc.want, got)
				assert.Equal(t, uint64(tc.n), f.Used())
				// The run is taken: allocating it again fails or lands elsewhere.
				again, ok2 := f.AllocContig(tc.n, tc.align)
				if ok2 {
					assert.NotEqual(t, got, again)
				}
			}
		})
	}
}
