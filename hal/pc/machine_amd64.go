package pc

import "github.com/anykernel/anykernel/compat/linux"

// machine is the bare-metal linux.Machine.
type machine struct{}

var _ linux.Machine = (*machine)(nil)

func (*machine) Nanotime() int64              { return nanotime() }
func (*machine) Walltime() int64              { return walltime() }
func (*machine) Populate(addr, n uint64) bool { return populate(addr, n) }
func (*machine) Bytes(addr, n uint64) []byte  { return mem(addr, n) }
func (*machine) Release(addr, n uint64)       { release(addr, n) }
func (*machine) Console(p []byte)             { serialWrite(p) }
func (*machine) ConsoleRead(p []byte) int     { return serialRead(p) }
func (*machine) Exit(code int)                { exit(code) }

// Random fills p from RDRAND, falling back to RDSEED; it fails rather
// than return predictable bytes.
func (*machine) Random(p []byte) bool {
	for i := 0; i < len(p); {
		v, ok := rdrand()
		for try := 0; !ok && try < 20; try++ {
			v, ok = rdrand()
		}
		for try := 0; !ok && try < 100; try++ {
			v, ok = rdseed()
		}
		if !ok {
			puts("anyk: RDRAND and RDSEED are failing\n")
			return false
		}
		for j := 0; j < 8 && i < len(p); j++ {
			p[i] = byte(v >> (8 * j))
			i++
		}
	}
	return true
}
