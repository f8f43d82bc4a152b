package supervisor

import (
	"runtime/metrics"
	"time"
)

// schedLatency reads how long goroutines of this process waited, runnable, before they ran (the Go
// runtime's /sched/latencies histogram): the direct measure of a daemon starved of CPU. A check whose
// goroutine waited that long could not see its answer in time. A plain value, read by the scheduler.
type schedLatency struct {
	sample []metrics.Sample
	last   []uint64 // the counts at the previous read
}

const schedLatencyMetric = "/sched/latencies:seconds"

func newSchedLatency() *schedLatency {
	return &schedLatency{sample: []metrics.Sample{{Name: schedLatencyMetric}}}
}

// read returns, for the goroutines that became runnable since the previous call, the longest wait (the
// lower bound of its histogram bucket) and the wait that 99 % of them stayed under; zeros on the first
// call, when none ran, or when the runtime does not report it.
func (s *schedLatency) read() (worst, p99 time.Duration) {
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0, 0
	}
	h := s.sample[0].Value.Float64Histogram()
	first := s.last == nil
	if len(s.last) != len(h.Counts) {
		s.last = make([]uint64, len(h.Counts))
	}
	var total uint64
	for i, c := range h.Counts {
		total += c - min(s.last[i], c)
	}
	if first {
		total = 0
	}
	var seen uint64
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if n := h.Counts[i] - min(s.last[i], h.Counts[i]); n > 0 && total > 0 {
			lower := time.Duration(max(h.Buckets[i], 0) * float64(time.Second))
			if worst == 0 {
				worst = lower
			}
			if seen*100 <= total && (seen+n)*100 > total && p99 == 0 {
				p99 = lower
			}
			seen += n
		}
		s.last[i] = h.Counts[i]
	}
	return worst, p99
}

// stallLog remembers the recent stalls of the daemon: when the scheduler found it starved of CPU, and for
// how long. A plain value (engine.mu).
type stallLog struct {
	recent [16]stall
	next   int
}

type stall struct {
	at  time.Time
	dur time.Duration
}

// note records a stall of d seen at at.
func (l *stallLog) note(at time.Time, d time.Duration) {
	l.recent[l.next] = stall{at: at, dur: d}
	l.next = (l.next + 1) % len(l.recent)
}

// since says whether a stall longer than limit was seen at or after t.
func (l *stallLog) since(t time.Time, limit time.Duration) bool {
	for _, s := range l.recent {
		if !s.at.IsZero() && !s.at.Before(t) && s.dur > limit {
			return true
		}
	}
	return false
}
