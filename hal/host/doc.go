// Package host provides hal devices backed by the Linux host a program runs
// on, for anykernel's hosted mode:
//
//   - [TAP]: a Linux TAP interface (/dev/net/tun, IFF_TAP|IFF_NO_PI) as a
//     hal.NIC and hal.BatchNIC, and with [TAPOptions.VNetHdr] a
//     hal.OffloadNIC carrying the virtio-net header (virtio 1.2 §5.1.6) that
//     Linux TAP devices speak with IFF_VNET_HDR, so checksum and
//     segmentation offload reach the host kernel;
//   - [File]: a regular image file or a block device as a hal.BlockDevice
//     (pread/pwrite, fdatasync, hole punching or BLKDISCARD, FUA writes with
//     pwritev2 RWF_DSYNC);
//   - [Console]: a terminal, pipe or file pair as a hal.Console, with window
//     size and raw mode (termios) when it is a terminal;
//   - [Clock]: the OS clock as a hal.Clock;
//   - [Entropy]: getrandom(2) as a hal.Entropy.
//
// Blocking reads (TAP frames, console input) are woken by Close: the TAP file
// descriptor is non-blocking and waits in Go's network poller, and console
// reads wait in poll(2) together with an eventfd that Close signals. The
// console never switches its input to non-blocking mode, because that mode
// belongs to the open file description, which a terminal's other users
// (the shell that started the program) share. The limit: if another
// process consumes the input between poll and read, that Read blocks in
// read(2) and Close cannot wake it until more input arrives.
//
// Offload settings of a TAP (TUNSETOFFLOAD) belong to the interface and
// outlive the file descriptor on persistent devices (ip tuntap add);
// OpenTAP resets them, and SetOffload changes them for later users too.
//
// The devices exist on Linux only. On other systems the package compiles
// with the same API, but OpenTAP, OpenFile, OpenConsole and Stdio return
// errors wrapping errors.ErrUnsupported and Entropy's reads fail the same
// way; Clock works everywhere.
//
// Devices created in another network namespace: OpenTAP creates or attaches
// to the interface in the network namespace of the calling OS thread, so a
// caller that switched a locked thread into a namespace gets the interface
// there; the returned TAP is usable from any goroutine afterwards.
package host
