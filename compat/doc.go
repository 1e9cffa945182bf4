// Package compat gathers the adapters that let unmodified Go code run on
// anykernel's components. It holds no code of its own; the adapters live in
// subpackages, each next to what it adapts:
//
//   - the Go-standard network faces (net.Conn, net.Listener, net.PacketConn,
//     a DialContext for http.Transport) over netstack;
//   - compat/linux: on bare metal, the Linux system-call ABI (threads,
//     futexes, memory mappings, clocks, epoll, console writes) that the
//     unmodified Go runtime calls into, served by the unikernel platform.
//
// What it is not: compat does not re-implement the os or net packages, and
// nothing here is needed to use a component from an ordinary hosted program.
package compat
