package virtio

import (
	"errors"
	"fmt"
)

// Transport is a virtio device as reached through one transport (PCI,
// MMIO). Drivers use only this interface, so they do not know which
// transport they sit on. Packages virtio/mmio and virtio/pci provide it.
//
// Methods are called by one driver, but from several goroutines at once:
// a driver's receive and transmit sides reset their own queues
// independently, and configuration reads may overlap a device reset. Each
// method must therefore be atomic with respect to the others; in
// particular a queue or feature selector write and the register accesses
// that depend on it must not interleave with another call's (the mmio and
// pci transports hold a lock across them). The driver orders the calls
// that must happen in sequence, such as the steps of initialisation.
type Transport interface {
	// DeviceID says what kind of device this is.
	DeviceID() DeviceID

	// DeviceFeatures reads the 64 feature bits the device offers.
	DeviceFeatures() uint64
	// SetDriverFeatures writes the feature bits the driver accepts.
	SetDriverFeatures(f uint64)

	// Status reads the device status byte; SetStatus writes it.
	Status() uint8
	SetStatus(s uint8)
	// Reset resets the device (writes 0 to the status and waits until the
	// device reads back 0). It fails if the device does not finish.
	Reset() error

	// Config is the device-specific configuration space.
	Config() Regs
	// ConfigGeneration is the configuration generation counter.
	ConfigGeneration() uint32

	// NumQueues returns how many queues the transport can tell exist, or
	// -1 if it cannot tell (MMIO).
	NumQueues() int
	// QueueMax returns the largest size queue q supports, 0 if queue q does
	// not exist.
	QueueMax(q int) int
	// SetupQueue gives queue q its size and the bus addresses of its
	// descriptor table, driver (available) and device (used) areas, and
	// enables it.
	SetupQueue(q, size int, desc, driver, device uint64) error
	// ResetQueue resets queue q alone (VIRTIO_F_RING_RESET). It returns an
	// error wrapping errors.ErrUnsupported if the transport cannot.
	ResetQueue(q int) error
	// Notify tells the device queue q has new available buffers.
	Notify(q int)

	// DMA is the memory the device can reach.
	DMA() DMA

	// Start begins delivering interrupts: onQueue(q) when queue q may have
	// used buffers (q < 0: any queue may), onConfig when the configuration
	// or the device status changed. The callbacks run on a goroutine of the
	// transport and must not block for long.
	Start(onQueue func(q int), onConfig func()) error
	// Stop ends interrupt delivery and waits for the callbacks to return.
	Stop()
}

// Errors a driver reports.
var (
	// ErrDevice reports a device that broke the virtio protocol (a used
	// entry out of range, a length beyond the buffer, a refused feature):
	// the device is untrusted input and the driver stops using the queue.
	ErrDevice = errors.New("virtio: device misbehaved")
	// ErrNeedsReset reports a device that set DEVICE_NEEDS_RESET.
	ErrNeedsReset = errors.New("virtio: device needs reset")
)

// negotiate runs the initialisation sequence of virtio 1.2 §3.1.1 up to
// FEATURES_OK: reset, ACKNOWLEDGE, DRIVER, feature negotiation. It accepts
// the features in want that the device offers and fails, leaving the
// device FAILED, if any feature in need is missing. VIRTIO_F_VERSION_1 is
// always needed.
func negotiate(t Transport, id DeviceID, want, need uint64) (uint64, error) {
	if got := t.DeviceID(); got != id {
		return 0, fmt.Errorf("virtio: device is %v, not %v", got, id)
	}
	if err := t.Reset(); err != nil {
		return 0, err
	}
	t.SetStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE)
	t.SetStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER)
	need |= Bit(VIRTIO_F_VERSION_1)
	offered := t.DeviceFeatures()
	if missing := need &^ offered; missing != 0 {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		return 0, fmt.Errorf("virtio-%v: device lacks required features %#x: %w", id, missing, errors.ErrUnsupported)
	}
	f := offered & (want | need)
	t.SetDriverFeatures(f)
	t.SetStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)
	if t.Status()&VIRTIO_CONFIG_S_FEATURES_OK == 0 {
		t.SetStatus(t.Status() | VIRTIO_CONFIG_S_FAILED)
		return 0, fmt.Errorf("virtio-%v: device refused features %#x: %w", id, f, ErrDevice)
	}
	return f, nil
}

// driverOK finishes initialisation (§3.1.1 step 8).
func driverOK(t Transport) error {
	t.SetStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK)
	if s := t.Status(); s&VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET != 0 || s&VIRTIO_CONFIG_S_DRIVER_OK == 0 {
		return fmt.Errorf("virtio-%v: device status %#x after DRIVER_OK: %w", t.DeviceID(), s, ErrNeedsReset)
	}
	return nil
}

// maxConfigRetries bounds how often a configuration read is retried while
// the generation counter keeps changing.
const maxConfigRetries = 64

// readConfig calls read until it sees the same configuration generation
// before and after (§2.5.1), giving up on a device whose configuration
// never settles.
func readConfig(t Transport, read func(c Regs)) error {
	for range maxConfigRetries {
		g := t.ConfigGeneration()
		read(t.Config())
		if t.ConfigGeneration() == g {
			return nil
		}
	}
	return fmt.Errorf("virtio-%v: configuration changed during %d reads: %w", t.DeviceID(), maxConfigRetries, ErrDevice)
}
