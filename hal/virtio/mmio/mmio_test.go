package mmio

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// regs is a register window of fixed values.
type regs map[uint32]uint32

func (r regs) Read8(off uint32) uint8       { return uint8(r[off]) }
func (r regs) Read16(off uint32) uint16     { return uint16(r[off]) }
func (r regs) Read32(off uint32) uint32     { return r[off] }
func (r regs) Write8(off uint32, v uint8)   {}
func (r regs) Write16(off uint32, v uint16) {}
func (r regs) Write32(off uint32, v uint32) {}

func TestNewProbes(t *testing.T) {
	cases := []struct {
		name    string
		r       regs
		wantErr error
		id      uint32
	}{
		{name: "block", r: regs{MagicValue: Magic, Version: 2, DeviceID: 2}, id: 2},
		{name: "bad-magic", r: regs{MagicValue: 0x12345678, Version: 2, DeviceID: 2}, wantErr: ErrNoDevice},
		{name: "nothing-mapped", r: regs{MagicValue: 0xffffffff, Version: 0xffffffff, DeviceID: 0xffffffff}, wantErr: ErrNoDevice},
		{name: "legacy-version-1", r: regs{MagicValue: Magic, Version: 1, DeviceID: 2}, wantErr: errors.ErrUnsupported},
		{name: "empty-slot", r: regs{MagicValue: Magic, Version: 2, DeviceID: 0}, wantErr: ErrNoDevice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New(tc.r, nil, nil, Options{})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.id, uint32(tr.DeviceID()))
		})
	}
}

func TestStuckDevice(t *testing.T) {
	// A device whose status never reads back 0 and whose queues never
	// reset: the transport gives up with an error instead of spinning.
	r := regs{MagicValue: Magic, Version: 2, DeviceID: 4, Status: 0x0f, QueueReady: 1, QueueNumMax: 8}
	tr, err := New(r, nil, nil, Options{})
	require.NoError(t, err)
	require.Error(t, tr.Reset())
	require.Error(t, tr.ResetQueue(0))
	require.Zero(t, tr.QueueMax(0), "a queue already in use is not offered")
	require.Error(t, tr.SetupQueue(0, 8, 0x1000, 0x2000, 0x3000))
	require.Error(t, tr.Start(func(int) {}, func() {}), "no interrupt line")
}
