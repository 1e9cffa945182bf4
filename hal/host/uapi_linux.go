package host

// Constants from the Linux user-space API that golang.org/x/sys/unix does
// not define. Each names its C spelling.

// Offload flags for the TUNSETOFFLOAD ioctl (include/uapi/linux/if_tun.h):
// the kinds of unfinished packets the file descriptor's reader accepts.
const (
	tunFCsum   = 0x01 // TUN_F_CSUM: checksum may be left partial (NEEDS_CSUM)
	tunFTSO4   = 0x02 // TUN_F_TSO4: TCPv4 super-frames (needs TUN_F_CSUM)
	tunFTSO6   = 0x04 // TUN_F_TSO6: TCPv6 super-frames (needs TUN_F_CSUM)
	tunFTSOECN = 0x08 // TUN_F_TSO_ECN: TSO super-frames may carry ECN (not requested: such frames are segmented by the kernel)
)
