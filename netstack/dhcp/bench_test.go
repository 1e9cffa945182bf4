package dhcp

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func BenchmarkParseMessage(b *testing.B) {
	pkt, err := sampleMessages(b)["ACK"].MarshalBinary()
	require.NoError(b, err)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessage(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBinary(b *testing.B) {
	m := sampleMessages(b)["ACK"]
	buf := make([]byte, 0, 1500)
	out, err := m.AppendBinary(buf)
	require.NoError(b, err)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
