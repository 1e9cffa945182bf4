package netstack_test

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/netstack"
)

// Two stacks joined by an in-memory link: one serves HTTP, the other
// fetches with an unchanged net/http client. On a host the NIC would be a
// TAP device (hal/host), in a unikernel a virtio-net device.
func Example() {
	a, b := mem.NewNICPair(mem.NICOptions{})
	server, err := netstack.New(netstack.Options{})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	client, err := netstack.New(netstack.Options{})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	if _, err := server.AddNIC(a, netstack.NICConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
		panic(err)
	}
	if _, err := client.AddNIC(b, netstack.NICConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		panic(err)
	}

	ln, err := server.Listen("tcp", ":80")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello over netstack")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	tr := &http.Transport{DialContext: client.DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://10.0.0.1/")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	// Output: hello over netstack
}
