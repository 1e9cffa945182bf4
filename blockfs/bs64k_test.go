package blockfs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLargeBlocks uses 16 and 64 KiB blocks (rec_len encoding, htree
// limits and extent node sizes scale with the block size).
func TestLargeBlocks(t *testing.T) {
	for _, bs := range []string{"16384", "65536"} {
		t.Run(bs, func(t *testing.T) {
			dev := newDev(t, mkfsImage(t, 96<<20, "-t", "ext4", "-b", bs))
			f, err := Mount(dev, Options{})
			require.NoError(t, err)
			buildWithBlockfs(t, f)
			problems, err := f.Check()
			require.NoError(t, err)
			assert.Empty(t, problems)
			require.NoError(t, f.Close())
			fsck(t, dev.Image())
		})
	}
}
