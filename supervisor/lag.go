package supervisor

import (
	"strconv"
	"time"
)

// lagThreshold is the lateness from which checks count as running behind: well above the scheduler's
// batching quantum and the jitter of a busy machine.
const lagThreshold = 500 * time.Millisecond

// lagReportInterval is how often the lag is logged at most.
const lagReportInterval = time.Minute

// lagMeter accounts for how late checks start against their checkinterval: the worst lateness since the
// last report, and the last one seen. A plain value: the caller serialises calls and passes the time.
type lagMeter struct {
	worst    time.Duration
	last     time.Duration
	reported time.Time
}

// observe takes the lateness of one check start.
func (m *lagMeter) observe(late time.Duration) {
	late = max(late, 0)
	m.last = late
	m.worst = max(m.worst, late)
}

// report returns the line to log now, or "": at the first lateness over lagThreshold, then at most once
// per lagReportInterval while checks keep running late.
func (m *lagMeter) report(now time.Time) string {
	if m.worst < lagThreshold {
		return ""
	}
	if !m.reported.IsZero() && now.Sub(m.reported) < lagReportInterval {
		return ""
	}
	line := "checks are running " + lagSeconds(m.worst) + " s behind checkinterval"
	m.reported, m.worst = now, 0
	return line
}

// lagSeconds is d in seconds with one decimal: 2.5.
func lagSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
}
