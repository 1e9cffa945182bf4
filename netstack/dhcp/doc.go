// Package dhcp is a DHCPv4 client: the message format of RFC 2131 §2 and
// §4.1 with the options of RFC 2132 (plus classless static routes, RFC 3442,
// and long-option concatenation, RFC 3396), and the client state machine of
// RFC 2131 §4.4: INIT, SELECTING, REQUESTING, BOUND, RENEWING, REBINDING,
// INIT-REBOOT and REBOOTING, with the retransmission schedule of §4.1.
//
// The package imports only the standard library and hal. It does not touch
// the network itself: a [Client] sends and receives UDP payloads through a
// [Transport], which a network stack implements over its own UDP sockets;
// [NewConnTransport] makes one from any UDP socket with netip-style read and
// write methods and read deadlines (a *net.UDPConn, or a netstack UDP
// socket) that is bound to port 68 on the interface, with broadcast on.
// All timing comes from a [hal.Clock], so a manual clock drives leases,
// renewals and retransmissions in tests.
//
// A stack applies what the client learns in [Config].OnLease (address,
// router, DNS servers) and withdraws it in [Config].OnExpire. Until it has
// an address the stack must send from 0.0.0.0 and accept datagrams for
// port 68 addressed to 255.255.255.255 (setting [Config].Broadcast makes
// servers broadcast their replies, so nothing else is needed); once bound,
// renewals are unicast from the leased address to the server.
//
// [ParseMessage] decodes untrusted bytes: malformed input yields an error
// wrapping [ErrMalformed], never a panic.
package dhcp
