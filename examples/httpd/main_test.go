package main

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/internal/netns"
	"github.com/anykernel/anykernel/internal/testenv"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"defaults", nil, false},
		{"custom", []string{"-tap", "t1", "-addr", "10.9.0.2/24", "-host", "10.9.0.1/24", "-port", "8080"}, false},
		{"bad address", []string{"-addr", "nonsense"}, true},
		{"bad port", []string{"-port", "70000"}, true},
		{"stray argument", []string{"extra"}, true},
		{"dir and image", []string{"-dir", "/tmp", "-image", "x.img"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseArgs(tc.args, io.Discard)
			if tc.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// mke2fsImage makes an ext4 image of dir with the real mke2fs.
func mke2fsImage(t *testing.T, dir string) string {
	t.Helper()
	testenv.NeedCommand(t, "mke2fs")
	img := filepath.Join(t.TempDir(), "site.img")
	out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", dir, img, "8M").CombinedOutput()
	require.NoError(t, err, "mke2fs: %s", out)
	return img
}

// TestSiteFromEmbedded checks the default site: an image made by Mkfs from
// the built-in page serves the same bytes, and the image passes e2fsck.
func TestSiteFromEmbedded(t *testing.T) {
	cfg, err := parseArgs(nil, io.Discard)
	require.NoError(t, err)
	s, err := openSite(cfg)
	require.NoError(t, err)
	defer s.Close()
	want, err := content.ReadFile("content/index.html")
	require.NoError(t, err)
	got, err := fs.ReadFile(s.fs, "index.html")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Contains(t, s.desc, "built-in page")

	if _, err := exec.LookPath("e2fsck"); err != nil {
		testenv.Missing(t, "e2fsck not found")
	}
	img := filepath.Join(t.TempDir(), "site.img")
	require.NoError(t, os.WriteFile(img, s.dev.(*mem.Block).Image(), 0o644))
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	require.NoError(t, err, "e2fsck -fn on the Mkfs image: %s", out)
}

// TestRunServesOverTAP runs the example exactly as make run does, inside a
// private network namespace, and fetches pages with the printed curl
// command.
func TestRunServesOverTAP(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedFile(t, "/dev/net/tun")
	testenv.NeedCommand(t, "curl")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from a directory\n"), 0o644))

	tests := []struct {
		name, path, want string
		args             []string
	}{
		{"built-in page", "/", "Hello from anykernel", nil},
		{"directory without offload", "/hello.txt", "hello from a directory", []string{"-dir", dir, "-offload=false"}},
		{"image made by mke2fs", "/hello.txt", "hello from a directory", []string{"-image", mke2fsImage(t, dir)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := netns.New(t)
			ctx, cancel := context.WithCancel(context.Background())
			out := newSyncBuffer()
			done := make(chan error, 1)
			go func() { done <- ns.Run(func() error { return run(ctx, tc.args, nil, out) }) }()
			var cmd string
			require.Eventually(t, func() bool {
				for _, l := range strings.Split(out.String(), "\n") {
					if strings.HasPrefix(strings.TrimSpace(l), "curl ") {
						cmd = strings.TrimSpace(l)
						return true
					}
				}
				return false
			}, 10*time.Second, 10*time.Millisecond, "no curl command printed: %s", out)
			url := strings.TrimSuffix(strings.Fields(cmd)[1], "/") + tc.path
			got, err := ns.Exec("curl", "-sS", "--max-time", "10", url)
			require.NoError(t, err, "%s", got)
			assert.Contains(t, string(got), tc.want)
			cancel()
			require.NoError(t, <-done)
		})
	}
}
