package model

import (
	"fmt"
	"sort"
	"sync"
	"unsafe"
)

// Memory is guest memory for hosted tests: it implements virtio.DMA for the
// driver and Translate for the device model, which reads and writes the
// very same bytes by bus address.
//
// Bus addresses start at 1 MiB and regions are separated by unmapped gaps,
// so an access that runs past its buffer fails instead of touching a
// neighbour.
type Memory struct {
	mu      sync.RWMutex
	regions []region // sorted by bus address
	next    uint64
}

type region struct {
	bus uint64
	b   []byte
}

// NewMemory returns an empty guest memory.
func NewMemory() *Memory { return &Memory{next: 1 << 20} }

const memGap = 4096

// Alloc implements virtio.DMA. The slice is 8-byte aligned, so its address
// and its bus address agree modulo 8.
func (m *Memory) Alloc(size, align int) ([]byte, uint64, error) {
	if size <= 0 || size > 1<<30 {
		return nil, 0, fmt.Errorf("model: alloc of %d bytes", size)
	}
	if align <= 0 || align&(align-1) != 0 || align > 4096 {
		return nil, 0, fmt.Errorf("model: alloc alignment %d is not a power of two up to 4096", align)
	}
	words := make([]uint64, (size+7)/8)
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), size)
	a := uint64(max(align, 8))
	m.mu.Lock()
	defer m.mu.Unlock()
	bus := (m.next + a - 1) &^ (a - 1)
	m.next = bus + uint64(size) + memGap
	m.regions = append(m.regions, region{bus: bus, b: b}) // bus addresses only grow
	return b, bus, nil
}

// Free implements virtio.DMA.
func (m *Memory) Free(buf []byte) {
	if len(buf) == 0 {
		return
	}
	p := unsafe.SliceData(buf)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range m.regions {
		if unsafe.SliceData(r.b) == p {
			m.regions = append(m.regions[:i], m.regions[i+1:]...)
			return
		}
	}
}

// Regions returns how many regions are allocated and not yet freed, so a
// test can check that a driver gave back all its memory.
func (m *Memory) Regions() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.regions)
}

// Translate returns the n bytes at bus address bus, or an error if they do
// not lie inside one allocated region. The slice's capacity ends with the
// region.
func (m *Memory) Translate(bus uint64, n uint64) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i := sort.Search(len(m.regions), func(i int) bool { return m.regions[i].bus > bus }) - 1
	if i < 0 {
		return nil, fmt.Errorf("model: bus address %#x is not guest memory", bus)
	}
	r := m.regions[i]
	off := bus - r.bus
	if off > uint64(len(r.b)) || n > uint64(len(r.b))-off {
		return nil, fmt.Errorf("model: %d bytes at bus address %#x run outside guest memory", n, bus)
	}
	return r.b[off : off+n : len(r.b)], nil
}
