package console_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/console"
	"github.com/anykernel/anykernel/hal/mem"
)

// FuzzHandlerOneLine checks that whatever strings reach a log record — a
// peer's hostname, a file name from a disk image — the record stays one
// line that cannot pass for another record, and its attribute value can be
// read back exactly.
func FuzzHandlerOneLine(f *testing.F) {
	f.Add("link up", "mtu", "1500")
	f.Add("multi\nline", "key with space", "value\r\n[    0.000000] INFO  forged")
	f.Add("", "", "")
	f.Add("\xff\xfe", "k", "\x00\"=\\")
	f.Fuzz(func(t *testing.T, msg, key, val string) {
		var out bytes.Buffer
		l := slog.New(console.NewHandler(&out, &console.HandlerOptions{Clock: mem.NewClock(boot)}))
		l.Info(msg, key, val)
		line := out.String()
		require.True(t, strings.HasSuffix(line, "\n"), "line %q", line)
		require.Equal(t, 1, strings.Count(line, "\n"), "record split over lines: %q", line)
		require.True(t, strings.HasPrefix(line, "[    0.000000] INFO"), "line %q", line)

		// Read the attribute back from a record with a plain message.
		if strings.Contains(key, ".") {
			return // the parser nests dotted keys as groups
		}
		out.Reset()
		l.Info("m", key, val)
		got := parseLine(t, out.String())
		assert.Equal(t, val, got[key], "line %q", out.String())
	})
}
