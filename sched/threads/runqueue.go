package threads

// MaxThreads is the number of thread slots the scheduler manages.
const MaxThreads = 64

// RunQueue is a FIFO of thread numbers, each present at most once. The zero
// value is an empty queue.
type RunQueue struct {
	q    [MaxThreads]int8
	head int
	n    int
	in   [MaxThreads]bool
}

// Len returns the number of queued threads.
func (r *RunQueue) Len() int { return r.n }

// Contains reports whether t is queued.
func (r *RunQueue) Contains(t int) bool { return t >= 0 && t < MaxThreads && r.in[t] }

// Push appends t. It reports false, changing nothing, if t is out of range
// or already queued.
func (r *RunQueue) Push(t int) bool {
	if t < 0 || t >= MaxThreads || r.in[t] {
		return false
	}
	r.q[(r.head+r.n)%MaxThreads] = int8(t)
	r.n++
	r.in[t] = true
	return true
}

// Pop removes and returns the thread at the front.
func (r *RunQueue) Pop() (t int, ok bool) {
	if r.n == 0 {
		return -1, false
	}
	t = int(r.q[r.head])
	r.head = (r.head + 1) % MaxThreads
	r.n--
	r.in[t] = false
	return t, true
}

// Remove takes t out of the queue wherever it is, keeping the order of the
// others. It reports whether t was queued.
func (r *RunQueue) Remove(t int) bool {
	if !r.Contains(t) {
		return false
	}
	j := 0
	for i := 0; i < r.n; i++ {
		v := r.q[(r.head+i)%MaxThreads]
		if int(v) == t {
			continue
		}
		r.q[(r.head+j)%MaxThreads] = v
		j++
	}
	r.n = j
	r.in[t] = false
	return true
}
