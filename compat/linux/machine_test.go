package linux

import (
	"bytes"
	"fmt"
)

// fakeMachine is a simulated Machine: sparse memory in 1 MiB regions
// (an access may not span two),
// a settable clock, a console buffer and a recorded exit.
type fakeMachine struct {
	regions  map[uint64][]byte
	pages    map[uint64]bool
	now      int64
	wall     int64
	console  bytes.Buffer
	input    bytes.Buffer
	exited   bool
	code     int
	noRandom bool
}

const regionSize = 1 << 20

func newFakeMachine() *fakeMachine {
	return &fakeMachine{regions: map[uint64][]byte{}, pages: map[uint64]bool{}, now: 1e9, wall: 1_700_000_000e9}
}

func (m *fakeMachine) Nanotime() int64 { return m.now }
func (m *fakeMachine) Walltime() int64 { return m.wall + m.now }

func (m *fakeMachine) Populate(addr, n uint64) bool {
	if n == 0 || (addr+n-1)&^(regionSize-1) != addr&^(regionSize-1) {
		// The simulated memory hands out contiguous views only within
		// one region; larger accesses fail as if memory ran out.
		return false
	}
	for p := addr &^ (PageSize - 1); p < addr+n; p += PageSize {
		m.pages[p] = true
	}
	return true
}

func (m *fakeMachine) Bytes(addr, n uint64) []byte {
	base := addr &^ (regionSize - 1)
	if (addr+n-1)&^(regionSize-1) != base {
		panic(fmt.Sprintf("fake machine: access %#x+%d crosses a region", addr, n))
	}
	for p := addr &^ (PageSize - 1); p < addr+n; p += PageSize {
		if !m.pages[p] {
			panic(fmt.Sprintf("fake machine: access to unpopulated page %#x", p))
		}
	}
	r, ok := m.regions[base]
	if !ok {
		r = make([]byte, regionSize)
		m.regions[base] = r
	}
	return r[addr-base : addr-base+n]
}

func (m *fakeMachine) Release(addr, n uint64) {
	for p := range m.pages {
		if p >= addr && p-addr < n {
			delete(m.pages, p)
			if r, ok := m.regions[p&^(regionSize-1)]; ok {
				clear(r[p-p&^(regionSize-1):][:PageSize])
			}
		}
	}
}

func (m *fakeMachine) Console(p []byte) { m.console.Write(p) }

func (m *fakeMachine) ConsoleRead(p []byte) int {
	n, _ := m.input.Read(p)
	return n
}

func (m *fakeMachine) Random(p []byte) bool {
	if m.noRandom {
		return false
	}
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return true
}

func (m *fakeMachine) Exit(code int) { m.exited, m.code = true, code }
