package mem

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anykernel/anykernel/hal"
)

// ErrInjected is wrapped by every error a [FaultyBlock] makes up. It is an
// I/O error: errors.Is(err, hal.ErrIO) and errors.Is(err, syscall.EIO) hold.
var ErrInjected = fmt.Errorf("mem: injected fault: %w (%w)", hal.ErrIO, syscall.EIO)

// blockErrNoDiscard is wrapped when a decorator's inner device cannot discard.
var blockErrNoDiscard = fmt.Errorf("inner device cannot discard: %w", errors.ErrUnsupported)

// BlockFaults describes the faults a [FaultyBlock] injects. The zero value
// injects nothing.
type BlockFaults struct {
	// Seed seeds the random choices. The same seed and the same sequence of
	// calls give the same faults.
	Seed uint64

	// ReadErrorRate, WriteErrorRate and SyncErrorRate are the probabilities
	// (0 to 1) that a ReadAt, a WriteAt (or WriteAtFUA) and a Sync fail.
	// A failing read transfers nothing; a failing write first writes a
	// random number (possibly zero) of the leading sectors of the request
	// and returns that count; a failing Sync does not reach the inner
	// device, so nothing is made durable.
	ReadErrorRate, WriteErrorRate, SyncErrorRate float64

	// BadSectors lists sector numbers that fail every read, write and
	// discard touching them. I/O on a range holding a bad sector transfers
	// the sectors before the first bad one and returns their byte count.
	BadSectors []int64

	// Latency delays every ReadAt, WriteAt, WriteAtFUA, Discard and Sync.
	Latency time.Duration
	// Clock measures Latency; nil means real time. With a manual clock a
	// delayed call blocks until the clock is advanced.
	Clock hal.Clock
}

// BlockFaultStats counts the faults a FaultyBlock has injected.
type BlockFaultStats struct {
	ReadErrors, WriteErrors, SyncErrors, DiscardErrors uint64
}

// FaultyBlock wraps a hal.BlockDevice and injects I/O errors and latency.
// Faults can be changed while the device is in use.
//
// It implements hal.Discarder (returning an error wrapping
// errors.ErrUnsupported when the inner device cannot discard),
// hal.FUAWriter (a WriteAt followed by a Sync of the inner device when it
// has no FUA writes) and hal.ReadOnlyDevice (the inner device's answer).
// Close closes the inner device.
//
// Random faults are drawn from one generator in call order, so they are
// reproducible for a given seed when calls are made in the same order
// (for example from one goroutine).
type FaultyBlock struct {
	inner  hal.BlockDevice
	clock  hal.Clock
	closed atomic.Bool

	mu                            sync.Mutex
	rng                           *rand.Rand
	readRate, writeRate, syncRate float64
	bad                           map[int64]struct{}
	latency                       time.Duration
	dead                          bool
	stats                         BlockFaultStats
}

var (
	_ hal.Discarder      = (*FaultyBlock)(nil)
	_ hal.FUAWriter      = (*FaultyBlock)(nil)
	_ hal.ReadOnlyDevice = (*FaultyBlock)(nil)
)

// NewFaultyBlock returns inner wrapped to inject the faults f. Rates are
// clamped to [0, 1] (NaN counts as 0).
func NewFaultyBlock(inner hal.BlockDevice, f BlockFaults) *FaultyBlock {
	fb := &FaultyBlock{
		inner:     inner,
		clock:     f.Clock,
		rng:       rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15)),
		readRate:  faultRate(f.ReadErrorRate),
		writeRate: faultRate(f.WriteErrorRate),
		syncRate:  faultRate(f.SyncErrorRate),
		bad:       make(map[int64]struct{}, len(f.BadSectors)),
		latency:   max(f.Latency, 0),
	}
	for _, s := range f.BadSectors {
		fb.bad[s] = struct{}{}
	}
	return fb
}

func faultRate(r float64) float64 {
	if math.IsNaN(r) || r < 0 {
		return 0
	}
	return min(r, 1)
}

// FailSector makes sector n bad: every I/O touching it fails from now on.
func (f *FaultyBlock) FailSector(n int64) {
	f.mu.Lock()
	f.bad[n] = struct{}{}
	f.mu.Unlock()
}

// HealSector makes sector n good again.
func (f *FaultyBlock) HealSector(n int64) {
	f.mu.Lock()
	delete(f.bad, n)
	f.mu.Unlock()
}

// FailAll makes every subsequent ReadAt, WriteAt, WriteAtFUA, Discard and
// Sync fail, as if the device had gone away, until Heal.
func (f *FaultyBlock) FailAll() {
	f.mu.Lock()
	f.dead = true
	f.mu.Unlock()
}

// SetErrorRates changes the random error rates (see [BlockFaults]).
func (f *FaultyBlock) SetErrorRates(read, write, sync float64) {
	f.mu.Lock()
	f.readRate, f.writeRate, f.syncRate = faultRate(read), faultRate(write), faultRate(sync)
	f.mu.Unlock()
}

// SetLatency changes the delay added to every operation.
func (f *FaultyBlock) SetLatency(d time.Duration) {
	f.mu.Lock()
	f.latency = max(d, 0)
	f.mu.Unlock()
}

// Heal removes every error fault: bad sectors, error rates and FailAll.
// Latency is kept.
func (f *FaultyBlock) Heal() {
	f.mu.Lock()
	clear(f.bad)
	f.readRate, f.writeRate, f.syncRate = 0, 0, 0
	f.dead = false
	f.mu.Unlock()
}

// Stats returns the counts of injected faults.
func (f *FaultyBlock) Stats() BlockFaultStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// SectorSize implements hal.BlockDevice.
func (f *FaultyBlock) SectorSize() int { return f.inner.SectorSize() }

// Size implements hal.BlockDevice.
func (f *FaultyBlock) Size() int64 { return f.inner.Size() }

// ReadOnly implements hal.ReadOnlyDevice.
func (f *FaultyBlock) ReadOnly() bool { return hal.IsReadOnly(f.inner) }

func (f *FaultyBlock) delay() {
	f.mu.Lock()
	d := f.latency
	f.mu.Unlock()
	if d <= 0 {
		return
	}
	if f.clock == nil {
		time.Sleep(d)
		return
	}
	done := make(chan struct{})
	f.clock.AfterFunc(d, func() { close(done) })
	<-done
}

func (f *FaultyBlock) check(op string, off, length int64) error {
	if f.closed.Load() {
		return fmt.Errorf("mem faulty block: %s: %w", op, hal.ErrClosed)
	}
	if err := hal.CheckRange(f, op, off, length); err != nil {
		return fmt.Errorf("mem faulty block: %w", err)
	}
	return nil
}

// fault decides the fate of an I/O on [off, off+length): it returns the
// number of leading bytes to transfer and the error to return after them
// (nil: no fault, transfer everything). Called with f.mu held.
func (f *FaultyBlock) fault(op string, off, length int64, rate float64, partial bool) (int64, error) {
	if length == 0 {
		return 0, nil // the contract makes zero-length calls succeed
	}
	if f.dead {
		return 0, fmt.Errorf("mem faulty block: %s %d bytes at %d: device failed: %w", op, length, off, ErrInjected)
	}
	ss := int64(f.inner.SectorSize())
	first, nsec := off/ss, length/ss
	badAt := int64(-1)
	if int64(len(f.bad)) < nsec {
		for s := range f.bad {
			if s >= first && s < first+nsec && (badAt < 0 || s < badAt) {
				badAt = s
			}
		}
	} else {
		for s := first; s < first+nsec; s++ {
			if _, ok := f.bad[s]; ok {
				badAt = s
				break
			}
		}
	}
	if badAt >= 0 {
		return (badAt - first) * ss, fmt.Errorf("mem faulty block: %s: bad sector %d: %w", op, badAt, ErrInjected)
	}
	if rate > 0 && f.rng.Float64() < rate {
		n := int64(0)
		if partial && nsec > 0 {
			n = f.rng.Int64N(nsec) * ss
		}
		return n, fmt.Errorf("mem faulty block: %s %d bytes at %d: %w", op, length, off, ErrInjected)
	}
	return length, nil
}

// ReadAt implements hal.BlockDevice.
func (f *FaultyBlock) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read", off, int64(len(p))); err != nil {
		return 0, err
	}
	f.delay()
	f.mu.Lock()
	n, ferr := f.fault("read", off, int64(len(p)), f.readRate, false)
	if ferr != nil {
		f.stats.ReadErrors++
	}
	f.mu.Unlock()
	if n == 0 && ferr != nil {
		return 0, ferr
	}
	got, err := f.inner.ReadAt(p[:n], off)
	if err != nil {
		return got, err
	}
	return got, ferr
}

// WriteAt implements hal.BlockDevice.
func (f *FaultyBlock) WriteAt(p []byte, off int64) (int, error) {
	return f.write("write", p, off, f.inner.WriteAt)
}

// WriteAtFUA implements hal.FUAWriter.
func (f *FaultyBlock) WriteAtFUA(p []byte, off int64) (int, error) {
	if fw, ok := f.inner.(hal.FUAWriter); ok {
		return f.write("fua write", p, off, fw.WriteAtFUA)
	}
	return f.write("fua write", p, off, func(p []byte, off int64) (int, error) {
		n, err := f.inner.WriteAt(p, off)
		if err != nil {
			return n, err
		}
		if err := f.inner.Sync(); err != nil {
			return 0, err
		}
		return n, nil
	})
}

func (f *FaultyBlock) write(op string, p []byte, off int64, w func([]byte, int64) (int, error)) (int, error) {
	if err := f.check(op, off, int64(len(p))); err != nil {
		return 0, err
	}
	f.delay()
	f.mu.Lock()
	n, ferr := f.fault(op, off, int64(len(p)), f.writeRate, true)
	if ferr != nil {
		f.stats.WriteErrors++
	}
	f.mu.Unlock()
	if n == 0 && ferr != nil {
		return 0, ferr
	}
	got, err := w(p[:n], off)
	if err != nil {
		return got, err
	}
	return got, ferr
}

// Discard implements hal.Discarder. Bad sectors and FailAll apply to it;
// random error rates do not.
func (f *FaultyBlock) Discard(off, length int64) error {
	if err := f.check("discard", off, length); err != nil {
		return err
	}
	d, ok := f.inner.(hal.Discarder)
	if !ok {
		return fmt.Errorf("mem faulty block: discard: %w", blockErrNoDiscard)
	}
	f.delay()
	f.mu.Lock()
	n, ferr := f.fault("discard", off, length, 0, false)
	if ferr != nil {
		f.stats.DiscardErrors++
	}
	f.mu.Unlock()
	if n > 0 {
		if err := d.Discard(off, n); err != nil {
			return err
		}
	}
	return ferr
}

// Sync implements hal.BlockDevice.
func (f *FaultyBlock) Sync() error {
	if f.closed.Load() {
		return fmt.Errorf("mem faulty block: sync: %w", hal.ErrClosed)
	}
	f.delay()
	f.mu.Lock()
	var ferr error
	switch {
	case f.dead:
		ferr = fmt.Errorf("mem faulty block: sync: device failed: %w", ErrInjected)
	case f.syncRate > 0 && f.rng.Float64() < f.syncRate:
		ferr = fmt.Errorf("mem faulty block: sync: %w", ErrInjected)
	}
	if ferr != nil {
		f.stats.SyncErrors++
	}
	f.mu.Unlock()
	if ferr != nil {
		return ferr
	}
	return f.inner.Sync()
}

// Close implements hal.BlockDevice; it closes the inner device.
func (f *FaultyBlock) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	return f.inner.Close()
}
