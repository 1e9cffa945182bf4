package timerq

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOrder(t *testing.T) {
	var q Queue
	var fired []int
	mk := func(i int) *Timer { return &Timer{F: func() { fired = append(fired, i) }} }
	ts := []*Timer{mk(0), mk(1), mk(2), mk(3), mk(4)}
	q.Push(ts[0], 30)
	q.Push(ts[1], 10)
	q.Push(ts[2], 30) // ties with 0, armed later
	q.Push(ts[3], 20)
	q.Push(ts[4], 5)
	require.True(t, q.Remove(ts[4]))
	require.False(t, q.Remove(ts[4]), "second Remove")
	q.Push(ts[1], 30) // moved: now after 0 and 2
	next, ok := q.Next()
	require.True(t, ok)
	assert.Equal(t, time.Duration(20), next)
	assert.Nil(t, q.PopDue(19))
	for tm := q.PopDue(100); tm != nil; tm = q.PopDue(100) {
		assert.False(t, tm.Pending())
		tm.F()
	}
	assert.Equal(t, []int{3, 0, 2, 1}, fired)
	assert.Equal(t, 0, q.Len())
	_, ok = q.Next()
	assert.False(t, ok)
}

// TestRandom checks the queue against a sorted model under random pushes,
// moves and removals.
func TestRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q Queue
	type rec struct {
		when time.Duration
		seq  int
	}
	timers := make([]*Timer, 64)
	model := map[*Timer]rec{}
	seq := 0
	for i := range timers {
		timers[i] = &Timer{}
	}
	for range 5000 {
		tm := timers[r.IntN(len(timers))]
		if r.IntN(3) == 0 {
			_, had := model[tm]
			assert.Equal(t, had, q.Remove(tm))
			delete(model, tm)
			continue
		}
		when := time.Duration(r.IntN(50))
		q.Push(tm, when)
		model[tm] = rec{when, seq}
		seq++
	}
	var want []rec
	for _, v := range model {
		want = append(want, v)
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].when != want[j].when {
			return want[i].when < want[j].when
		}
		return want[i].seq < want[j].seq
	})
	require.Equal(t, len(want), q.Len())
	for _, w := range want {
		tm := q.PopDue(1 << 40)
		require.NotNil(t, tm)
		assert.Equal(t, w, model[tm])
	}
	assert.Nil(t, q.PopDue(1<<40))
}
