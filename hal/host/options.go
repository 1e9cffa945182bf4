package host

import "github.com/anykernel/anykernel/hal"

// TAPOptions configures [OpenTAP]. The zero value opens a plain TAP device
// whose MTU is the interface's and whose MAC is random.
type TAPOptions struct {
	// VNetHdr opens the device with IFF_VNET_HDR: every frame crossing the
	// file descriptor carries a 10-byte virtio-net header, which makes the
	// TAP a hal.OffloadNIC that can grant checksum and segmentation offload.
	VNetHdr bool

	// MAC is the address of our side of the link (the address our stack
	// uses as its source); it is reported by MAC() and is not the host
	// interface's own address. The zero value picks a random locally
	// administered unicast address.
	MAC hal.MAC

	// MTU, if non-zero, is set on the interface (SIOCSIFMTU). Zero keeps and
	// reports the interface's current MTU (SIOCGIFMTU).
	MTU int
}

// FileOptions configures [OpenFile]. The zero value opens an existing file
// or block device for reading and writing through the page cache, with
// 512-byte sectors for files and the device's logical sector size for block
// devices.
type FileOptions struct {
	// ReadOnly opens the device read-only: writes and discards fail with
	// hal.ErrReadOnly.
	ReadOnly bool

	// SectorSize is the transfer unit: a power of two of at least 512. Zero
	// means 512 for a regular file (or the file system's direct I/O
	// alignment with Direct, if larger) and the logical sector size
	// (BLKSSZGET) for a block device. A block device refuses a sector size
	// that is not a multiple of its logical sector size.
	SectorSize int

	// Direct opens with O_DIRECT, bypassing the host's page cache. Callers'
	// buffers that are not suitably aligned in memory are copied through an
	// aligned buffer.
	Direct bool

	// Create, if positive, creates the file with this size (in bytes, rounded
	// down to whole sectors when used) when it does not exist yet. An
	// existing file is opened as it is. Create cannot be combined with
	// ReadOnly.
	Create int64
}

// ConsoleOptions configures [OpenConsole]. The zero value leaves the
// terminal's mode as it is.
type ConsoleOptions struct {
	// Raw switches a terminal into raw mode when the console is opened, as
	// SetRaw(true) would; Close restores the original mode. It is an error
	// on a console that is not a terminal.
	Raw bool
}
