package threads

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunQueue(t *testing.T) {
	tests := []struct {
		name string
		push []int
		rm   []int
		want []int
	}{
		{"fifo", []int{3, 1, 2}, nil, []int{3, 1, 2}},
		{"duplicates ignored", []int{1, 1, 2}, nil, []int{1, 2}},
		{"out of range ignored", []int{-1, MaxThreads, 5}, nil, []int{5}},
		{"remove middle", []int{1, 2, 3}, []int{2}, []int{1, 3}},
		{"remove absent", []int{1}, []int{7}, []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var q RunQueue
			for _, v := range tc.push {
				q.Push(v)
			}
			for _, v := range tc.rm {
				q.Remove(v)
			}
			var got []int
			for {
				v, ok := q.Pop()
				if !ok {
					break
				}
				got = append(got, v)
			}
			assert.Equal(t, tc.want, got)
			assert.Zero(t, q.Len())
		})
	}
}

func TestRunQueueWraps(t *testing.T) {
	var q RunQueue
	for round := 0; round < 3*MaxThreads; round++ {
		require.True(t, q.Push(round%MaxThreads))
		v, ok := q.Pop()
		require.True(t, ok)
		require.Equal(t, round%MaxThreads, v)
	}
}

func TestTimersOrder(t *testing.T) {
	var h Timers
	h.Set(1, 50)
	h.Set(2, 10)
	h.Set(3, 30)
	h.Set(2, 40) // replace
	require.True(t, h.Cancel(3))
	assert.False(t, h.Cancel(3))
	when, ok := h.Pending(2)
	require.True(t, ok)
	assert.Equal(t, int64(40), when)
	_, ok = h.PopExpired(39)
	assert.False(t, ok)
	v, ok := h.PopExpired(100)
	require.True(t, ok)
	assert.Equal(t, 2, v)
	v, ok = h.PopExpired(100)
	require.True(t, ok)
	assert.Equal(t, 1, v)
	assert.Zero(t, h.Len())
}

// FuzzTimers drives the heap with random operations and checks it against
// a map of deadlines.
func FuzzTimers(f *testing.F) {
	f.Add([]byte{0, 1, 5, 0, 2, 3, 1, 1, 0, 2, 9, 0})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 2, 0, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var h Timers
		model := map[int]int64{}
		for i := 0; i+2 < len(ops); i += 3 {
			th := int(ops[i+1]) % MaxThreads
			when := int64(ops[i+2])
			switch ops[i] % 3 {
			case 0:
				h.Set(th, when)
				model[th] = when
			case 1:
				_, had := model[th]
				require.Equal(t, had, h.Cancel(th))
				delete(model, th)
			case 2:
				v, ok := h.PopExpired(when)
				var due []int
				for k, w := range model {
					if w <= when {
						due = append(due, k)
					}
				}
				if len(due) == 0 {
					require.False(t, ok)
					continue
				}
				require.True(t, ok)
				sort.Slice(due, func(a, b int) bool {
					if model[due[a]] != model[due[b]] {
						return model[due[a]] < model[due[b]]
					}
					return due[a] < due[b]
				})
				require.Equal(t, due[0], v)
				delete(model, v)
			}
			require.Equal(t, len(model), h.Len())
		}
	})
}

func TestSchedulerRoundRobin(t *testing.T) {
	var s Scheduler
	a, _ := s.Alloc()
	b, _ := s.Alloc()
	const q = 10
	require.Equal(t, a, s.Schedule(0, q))
	assert.Equal(t, a, s.Schedule(5, q), "slice not used up")
	assert.Equal(t, b, s.Schedule(10, q), "slice used up, b waiting")
	assert.Equal(t, a, s.Schedule(20, q))
	when, ok := s.NextEvent(q)
	require.True(t, ok)
	assert.Equal(t, int64(30), when)
	assert.Equal(t, uint64(3), s.Switches)
}

func TestSchedulerBlockWake(t *testing.T) {
	tests := []struct {
		name   string
		wakeBy string
	}{
		{"wake", "wake"},
		{"deadline", "deadline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Scheduler
			th, _ := s.Alloc()
			require.Equal(t, th, s.Schedule(0, 10))
			s.Block(th, 100)
			assert.Equal(t, -1, s.Current())
			assert.Equal(t, -1, s.Schedule(1, 10), "idle")
			when, ok := s.NextEvent(10)
			require.True(t, ok)
			assert.Equal(t, int64(100), when)
			switch tc.wakeBy {
			case "wake":
				require.True(t, s.Wake(th))
			case "deadline":
				_, ok := s.Expired(99)
				require.False(t, ok)
				e, ok := s.Expired(100)
				require.True(t, ok)
				require.Equal(t, th, e)
				assert.Equal(t, Blocked, s.State(th))
				require.True(t, s.Wake(th))
			}
			assert.Equal(t, th, s.Schedule(101, 10))
			_, ok = s.NextEvent(10)
			assert.False(t, ok)
			s.Exit(th)
			assert.Equal(t, 0, s.Live())
		})
	}
}
