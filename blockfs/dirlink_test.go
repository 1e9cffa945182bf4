package blockfs

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/anykernel/anykernel/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hangGuard is how long a walk over a corrupt image may run before the
// test calls it a hang; a finished walk takes milliseconds.
const hangGuard = 2 * time.Minute

// corruptDirImage makes a small file system with build, then damages it
// with corrupt, both working through the package's internals (corrupt
// adds or rewrites entries without adjusting link counts, as a damaged
// image would have them).
func corruptDirImage(t *testing.T, build func(f *FS) error, corrupt func(f *FS) error) []byte {
	t.Helper()
	dev := newDev(t, make([]byte, 4<<20))
	require.NoError(t, Mkfs(dev, MkfsOptions{BlockSize: 1024, Now: fixedNow}))
	f, err := Mount(dev, Options{Now: fixedNow})
	require.NoError(t, err)
	require.NoError(t, build(f))
	require.NoError(t, corrupt(f))
	require.NoError(t, f.Close())
	return dev.Image()
}

// dirIno resolves name to its inode.
func dirIno(f *FS, name string) (*inode, error) {
	in, err := f.walk(name, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return in, nil
}

// addDirEntry adds an entry name in directory dir naming directory target.
func addDirEntry(f *FS, dir, name, target string) error {
	d, err := dirIno(f, dir)
	if err != nil {
		return err
	}
	tg, err := dirIno(f, target)
	if err != nil {
		return err
	}
	return f.addEntry(d, name, tg.ino, EXT4_FT_DIR)
}

func mkdirs(names ...string) func(f *FS) error {
	return func(f *FS) error {
		for _, n := range names {
			if err := f.Mkdir(n, 0o755); err != nil {
				return err
			}
		}
		return nil
	}
}

// chain is d0/d1/.../d<n-1>.
func chain(n int) []string {
	var out []string
	p := ""
	for i := 0; i < n; i++ {
		p = filepath.Join(p, fmt.Sprintf("d%d", i))
		out = append(out, p)
	}
	return out
}

// debugfsLinkImage builds an image with mke2fs -d holding a/x and b, then
// names a/x a second time as b/x with debugfs's link command.
func debugfsLinkImage(t *testing.T) []byte {
	testenv.NeedCommand(t, "debugfs")
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "a", "x"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "b"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "a", "x", "f"), []byte("data"), 0o644))
	img := mkfsImage(t, 4<<20, "-t", "ext4", "-b", "1024", "-d", src)
	p := writeImageFile(t, img)
	out, err := exec.Command("debugfs", "-w", "-R", "link a/x b/x", p).CombinedOutput()
	require.NoError(t, err, "debugfs: %s", out)
	img, err = os.ReadFile(p)
	require.NoError(t, err)
	return img
}

// fsckRefuses runs e2fsck -fn on img and fails the test unless it finds
// problems.
func fsckRefuses(t *testing.T, img []byte) {
	t.Helper()
	testenv.NeedCommand(t, "e2fsck")
	out, err := exec.Command("e2fsck", "-fn", writeImageFile(t, img)).CombinedOutput()
	require.Error(t, err, "e2fsck -fn accepts the image:\n%s", out)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.NotZero(t, ee.ExitCode()&4, "e2fsck -fn should leave errors uncorrected:\n%s", out)
}

// guarded runs fn, failing the test if it has not returned after
// hangGuard (a hang, not a slow run).
func guarded[T any](t *testing.T, what string, fn func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("%s did not finish", what)
		panic("unreachable")
	}
}

func TestDirectoryLinkedTwice(t *testing.T) {
	tests := []struct {
		name    string
		img     func(t *testing.T) []byte
		problem string // in Check's report
		remove  string // refused, since it would free a directory still named elsewhere
		rename  [2]string
	}{
		{
			name: "two-parents",
			img: func(t *testing.T) []byte {
				return corruptDirImage(t, mkdirs("a", "b", "a/x", "a/x/y"), func(f *FS) error { return addDirEntry(f, "b", "x", "a/x") })
			},
			problem: `is named by entry "x" in directory`,
			remove:  "b/x",
			rename:  [2]string{"b/x", "x2"},
		},
		{
			name:    "two-parents-debugfs",
			img:     debugfsLinkImage,
			problem: `is named by entry "x" in directory`,
			remove:  "b/x",
			rename:  [2]string{"b/x", "x2"},
		},
		{
			name: "same-parent-nested",
			// Each level names the next twice: 2^24 paths to the bottom.
			img: func(t *testing.T) []byte {
				dirs := chain(24)
				return corruptDirImage(t, mkdirs(dirs...), func(f *FS) error {
					for i := 0; i+1 < len(dirs); i++ {
						if err := addDirEntry(f, dirs[i], "alias", dirs[i+1]); err != nil {
							return err
						}
					}
					return nil
				})
			},
			problem: `is named by entry "d1" in directory`,
			remove:  "d0/alias",
			rename:  [2]string{"d0/alias", "moved"},
		},
		{
			name: "same-parent-empty",
			img: func(t *testing.T) []byte {
				return corruptDirImage(t, mkdirs("a", "a/x"), func(f *FS) error { return addDirEntry(f, "a", "y", "a/x") })
			},
			problem: `and by entry "y" in directory`,
			remove:  "a/y",
			rename:  [2]string{"a/x", "z"},
		},
		{
			name: "loop-to-ancestor",
			img: func(t *testing.T) []byte {
				return corruptDirImage(t, mkdirs("a", "a/b", "a/b/c"), func(f *FS) error { return addDirEntry(f, "a/b/c", "up", "a") })
			},
			problem: `and by entry "up" in directory`,
			remove:  "a/b/c/up",
			rename:  [2]string{"a/b/c/up", "up"},
		},
		{
			name: "loop-to-root",
			img: func(t *testing.T) []byte {
				return corruptDirImage(t, mkdirs("a", "a/b"), func(f *FS) error { return addDirEntry(f, "a/b", "top", ".") })
			},
			problem: `entry "top" names the root directory`,
			remove:  "a/b/top",
			rename:  [2]string{"a/b/top", "top"},
		},
		{
			name: "loop-to-self",
			img: func(t *testing.T) []byte {
				return corruptDirImage(t, mkdirs("a", "a/b"), func(f *FS) error { return addDirEntry(f, "a/b", "me", "a/b") })
			},
			problem: `and by entry "me" in directory`,
			remove:  "a/b/me",
			rename:  [2]string{"a/b/me", "me"},
		},
		{
			name: "loop-agreeing-with-dotdot",
			// a/b/up names a, and a's ".." is b: the loop agrees with
			// "..", but then the root's entry "a" does not.
			img: func(t *testing.T) []byte {
				return corruptDirImage(t, mkdirs("a", "a/b"), func(f *FS) error {
					if err := addDirEntry(f, "a/b", "up", "a"); err != nil {
						return err
					}
					a, err := dirIno(f, "a")
					if err != nil {
						return err
					}
					b, err := dirIno(f, "a/b")
					if err != nil {
						return err
					}
					return f.setEntry(a, "..", b.ino, EXT4_FT_DIR)
				})
			},
			problem: `'..' points at`,
			remove:  "a",
			rename:  [2]string{"a", "c"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img(t)
			fsckRefuses(t, img)

			f, err := Mount(newDev(t, img), Options{ReadOnly: true})
			require.NoError(t, err)
			err = guarded(t, "fs.WalkDir", func() error {
				return fs.WalkDir(f, ".", func(_ string, _ fs.DirEntry, err error) error { return err })
			})
			require.ErrorIs(t, err, ErrCorrupt)
			var pe *fs.PathError
			require.ErrorAs(t, err, &pe)

			// Errors the walk ignores still end it.
			n := guarded(t, "fs.WalkDir ignoring errors", func() int {
				n := 0
				_ = fs.WalkDir(f, ".", func(string, fs.DirEntry, error) error { n++; return nil })
				return n
			})
			assert.Less(t, n, 100)

			err = guarded(t, "fstest.TestFS", func() error { return fstest.TestFS(f) })
			require.Error(t, err)
			assert.Contains(t, err.Error(), ErrCorrupt.Error())

			type result struct {
				problems []string
				err      error
			}
			r := guarded(t, "Check", func() result {
				p, err := f.Check()
				return result{p, err}
			})
			require.NoError(t, r.err)
			problems := r.problems
			assert.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.problem) }),
				"want %q among %q", tc.problem, problems)
			require.NoError(t, f.Close())

			// Writes that would drop a directory still named elsewhere are
			// refused and leave the image as it was.
			dev := newDev(t, img)
			f, err = Mount(dev, Options{Now: fixedNow})
			require.NoError(t, err)
			if tc.remove != "" {
				assert.ErrorIs(t, f.Remove(tc.remove), ErrCorrupt)
			}
			assert.ErrorIs(t, f.Rename(tc.rename[0], tc.rename[1]), ErrCorrupt)
			require.NoError(t, f.Close())
			after := dev.Image()
			f, err = Mount(newDev(t, after), Options{ReadOnly: true})
			require.NoError(t, err)
			again, err := f.Check()
			require.NoError(t, err)
			assert.Equal(t, problems, again)
			require.NoError(t, f.Close())
		})
	}
}

// TestDirectoryLinksIntact checks that the refusals above leave a sound
// image alone: hard-linked files in one directory, renames across and
// within directories, and removal of emptied directories.
func TestDirectoryLinksIntact(t *testing.T) {
	dev := newDev(t, make([]byte, 4<<20))
	require.NoError(t, Mkfs(dev, MkfsOptions{BlockSize: 1024, Now: fixedNow}))
	f, err := Mount(dev, Options{Now: fixedNow})
	require.NoError(t, err)
	require.NoError(t, mkdirs("a", "a/x", "a/x/y", "b")(f))
	writeFile(t, f, "a/file", []byte("data"))
	require.NoError(t, f.Link("a/file", "a/file2"))
	require.NoError(t, f.Link("a/file", "a/file3"))
	require.NoError(t, f.Rename("a/x", "b/x"))
	require.NoError(t, f.Rename("b/x/y", "b/x/z"))
	require.NoError(t, f.Rename("b/x/z", "z"))
	require.NoError(t, f.Remove("z"))
	ents, err := f.ReadDir("a")
	require.NoError(t, err)
	assert.Len(t, ents, 3)
	require.NoError(t, fs.WalkDir(f, ".", func(_ string, _ fs.DirEntry, err error) error { return err }))
	problems, err := f.Check()
	require.NoError(t, err)
	assert.Empty(t, problems)
	require.NoError(t, f.Close())
	fsck(t, dev.Image())
}

// TestFuzzSeedsDirLinks checks that the FuzzMount seeds named dirlink-*
// (root directory entries rewritten, checksum included, to name a
// directory a second time or the root) still produce the corruption they
// were made for.
func TestFuzzSeedsDirLinks(t *testing.T) {
	fuzzOnce.Do(func() { fuzzImg, fuzzBlocks = fuzzBase(t) })
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzMount", "dirlink-*"))
	require.NoError(t, err)
	require.NotEmpty(t, seeds)
	for _, p := range seeds {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			header, body, ok := strings.Cut(string(data), "\n")
			require.True(t, ok)
			require.Equal(t, "go test fuzz v1", header)
			lit, ok := strings.CutPrefix(strings.TrimSpace(body), "[]byte(")
			require.True(t, ok)
			muts, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
			require.NoError(t, err)

			f, err := Mount(newDev(t, mutateFuzzImage([]byte(muts))), Options{ReadOnly: true})
			require.NoError(t, err)
			err = guarded(t, "fs.WalkDir", func() error {
				return fs.WalkDir(f, ".", func(_ string, _ fs.DirEntry, err error) error { return err })
			})
			require.ErrorIs(t, err, ErrCorrupt)
			problems, err := f.Check()
			require.NoError(t, err)
			assert.True(t, slices.ContainsFunc(problems, func(p string) bool {
				return strings.Contains(p, "is named by entry") || strings.Contains(p, "names the root directory")
			}), "%q", problems)
			require.NoError(t, f.Close())
		})
	}
}
