package threads

// State is a thread slot's scheduling state.
type State uint8

// Thread states.
const (
	Free     State = iota // slot unused
	Runnable              // waiting in the run queue
	Running               // on the CPU
	Blocked               // waiting for Wake or its deadline
)

// Scheduler is a uniprocessor round-robin scheduler with time slices. The
// zero value has no threads and runs the idle loop. It does not read a
// clock: callers pass the monotonic time in nanoseconds.
type Scheduler struct {
	state  [MaxThreads]State
	run    RunQueue
	timers Timers
	cur    int8 // running thread plus one; 0 when idle
	start  int64

	// Switches counts the times the CPU moved from one thread (or the idle
	// loop) to a different one.
	Switches uint64
}

// State returns t's state (Free for out-of-range t).
func (s *Scheduler) State(t int) State {
	if t < 0 || t >= MaxThreads {
		return Free
	}
	return s.state[t]
}

// Current returns the running thread, or -1 when the CPU is idle.
func (s *Scheduler) Current() int { return int(s.cur) - 1 }

// Alloc claims a free slot for a new thread, which starts runnable.
func (s *Scheduler) Alloc() (t int, ok bool) {
	for i := range s.state {
		if s.state[i] == Free {
			s.state[i] = Runnable
			s.run.Push(i)
			return i, true
		}
	}
	return -1, false
}

// Live returns the number of slots in use.
func (s *Scheduler) Live() int {
	n := 0
	for _, st := range s.state {
		if st != Free {
			n++
		}
	}
	return n
}

// Block takes the running or runnable thread t off the CPU until Wake(t),
// or until deadline (monotonic nanoseconds) if deadline is positive; see
// Expired.
func (s *Scheduler) Block(t int, deadline int64) {
	if t < 0 || t >= MaxThreads || s.state[t] == Free || s.state[t] == Blocked {
		return
	}
	if s.Current() == t {
		s.cur = 0
	}
	s.run.Remove(t)
	s.state[t] = Blocked
	if deadline > 0 {
		s.timers.Set(t, deadline)
	}
}

// Wake makes the blocked thread t runnable, cancelling its deadline. It
// reports whether t was blocked.
func (s *Scheduler) Wake(t int) bool {
	if t < 0 || t >= MaxThreads || s.state[t] != Blocked {
		return false
	}
	s.timers.Cancel(t)
	s.state[t] = Runnable
	s.run.Push(t)
	return true
}

// Exit frees t's slot.
func (s *Scheduler) Exit(t int) {
	if t < 0 || t >= MaxThreads {
		return
	}
	if s.Current() == t {
		s.cur = 0
	}
	s.run.Remove(t)
	s.timers.Cancel(t)
	s.state[t] = Free
}

// Expired returns a blocked thread whose deadline has passed, removing the
// deadline; the thread stays blocked until the caller finishes its wait and
// calls Wake.
func (s *Scheduler) Expired(now int64) (t int, ok bool) {
	return s.timers.PopExpired(now)
}

// Yield puts the running thread at the back of the run queue.
func (s *Scheduler) Yield() {
	if t := s.Current(); t >= 0 {
		s.cur = 0
		s.state[t] = Runnable
		s.run.Push(t)
	}
}

// Schedule decides which thread runs next and returns it (-1 for idle).
// The running thread keeps the CPU until its slice of quantum nanoseconds
// is used up and another thread is waiting.
func (s *Scheduler) Schedule(now, quantum int64) int {
	prev := s.Current()
	if prev >= 0 {
		if s.run.Len() == 0 || now-s.start < quantum {
			return prev
		}
		s.state[prev] = Runnable
		s.run.Push(prev)
		s.cur = 0
	}
	t, ok := s.run.Pop()
	if !ok {
		return -1
	}
	s.state[t] = Running
	s.cur = int8(t + 1)
	s.start = now
	if t != prev {
		s.Switches++
	}
	return t
}

// NextEvent returns when the scheduler next needs the CPU back: the
// earliest deadline, or the end of the running thread's slice if other
// threads are waiting. ok is false if nothing is pending.
func (s *Scheduler) NextEvent(quantum int64) (when int64, ok bool) {
	_, when, ok = s.timers.Next()
	if s.Current() >= 0 && s.run.Len() > 0 {
		end := s.start + quantum
		if !ok || end < when {
			when, ok = end, true
		}
	}
	return when, ok
}
