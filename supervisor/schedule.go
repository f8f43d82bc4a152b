package supervisor

import (
	"container/heap"
	"time"
)

// firstRoundWindow bounds the stagger of the first checks after start or reload, so that healthy reals
// reach the table quickly even with a long checkinterval; later checks spread over the whole interval.
const firstRoundWindow = time.Second

// slot is the timing of one periodic check: a fixed phase of its interval (a stable hash of the target),
// so checks do not fire in lock-step, and a check that overran skips the slots it missed.
type slot struct {
	iv   time.Duration
	base time.Time // the phase: checks are due at base + k*iv
	due  time.Time // the next check is due then
}

// newSlot is the timing of a check with interval iv and stagger frac in [0, 1) that starts at start: the
// first check within firstRoundWindow, then every iv at the check's phase.
func newSlot(iv time.Duration, frac float64, start time.Time) slot {
	iv = max(iv, time.Millisecond)
	return slot{
		iv:   iv,
		base: start.Add(time.Duration(frac * float64(iv))),
		due:  start.Add(time.Duration(frac * float64(min(iv, firstRoundWindow)))),
	}
}

// advance moves due to the first slot after now: a check that ran late is not run again at once to catch
// up; it keeps its phase.
func (s *slot) advance(now time.Time) {
	if now.Before(s.base) { // after a first check ahead of its phase
		s.due = s.base
		return
	}
	k := now.Sub(s.base)/s.iv + 1
	s.due = s.base.Add(max(k, 1) * s.iv)
}

// schedule is a min-heap of jobs by due time: the jobs waiting for their next check.
type schedule []*job

func (q schedule) Len() int           { return len(q) }
func (q schedule) Less(i, j int) bool { return q[i].slot.due.Before(q[j].slot.due) }
func (q schedule) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}
func (q *schedule) Push(x any) {
	j := x.(*job)
	j.idx = len(*q)
	*q = append(*q, j)
}
func (q *schedule) Pop() any {
	old := *q
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	j.idx = -1
	return j
}

// add puts j in the schedule.
func (q *schedule) add(j *job) { heap.Push(q, j) }

// remove takes j out of the schedule if it is in it.
func (q *schedule) remove(j *job) {
	if j.idx >= 0 && j.idx < len(*q) && (*q)[j.idx] == j {
		heap.Remove(q, j.idx)
	}
}

// next is the earliest due time, and false when the schedule is empty.
func (q schedule) next() (time.Time, bool) {
	if len(q) == 0 {
		return time.Time{}, false
	}
	return q[0].slot.due, true
}

// popDue takes every job due at or before until out of the schedule, earliest first, and appends it to
// out.
func (q *schedule) popDue(until time.Time, out []*job) []*job {
	for len(*q) > 0 && !(*q)[0].slot.due.After(until) {
		out = append(out, heap.Pop(q).(*job))
	}
	return out
}
