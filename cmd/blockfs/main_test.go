package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "f.txt"), []byte("from dir"), 0o640))
	img := filepath.Join(dir, "fs.img")
	ctx := context.Background()
	runOK := func(stdin string, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		require.NoError(t, run(ctx, args, strings.NewReader(stdin), &out), "%v", args)
		return out.String()
	}
	runOK("", "mkfs", "-size", "20000000", "-L", "test", "-d", src, img)
	runOK("piped data", "put", img, "-", "/piped")
	host := filepath.Join(dir, "host.bin")
	require.NoError(t, os.WriteFile(host, bytes.Repeat([]byte("h"), 100000), 0o600))
	runOK("", "put", img, host, "sub/host.bin")
	ls := runOK("", "ls", img, "sub")
	assert.Contains(t, ls, "f.txt")
	assert.Contains(t, ls, "host.bin")
	assert.Contains(t, ls, "-rw-------")
	assert.Equal(t, "piped data", runOK("", "cat", img, "piped"))
	assert.Equal(t, "from dir", runOK("", "get", img, "/sub/f.txt", "-"))
	back := filepath.Join(dir, "back.bin")
	runOK("", "get", img, "sub/host.bin", back)
	b, err := os.ReadFile(back)
	require.NoError(t, err)
	assert.Len(t, b, 100000)
	assert.Equal(t, "clean\n", runOK("", "check", img))

	var out bytes.Buffer
	assert.Error(t, run(ctx, []string{"cat", img, "missing"}, nil, &out))
	assert.Error(t, run(ctx, []string{"frobnicate"}, nil, &out))
	assert.Error(t, run(ctx, nil, nil, &out))

	if _, err := exec.LookPath("e2fsck"); err == nil || testenv.InCI() {
		o, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
		require.NoError(t, err, "%s", o)
	}
}
