package supervisor

import "time"

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

// next is the delay before the next resync, after one that took cost (its wall time, which bounds the CPU
// time it used).
func (p resyncPacer) next(cost time.Duration) time.Duration {
	return max(p.interval, time.Duration(float64(cost)/p.share))
}
