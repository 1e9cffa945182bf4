// Package console is the operator's view of an anykernel program: a kernel
// log written through log/slog, and a multiplexer that lets that log,
// program output and other streams share one [hal.Console] without mixing
// their lines.
//
// [Handler] is a slog.Handler that writes one line per record in the style
// of the Linux kernel log, with seconds since boot taken from a hal.Clock,
// so a manual clock gives reproducible timestamps in tests:
//
//	[    1.234567] INFO  netstack: link up mtu=1500
//
// [Mux] hands out a [Writer] per stream. Each Writer holds back a partial
// line until its newline arrives, so every line reaches the console whole;
// when a stream does flush a partial line (a prompt), the Mux starts a new
// line before another stream's output, the way the kernel's printk treats
// continuation lines. The Mux also reads operator input for one consumer.
//
// The line discipline (echo, editing) and the debug shell of the unikernel
// build on this package and are not part of it yet.
package console
