package pc

// The platform's private system calls, for driver code in the program
// (hal/pc/dev wraps them). Their numbers are ones Linux leaves unused, so a
// hosted program gets ENOSYS.
const (
	SysPlatform = 0x5a00 + iota // () -> PlatformMagic
	SysDMAAlloc                 // (pages, alignPages) -> physical address
	SysIRQBind                  // (line, eventfd) -> 0
	SysIRQAck                   // (line) -> 0; unmasks the line
)

// PlatformMagic is SysPlatform's answer on the platform ("anyk").
const PlatformMagic = 0x616e796b
