package pc

// Assembly in entry_amd64.s and cpu_amd64.s.

func multibootEntry()
func syscallEntry()
func trapCommon()
func trapReturn()
func enterFrame(f uintptr)
func idleLoop()

func vecAddr(i int) uintptr
func syscallEntryAddr() uintptr
func idleLoopAddr() uintptr
func vdsoClockGettime()
func vdsoClockGettimeAddr() uintptr

func outb(port uint16, v uint8)
func outl(port uint16, v uint32)
func inb(port uint16) uint8
func inl(port uint16) uint32
func wrmsr(msr uint32, v uint64)
func rdmsr(msr uint32) uint64
func rdtsc() uint64
func readCR2() uint64
func readCR3() uint64
func writeCR3(v uint64)
func invlpg(addr uint64)
func lgdt(addr uintptr)
func lidt(addr uintptr)
func ltr(sel uint16)
func fpuInit(area uintptr)
func rdrand() (v uint64, ok bool)
func rdseed() (v uint64, ok bool)
func cpuid(fn, sub uint32) (a, b, c, d uint32)
func setDebug(dr0, dr7 uint64)
func readDR6() uint64
func writeDR6(v uint64)
func halt()
