package blockfs

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	src := t.TempDir()
	makeTreeSized(t, src, 100, 100000, 1<<20)
	for _, k := range imageKinds {
		t.Run(k.name, func(t *testing.T) {
			img := mkfsImage(t, 32<<20, append(k.args, "-d", src)...)
			f, err := Mount(newDev(t, img), Options{ReadOnly: true})
			require.NoError(t, err)
			problems, err := f.Check()
			require.NoError(t, err)
			assert.Empty(t, problems)
			require.NoError(t, f.Close())
		})
	}
	t.Run("after-writes", func(t *testing.T) {
		dev := newDev(t, mkfsImage(t, 64<<20, "-t", "ext4"))
		f, err := Mount(dev, Options{})
		require.NoError(t, err)
		buildWithBlockfs(t, f)
		problems, err := f.Check()
		require.NoError(t, err)
		assert.Empty(t, problems)
		require.NoError(t, f.Close())
	})
	t.Run("detects-damage", func(t *testing.T) {
		dev := newDev(t, make([]byte, 8<<20))
		require.NoError(t, Mkfs(dev, MkfsOptions{}))
		f, err := Mount(dev, Options{})
		require.NoError(t, err)
		writeFile(t, f, "a", pattern(5000, 1))
		require.NoError(t, f.Mkdir("d", 0o755))
		// Damage: an extra link count and a leaked block.
		in, err := f.walk("a", false)
		require.NoError(t, err)
		in.setLinks(3)
		_, _, err = f.allocBlocks(0, 1)
		require.NoError(t, err)
		problems, err := f.Check()
		require.NoError(t, err)
		assert.Len(t, problems, 2, "%q", problems)
		require.NoError(t, f.Close())
	})
}

var _ = os.Remove
