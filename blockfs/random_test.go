package blockfs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, fs.ErrNotExist):
		return "notexist"
	case errors.Is(err, fs.ErrExist):
		return "exist"
	default:
		return "error"
	}
}

// TestRandomOpsAgainstHost applies the same random operations to blockfs
// and to a host directory and compares the trees after each batch.
func TestRandomOpsAgainstHost(t *testing.T) {
	batches := 6
	if testing.Short() {
		batches = 2
	}
	for _, k := range []imageKind{writableKinds[0], writableKinds[1], writableKinds[4]} {
		t.Run(k.name, func(t *testing.T) {
			host := t.TempDir()
			dev := newDev(t, mkfsImage(t, 64<<20, k.args...))
			f, err := Mount(dev, Options{CacheBlocks: 32}) // constant eviction and writeback
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(1, uint64(len(k.name))))
			var names []string
			pick := func() string {
				if len(names) == 0 || rng.IntN(5) == 0 {
					dir := ""
					if len(names) > 0 && rng.IntN(2) == 0 {
						dir = names[rng.IntN(len(names))] + "/"
					}
					n := dir + fmt.Sprintf("n%d", rng.IntN(40))
					return n
				}
				return names[rng.IntN(len(names))]
			}
			hp := func(n string) string { return filepath.Join(host, filepath.FromSlash(n)) }
			for batch := 0; batch < batches; batch++ {
				for op := 0; op < 150; op++ {
					a, b := pick(), pick()
					var e1, e2 error
					desc := ""
					switch rng.IntN(11) {
					case 0, 1:
						data := pattern(rng.IntN(40000), byte(op))
						off := int64(rng.IntN(3)) * int64(rng.IntN(200000))
						desc = fmt.Sprintf("write %s %d@%d", a, len(data), off)
						fl, err := f.OpenFile(a, os.O_RDWR|os.O_CREATE, 0o644)
						e1 = err
						if err == nil {
							_, e1 = fl.WriteAt(data, off)
							fl.Close()
						}
						hf, err := os.OpenFile(hp(a), os.O_RDWR|os.O_CREATE, 0o644)
						e2 = err
						if err == nil {
							_, e2 = hf.WriteAt(data, off)
							hf.Close()
						}
						names = append(names, a)
					case 2:
						desc = "mkdir " + a
						e1 = f.Mkdir(a, 0o755)
						e2 = os.Mkdir(hp(a), 0o755)
						names = append(names, a)
					case 3:
						desc = "remove " + a
						e1 = f.Remove(a)
						e2 = os.Remove(hp(a))
					case 4, 5:
						desc = "rename " + a + " " + b
						e1 = f.Rename(a, b)
						e2 = unix.Rename(hp(a), hp(b))
						names = append(names, b)
					case 6:
						sz := int64(rng.IntN(100000))
						desc = fmt.Sprintf("truncate %s %d", a, sz)
						e1 = f.Truncate(a, sz)
						e2 = os.Truncate(hp(a), sz)
					case 7:
						desc = "link " + a + " " + b
						e1 = f.Link(a, b)
						e2 = os.Link(hp(a), hp(b))
						names = append(names, b)
					case 8:
						desc = "symlink " + a + " " + b
						e1 = f.Symlink(a, b)
						e2 = os.Symlink(a, hp(b))
					case 9:
						m := fs.FileMode(rng.IntN(0o777))
						desc = fmt.Sprintf("chmod %s %o", a, m)
						e1 = f.Chmod(a, m|0o700)
						e2 = os.Chmod(hp(a), m|0o700)
					case 10:
						v := pattern(rng.IntN(300), byte(op))
						desc = "setxattr " + a
						e1 = f.Setxattr(a, "user.r", v)
						e2 = unix.Setxattr(hp(a), "user.r", v, 0)
						if e2 != nil && e1 == nil {
							// The host needs write permission on symlink targets etc; accept.
							e2 = nil
						}
					}
					require.Equal(t, errClass(e2), errClass(e1), "%s: blockfs %v, host %v", desc, e1, e2)
					if (e1 == nil) != (e2 == nil) {
						t.Fatalf("%s: blockfs %v, host %v", desc, e1, e2)
					}
				}
				require.NoError(t, f.Sync())
				fsck(t, dev.Image())
				assertSameTree(t, withoutRootLinks(snapshotHost(t, host)), withoutRootLinks(snapshotFS(t, f)))
			}
			require.NoError(t, f.Close())
		})
	}
}
