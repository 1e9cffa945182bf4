package pci

// PCI configuration space and virtio-pci constants (PCI Local Bus 3.0
// §6.1, §6.7; virtio 1.2 §4.1).
const (
	VendorIDOff       = 0x00
	DeviceIDOff       = 0x02
	StatusOff         = 0x06
	SubsystemIDOff    = 0x2e
	CapabilitiesOff   = 0x34
	StatusCapList     = 0x10
	CapIDVendor       = 0x09
	CapIDMSIX         = 0x11
	VirtioVendorID    = 0x1af4
	ModernDeviceBase  = 0x1040
	ModernDeviceLast  = 0x107f
	TransitionalFirst = 0x1000
	TransitionalLast  = 0x103f

	// struct virtio_pci_cap (§4.1.4).
	CapVndr    = 0
	CapNext    = 1
	CapLen     = 2
	CapCfgType = 3
	CapBar     = 4
	CapID      = 5
	CapOffset  = 8
	CapLength  = 12
	// struct virtio_pci_notify_cap adds notify_off_multiplier.
	CapNotifyOffMultiplier = 16

	VIRTIO_PCI_CAP_COMMON_CFG = 1
	VIRTIO_PCI_CAP_NOTIFY_CFG = 2
	VIRTIO_PCI_CAP_ISR_CFG    = 3
	VIRTIO_PCI_CAP_DEVICE_CFG = 4
	VIRTIO_PCI_CAP_PCI_CFG    = 5

	// struct virtio_pci_common_cfg (§4.1.4.3).
	CommonDeviceFeatureSelect = 0x00
	CommonDeviceFeature       = 0x04
	CommonDriverFeatureSelect = 0x08
	CommonDriverFeature       = 0x0c
	CommonConfigMSIXVector    = 0x10
	CommonNumQueues           = 0x12
	CommonDeviceStatus        = 0x14
	CommonConfigGeneration    = 0x15
	CommonQueueSelect         = 0x16
	CommonQueueSize           = 0x18
	CommonQueueMSIXVector     = 0x1a
	CommonQueueEnable         = 0x1c
	CommonQueueNotifyOff      = 0x1e
	CommonQueueDesc           = 0x20
	CommonQueueDriver         = 0x28
	CommonQueueDevice         = 0x30
	CommonQueueNotifyData     = 0x38
	CommonQueueReset          = 0x3a
	CommonCfgLen              = 0x3c
	// CommonCfgMinLen is the common configuration of virtio 1.0, without
	// queue_notify_data and queue_reset.
	CommonCfgMinLen = 0x38

	VIRTIO_MSI_NO_VECTOR = 0xffff

	// ISR status bits (§4.1.4.5).
	ISRQueue  = 1
	ISRConfig = 2
)
