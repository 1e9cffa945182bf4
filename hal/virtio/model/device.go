package model

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anykernel/anykernel/hal/virtio"
)

// Faults are misbehaviours the device commits on request, to prove the
// drivers treat the device as untrusted input. The zero value is a
// well-behaved device.
type Faults struct {
	// Queues limits the queue faults to the queues whose bit is set; 0
	// means every queue.
	Queues uint64
	// UsedLenExtra is added to every used length (lengths beyond the
	// buffer).
	UsedLenExtra uint32
	// BadUsedID reports used entries with an id beyond the queue size.
	BadUsedID bool
	// DuplicateUsed publishes every used entry twice.
	DuplicateUsed bool
	// UsedIdxJump moves the used index this much further than the
	// entries written.
	UsedIdxJump uint16
	// CorruptDescriptors overwrites a completed chain's head descriptor
	// with a link to itself (a loop) before returning it.
	CorruptDescriptors bool
	// Stall stops completing chains; StallAfter stops after that many
	// completions on a queue.
	Stall      bool
	StallAfter int
	// Delay is slept before each completion (slow completions).
	Delay time.Duration
	// UnsettledConfig bumps the configuration generation on every
	// configuration read, as if it changed under the driver's feet.
	UnsettledConfig bool
	// RefuseFeatures makes the device clear FEATURES_OK whatever the
	// driver accepted.
	RefuseFeatures bool
}

// IRQ is an interrupt line or vector of the model: it implements
// virtio.Interrupt.
type IRQ struct{ ch chan struct{} }

// NewIRQ returns a quiet interrupt.
func NewIRQ() *IRQ { return &IRQ{ch: make(chan struct{}, 1)} }

// Fire raises the interrupt; raises before the next Wait coalesce.
func (i *IRQ) Fire() {
	select {
	case i.ch <- struct{}{}:
	default:
	}
}

// Wait implements virtio.Interrupt.
func (i *IRQ) Wait(stop <-chan struct{}) bool {
	select {
	case <-i.ch:
		return true
	case <-stop:
		return false
	}
}

// Backend is the device-type specific part of a device: what it offers and
// how it serves its queues.
type Backend interface {
	DeviceID() virtio.DeviceID
	// Features returns the device-type feature bits offered.
	Features() uint64
	// NumQueues is the number of queues.
	NumQueues() int
	// Config writes the configuration space into p.
	Config(p []byte)
	// ConfigLen is the size of the configuration space.
	ConfigLen() int
	// Start serves the queues of a running device on goroutines started
	// with r.Go; they must return when r.Stop is closed.
	Start(r *Run)
}

// Run is one life of a device between DRIVER_OK and reset.
type Run struct {
	Queues   []*VQ
	Features uint64
	Stop     chan struct{}
	Faults   func() *Faults
	wg       sync.WaitGroup
}

// Go runs f on a goroutine of the run.
func (r *Run) Go(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// Delay sleeps for the configured completion delay, if any, or until stop.
func (r *Run) Delay() {
	if f := r.Faults(); f != nil && f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Stop:
			t.Stop()
		}
	}
}

// Options configures a Device.
type Options struct {
	// QueueSize is the largest queue size offered; zero means 256.
	QueueSize int
	// HideFeatures are feature bits (generic or device-type) the device
	// does not offer though it could.
	HideFeatures uint64
	// Faults are the initial misbehaviours; see Device.SetFaults.
	Faults Faults
}

// Device is the transport-independent core of a modelled virtio device:
// status, features, queue configuration, configuration space and
// interrupts. The MMIO and PCI views expose it as registers.
type Device struct {
	mem     *Memory
	backend Backend
	opts    Options

	mu         sync.Mutex
	faults     atomic.Pointer[Faults]
	offered    uint64
	devSel     uint32
	drvSel     uint32
	driverF    uint64
	status     uint8
	queueSel   uint32
	queues     []queueCfg
	isr        uint32
	generation uint32
	run        *Run
	err        error
	resets     int
	qresets    int

	// Interrupt routing: with MSI-X, vectors index lines; without, line 0.
	lines     []*IRQ
	msix      bool
	configVec uint16
}

type queueCfg struct {
	size                 int
	desc, driver, device uint64
	ready                bool
	vector               uint16
	vq                   *VQ
}

// noVector is VIRTIO_MSI_NO_VECTOR (§4.1.4.3).
const noVector = 0xffff

// NewDevice models a device of the given backend in guest memory mem.
func NewDevice(mem *Memory, b Backend, o Options) *Device {
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	d := &Device{mem: mem, backend: b, opts: o, lines: []*IRQ{NewIRQ()}, configVec: noVector}
	f := o.Faults
	d.faults.Store(&f)
	d.offered = (b.Features() | 1<<virtio.VIRTIO_F_VERSION_1 | 1<<virtio.VIRTIO_F_INDIRECT_DESC |
		1<<virtio.VIRTIO_F_EVENT_IDX | 1<<virtio.VIRTIO_F_RING_RESET) &^ o.HideFeatures
	d.queues = make([]queueCfg, b.NumQueues())
	d.resetLocked()
	if bb, ok := b.(interface{ Bind(*Device) }); ok {
		bb.Bind(d)
	}
	return d
}

// SetFaults changes the misbehaviours from now on.
func (d *Device) SetFaults(f Faults) { d.faults.Store(&f) }

func (d *Device) currentFaults() *Faults { return d.faults.Load() }

// Err returns the protocol error that made the device need a reset, if
// any.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Status returns the device status byte.
func (d *Device) Status() uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// DriverFeatures returns the features the driver accepted.
func (d *Device) DriverFeatures() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.driverF
}

// ConfigChanged tells the driver the configuration changed (after the
// backend changed it): the generation moves and a configuration interrupt
// is raised.
func (d *Device) ConfigChanged() {
	d.mu.Lock()
	d.generation++
	d.mu.Unlock()
	d.raiseConfig()
}

// resetLocked returns the device to its initial state; the run must have
// been stopped.
func (d *Device) resetLocked() {
	d.status, d.driverF, d.devSel, d.drvSel, d.queueSel, d.isr = 0, 0, 0, 0, 0, 0
	d.err = nil
	d.configVec = noVector
	for i := range d.queues {
		d.queues[i] = queueCfg{size: d.opts.QueueSize, vector: noVector}
	}
}

// stopRun stops the running backend; it must be called without d.mu.
func (d *Device) stopRun(r *Run) {
	if r == nil {
		return
	}
	close(r.Stop)
	for _, q := range r.Queues {
		if q != nil {
			q.Kick()
		}
	}
	r.wg.Wait()
}

func (d *Device) setStatus(s uint8) {
	d.mu.Lock()
	if s == 0 {
		d.resets++
		r := d.run
		d.run = nil
		d.mu.Unlock()
		d.stopRun(r)
		d.mu.Lock()
		d.resetLocked()
		d.mu.Unlock()
		return
	}
	defer d.mu.Unlock()
	if s&virtio.VIRTIO_CONFIG_S_FEATURES_OK != 0 && d.status&virtio.VIRTIO_CONFIG_S_FEATURES_OK == 0 {
		ok := d.driverF&^d.offered == 0 && d.driverF&(1<<virtio.VIRTIO_F_VERSION_1) != 0 && !d.currentFaults().RefuseFeatures
		if !ok {
			s &^= virtio.VIRTIO_CONFIG_S_FEATURES_OK
		}
	}
	if s&virtio.VIRTIO_CONFIG_S_DRIVER_OK != 0 && d.status&virtio.VIRTIO_CONFIG_S_DRIVER_OK == 0 {
		if d.status&virtio.VIRTIO_CONFIG_S_FEATURES_OK == 0 {
			s &^= virtio.VIRTIO_CONFIG_S_DRIVER_OK
		} else if err := d.startLocked(); err != nil {
			d.err = err
			s |= virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET
		}
	}
	d.status = s | d.status&virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET
}

func (d *Device) startLocked() error {
	r := &Run{Features: d.driverF, Stop: make(chan struct{}), Faults: d.currentFaults}
	r.Queues = make([]*VQ, len(d.queues))
	for i := range d.queues {
		q, err := d.makeVQ(i)
		if err != nil {
			return err
		}
		r.Queues[i] = q
	}
	d.run = r
	d.backend.Start(r)
	return nil
}

// makeVQ builds the device side of queue i from its configuration; a queue
// the driver did not enable stays disabled until it does.
func (d *Device) makeVQ(i int) (*VQ, error) {
	c := &d.queues[i]
	q := &VQ{mem: d.mem, index: i, features: d.driverF, kick: make(chan struct{}, 1), stats: &queueStats{},
		onUsed: d.raiseQueue, onError: d.fail, faults: d.currentFaults}
	if c.ready {
		if err := q.enable(c.size, c.desc, c.driver, c.device); err != nil {
			return nil, err
		}
	}
	c.vq = q
	return q, nil
}

// fail records a protocol error of the driver and asks for a reset
// (§2.1.2).
func (d *Device) fail(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.status |= virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET
	d.mu.Unlock()
	d.raiseConfig()
}

func (d *Device) raiseQueue(q int) {
	d.mu.Lock()
	var line *IRQ
	if d.msix {
		if q < len(d.queues) {
			if v := d.queues[q].vector; int(v) < len(d.lines) {
				line = d.lines[v]
			}
		}
	} else {
		d.isr |= 1
		line = d.lines[0]
	}
	d.mu.Unlock()
	if line != nil {
		line.Fire()
	}
}

func (d *Device) raiseConfig() {
	d.mu.Lock()
	var line *IRQ
	if d.msix {
		if int(d.configVec) < len(d.lines) {
			line = d.lines[d.configVec]
		}
	} else {
		d.isr |= 2
		line = d.lines[0]
	}
	d.mu.Unlock()
	if line != nil {
		line.Fire()
	}
}

// configRead reads n (1, 2 or 4) bytes of configuration space at off.
func (d *Device) configRead(off uint32, n int) uint32 {
	var buf [256]byte
	l := d.backend.ConfigLen()
	if int(off)+n > l || l > len(buf) {
		return 0xffffffff >> (32 - 8*n)
	}
	if d.currentFaults().UnsettledConfig {
		d.mu.Lock()
		d.generation++
		d.mu.Unlock()
	}
	d.backend.Config(buf[:l])
	var v uint32
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint32(buf[int(off)+i])
	}
	return v
}

func (d *Device) configGeneration() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.generation
}

func (d *Device) featuresWord(sel uint32) uint32 {
	if sel > 1 {
		return 0
	}
	return uint32(d.offered >> (32 * sel))
}

// queueReset resets queue i alone (VIRTIO_F_RING_RESET, §2.6.1).
func (d *Device) queueReset(i int) {
	d.mu.Lock()
	if i >= len(d.queues) {
		d.mu.Unlock()
		return
	}
	c := &d.queues[i]
	vq := c.vq
	d.qresets++
	c.ready = false
	c.size = d.opts.QueueSize
	d.mu.Unlock()
	if vq != nil {
		vq.disable()
	}
}

// queueReady enables or disables queue i as the driver configured it.
func (d *Device) queueReady(i int, ready bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i >= len(d.queues) {
		return
	}
	c := &d.queues[i]
	c.ready = ready
	if ready && c.vq != nil && d.run != nil {
		if err := c.vq.enable(c.size, c.desc, c.driver, c.device); err != nil {
			d.err = err
			d.status |= virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET
			go d.raiseConfig()
			return
		}
		c.vq.Kick()
	}
}

func (d *Device) notify(i int) {
	d.mu.Lock()
	var vq *VQ
	if i >= 0 && i < len(d.queues) && d.run != nil {
		vq = d.queues[i].vq
	}
	d.mu.Unlock()
	if vq != nil {
		vq.stats.notifies.Add(1)
		vq.Kick()
	}
}

// QueueStats returns how many notifications the driver sent queue q and
// how many used-buffer interrupts the device raised for it since the
// driver last started the device.
func (d *Device) QueueStats(q int) (notifies, interrupts uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if q < 0 || q >= len(d.queues) || d.queues[q].vq == nil {
		return 0, 0
	}
	st := d.queues[q].vq.stats
	return st.notifies.Load(), st.interrupts.Load()
}

// Close stops the device's run.
func (d *Device) Close() error {
	d.setStatus(0)
	return nil
}

func errorf(format string, args ...any) error { return fmt.Errorf("model: "+format, args...) }

// Resets returns how many times the driver reset the whole device and how
// many times it reset a single queue.
func (d *Device) Resets() (device, queue int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.resets, d.qresets
}

// RequestReset sets DEVICE_NEEDS_RESET and raises a configuration
// interrupt, as a device that hit an internal error does (§2.1.2).
func (d *Device) RequestReset() {
	d.mu.Lock()
	d.status |= virtio.VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET
	d.mu.Unlock()
	d.raiseConfig()
}
