package virtio

// Constants of the virtio 1.2 specification, spelled as the specification
// spells them.

// DeviceID identifies a device type (virtio 1.2 §5).
type DeviceID uint32

// Device types (virtio 1.2 §5).
const (
	DeviceNet     DeviceID = 1
	DeviceBlock   DeviceID = 2
	DeviceConsole DeviceID = 3
	DeviceEntropy DeviceID = 4
)

// String names the device type.
func (d DeviceID) String() string {
	switch d {
	case DeviceNet:
		return "net"
	case DeviceBlock:
		return "block"
	case DeviceConsole:
		return "console"
	case DeviceEntropy:
		return "entropy"
	}
	return "device-" + itoa(uint64(d))
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// Device status bits (virtio 1.2 §2.1).
const (
	VIRTIO_CONFIG_S_ACKNOWLEDGE        = 1
	VIRTIO_CONFIG_S_DRIVER             = 2
	VIRTIO_CONFIG_S_DRIVER_OK          = 4
	VIRTIO_CONFIG_S_FEATURES_OK        = 8
	VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET = 64
	VIRTIO_CONFIG_S_FAILED             = 128
)

// Reserved feature bits (virtio 1.2 §6).
const (
	VIRTIO_F_INDIRECT_DESC     = 28
	VIRTIO_F_EVENT_IDX         = 29
	VIRTIO_F_VERSION_1         = 32
	VIRTIO_F_ACCESS_PLATFORM   = 33
	VIRTIO_F_RING_PACKED       = 34
	VIRTIO_F_IN_ORDER          = 35
	VIRTIO_F_ORDER_PLATFORM    = 36
	VIRTIO_F_SR_IOV            = 37
	VIRTIO_F_NOTIFICATION_DATA = 38
	VIRTIO_F_NOTIF_CONFIG_DATA = 39
	VIRTIO_F_RING_RESET        = 40
)

// Bit returns the feature set holding only feature bit n.
func Bit(n uint) uint64 { return 1 << n }

// virtio-net (virtio 1.2 §5.1).
const (
	VIRTIO_NET_F_CSUM                = 0
	VIRTIO_NET_F_GUEST_CSUM          = 1
	VIRTIO_NET_F_CTRL_GUEST_OFFLOADS = 2
	VIRTIO_NET_F_MTU                 = 3
	VIRTIO_NET_F_MAC                 = 5
	VIRTIO_NET_F_GUEST_TSO4          = 7
	VIRTIO_NET_F_GUEST_TSO6          = 8
	VIRTIO_NET_F_GUEST_ECN           = 9
	VIRTIO_NET_F_GUEST_UFO           = 10
	VIRTIO_NET_F_HOST_TSO4           = 11
	VIRTIO_NET_F_HOST_TSO6           = 12
	VIRTIO_NET_F_HOST_ECN            = 13
	VIRTIO_NET_F_HOST_UFO            = 14
	VIRTIO_NET_F_MRG_RXBUF           = 15
	VIRTIO_NET_F_STATUS              = 16
	VIRTIO_NET_F_CTRL_VQ             = 17
	VIRTIO_NET_F_MQ                  = 22
	VIRTIO_NET_F_HOST_USO            = 56

	VIRTIO_NET_S_LINK_UP  = 1
	VIRTIO_NET_S_ANNOUNCE = 2

	// struct virtio_net_config field offsets (§5.1.4).
	VirtioNetCfgMAC    = 0
	VirtioNetCfgStatus = 6
	VirtioNetCfgMaxVQP = 8
	VirtioNetCfgMTU    = 10

	// Queue indices without VIRTIO_NET_F_MQ (§5.1.2).
	VirtioNetRxQ = 0
	VirtioNetTxQ = 1
)

// virtio-blk (virtio 1.2 §5.2).
const (
	VIRTIO_BLK_F_SIZE_MAX     = 1
	VIRTIO_BLK_F_SEG_MAX      = 2
	VIRTIO_BLK_F_GEOMETRY     = 4
	VIRTIO_BLK_F_RO           = 5
	VIRTIO_BLK_F_BLK_SIZE     = 6
	VIRTIO_BLK_F_FLUSH        = 9
	VIRTIO_BLK_F_TOPOLOGY     = 10
	VIRTIO_BLK_F_CONFIG_WCE   = 11
	VIRTIO_BLK_F_MQ           = 12
	VIRTIO_BLK_F_DISCARD      = 13
	VIRTIO_BLK_F_WRITE_ZEROES = 14

	VIRTIO_BLK_T_IN           = 0
	VIRTIO_BLK_T_OUT          = 1
	VIRTIO_BLK_T_FLUSH        = 4
	VIRTIO_BLK_T_GET_ID       = 8
	VIRTIO_BLK_T_DISCARD      = 11
	VIRTIO_BLK_T_WRITE_ZEROES = 13

	VIRTIO_BLK_S_OK     = 0
	VIRTIO_BLK_S_IOERR  = 1
	VIRTIO_BLK_S_UNSUPP = 2

	// struct virtio_blk_config field offsets (§5.2.4).
	VirtioBlkCfgCapacity          = 0
	VirtioBlkCfgSizeMax           = 8
	VirtioBlkCfgSegMax            = 12
	VirtioBlkCfgBlkSize           = 20
	VirtioBlkCfgMaxDiscardSectors = 36
	VirtioBlkCfgMaxDiscardSeg     = 40
	VirtioBlkCfgDiscardAlignment  = 44
	VirtioBlkCfgLen               = 64

	// VirtioBlkSectorSize is the unit of capacity and of request sectors.
	VirtioBlkSectorSize = 512
	// VirtioBlkReqHdrLen is the length of struct virtio_blk_req's header
	// (type, reserved, sector).
	VirtioBlkReqHdrLen = 16
	// VirtioBlkDiscardSegLen is the length of struct
	// virtio_blk_discard_write_zeroes.
	VirtioBlkDiscardSegLen = 16
)

// virtio-console (virtio 1.2 §5.3).
const (
	VIRTIO_CONSOLE_F_SIZE        = 0
	VIRTIO_CONSOLE_F_MULTIPORT   = 1
	VIRTIO_CONSOLE_F_EMERG_WRITE = 2

	VirtioConsoleCfgCols = 0
	VirtioConsoleCfgRows = 2
	VirtioConsoleCfgLen  = 12

	VirtioConsoleRxQ = 0
	VirtioConsoleTxQ = 1
)

// virtio-net header length with VIRTIO_F_VERSION_1 (§5.1.6): the
// hal.NetHdr fields plus num_buffers.
const VirtioNetHdrLen = 12
