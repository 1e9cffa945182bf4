package blockfs

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/mem"
)

// withJournalCsumV3 turns on jbd2 checksums v3 (and 64-bit block numbers)
// in the journal of img, as the kernel does for metadata_csum file
// systems, so that transactions carry per-block and per-descriptor
// checksums.
func withJournalCsumV3(t *testing.T, img []byte) []byte {
	t.Helper()
	f, err := Mount(newDev(t, img), Options{ReadOnly: true})
	require.NoError(t, err)
	j, err := f.openJournal()
	require.NoError(t, err)
	p, _, ok := j.in.bmap(0)
	require.True(t, ok)
	require.NoError(t, f.Close())
	sb := img[int(p)*j.bs:][:j.bs]
	putBE32(sb, js_feature_incompat, be32(sb, js_feature_incompat)|JBD2_FEATURE_INCOMPAT_CSUM_V3|JBD2_FEATURE_INCOMPAT_64BIT)
	sb[js_checksum_type] = JBD2_CRC32C_CHKSUM
	j.sb = sb
	putBE32(sb, js_checksum, j.sbCsum())
	return img
}

// journalledRecorder mounts img read-write on a crash recorder over a RAM
// disk with 4 KiB sectors, checking that write-back is journalled. A crash
// keeps or loses each 4 KiB whole: the superblock's in-place writes
// (needs_recovery at mount and unmount, as the kernel does them) rely on
// that, as they do under the kernel's ext4; on 512-byte sectors a cut in
// the middle of one can tear it.
func journalledRecorder(t *testing.T, img []byte, opts Options) (*mem.CrashRecorder, *FS) {
	t.Helper()
	inner, err := mem.NewBlockFromImage(img, mem.BlockOptions{SectorSize: 4096})
	require.NoError(t, err)
	rec, err := mem.NewCrashRecorder(inner)
	require.NoError(t, err)
	f, err := Mount(rec, opts)
	require.NoError(t, err)
	require.NotNil(t, f.jw, "write-back is journalled")
	return rec, f
}

// crashWorkload changes a file system in ways that free and reuse blocks
// and inodes between syncs: files written, removed and rewritten,
// directories renamed, files truncated.
func crashWorkload(t *testing.T, f *FS) {
	for batch := 0; batch < 3; batch++ {
		require.NoError(t, f.Mkdir(fmt.Sprintf("d%d", batch), 0o755))
		for i := 0; i < 40; i++ {
			writeFile(t, f, fmt.Sprintf("d%d/f%d", batch, i), pattern(1000*i+17, byte(i+batch)))
		}
		if batch > 0 {
			prev := fmt.Sprintf("d%d", batch-1)
			for i := 0; i < 40; i += 2 {
				require.NoError(t, f.Remove(fmt.Sprintf("%s/f%d", prev, i)))
			}
			require.NoError(t, f.Truncate(prev+"/f1", 10))
			require.NoError(t, f.Rename(prev, fmt.Sprintf("d%d/old", batch)))
		}
		if batch == 1 {
			dirty := 0
			for _, c := range f.cache {
				if c.dirty {
					dirty++
				}
			}
			require.NotZero(t, dirty)
			require.Equal(t, dirty, f.ndirty, "dirty block count")
			continue
		}
		require.NoError(t, f.Sync())
	}
}

// TestCrashAnyPointJournalled cuts the power at points spread over a
// workload on a journalled file system, each crash image losing or tearing
// a different choice of unflushed writes, and requires what the data
// safety rules promise: the image mounts (replaying the journal), and
// after recovery e2fsck finds nothing to repair. A sample of images is
// also recovered by the kernel's ext4 (loop mount) and by e2fsck itself.
func TestCrashAnyPointJournalled(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v3    bool
		block string
	}{{"plain-1k", false, "1024"}, {"csum-v3-4k", true, "4096"}} {
		t.Run(tc.name, func(t *testing.T) {
			img := mkfsImage(t, 16<<20, "-t", "ext4", "-b", tc.block)
			if tc.v3 {
				img = withJournalCsumV3(t, img)
			}
			rec, f := journalledRecorder(t, img, Options{})
			crashWorkload(t, f)
			require.NoError(t, f.Close())
			final, err := rec.KeepAll(rec.Ops())
			require.NoError(t, err)
			fsck(t, final)

			n := rec.Ops()
			const points = 40
			var replayed []int // crash points whose journal held a transaction
			for i, p := range crashPoints(t, rec, points) {
				seed := uint64(i)*7919 + 1
				crash, err := rec.CrashImage(p, seed)
				require.NoError(t, err)
				if journalPending(t, crash) {
					replayed = append(replayed, p)
				}
				dev, err := rec.CrashDevice(p, seed)
				require.NoError(t, err)
				g, err := Mount(dev, Options{})
				require.NoError(t, err, "crash at %d of %d: mount", p, n)
				walkAll(g)
				require.NoError(t, g.Close(), "crash at %d of %d: close", p, n)
				fsckAt(t, dev.Image(), fmt.Sprintf("crash at %d of %d, recovered by blockfs", p, n))
			}
			require.NotEmpty(t, replayed, "no crash point caught a transaction in the journal")
			t.Logf("%d ops, %d crash points needed journal replay", n, len(replayed))
			// e2fsck recovers the journal itself: -p replays it and may
			// only make the fixes a clean shutdown would not need (none
			// here); a second, read-only pass must then be clean.
			for i := 1; i <= 6; i++ {
				p := n * i / 7
				crash, err := rec.CrashImage(p, uint64(i))
				require.NoError(t, err)
				path := writeImageFile(t, crash)
				out, err := exec.Command("e2fsck", "-fp", path).CombinedOutput()
				if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 1 {
					t.Fatalf("crash at %d of %d: e2fsck -fp: %v\n%s", p, n, err, out)
				}
				again, err := os.ReadFile(path)
				require.NoError(t, err)
				fsckAt(t, again, fmt.Sprintf("crash at %d of %d, recovered by e2fsck", p, n))
			}
			// The kernel's ext4 replays our transactions at mount.
			t.Run("kernel", func(t *testing.T) {
				needKernel(t)
				for i, p := range replayed[:min(3, len(replayed))] {
					crash, err := rec.CrashImage(p, uint64(100+i))
					require.NoError(t, err)
					path := writeImageFile(t, crash)
					umount(t, loopMount(t, path, "rw"))
					again, err := os.ReadFile(path)
					require.NoError(t, err)
					fsckAt(t, again, fmt.Sprintf("crash at %d of %d, recovered by the kernel", p, n))
				}
			})
		})
	}
}

// crashPoints returns evenly spread crash points of rec's log and, three
// times each (the caller seeds each differently), every point just before
// a flush: there the most writes are at risk, in every order the device
// may have kept them.
func crashPoints(t *testing.T, rec *mem.CrashRecorder, even int) []int {
	t.Helper()
	n := rec.Ops()
	var ps []int
	for i := 0; i <= even; i++ {
		ps = append(ps, n*i/even)
	}
	for p := 1; p < n; p++ {
		op, err := rec.Op(p + 1)
		require.NoError(t, err)
		if op.Kind == mem.CrashSync {
			ps = append(ps, p, p, p)
		}
	}
	return ps
}

// journalPending reports whether img's journal holds a transaction that
// recovery must replay.
func journalPending(t *testing.T, img []byte) bool {
	t.Helper()
	f, err := Mount(newDev(t, append([]byte(nil), img...)), Options{ReadOnly: true})
	require.NoError(t, err)
	defer f.Close()
	j, err := f.openJournal()
	require.NoError(t, err)
	return be32(j.sb, js_start) != 0
}

// TestFreedBlocksWaitForCommit: blocks freed since the last commit are
// not reused until the next one, so file data, written in place at once,
// cannot overwrite a directory block that the committed state (what a
// crash before the next sync leaves) still uses.
func TestFreedBlocksWaitForCommit(t *testing.T) {
	rec, f := journalledRecorder(t, mkfsImage(t, 4<<20, "-t", "ext4", "-b", "1024"), Options{})
	require.NoError(t, f.Mkdir("dir", 0o755))
	for i := 0; i < 300; i++ {
		fl, err := f.OpenFile(fmt.Sprintf("dir/a-rather-long-file-name-to-fill-directory-blocks-%03d", i), os.O_RDWR|os.O_CREATE, 0o644)
		require.NoError(t, err)
		require.NoError(t, fl.Close())
	}
	require.NoError(t, f.Sync())
	dirBlocks := map[uint64]bool{}
	in, err := f.walk("dir", false)
	require.NoError(t, err)
	require.NoError(t, f.loadMapping(in))
	for _, e := range in.ext {
		for b := uint64(0); b < uint64(e.len); b++ {
			dirBlocks[e.pblk+b] = true
		}
	}
	require.Greater(t, len(dirBlocks), 4)

	for i := 0; i < 300; i++ {
		require.NoError(t, f.Remove(fmt.Sprintf("dir/a-rather-long-file-name-to-fill-directory-blocks-%03d", i)))
	}
	require.NoError(t, f.Remove("dir"))
	// Point the allocator's cursor at the freed blocks, where it would be
	// after wrapping around a busy file system, and write data, which
	// goes to the device at once.
	first := uint64(math.MaxUint64)
	for b := range dirBlocks {
		first = min(first, b)
	}
	f.allocGoal = first
	fl, err := f.OpenFile("data", os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = fl.Write(pattern(256<<10, 0x5a))
	require.NoError(t, err)
	dataIn, err := f.walk("data", false)
	require.NoError(t, err)
	require.NoError(t, f.loadMapping(dataIn))
	for _, e := range dataIn.ext {
		for b := uint64(0); b < uint64(e.len); b++ {
			require.False(t, dirBlocks[e.pblk+b], "data block %d was the removed directory's, before the removal committed", e.pblk+b)
		}
	}
	// Power cut now: the data landed, the removal never committed.
	img2, err := rec.KeepAll(rec.Ops())
	require.NoError(t, err)
	fsckAt(t, img2, "crash before the removal committed")
	require.NoError(t, fl.Close())
	require.NoError(t, f.Close())
}

// TestCrashBackgroundWriteback: between syncs, write-back starts by itself
// once half the journal's capacity is dirty, so that no transaction
// outgrows the journal; a power cut during any of those transactions is
// recovered like one during Sync.
func TestCrashBackgroundWriteback(t *testing.T) {
	var logs bytes.Buffer
	rec, f := journalledRecorder(t, mkfsImage(t, 16<<20, "-t", "ext4", "-b", "1024", "-J", "size=1"),
		Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	seq0 := f.jw.seq
	for d := 0; d < 8; d++ {
		require.NoError(t, f.Mkdir(fmt.Sprintf("d%d", d), 0o755))
		for i := 0; i < 250; i++ {
			writeFile(t, f, fmt.Sprintf("d%d/file-%04d", d, i), pattern(i%7, byte(i)))
		}
		require.LessOrEqual(t, f.ndirty, f.jw.maxData, "dirty blocks outgrew the journal")
	}
	background := f.jw.seq - seq0
	require.NoError(t, f.Close())
	require.NotContains(t, logs.String(), "larger than the journal")
	require.Greater(t, background, uint32(1), "no write-back started by itself")
	n := rec.Ops()
	const points = 30
	pending := 0
	for i := 1; i <= points; i++ {
		p := n * i / (points + 1)
		seed := uint64(i) * 104729
		crash, err := rec.CrashImage(p, seed)
		require.NoError(t, err)
		if journalPending(t, crash) {
			pending++
		}
		dev, err := rec.CrashDevice(p, seed)
		require.NoError(t, err)
		g, err := Mount(dev, Options{})
		require.NoError(t, err, "crash at %d of %d: mount", p, n)
		require.NoError(t, g.Close())
		fsckAt(t, dev.Image(), fmt.Sprintf("crash at %d of %d", p, n))
	}
	t.Logf("%d transactions without Sync, %d ops, %d of %d crash points needed replay", background, n, pending, points)
	require.NotZero(t, pending, "no crash point caught a transaction in the journal")
}

// TestJournalAbortsOnIOError: a write or flush failing in the middle of a
// transaction aborts the journal, as jbd2 does: every later write-back
// fails, saying so, instead of logging a transaction over one that was
// not checkpointed. Whatever the device then holds, a new Mount recovers
// it to an image e2fsck accepts, with everything synced before the error.
func TestJournalAbortsOnIOError(t *testing.T) {
	img := mkfsImage(t, 16<<20, "-t", "ext4", "-b", "1024")
	aborts := 0
	defer func() {
		if !t.Failed() {
			require.NotZero(t, aborts, "no seed failed a write-back inside the journal")
		}
	}()
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			inner, err := mem.NewBlockFromImage(img, mem.BlockOptions{SectorSize: 4096})
			require.NoError(t, err)
			rec, err := mem.NewCrashRecorder(inner)
			require.NoError(t, err)
			faulty := mem.NewFaultyBlock(rec, mem.BlockFaults{Seed: seed})
			f, err := Mount(faulty, Options{})
			require.NoError(t, err)
			require.NotNil(t, f.jw)
			require.NoError(t, f.Mkdir("kept", 0o755))
			for i := 0; i < 20; i++ {
				writeFile(t, f, fmt.Sprintf("kept/f%d", i), pattern(500*i, byte(i)))
			}
			require.NoError(t, f.Sync())

			faulty.SetErrorRates(0, 0.05, 0.2)
			var failed error
			for i := 0; i < 200 && failed == nil; i++ {
				if err := f.Mkdir(fmt.Sprintf("d%d", i), 0o755); err != nil {
					failed = err
					break
				}
				fl, err := f.OpenFile(fmt.Sprintf("d%d/x", i), os.O_RDWR|os.O_CREATE, 0o644)
				if err == nil {
					_, _ = fl.Write(pattern(3000, byte(i)))
					_ = fl.Close()
				}
				failed = f.Sync()
			}
			require.Error(t, failed, "no I/O error reached a write-back")
			faulty.Heal()
			if f.jw.aborted != nil {
				aborts++
				err := f.Sync()
				require.ErrorContains(t, err, "journal aborted")
				require.ErrorContains(t, f.Close(), "journal aborted")
			} else {
				// The error came before the journal was touched (a data
				// write); the file system goes on.
				require.NoError(t, f.Close())
			}

			for _, keepAll := range []bool{true, false} {
				var dev *mem.Block
				if keepAll {
					img, err := rec.KeepAll(rec.Ops())
					require.NoError(t, err)
					dev = newDev(t, img)
				} else {
					dev, err = rec.CrashDevice(rec.Ops(), seed)
					require.NoError(t, err)
				}
				g, err := Mount(dev, Options{})
				require.NoError(t, err)
				for i := 0; i < 20; i++ {
					got, err := g.ReadFile(fmt.Sprintf("kept/f%d", i))
					require.NoError(t, err)
					require.Equal(t, pattern(500*i, byte(i)), got)
				}
				require.NoError(t, g.Close())
				fsckAt(t, dev.Image(), fmt.Sprintf("seed %d, after the error (keep all %v)", seed, keepAll))
			}
		})
	}
}
