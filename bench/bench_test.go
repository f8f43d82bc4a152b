package bench

import (
	"testing"
	"time"
)

// report puts a measurement in b's metrics.
func report(b *testing.B, m measurement) {
	b.ReportMetric(m.allIn.Seconds(), "s-all-in")
	b.ReportMetric(m.checksPerSec, "checks/s")
	b.ReportMetric(m.cores, "cores")
	b.ReportMetric(m.usPerCheck, "µs-cpu/check")
	b.ReportMetric(m.rssMB, "MB-rss")
	b.ReportMetric(m.hwmMB, "MB-peak-rss")
	b.ReportMetric(float64(m.delete), "deleted")
}

// BenchmarkCheckCost10k: 10,000 HTTP reals over 4 virtuals at checkinterval 10 (negotiatetimeout 5), all
// healthy: the daemon's CPU per check answered by the backend (1,000/s when every due check runs), over 20 s
// after a 12 s warm-up, then, in the same run on the same CPU and backend, a bare Go client's (fresh
// connection, GET, read, close; 4 goroutines, unpaced; 20,000 checks), and the ratio of the two (item 4 of
// issue 8: <= 1.5); and the same client paced at 1,000 checks/s with a timer and a goroutine per check
// (10,000 checks), which shows what waking from idle for every check costs. Run with -benchtime=1x.
func BenchmarkCheckCost10k(b *testing.B) {
	bk := startBackend(b, 10000)
	for b.Loop() {
		m := measure(b, bk, 4, 10*time.Second, 5*time.Second, 12*time.Second, 20*time.Second, 60*time.Second)
		report(b, m)
		bare := runBare(b, bk, 20000, 0)
		b.ReportMetric(bare, "µs-cpu/bare-check")
		b.ReportMetric(m.usPerCheck/bare, "x-bare")
		b.ReportMetric(runBare(b, bk, 10000, 1000), "µs-cpu/paced-check")
	}
}

// BenchmarkRSS1k: 1,000 HTTP reals at checkinterval 10, measured like BenchmarkCheckCost10k (issue 8:
// RSS <= 20 MB). Run with -benchtime=1x.
func BenchmarkRSS1k(b *testing.B) {
	bk := startBackend(b, 1000)
	for b.Loop() {
		report(b, measure(b, bk, 4, 10*time.Second, 5*time.Second, 12*time.Second, 20*time.Second, 60*time.Second))
	}
}

// BenchmarkOverload30k: 30,000 HTTP reals at checkinterval 1 (default timeouts), all healthy, the daemon on
// one CPU with an fd limit of 16,384: far more than one core can check. Over 60 s: the peak RSS (issue 8:
// <= 250 MB however late the checks run), the reals wrongly removed (deleted; must be 0), the checks
// answered per second in the last 30 s. Run with -benchtime=1x.
func BenchmarkOverload30k(b *testing.B) {
	bk := startBackend(b, 30000)
	for b.Loop() {
		report(b, measure(b, bk, 4, time.Second, 0, 30*time.Second, 30*time.Second, 0))
	}
}
