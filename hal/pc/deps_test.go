package pc

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/internal/testenv"
)

// TestKernelDependencies keeps what every unikernel links small: importing
// the platform must not drag in drivers or crypto (whose 32 MiB DRBG array
// alone would raise the smallest machine from 8 to 40 MiB).
func TestKernelDependencies(t *testing.T) {
	testenv.NeedCommand(t, "go")
	out, err := exec.Command("go", "list", "-deps", "github.com/anykernel/anykernel/hal/pc").Output()
	require.NoError(t, err)
	for _, p := range strings.Fields(string(out)) {
		assert.False(t, strings.Contains(p, "hal/virtio") || strings.HasPrefix(p, "crypto/") || strings.HasPrefix(p, "net"),
			"hal/pc depends on %s", p)
	}
}
