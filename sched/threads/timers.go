package threads

// Timers is a min-heap of per-thread deadlines (nanoseconds on the
// monotonic clock): each thread has at most one pending deadline. The zero
// value holds none.
type Timers struct {
	heap [MaxThreads]timerEntry
	pos  [MaxThreads]int8 // index in heap plus one; 0 when absent
	n    int
}

type timerEntry struct {
	when int64
	t    int8
}

// Len returns the number of pending deadlines.
func (h *Timers) Len() int { return h.n }

// Pending returns t's deadline, if it has one.
func (h *Timers) Pending(t int) (when int64, ok bool) {
	if t < 0 || t >= MaxThreads || h.pos[t] == 0 {
		return 0, false
	}
	return h.heap[h.pos[t]-1].when, true
}

// Set gives t the deadline when, replacing any earlier one. Out-of-range
// threads are ignored.
func (h *Timers) Set(t int, when int64) {
	if t < 0 || t >= MaxThreads {
		return
	}
	if h.pos[t] != 0 {
		i := int(h.pos[t]) - 1
		h.heap[i].when = when
		h.up(i)
		h.down(int(h.pos[t]) - 1)
		return
	}
	i := h.n
	h.n++
	h.heap[i] = timerEntry{when: when, t: int8(t)}
	h.pos[t] = int8(i + 1)
	h.up(i)
}

// Cancel removes t's deadline and reports whether it had one.
func (h *Timers) Cancel(t int) bool {
	if t < 0 || t >= MaxThreads || h.pos[t] == 0 {
		return false
	}
	i := int(h.pos[t]) - 1
	h.pos[t] = 0
	h.n--
	if i != h.n {
		h.heap[i] = h.heap[h.n]
		h.pos[h.heap[i].t] = int8(i + 1)
		h.up(i)
		h.down(int(h.pos[h.heap[i].t]) - 1)
	}
	return true
}

// Next returns the earliest deadline and its thread.
func (h *Timers) Next() (t int, when int64, ok bool) {
	if h.n == 0 {
		return -1, 0, false
	}
	return int(h.heap[0].t), h.heap[0].when, true
}

// PopExpired removes and returns a thread whose deadline is at or before
// now, earliest first.
func (h *Timers) PopExpired(now int64) (t int, ok bool) {
	if h.n == 0 || h.heap[0].when > now {
		return -1, false
	}
	t = int(h.heap[0].t)
	h.Cancel(t)
	return t, true
}

func (h *Timers) less(i, j int) bool {
	a, b := &h.heap[i], &h.heap[j]
	if a.when != b.when {
		return a.when < b.when
	}
	return a.t < b.t
}

func (h *Timers) swap(i, j int) {
	h.heap[i], h.heap[j] = h.heap[j], h.heap[i]
	h.pos[h.heap[i].t] = int8(i + 1)
	h.pos[h.heap[j].t] = int8(j + 1)
}

func (h *Timers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *Timers) down(i int) {
	for {
		l := 2*i + 1
		if l >= h.n {
			return
		}
		m := l
		if r := l + 1; r < h.n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}
