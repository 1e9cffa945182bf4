package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
BenchmarkTCP/netstack-tap-offload-2      	      10	 100000000 ns/op	 900.00 MB/s	 400.0 cpu-ns/KiB	 17.00 txframes/MiB	 12 B/op	 0 allocs/op
BenchmarkTCP/ref-kernel-veth-2           	      10	 100000000 ns/op	1000.00 MB/s	 300.0 cpu-ns/KiB
BenchmarkTCP/netstack-mem-2              	      10	 100000000 ns/op	 250.00 MB/s
BenchmarkCreate/blockfs-2                	    5000	    200000 ns/op
BenchmarkCreate/ref-kernel-ext4-2        	   10000	    100000 ns/op
BenchmarkLonely-2                        	    5000	    200000 ns/op
PASS
`

func TestTable(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, res, 6)
	rows := table(res)
	require.Len(t, rows, 3)
	byName := map[string]row{}
	for _, r := range rows {
		byName[r.name] = r
	}
	assert.InDelta(t, 0.9, byName["BenchmarkTCP/netstack-tap-offload"].ratio, 1e-9)
	assert.InDelta(t, 0.25, byName["BenchmarkTCP/netstack-mem"].ratio, 1e-9)
	assert.Equal(t, "MB/s", byName["BenchmarkTCP/netstack-mem"].unit)
	assert.InDelta(t, 0.75, byName["BenchmarkTCP/netstack-tap-offload"].cpuRatio, 1e-9)
	assert.Zero(t, byName["BenchmarkTCP/netstack-mem"].cpuRatio, "no CPU figure, no CPU ratio")
	c := byName["BenchmarkCreate/blockfs"]
	assert.Equal(t, "op/s", c.unit)
	assert.InDelta(t, 0.5, c.ratio, 1e-9)
}

func TestTrimProcs(t *testing.T) {
	assert.Equal(t, "BenchmarkX/a-b", trimProcs("BenchmarkX/a-b-8"))
	assert.Equal(t, "BenchmarkX/a-b", trimProcs("BenchmarkX/a-b"))
}
