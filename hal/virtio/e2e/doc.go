// Package e2e holds end-to-end tests of the virtio drivers under real
// components: netstack over virtio-net talking TCP to netstack over a mem
// NIC, and blockfs formatting and filling a virtio-blk disk that e2fsck
// then checks. All devices are the hal/virtio/model device model over
// hal/mem backends. The package has no code of its own.
package e2e
