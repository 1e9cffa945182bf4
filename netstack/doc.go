// Package netstack is a TCP/IP stack for hal.NIC devices: gVisor's tcpip
// (gvisor.dev/gvisor/pkg/tcpip) assembled over a link endpoint written for
// the hal contracts, with a Go-standard API on top.
//
// # Assembly
//
// New builds a stack (IPv4 with ARP, IPv6 with NDP, ICMPv4/ICMPv6 echo,
// TCP, UDP) that already has a loopback NIC; AddNIC attaches each hal.NIC
// with its addresses. Every address installs an on-link route for its
// subnet and every NIC a link-local IPv6 address and route (RFC 4291,
// RFC 4862); AddRoute adds gateways. With Options.DisableSLAAC unset,
// router advertisements configure addresses and default routes.
// Options and NICConfig are usable as zero values.
//
// # Address configuration
//
// Besides static addresses, RunDHCP keeps a DHCPv4 lease (RFC 2131, with
// the client of package netstack/dhcp) on a NIC and applies its address,
// routes and DNS servers. IPv6 addresses and default routes come from
// router advertisements (SLAAC, RFC 4862), DNS servers also from their
// RDNSS options (RFC 8106). Resolver returns a net.Resolver that queries
// those servers over this stack, and Dial resolves host names with it.
// Ping sends ICMP echo requests.
//
// # Link endpoint
//
// Frames are read by one goroutine per NIC (in batches when the NIC is a
// hal.BatchNIC, straight into the stack's buffers when it is a hal.VecNIC)
// and handed to gVisor's Ethernet layer (link/ethernet). Outgoing packets
// pass through a transmit queue that a second goroutine per NIC writes to
// the device (gathered from the stack's buffers on a hal.VecNIC), so that
// protocol work and device writes overlap; a full queue makes senders
// wait, nothing is dropped (NICConfig.TxQueue, NICConfig.SyncTx). When
// the NIC is a hal.OffloadNIC, the virtio-net header (virtio 1.2 §5.1.6)
// gives TCP segmentation offload: TCP hands down segments of up to 64 KiB
// with partial checksums and the device (TAP's host kernel, virtio-net, or
// the in-memory NIC) finishes or segments them. Receive-checksum offload is
// claimed to gVisor only when the device has it enabled, and frames the
// device neither validated (NetHdrFDataValid) nor left partial
// (NetHdrFNeedsCsum) are verified in software before the stack sees them.
//
// # Go-standard faces
//
// The faces live here, not in compat: Stack.Dial, DialContext (which fits
// http.Transport.DialContext), Listen and ListenPacket return net.Conn,
// net.Listener and net.PacketConn implementations with deadlines and
// CloseRead/CloseWrite. Errors are *net.OpError values whose Err is an
// *os.SyscallError holding the errno Linux would report, so
// errors.Is(err, syscall.ECONNREFUSED) and the like hold; passed deadlines
// satisfy errors.Is(err, os.ErrDeadlineExceeded). No gVisor type appears in
// the API.
//
// # Ownership and shutdown
//
// AddNIC takes ownership of the device. Stack.Close aborts every
// connection, closes every device and returns once every goroutine the
// stack started has finished.
package netstack
