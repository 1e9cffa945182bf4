package blockfs

import (
	"testing"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/stretchr/testify/require"
)

// TestLargeSectors runs a workload on 4 KiB-sector devices, including a
// 1 KiB-block file system whose blocks are smaller than a sector.
func TestLargeSectors(t *testing.T) {
	for _, bs := range []string{"1024", "4096"} {
		t.Run(bs, func(t *testing.T) {
			dev, err := mem.NewBlockFromImage(mkfsImage(t, 32<<20, "-t", "ext4", "-b", bs), mem.BlockOptions{SectorSize: 4096})
			require.NoError(t, err)
			f, err := Mount(dev, Options{})
			require.NoError(t, err)
			buildWithBlockfs(t, f)
			require.NoError(t, f.Close())
			fsck(t, dev.Image())
		})
	}
	t.Run("mkfs", func(t *testing.T) {
		dev, err := mem.NewBlock(16<<20, mem.BlockOptions{SectorSize: 4096})
		require.NoError(t, err)
		require.Error(t, Mkfs(dev, MkfsOptions{BlockSize: 1024}))
		require.NoError(t, Mkfs(dev, MkfsOptions{BlockSize: 4096}))
		fsck(t, dev.Image())
	})
}
