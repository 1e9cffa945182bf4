package blockfs

import (
	"fmt"
	"os"
	"testing"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/stretchr/testify/require"
)

// TestCrashAfterSync records every write and flush of a workload. The
// durable image at each successful Sync must be clean for e2fsck and
// mountable; images cut at arbitrary points in between (writes torn or
// lost) must mount and walk without panics.
func TestCrashAfterSync(t *testing.T) {
	base := newDev(t, mkfsImage(t, 16<<20, "-t", "ext4"))
	rec, err := mem.NewCrashRecorder(base)
	require.NoError(t, err)
	f, err := Mount(rec, Options{})
	require.NoError(t, err)
	var syncs []int
	for batch := 0; batch < 4; batch++ {
		require.NoError(t, f.Mkdir(fmt.Sprintf("d%d", batch), 0o755))
		for i := 0; i < 80; i++ {
			writeFile(t, f, fmt.Sprintf("d%d/f%d", batch, i), pattern(100*i, byte(i)))
		}
		if batch > 0 {
			for i := 0; i < 80; i += 2 {
				require.NoError(t, f.Remove(fmt.Sprintf("d%d/f%d", batch-1, i)))
			}
			require.NoError(t, f.Rename(fmt.Sprintf("d%d", batch-1), fmt.Sprintf("d%d/old", batch)))
		}
		require.NoError(t, f.Sync())
		syncs = append(syncs, rec.Ops())
	}
	require.NoError(t, f.Close())
	for _, p := range syncs {
		img, err := rec.DropUnsynced(p)
		require.NoError(t, err)
		fsck(t, img)
		g, err := Mount(newDev(t, img), Options{ReadOnly: true})
		require.NoError(t, err)
		problems, err := g.Check()
		require.NoError(t, err)
		require.Empty(t, problems)
		require.NoError(t, g.Close())
	}
	n := rec.Ops()
	for i := 0; i < 12; i++ {
		p := n * i / 12
		dev, err := rec.CrashDevice(p, uint64(i))
		require.NoError(t, err)
		g, err := Mount(dev, Options{})
		if err != nil {
			continue
		}
		walkAll(g)
		if fl, err := g.OpenFile("after-crash", os.O_RDWR|os.O_CREATE, 0o644); err == nil {
			_, _ = fl.Write([]byte("x"))
			_ = fl.Close()
		}
		_ = g.Close()
	}
}

// TestConcurrentUse runs readers and writers on one FS at once (meant
// for -race) and checks the result with e2fsck.
func TestConcurrentUse(t *testing.T) {
	dev := newDev(t, mkfsImage(t, 32<<20, "-t", "ext4"))
	f, err := Mount(dev, Options{})
	require.NoError(t, err)
	done := make(chan error, 4)
	for w := 0; w < 4; w++ {
		go func() {
			dir := fmt.Sprintf("w%d", w)
			err := f.Mkdir(dir, 0o755)
			for i := 0; i < 60 && err == nil; i++ {
				name := fmt.Sprintf("%s/f%d", dir, i)
				var fl *File
				if fl, err = f.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
					break
				}
				if _, err = fl.WriteAt(pattern(3000, byte(i)), int64(i)*100); err != nil {
					break
				}
				if err = fl.Close(); err != nil {
					break
				}
				if _, err = f.ReadDir(dir); err != nil {
					break
				}
				if _, err = f.ReadFile(name); err != nil {
					break
				}
				if i%3 == 0 {
					err = f.Remove(name)
				}
			}
			done <- err
		}()
	}
	for w := 0; w < 4; w++ {
		require.NoError(t, <-done)
	}
	require.NoError(t, f.Close())
	fsck(t, dev.Image())
}
