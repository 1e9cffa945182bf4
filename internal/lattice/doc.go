// Package lattice enforces anykernel's dependency lattice (DESIGN.md §2),
// in the spirit of Go's go/build/deps_test.go. The rules are about what gets
// compiled, so they are checked on `go list -deps` output, not on import
// statements alone:
//
//   - hal and hal/haltest depend on the standard library only (and haltest
//     on hal): importing hal compiles no third-party code.
//   - Backends (hal/mem, hal/host, hal/virtio, hal/pc) do not depend on each
//     other, except that hal/virtio may use hal/mem (its device model) and
//     the bare-metal platform hal/pc may use hal/virtio.
//   - Components (netstack, blockfs, console, sched, compat) never depend on
//     a backend: programs (examples, cmd) and tests choose backends. The
//     bare-metal pieces of sched and compat (sched/threads, compat/linux) are
//     used by hal/pc, never the reverse.
//   - gVisor is compiled only for netstack and compat (and programs built on
//     them).
//   - go-fuse is compiled only for blockfs/fusefs and cmd.
//
// The package has no exported API; its test is the check.
package lattice
