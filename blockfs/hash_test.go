package blockfs

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDxHashMatchesDebugfs(t *testing.T) {
	testenv.NeedCommand(t, "debugfs")
	img := writeImageFile(t, mkfsImage(t, 4<<20, "-t", "ext4"))
	seedStr := "26e931e1-1113-458f-816c-cecb61eb09df"
	u, err := hex.DecodeString(strings.ReplaceAll(seedStr, "-", ""))
	require.NoError(t, err)
	var seed [4]uint32
	for i := range seed {
		seed[i] = binary.LittleEndian.Uint32(u[4*i:])
	}
	re := regexp.MustCompile(`is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)`)
	names := []string{"a", "hello", "file-123-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", strings.Repeat("long", 30), "\xe9t\xe9", "0123456789abcdef", "0123456789abcdef0123456789abcdef"}
	algs := []struct {
		name string
		ver  uint8
	}{{"legacy", DX_HASH_LEGACY}, {"half_md4", DX_HASH_HALF_MD4}, {"tea", DX_HASH_TEA}}
	for _, a := range algs {
		for _, n := range names {
			t.Run(fmt.Sprintf("%s/%q", a.name, n), func(t *testing.T) {
				out, err := exec.Command("debugfs", "-R", fmt.Sprintf("dx_hash -h %s -s %s %s", a.name, seedStr, n), img).CombinedOutput()
				require.NoError(t, err, "%s", out)
				m := re.FindStringSubmatch(string(out))
				require.NotNil(t, m, "%s", out)
				wantH, _ := strconv.ParseUint(m[1], 16, 32)
				wantM, _ := strconv.ParseUint(m[2], 16, 32)
				h, mh := dxHash([]byte(n), a.ver, seed)
				assert.Equal(t, uint32(wantH), h, "major")
				if a.ver != DX_HASH_LEGACY {
					assert.Equal(t, uint32(wantM), mh, "minor")
				}
			})
		}
	}
}
