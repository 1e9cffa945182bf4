package dhcp

import (
	"strconv"
	"time"
)

// Constants of RFC 2131 and RFC 2132, spelled as the RFCs spell them.

// Ports of the BOOTP/DHCP protocol (RFC 2131 §4.1).
const (
	ServerPort = 67
	ClientPort = 68
)

// Op is the message op code (RFC 2131 §2, field 'op').
type Op uint8

// Message op codes (RFC 2131 §2).
const (
	BOOTREQUEST Op = 1
	BOOTREPLY   Op = 2
)

// String names the op code.
func (o Op) String() string {
	switch o {
	case BOOTREQUEST:
		return "BOOTREQUEST"
	case BOOTREPLY:
		return "BOOTREPLY"
	}
	return "op-" + strconv.Itoa(int(o))
}

// HTypeEthernet is the 'htype' of 10 Mb/s (and every other) Ethernet
// (RFC 1700, "Hardware Type").
const HTypeEthernet = 1

// FlagBroadcast is the BROADCAST bit of the 'flags' field (RFC 2131 §2,
// figure 2): the client cannot receive unicast IP datagrams before it is
// configured, so servers and relays must broadcast their replies.
const FlagBroadcast = 0x8000

// MagicCookie starts the options field (RFC 2131 §3, RFC 2132 §2).
var MagicCookie = [4]byte{99, 130, 83, 99}

// Sizes of the fixed-format part of a message (RFC 2131 §2, figure 1).
const (
	headerLen  = 236 // op through file
	snameLen   = 64
	fileLen    = 128
	chaddrLen  = 16
	snameOff   = 44
	fileOff    = 108
	optionsOff = headerLen + len(MagicCookie)

	// MinMessageSize is the size of the smallest message every DHCP
	// participant must accept (RFC 2131 §2: a 312-octet options field).
	MinMessageSize = 576
)

// MessageType is the value of option 53, DHCP Message Type (RFC 2132 §9.6).
type MessageType uint8

// DHCP message types (RFC 2132 §9.6).
const (
	DHCPDISCOVER MessageType = 1
	DHCPOFFER    MessageType = 2
	DHCPREQUEST  MessageType = 3
	DHCPDECLINE  MessageType = 4
	DHCPACK      MessageType = 5
	DHCPNAK      MessageType = 6
	DHCPRELEASE  MessageType = 7
	DHCPINFORM   MessageType = 8
)

// String names the message type.
func (t MessageType) String() string {
	switch t {
	case DHCPDISCOVER:
		return "DHCPDISCOVER"
	case DHCPOFFER:
		return "DHCPOFFER"
	case DHCPREQUEST:
		return "DHCPREQUEST"
	case DHCPDECLINE:
		return "DHCPDECLINE"
	case DHCPACK:
		return "DHCPACK"
	case DHCPNAK:
		return "DHCPNAK"
	case DHCPRELEASE:
		return "DHCPRELEASE"
	case DHCPINFORM:
		return "DHCPINFORM"
	}
	return "message-type-" + strconv.Itoa(int(t))
}

// OptionCode is the tag of a DHCP option (RFC 2132).
type OptionCode uint8

// Option codes (RFC 2132 sections as noted; 121 is RFC 3442).
const (
	OptionPad                  OptionCode = 0   // §3.1
	OptionSubnetMask           OptionCode = 1   // §3.3
	OptionRouter               OptionCode = 3   // §3.5
	OptionDomainNameServer     OptionCode = 6   // §3.8
	OptionHostName             OptionCode = 12  // §3.14
	OptionDomainName           OptionCode = 15  // §3.17
	OptionInterfaceMTU         OptionCode = 26  // §5.1
	OptionBroadcastAddress     OptionCode = 28  // §5.3
	OptionRequestedIPAddress   OptionCode = 50  // §9.1
	OptionIPAddressLeaseTime   OptionCode = 51  // §9.2
	OptionOptionOverload       OptionCode = 52  // §9.3
	OptionDHCPMessageType      OptionCode = 53  // §9.6
	OptionServerIdentifier     OptionCode = 54  // §9.7
	OptionParameterRequestList OptionCode = 55  // §9.8
	OptionMessage              OptionCode = 56  // §9.9
	OptionMaximumMessageSize   OptionCode = 57  // §9.10
	OptionRenewalTimeValue     OptionCode = 58  // §9.11 (T1)
	OptionRebindingTimeValue   OptionCode = 59  // §9.12 (T2)
	OptionClientIdentifier     OptionCode = 61  // §9.14
	OptionClasslessStaticRoute OptionCode = 121 // RFC 3442
	OptionEnd                  OptionCode = 255 // §3.2
)

// String names the well-known option codes and numbers the rest.
func (c OptionCode) String() string {
	if n, ok := optionNames[c]; ok {
		return n
	}
	return "option-" + strconv.Itoa(int(c))
}

var optionNames = map[OptionCode]string{
	OptionPad:                  "Pad",
	OptionSubnetMask:           "Subnet Mask",
	OptionRouter:               "Router",
	OptionDomainNameServer:     "Domain Name Server",
	OptionHostName:             "Host Name",
	OptionDomainName:           "Domain Name",
	OptionInterfaceMTU:         "Interface MTU",
	OptionBroadcastAddress:     "Broadcast Address",
	OptionRequestedIPAddress:   "Requested IP Address",
	OptionIPAddressLeaseTime:   "IP Address Lease Time",
	OptionOptionOverload:       "Option Overload",
	OptionDHCPMessageType:      "DHCP Message Type",
	OptionServerIdentifier:     "Server Identifier",
	OptionParameterRequestList: "Parameter Request List",
	OptionMessage:              "Message",
	OptionMaximumMessageSize:   "Maximum DHCP Message Size",
	OptionRenewalTimeValue:     "Renewal (T1) Time Value",
	OptionRebindingTimeValue:   "Rebinding (T2) Time Value",
	OptionClientIdentifier:     "Client-identifier",
	OptionClasslessStaticRoute: "Classless Static Route",
	OptionEnd:                  "End",
}

// Values of option 52, Option Overload (RFC 2132 §9.3).
const (
	overloadFile  = 1
	overloadSName = 2
	overloadBoth  = 3
)

// Infinite is the lease duration of a lease that never expires: the lease
// time 0xffffffff (RFC 2131 §3.3).
const Infinite time.Duration = 1<<63 - 1

// infiniteSeconds is the on-the-wire encoding of [Infinite].
const infiniteSeconds = 0xffffffff

// Retransmission schedule (RFC 2131 §4.1): the first retransmission after
// 4 s, doubling up to 64 s, each randomized by ±1 s; and the minimum wait
// between retransmissions while RENEWING or REBINDING (§4.4.5).
const (
	initialRetransmit = 4 * time.Second
	maxRetransmit     = 64 * time.Second
	retransmitJitter  = time.Second
	minRenewRetry     = 60 * time.Second
	declineWait       = 10 * time.Second // §3.1 item 5
)
