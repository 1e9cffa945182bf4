package linux

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	tLo = 1 << 32
	tHi = tLo + 1024*PageSize
)

func TestAddressSpaceMap(t *testing.T) {
	tests := []struct {
		name      string
		hint, len uint64
		fixed     bool
		noReplace bool
		want      uint64
		err       Errno
	}{
		{"top down without hint", 0, 2 * PageSize, false, false, tHi - 2*PageSize, 0},
		{"free hint honoured", tLo + 10*PageSize, PageSize, false, false, tLo + 10*PageSize, 0},
		{"length rounded up", tLo + 20*PageSize, 1, false, false, tLo + 20*PageSize, 0},
		{"misaligned hint ignored", tLo + 5, PageSize, false, false, tHi - PageSize, 0},
		{"zero length", 0, 0, false, false, 0, EINVAL},
		{"fixed misaligned", tLo + 1, PageSize, true, false, 0, EINVAL},
		{"fixed anywhere", 0x7000_0000_0000, PageSize, true, false, 0x7000_0000_0000, 0},
		{"too big", 0, tHi - tLo + PageSize, false, false, 0, ENOMEM},
		{"length overflow", 0, ^uint64(0), false, false, 0, EINVAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a AddressSpace
			a.Init(tLo, tHi)
			got, err := a.Map(tc.hint, tc.len, PROT_READ, tc.fixed, tc.noReplace)
			assert.Equal(t, tc.err, err)
			if err == 0 {
				assert.Equal(t, tc.want, got)
				v, ok := a.Find(got)
				require.True(t, ok)
				assert.Equal(t, got, v.Start)
			}
		})
	}
}

func TestAddressSpaceSplitMerge(t *testing.T) {
	var a AddressSpace
	a.Init(tLo, tHi)
	base, err := a.Map(tLo, 10*PageSize, PROT_NONE, false, false)
	require.Zero(t, err)
	_, err = a.Map(base+2*PageSize, 3*PageSize, PROT_READ|PROT_WRITE, true, false)
	require.Zero(t, err)
	require.Equal(t, 3, a.Len(), "none | rw | none")
	assert.False(t, a.Access(base, 1, false))
	assert.True(t, a.Access(base+2*PageSize, 3*PageSize, true))
	assert.False(t, a.Access(base+2*PageSize, 3*PageSize+1, false), "runs into the reservation")
	require.Zero(t, a.Protect(base+2*PageSize, 3*PageSize, PROT_NONE))
	assert.Equal(t, 1, a.Len(), "equal neighbours merge")
	require.Zero(t, a.Unmap(base+4*PageSize, 2*PageSize))
	assert.Equal(t, 2, a.Len(), "hole splits the mapping")
	_, err = a.Map(base+4*PageSize, PageSize, PROT_READ, false, true)
	assert.Zero(t, err, "no-replace into the hole")
	_, err = a.Map(base+4*PageSize, PageSize, PROT_READ, false, true)
	assert.Equal(t, EEXIST, err)
	assert.Equal(t, ENOMEM, a.Protect(base+5*PageSize, PageSize, PROT_READ), "protect of a hole")
}

// FuzzAddressSpace applies random map/unmap/protect operations to a small
// window and checks the result page by page against a simple model.
func FuzzAddressSpace(f *testing.F) {
	f.Add([]byte{0, 1, 4, 3, 1, 2, 1, 1, 2, 0, 5, 2})
	f.Add([]byte{0, 0, 30, 1, 3, 0, 5, 7, 2, 10, 3, 0, 1, 12, 4, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const pages = 32
		var a AddressSpace
		a.Init(tLo, tLo+pages*PageSize)
		model := map[uint64]uint32{} // page index -> prot+1
		for i := 0; i+3 < len(ops); i += 4 {
			op, start, n, prot := ops[i]%4, uint64(ops[i+1]%pages), uint64(ops[i+2]%8)+1, uint32(ops[i+3]%8)
			if start+n > pages {
				n = pages - start
			}
			addr := tLo + start*PageSize
			switch op {
			case 0: // fixed map
				_, err := a.Map(addr, n*PageSize, prot, true, false)
				if err == ENOMEM {
					continue
				}
				require.Zero(t, err)
				for p := start; p < start+n; p++ {
					model[p] = prot + 1
				}
			case 1:
				if a.Unmap(addr, n*PageSize) == ENOMEM {
					continue
				}
				for p := start; p < start+n; p++ {
					delete(model, p)
				}
			case 2:
				all := true
				for p := start; p < start+n; p++ {
					if _, ok := model[p]; !ok {
						all = false
					}
				}
				err := a.Protect(addr, n*PageSize, prot)
				if !all {
					require.Equal(t, ENOMEM, err)
					continue
				}
				require.Zero(t, err)
				for p := start; p < start+n; p++ {
					model[p] = prot + 1
				}
			case 3: // placement without hint
				got, err := a.Map(0, n*PageSize, prot, false, false)
				if err != 0 {
					continue
				}
				require.Zero(t, got%PageSize)
				require.True(t, got >= tLo && got+n*PageSize <= tLo+pages*PageSize)
				for p := (got - tLo) / PageSize; p < (got-tLo)/PageSize+n; p++ {
					_, taken := model[p]
					require.False(t, taken, "placed over a mapping")
					model[p] = prot + 1
				}
			}
			for p := uint64(0); p < pages; p++ {
				v, ok := a.Find(tLo + p*PageSize)
				want, inModel := model[p]
				require.Equal(t, inModel, ok, "page %d", p)
				if ok {
					require.Equal(t, want-1, v.Prot, "page %d", p)
				}
			}
			for j := 1; j < a.Len(); j++ {
				prev, cur := a.At(j-1), a.At(j)
				require.LessOrEqual(t, prev.End, cur.Start, "sorted, disjoint")
				require.False(t, prev.End == cur.Start && prev.Prot == cur.Prot, "adjacent equal VMAs merged")
			}
		}
	})
}

func TestFutexTableFIFO(t *testing.T) {
	var f FutexTable
	f.Wait(3, 0x100)
	f.Wait(1, 0x200)
	f.Wait(2, 0x100)
	f.Wait(5, 0x100)
	require.True(t, f.Cancel(2))
	var got []int
	for {
		th, ok := f.WakeOne(0x100)
		if !ok {
			break
		}
		got = append(got, th)
	}
	assert.Equal(t, []int{3, 5}, got, "oldest first, cancelled skipped")
	assert.True(t, f.Waiting(1))
	assert.False(t, f.Cancel(3))
}

func TestFilesLimits(t *testing.T) {
	var fs Files
	fs.Init()
	for i := 3; i < MaxFDs; i++ {
		fd, err := fs.Eventfd(0, 0)
		require.Zero(t, err)
		require.Equal(t, i, fd)
	}
	_, err := fs.Eventfd(0, 0)
	assert.Equal(t, EMFILE, err)
	require.Zero(t, fs.Close(10))
	fd, err := fs.EpollCreate()
	require.Zero(t, err)
	assert.Equal(t, 10, fd, "lowest free descriptor")
	assert.Equal(t, EINVAL, fs.EpollCtl(10, EPOLL_CTL_ADD, 10, EPOLLIN, 0), "epoll watching itself")
	assert.Equal(t, EBADF, fs.EpollCtl(10, EPOLL_CTL_ADD, 99, EPOLLIN, 0))
	assert.Equal(t, ENOENT, fs.EpollCtl(10, EPOLL_CTL_DEL, 11, 0, 0))
	assert.Equal(t, EINVAL, fs.EventfdWrite(11, 1<<64-1))
}
