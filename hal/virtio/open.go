package virtio

import (
	"errors"
	"fmt"
)

// Open starts the driver that fits t's device type, with default options:
// a *Net for DeviceNet, *Block for DeviceBlock, *Console for DeviceConsole
// and *RNG for DeviceEntropy. A platform that enumerates devices calls it
// for each transport it finds; other device types return an error
// wrapping errors.ErrUnsupported and leave the device untouched.
func Open(t Transport) (any, error) {
	switch id := t.DeviceID(); id {
	case DeviceNet:
		return NewNet(t, NetOptions{})
	case DeviceBlock:
		return NewBlock(t, BlockOptions{})
	case DeviceConsole:
		return NewConsole(t, ConsoleOptions{})
	case DeviceEntropy:
		return NewRNG(t, RNGOptions{})
	default:
		return nil, fmt.Errorf("virtio: no driver for %v: %w", id, errors.ErrUnsupported)
	}
}
