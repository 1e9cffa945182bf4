// Package dhcp is a DHCPv4 client: the message format of RFC 2131 §2 and
// §4.1 with the options of RFC 2132 (plus classless static routes, RFC 3442,
// and long-option concatenation, RFC 3396), and the client state machine of
// RFC 2131 §4.4: INIT, SELECTING, REQUESTING, BOUND, RENEWING, REBINDING,
// INIT-REBOOT and REBOOTING, with the retransmission schedule of §4.1.
//
// The package imports only the standard library and hal. It does not touch
// the network itself: a [Client] sends and receives UDP payloads through a
// [Transport], which a network stack implements over its own UDP sockets
// (port 68, broadcast allowed). All timing comes from a [hal.Clock], so a
// manual clock drives leases, renewals and retransmissions in tests.
//
// [ParseMessage] decodes untrusted bytes: malformed input yields an error
// wrapping [ErrMalformed], never a panic.
package dhcp
