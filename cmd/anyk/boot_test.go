package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/internal/testenv"
)

// Images are built once per test binary and shared.
var (
	imagesMu sync.Mutex
	images   = map[string]string{}
	imageDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "anyk-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	imageDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// image builds the example package pkg (relative to the module root) once.
func image(t *testing.T, pkg string) string {
	t.Helper()
	return imageBoot(t, pkg, bootBoth)
}

// imageBoot builds pkg carrying the given boot protocols, once.
func imageBoot(t *testing.T, pkg, boot string) string {
	t.Helper()
	testenv.NeedCommand(t, "go")
	imagesMu.Lock()
	defer imagesMu.Unlock()
	key := pkg + " " + boot
	if p, ok := images[key]; ok {
		return p
	}
	out := filepath.Join(imageDir, filepath.Base(pkg)+"-"+boot+".img")
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := buildImage(ctx, "github.com/anykernel/anykernel/"+pkg, out, "", boot, &log)
	require.NoError(t, err, "build %s:\n%s", pkg, log.String())
	images[key] = out
	return out
}

// bootResult is what one boot printed and returned.
type bootResult struct {
	console string
	code    int
	err     error
}

// bootImage boots img under TCG with a generous timeout.
func bootImage(t *testing.T, o runOptions) bootResult {
	t.Helper()
	testenv.NeedCommand(t, "qemu-system-x86_64")
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	var out, errOut bytes.Buffer
	code, err := boot(context.Background(), o, nil, &out, &errOut)
	r := bootResult{console: out.String(), code: code, err: err}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console of %s %v:\n%s\nqemu stderr:\n%s", filepath.Base(o.Image), o.Args, r.console, errOut.String())
		}
	})
	return r
}

func TestBootHello(t *testing.T) {
	img := image(t, "examples/hello")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "Hello, anykernel!\n"},
		{"arguments", []string{"big", "world"}, "Hello, big world!\n"},
		{"escaped argument", []string{"50% of a space"}, "Hello, 50% of a space!\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bootImage(t, runOptions{Image: img, Args: tc.args})
			require.NoError(t, r.err)
			assert.Equal(t, 0, r.code)
			assert.Equal(t, tc.want, r.console)
		})
	}
}

func TestBootSummary(t *testing.T) {
	img := image(t, "examples/hello")
	r := bootImage(t, runOptions{Image: img, Summary: true, Trace: true})
	require.NoError(t, r.err)
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.console, "Hello, anykernel!")
	assert.Contains(t, r.console, "] write(0x1, ", "trace shows the write")
	assert.Contains(t, r.console, "exit_group=1")
	assert.Contains(t, r.console, " entry->main ")
	assert.Contains(t, r.console, "boot entry->runtime ")
	assert.True(t, strings.Contains(r.console, "frames in use "), "summary shows frames")
}

func TestBootStress(t *testing.T) {
	img := image(t, "examples/stress")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"goroutines and channels", []string{"goroutines"}, 0, "PASS goroutines\n"},
		{"timers and sleep", []string{"timers"}, 0, "PASS timers\n"},
		{"gc under churn", []string{"gc"}, 0, "PASS gc\n"},
		{"tight loop preempted", []string{"preempt"}, 0, "PASS preempt\n"},
		{"nil dereference recovered", []string{"nilderef"}, 0, "PASS nilderef\n"},
		{"os.Exit status", []string{"exit", "3"}, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bootImage(t, runOptions{Image: img, Args: tc.args})
			require.NoError(t, r.err)
			assert.Equal(t, tc.wantCode, r.code)
			assert.Equal(t, tc.want, r.console)
		})
	}
}

func TestBootStressSHA256(t *testing.T) {
	img := image(t, "examples/stress")
	text := "the quick brown fox, 100% unikernel"
	r := bootImage(t, runOptions{Image: img, Args: []string{"sha256", text}})
	require.NoError(t, r.err)
	require.Equal(t, 0, r.code)
	sum := sha256.Sum256([]byte(text))
	assert.Equal(t, "sha256 "+hex.EncodeToString(sum[:])+"\n", r.console)
}

func TestBootStressWallClock(t *testing.T) {
	img := image(t, "examples/stress")
	r := bootImage(t, runOptions{Image: img, Args: []string{"clock"}})
	now := time.Now()
	require.NoError(t, r.err)
	require.Equal(t, 0, r.code)
	var ns int64
	_, err := fmt.Sscanf(r.console, "clock %d\n", &ns)
	require.NoError(t, err)
	guest := time.Unix(0, ns)
	assert.WithinDuration(t, now, guest, 5*time.Second, "guest wall clock %v, host %v", guest, now)
}

func TestBootTooLittleMemory(t *testing.T) {
	img := image(t, "examples/hello")
	_, err := boot(context.Background(), runOptions{Image: img, Memory: "4M"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs at least")
}

func TestMeasure(t *testing.T) {
	img := image(t, "examples/hello")
	testenv.NeedCommand(t, "qemu-system-x86_64")
	m, err := measure(context.Background(), runOptions{Image: img, Timeout: 3 * time.Minute}, 1)
	require.NoError(t, err)
	st, err := os.Stat(img)
	require.NoError(t, err)
	assert.Equal(t, st.Size(), m.SizeBytes)
	assert.Positive(t, m.EntryToMain)
	assert.GreaterOrEqual(t, m.EntryToExit, m.EntryToMain)
	assert.Greater(t, m.MinMemoryMiB, int(m.LoadedBytes>>20), "needs at least the loaded image")
	assert.LessOrEqual(t, m.MinMemoryMiB, 256)
	t.Logf("hello: %d bytes, entry->main %v, entry->exit %v, smallest -m %d MiB", m.SizeBytes, m.EntryToMain, m.EntryToExit, m.MinMemoryMiB)
}

func TestBootFatalFault(t *testing.T) {
	img := image(t, "examples/stress")
	r := bootImage(t, runOptions{Image: img, Args: []string{"crash"}})
	require.NoError(t, r.err)
	assert.Equal(t, 128+11, r.code, "killed by SIGSEGV")
	assert.Contains(t, r.console, "anyk: unhandled fault: signal 11")
	assert.Contains(t, r.console, " addr 0x8 ", "faulting address")
	assert.Contains(t, r.console, "[main.crash (", "symbolized stack")
}

func TestBootDevices(t *testing.T) {
	img := image(t, "examples/devices")
	disk := make([]byte, 1<<20)
	for i := range disk {
		disk[i] = byte(i*7 + i>>9)
	}
	diskPath := filepath.Join(t.TempDir(), "disk,1.img") // a comma QEMU must not split on
	require.NoError(t, os.WriteFile(diskPath, disk, 0o644))
	r := bootImage(t, runOptions{Image: img, Devices: []string{"virtio-rng-pci,disable-legacy=on"}, Drives: []string{diskPath}})
	require.NoError(t, r.err)
	assert.Equal(t, 0, r.code)
	sum := sha256.Sum256(disk)
	assert.Contains(t, r.console, fmt.Sprintf("virtio-blk at 00:03.0 1048576 bytes, sha256 of the first 1048576: %x\n", sum))
	assert.Contains(t, r.console, "pci 00:00.0 8086:1237 class 06", "host bridge")
	assert.Contains(t, r.console, " 1af4:1044 class 00 irq ", "modern virtio-rng")
	assert.Contains(t, r.console, "dma ok\n")
	assert.Contains(t, r.console, "virtio-rng at 00:02.0 read 64 bytes\n", "hal/virtio's driver over the platform")
	assert.Regexp(t, `irq 8 fired [4-9] times`, r.console)
}

func TestBootConsoleInput(t *testing.T) {
	img := image(t, "examples/stress")
	testenv.NeedCommand(t, "qemu-system-x86_64")
	var out bytes.Buffer
	code, err := boot(context.Background(), runOptions{Image: img, Args: []string{"echo"}, Timeout: 3 * time.Minute},
		strings.NewReader("typed at the console\n"), &out, &bytes.Buffer{})
	require.NoError(t, err, "console:\n%s", out.String())
	assert.Equal(t, 0, code)
	assert.Equal(t, "echo typed at the console\n", out.String())
}

// TestBootMachines boots hello on each QEMU machine type with each boot
// protocol the machine's loader takes.
func TestBootMachines(t *testing.T) {
	tests := []struct {
		machine, boot string
	}{
		{"pc", bootMultiboot},
		{"pc", bootPVH},
		{"q35", bootBoth},
		{"microvm", bootPVH},
		{"microvm", bootBoth},
	}
	for _, tc := range tests {
		t.Run(tc.machine+"/"+tc.boot, func(t *testing.T) {
			img := imageBoot(t, "examples/hello", tc.boot)
			r := bootImage(t, runOptions{Image: img, Machine: tc.machine, Args: []string{tc.machine}, Summary: true})
			require.NoError(t, r.err)
			assert.Equal(t, 0, r.code)
			assert.True(t, strings.HasPrefix(r.console, "Hello, "+tc.machine+"!\n"), r.console)
			assert.Regexp(t, `tsc 2?[0-9]{6,7} kHz`, r.console, "calibrated TSC")
		})
	}
}

func TestMakeImageProtocols(t *testing.T) {
	for _, boot := range []string{bootMultiboot, bootPVH, bootBoth} {
		t.Run(boot, func(t *testing.T) {
			raw, err := os.ReadFile(imageBoot(t, "examples/hello", boot))
			require.NoError(t, err)
			f, err := elf.NewFile(bytes.NewReader(raw))
			require.NoError(t, err)
			var notes, stacks int
			for _, p := range f.Progs {
				switch p.Type {
				case elf.PT_NOTE:
					notes++
				case elf.PT_GNU_STACK:
					stacks++
				}
			}
			hasMB := bytes.Contains(raw[:mbSearchLen], []byte{0x02, 0xb0, 0xad, 0x1b})
			assert.Equal(t, boot != bootPVH, hasMB, "multiboot magic")
			if boot == bootMultiboot {
				assert.Equal(t, 1, notes)
				assert.Equal(t, 1, stacks)
			} else {
				assert.Equal(t, 2, notes, "Go build ID and PVH notes")
				assert.Zero(t, stacks)
				assert.True(t, bytes.Contains(raw[:mbSearchLen], []byte("Xen\x00")))
			}
		})
	}
}

func TestBootStressMicrovm(t *testing.T) {
	img := imageBoot(t, "examples/stress", bootPVH)
	r := bootImage(t, runOptions{Image: img, Machine: "microvm"})
	require.NoError(t, r.err)
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "PASS goroutines\nPASS timers\nPASS gc\nPASS preempt\nPASS nilderef\n", r.console)
}

// TestBootVDSO checks that clock reads go through the vDSO (no system
// calls) unless it is switched off.
func TestBootVDSO(t *testing.T) {
	img := image(t, "examples/stress")
	tests := []struct {
		name    string
		noVDSO  bool
		syscall bool
	}{
		{"vdso", false, false},
		{"no vdso", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bootImage(t, runOptions{Image: img, Args: []string{"timers"}, Summary: true, NoVDSO: tc.noVDSO})
			require.NoError(t, r.err)
			assert.Equal(t, 0, r.code)
			assert.Contains(t, r.console, "PASS timers\n")
			assert.Equal(t, tc.syscall, strings.Contains(r.console, " clock_gettime="), r.console)
		})
	}
}

func TestBootProbe(t *testing.T) {
	img := image(t, "examples/probe")
	r := bootImage(t, runOptions{Image: img})
	require.NoError(t, r.err)
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "PASS goroutines\nPASS maps\nPASS json\nPASS regexp\nPASS recursion\nPASS tls\n", r.console)
}

func TestBootVirtioNet(t *testing.T) {
	img := image(t, "examples/devices")
	r := bootImage(t, runOptions{Image: img, HubNICs: 2})
	require.NoError(t, r.err)
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.console, "virtio-net at 00:02.0 mac ")
	assert.Contains(t, r.console, "virtio-net at 00:03.0 mac ")
	assert.Contains(t, r.console, "virtio-net: 100 frames crossed the hub\n")
}

// TestBootNetTCP runs two netstacks in one unikernel over two virtio-net
// NICs on a QEMU hub and moves 4 MiB over TCP between them.
func TestBootNetTCP(t *testing.T) {
	img := image(t, "examples/nettcp")
	r := bootImage(t, runOptions{Image: img, HubNICs: 2, Args: []string{"4194304"}})
	require.NoError(t, r.err)
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.console, "tcp: 4194304 bytes over two virtio-net NICs, sha256 ok\n")
	assert.Regexp(t, `nettcp: [0-9.]+ MB/s`, r.console)
}
