package supervisor

import (
	"runtime/metrics"
	"syscall"
	"time"
)

// ResyncShare is the largest share of one core the periodic resync may take: the time between resyncs is
// at least the last resync's duration divided by it.
const ResyncShare = 0.01

// resyncPacer spaces the periodic resyncs: every interval, or, when reading and repairing the table took
// longer than interval*share (a very large table, a slow kernel), that much further apart that the resync
// stays within share of one core. A plain value, tested with no clock.
type resyncPacer struct {
	interval time.Duration
	share    float64
}

// next is the delay before the next resync, after one that cost cost (see resyncCost).
func (p resyncPacer) next(cost time.Duration) time.Duration {
	return max(p.interval, time.Duration(float64(cost)/p.share))
}

// resyncCost is what one resync cost the process: the larger of its wall time and the CPU the process
// used meanwhile (the whole process's, the check loops' too, so on a busy daemon it overstates the resync,
// which only spaces resyncs more), plus its share of the garbage collection of the cycle before it, which
// mostly runs after the resync that made the garbage: the GC (and memory scavenging) CPU of that cycle
// times the part of the cycle's allocations that the previous resync made.
func resyncCost(wall, cpu, cycleGC time.Duration, resyncAlloc, cycleAlloc uint64) time.Duration {
	cost := max(wall, cpu)
	if cycleAlloc > 0 && resyncAlloc <= cycleAlloc {
		cost += time.Duration(float64(cycleGC) * float64(resyncAlloc) / float64(cycleAlloc))
	}
	return cost
}

// resyncMeter takes the readings resyncCost needs, around each resync (owner goroutine).
type resyncMeter struct {
	samples []metrics.Sample
	wall0   time.Time
	cpu0    time.Duration
	start   reading // at the start of this resync
	// at0 is the reading at the start of the last resync, alloc how much that resync allocated.
	at0   reading
	alloc uint64
}

type reading struct {
	alloc uint64        // bytes allocated so far
	gc    time.Duration // CPU of garbage collection and of returning memory to the system so far
}

func newResyncMeter() *resyncMeter {
	return &resyncMeter{samples: []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/scavenge/total:cpu-seconds"},
	}}
}

func (m *resyncMeter) read() reading {
	metrics.Read(m.samples)
	var r reading
	if m.samples[0].Value.Kind() == metrics.KindUint64 {
		r.alloc = m.samples[0].Value.Uint64()
	}
	if m.samples[1].Value.Kind() == metrics.KindFloat64 && m.samples[2].Value.Kind() == metrics.KindFloat64 {
		r.gc = time.Duration((m.samples[1].Value.Float64() + m.samples[2].Value.Float64()) * float64(time.Second))
	}
	return r
}

// begin is called as a resync starts.
func (m *resyncMeter) begin() {
	m.wall0, m.cpu0, m.start = time.Now(), processCPU(), m.read()
}

// end is called once the resync is done; it returns its cost.
func (m *resyncMeter) end() time.Duration {
	wall, cpu := time.Since(m.wall0), processCPU()-m.cpu0
	now := m.read()
	// The cycle from the last resync's start to this one's end; this resync's own garbage is charged next
	// time.
	var cost time.Duration
	if m.at0 != (reading{}) {
		cost = resyncCost(wall, cpu, now.gc-m.at0.gc, m.alloc, now.alloc-m.at0.alloc)
	} else {
		cost = resyncCost(wall, cpu, 0, 0, 0)
	}
	m.at0, m.alloc = m.start, now.alloc-m.start.alloc
	return cost
}

// processCPU is the CPU time this process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
