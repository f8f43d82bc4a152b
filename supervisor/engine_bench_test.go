package supervisor

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// BenchmarkScale runs the production HTTP checks of many reals against healthy loopback backends in a child
// process (each backend port is checked by several virtuals, with a request path per virtual, so that
// 30,000 distinct checks need only 3,000 listening sockets) and reports, over a window after the start:
// the checks run (counted at the backends), the CPU per check, the lag, the resident memory, and the
// kernel operations (there must be none: every real stays up). VmHWM is the process's peak since it
// started, so run one case per process:
//
//	go test -run '^$' -bench 'BenchmarkScale/reals=1000$' -benchtime=1x ./supervisor/
//
// procs=1 runs the supervisor on GOMAXPROCS 1, the "one core".
func BenchmarkScale(b *testing.B) {
	cases := []struct {
		backends, virtuals int
		interval           time.Duration
		procs              int
		window             time.Duration
	}{
		{1000, 1, time.Second, 0, 15 * time.Second},
		{2500, 4, 10 * time.Second, 0, 20 * time.Second},
		{3000, 10, time.Second, 1, 20 * time.Second},
	}
	for _, c := range cases {
		name := fmt.Sprintf("reals=%d", c.backends*c.virtuals)
		if c.procs > 0 {
			name += fmt.Sprintf("/procs=%d", c.procs)
		}
		b.Run(name, func(b *testing.B) {
			benchmarkScale(b, c.backends, c.virtuals, c.interval, c.procs, c.window)
		})
	}
}

func benchmarkScale(b *testing.B, backends, virtuals int, interval time.Duration, procs int, window time.Duration) {
	n := backends * virtuals
	ports, served := startCountingBackends(b, backends, 0)
	if procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	}
	for b.Loop() {
		var vsList []*config.Virtual
		for i := range virtuals {
			v := vs(fmt.Sprintf("10.9.9.%d:80", i+1))
			v.CheckInterval, v.NegotiateTimeout, v.CheckTimeout = interval, 5*time.Second, 5*time.Second
			for _, p := range ports {
				r := rs(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p).String(), masq, 1)
				r.Request = fmt.Sprintf("/v%d", i)
				v.Reals = append(v.Reals, r)
			}
			vsList = append(vsList, v)
		}
		cfg := cfgOf(vsList...)
		cfg.CheckInterval = interval
		fake := ipvsctl.NewFake()
		var checks atomic.Int64
		s, err := New(cfg, Options{Client: fake, Log: quietLogger(),
			NewChecker: countingCheckers(&checks)})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		t0 := time.Now()
		go func() { s.Run(ctx); close(done) }()
		for inTable(fake) < n {
			time.Sleep(50 * time.Millisecond)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s-all-in-table")
		if f := os.Getenv("BENCH_HEAP_PROFILE"); f != "" { // the heap at the end of the first round
			if w, err := os.Create(f); err == nil {
				pprof.WriteHeapProfile(w)
				w.Close()
			}
		}
		time.Sleep(max(interval+2*time.Second-time.Since(t0), time.Second))
		fake.ResetOps()
		c0, k0, r0 := cpuTime(), checks.Load(), served()
		var lag time.Duration
		for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			lag = max(lag, s.eng.lagNow(time.Now())) // what Snapshot reports, without building a snapshot
		}
		cpu, k, r := cpuTime()-c0, checks.Load()-k0, served()-r0
		rss := rssMB()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		ops := len(fake.Ops())
		cancel()
		<-done
		b.ReportMetric(float64(n)/interval.Seconds(), "due/s")
		b.ReportMetric(float64(k)/window.Seconds(), "checks/s")
		b.ReportMetric(float64(r)/window.Seconds(), "backend-req/s")
		b.ReportMetric(cpu.Seconds()/window.Seconds(), "cores")
		b.ReportMetric(float64(cpu.Microseconds())/float64(max(k, 1)), "µs-cpu/check")
		b.ReportMetric(lag.Seconds(), "s-lag-max")
		b.ReportMetric(rss, "MB-rss")
		b.ReportMetric(peakRSSMB(), "MB-peak-rss")
		b.ReportMetric(float64(ops), "kernel-ops")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MB-heap")
		b.ReportMetric(float64(ms.StackInuse)/(1<<20), "MB-stacks")
		b.ReportMetric(float64(ms.Sys)/(1<<20), "MB-go-sys")
	}
}
