package linux

import "testing"

func TestLine(t *testing.T) {
	cases := []struct {
		name string
		fill func(l *Line)
		want string
	}{
		{"text and decimals", func(l *Line) { l.S("a ").D(0).S(" ").D(-42).S(" ").D(1 << 62) }, "a 0 -42 4611686018427387904"},
		{"trimmed hex", func(l *Line) { l.X(0).S(" ").X(0xbeef).S(" ").X(1 << 63) }, "0x0 0xbeef 0x8000000000000000"},
		{"fixed hex", func(l *Line) { l.X16(0).S(" ").X16(0xbeef) }, "0x0000000000000000 0x000000000000beef"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var l Line
			c.fill(&l)
			if got := string(l.Bytes()); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	t.Run("overflow is dropped", func(t *testing.T) {
		var l Line
		for range 100 {
			l.S("0123456789")
		}
		if n := len(l.Bytes()); n != len(l.b) {
			t.Fatalf("line holds %d bytes, want the buffer's %d", n, len(l.b))
		}
		l.D(12345).X16(1)
		if n := len(l.Bytes()); n != len(l.b) {
			t.Fatalf("writes past the end grew the line to %d", n)
		}
	})
}
