package mmio

// virtio-mmio version 2 register offsets (virtio 1.2 §4.2.2).
const (
	MagicValue        = 0x000
	Version           = 0x004
	DeviceID          = 0x008
	VendorID          = 0x00c
	DeviceFeatures    = 0x010
	DeviceFeaturesSel = 0x014
	DriverFeatures    = 0x020
	DriverFeaturesSel = 0x024
	QueueSel          = 0x030
	QueueNumMax       = 0x034
	QueueNum          = 0x038
	QueueReady        = 0x044
	QueueNotify       = 0x050
	InterruptStatus   = 0x060
	InterruptACK      = 0x064
	Status            = 0x070
	QueueDescLow      = 0x080
	QueueDescHigh     = 0x084
	QueueDriverLow    = 0x090
	QueueDriverHigh   = 0x094
	QueueDeviceLow    = 0x0a0
	QueueDeviceHigh   = 0x0a4
	QueueReset        = 0x0c0
	ConfigGeneration  = 0x0fc
	Config            = 0x100

	// Magic is "virt" in little endian.
	Magic = 0x74726976

	// Interrupt status bits (§4.2.2).
	VIRTIO_MMIO_INT_VRING  = 1
	VIRTIO_MMIO_INT_CONFIG = 2
)
