package blockfs

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFeatureChecks(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		refuse   string // substring of the mount error, if refused
		readOnly bool
	}{
		{"inline_data", []string{"-t", "ext4", "-O", "inline_data"}, "inline_data", false},
		{"encrypt", []string{"-t", "ext4", "-O", "encrypt"}, "encrypt", false},
		{"casefold", []string{"-t", "ext4", "-O", "casefold"}, "casefold", false},
		{"mmp", []string{"-t", "ext4", "-O", "mmp"}, "mmp", false},
		{"bigalloc", []string{"-t", "ext4", "-O", "bigalloc", "-C", "16384"}, "bigalloc", false},
		{"quota", []string{"-t", "ext4", "-O", "quota"}, "", true},
		{"project", []string{"-t", "ext4", "-I", "256", "-O", "project,quota"}, "", true},
		{"verity", []string{"-t", "ext4", "-O", "verity"}, "", true},
		{"orphan_file", []string{"-t", "ext4", "-O", "orphan_file"}, "", false},
		{"metadata_csum_seed", []string{"-t", "ext4", "-O", "metadata_csum_seed"}, "", false},
		{"meta_bg", []string{"-t", "ext4", "-O", "meta_bg,^resize_inode"}, "", false},
		{"large_dir", []string{"-t", "ext4", "-O", "large_dir"}, "", false},
		{"no-flex_bg", []string{"-t", "ext4", "-O", "^flex_bg"}, "", false},
		{"sparse_super2", []string{"-t", "ext4", "-O", "sparse_super2"}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dev := newDev(t, mkfsImage(t, 32<<20, c.args...))
			var logs bytes.Buffer
			f, err := Mount(dev, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if c.refuse != "" {
				require.ErrorIs(t, err, ErrUnsupportedFeature)
				assert.Contains(t, err.Error(), c.refuse)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.readOnly, f.ReadOnly())
			if c.readOnly {
				assert.Contains(t, logs.String(), "read-only")
				assert.Error(t, f.Mkdir("x", 0o755))
				require.NoError(t, f.Close())
				return
			}
			buildWithBlockfs(t, f)
			problems, err := f.Check()
			require.NoError(t, err)
			assert.Empty(t, problems)
			require.NoError(t, f.Close())
			fsck(t, dev.Image())
		})
	}
}

// TestCleanState checks s_state: not clean while mounted read-write
// (even after Sync), clean again after Close.
func TestCleanState(t *testing.T) {
	dev := newDev(t, mkfsImage(t, 8<<20, "-t", "ext4"))
	state := func() uint16 { return le16(dev.Image()[superblockOffset:], s_state) }
	require.Equal(t, uint16(EXT4_VALID_FS), state()&EXT4_VALID_FS)
	f, err := Mount(dev, Options{})
	require.NoError(t, err)
	assert.Zero(t, state()&EXT4_VALID_FS)
	writeFile(t, f, "x", []byte("x"))
	require.NoError(t, f.Sync())
	assert.Zero(t, state()&EXT4_VALID_FS)
	fsck(t, dev.Image())
	require.NoError(t, f.Close())
	assert.Equal(t, uint16(EXT4_VALID_FS), state()&EXT4_VALID_FS)
	fsck(t, dev.Image())
}
