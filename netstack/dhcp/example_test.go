package dhcp_test

import (
	"context"
	"fmt"
	"net"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/host"
	"github.com/anykernel/anykernel/netstack/dhcp"
)

// A client keeping a lease for an interface, over a UDP socket bound to
// port 68 on it. A network stack passes its own UDP socket the same way
// and applies the lease to itself in OnLease.
func ExampleClient() {
	// The socket must be bound to the interface being configured, with
	// broadcast allowed (on Linux: SO_BINDTODEVICE and SO_BROADCAST).
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{Port: dhcp.ClientPort})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	mac, _ := hal.ParseMAC("02:00:00:00:00:01")
	c := dhcp.NewClient(dhcp.Config{
		MAC:           mac,
		Hostname:      "guest",
		Clock:         host.NewClock(),
		Transport:     dhcp.NewConnTransport(conn),
		Broadcast:     true,
		ReleaseOnExit: true,
		OnLease: func(l dhcp.Lease) {
			fmt.Println("configure", l.Addr, "via", l.Router, "DNS", l.DNS)
		},
		OnExpire: func(l dhcp.Lease) {
			fmt.Println("remove", l.Addr)
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Run(ctx); err != nil {
		fmt.Println(err)
	}
}
