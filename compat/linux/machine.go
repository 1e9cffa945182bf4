package linux

// Machine is what the system-call layer needs from the platform. The
// bare-metal platform implements it over page tables, the TSC and the
// serial port; tests implement it over a byte slice.
//
// Implementations are called from the trap handler: they must not block.
type Machine interface {
	// Nanotime returns monotonic nanoseconds since boot.
	Nanotime() int64
	// Walltime returns nanoseconds since the Unix epoch.
	Walltime() int64
	// Populate backs every page of [addr, addr+n) with memory, zero-filling
	// pages not yet present. It reports false when memory is exhausted.
	Populate(addr, n uint64) bool
	// Bytes returns the populated user memory [addr, addr+n).
	Bytes(addr, n uint64) []byte
	// Release drops the pages of [addr, addr+n) (page aligned); they read as
	// zero when next touched.
	Release(addr, n uint64)
	// Console writes p to the operator's console.
	Console(p []byte)
	// ConsoleRead copies console input that has arrived into p without
	// waiting and returns how many bytes it copied (0 if none).
	ConsoleRead(p []byte) int
	// Random fills p from a hardware source and reports success.
	Random(p []byte) bool
	// Exit ends the machine with the program's exit status. The bare-metal
	// platform does not return; a simulated machine records the status and
	// returns.
	Exit(code int)
}

// Strings is a pointer-free list of byte strings (arguments or
// environment), stored back to back.
type Strings struct {
	buf  [4096]byte
	off  [128]uint16
	len  [128]uint16
	n    int
	used int
}

// Add appends s, reporting false if the list is full.
func (s *Strings) Add(b []byte) bool {
	if s.n == len(s.off) || s.used+len(b)+1 > len(s.buf) {
		return false
	}
	s.off[s.n] = uint16(s.used)
	s.len[s.n] = uint16(len(b))
	copy(s.buf[s.used:], b)
	s.buf[s.used+len(b)] = 0
	s.used += len(b) + 1
	s.n++
	return true
}

// Len returns the number of strings.
func (s *Strings) Len() int { return s.n }

// At returns the i'th string.
func (s *Strings) At(i int) []byte {
	o := int(s.off[i])
	return s.buf[o : o+int(s.len[i])]
}
