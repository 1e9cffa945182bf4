package haltest_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/haltest"
	"github.com/anykernel/anykernel/hal/mem"
)

// The suites must be able to fail. Each case below breaks one clause of a
// contract in a thin wrapper around a correct in-memory device, runs the
// suite in a child test process, and checks that the child fails in the
// subtest that owns that clause — and that the unbroken wrapper passes.

const brokenEnv = "HALTEST_BROKEN"

func TestSuitesCatchBrokenBackends(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child test processes")
	}
	cases := []struct {
		defect   string
		wantFail string // subtest expected to fail; "" means the child must pass
	}{
		{"block-healthy", ""},
		{"block-ignores-alignment", "TestBrokenBackend/Misaligned"},
		{"block-short-read-at-end", "TestBrokenBackend/OutOfRange"},
		{"block-works-after-close", "TestBrokenBackend/UseAfterClose"},
		{"nic-healthy", ""},
		{"nic-keeps-buffer", "TestBrokenBackend/WriterKeepsNoBuffer"},
		{"nic-swallows-oversize", "TestBrokenBackend/FrameSizeLimits"},
		{"vec-healthy", ""},
		{"vec-gather-keeps-buffer", "TestBrokenBackend/Gather/one-buffer"},
		{"vec-gather-swallows-oversize", "TestBrokenBackend/Gather/frame-size-limits"},
		{"clock-healthy", ""},
		{"clock-fires-early", "TestBrokenBackend/AfterFuncNotEarly"},
		{"clock-stop-lies", "TestBrokenBackend/Stop"},
		{"console-healthy", ""},
		{"console-translates-newlines", "TestBrokenBackend/Output"},
		{"entropy-repeats", "TestBrokenBackend/NoRepeats"},
	}
	for _, c := range cases {
		t.Run(c.defect, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenBackend$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+c.defect)
			out, err := cmd.CombinedOutput()
			if c.wantFail == "" {
				require.NoError(t, err, "the unbroken wrapper must pass the suite:\n%s", out)
				require.Contains(t, string(out), "--- PASS: TestBrokenBackend")
				return
			}
			require.Error(t, err, "suite passed a backend with defect %s:\n%s", c.defect, out)
			require.Contains(t, string(out), "--- FAIL: "+c.wantFail+" ", "defect %s not caught by the right subtest:\n%s", c.defect, out)
		})
	}
}

// TestBrokenBackend is the child half of TestSuitesCatchBrokenBackends; it
// does nothing unless HALTEST_BROKEN names a defect.
func TestBrokenBackend(t *testing.T) {
	defect := os.Getenv(brokenEnv)
	if defect == "" {
		t.Skip("child process of TestSuitesCatchBrokenBackends")
	}
	kind, _, _ := strings.Cut(defect, "-")
	switch kind {
	case "block":
		haltest.TestBlockDevice(t, func(t *testing.T) hal.BlockDevice {
			d, err := mem.NewBlock(1<<20, mem.BlockOptions{})
			require.NoError(t, err)
			return &brokenBlock{Block: d, defect: defect}
		})
	case "nic":
		haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
			a, b := mem.NewNICPair(mem.NICOptions{})
			return &brokenNIC{NIC: a, defect: defect}, b
		})
	case "vec":
		haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
			a, b := mem.NewNICPair(mem.NICOptions{})
			return a, &vecNIC{NIC: b, defect: defect}
		})
	case "clock":
		haltest.TestClock(t, func(t *testing.T) (hal.Clock, func(time.Duration)) {
			c := mem.NewClock(time.Unix(1700000000, 0))
			return &brokenClock{Clock: c, defect: defect}, c.Advance
		})
	case "console":
		haltest.TestConsole(t, func(t *testing.T) (hal.Console, io.ReadWriter) {
			c := mem.NewConsole()
			return &brokenConsole{Console: c, defect: defect}, c.Operator()
		})
	case "entropy":
		haltest.TestEntropy(t, repeatingEntropy{})
	default:
		t.Fatalf("unknown defect %q", defect)
	}
}

type brokenBlock struct {
	*mem.Block
	defect string
	closed bool
}

func (b *brokenBlock) ReadAt(p []byte, off int64) (int, error) {
	switch b.defect {
	case "block-ignores-alignment":
		if off%int64(b.SectorSize()) != 0 || len(p)%b.SectorSize() != 0 {
			return len(p), nil
		}
	case "block-short-read-at-end":
		if off >= 0 && off < b.Size() && off+int64(len(p)) > b.Size() {
			n, _ := b.Block.ReadAt(p[:b.Size()-off], off)
			return n, io.EOF
		}
	case "block-works-after-close":
		if b.closed {
			return len(p), nil
		}
	}
	return b.Block.ReadAt(p, off)
}

func (b *brokenBlock) WriteAt(p []byte, off int64) (int, error) {
	switch b.defect {
	case "block-ignores-alignment":
		if off%int64(b.SectorSize()) != 0 || len(p)%b.SectorSize() != 0 {
			return len(p), nil
		}
	case "block-works-after-close":
		if b.closed {
			return len(p), nil
		}
	}
	return b.Block.WriteAt(p, off)
}

func (b *brokenBlock) Sync() error {
	if b.defect == "block-works-after-close" && b.closed {
		return nil
	}
	return b.Block.Sync()
}

func (b *brokenBlock) Close() error {
	b.closed = true
	if b.defect == "block-works-after-close" {
		return nil
	}
	return b.Block.Close()
}

type brokenNIC struct {
	*mem.NIC
	defect string
}

func (n *brokenNIC) WriteFrame(p []byte) error {
	switch n.defect {
	case "nic-keeps-buffer":
		// Sends a moment later from the caller's buffer, which by then may
		// have been reused.
		done := make(chan struct{})
		go func() {
			close(done)
			time.Sleep(time.Millisecond)
			n.NIC.WriteFrame(p)
		}()
		<-done
		return nil
	case "nic-swallows-oversize":
		if len(p) > hal.MaxFrameLen(n) || len(p) < hal.EthernetHeaderLen {
			return nil
		}
	}
	return n.NIC.WriteFrame(p)
}

// vecNIC adds hal.VecNIC to a mem NIC through a flat buffer.
type vecNIC struct {
	*mem.NIC
	defect string
}

func (n *vecNIC) ReadFrameHdrVec(bufs [][]byte) (int, hal.NetHdr, error) {
	if len(bufs) > hal.MaxVecBufs {
		return 0, hal.NetHdr{}, errors.ErrUnsupported
	}
	flat := make([]byte, hal.MaxOffloadFrame)
	k, h, err := n.ReadFrameHdr(flat)
	if err != nil {
		return 0, h, err
	}
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	if total < k {
		return 0, hal.NetHdr{}, io.ErrShortBuffer
	}
	rest := flat[:k]
	for _, b := range bufs {
		rest = rest[copy(b, rest):]
	}
	return k, h, nil
}

func (n *vecNIC) WriteFrameHdrVec(h *hal.NetHdr, bufs [][]byte) error {
	if len(bufs) > hal.MaxVecBufs {
		return errors.ErrUnsupported
	}
	var flat []byte
	for _, b := range bufs {
		flat = append(flat, b...)
	}
	switch n.defect {
	case "vec-gather-keeps-buffer":
		// Gathers a moment later, from buffers the caller has reused.
		go func() {
			time.Sleep(time.Millisecond)
			var late []byte
			for _, b := range bufs {
				late = append(late, b...)
			}
			n.WriteFrameHdr(h, late)
		}()
		return nil
	case "vec-gather-swallows-oversize":
		if len(flat) > hal.MaxFrameLen(n) || len(flat) < hal.EthernetHeaderLen {
			return nil
		}
	}
	return n.WriteFrameHdr(h, flat)
}

type brokenClock struct {
	*mem.Clock
	defect string
}

func (c *brokenClock) AfterFunc(d time.Duration, f func()) hal.Timer {
	if c.defect == "clock-fires-early" {
		d /= 2
	}
	t := c.Clock.AfterFunc(d, f)
	if c.defect == "clock-stop-lies" {
		return lyingTimer{t}
	}
	return t
}

type lyingTimer struct{ hal.Timer }

func (lyingTimer) Stop() bool { return true }

type brokenConsole struct {
	*mem.Console
	defect string
}

func (c *brokenConsole) Write(p []byte) (int, error) {
	if c.defect == "console-translates-newlines" {
		_, err := c.Console.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n")))
		return len(p), err
	}
	return c.Console.Write(p)
}

// repeatingEntropy returns the same well-spread bytes on every call.
type repeatingEntropy struct{}

func (repeatingEntropy) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*131 + i/256)
	}
	return len(p), nil
}

// TestSmallMTU runs the NIC suite at the smallest MTU a NIC may have.
func TestSmallMTU(t *testing.T) {
	haltest.TestNIC(t, func(t *testing.T) (hal.NIC, hal.NIC) {
		a, b := mem.NewNICPair(mem.NICOptions{MTU: hal.MinMTU, QueueLen: 16})
		return a, b
	})
}
