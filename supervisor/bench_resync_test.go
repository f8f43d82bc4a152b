package supervisor

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// resync10kConfig is 10,000 reals (checktype=on, checked once an hour, so that only the resyncs work)
// over 4 virtuals.
func resync10kConfig() *config.Config {
	var vss []*config.Virtual
	for i := range 4 {
		v := vs(fmt.Sprintf("10.9.%d.1:80", i))
		v.CheckType, v.CheckInterval = config.CheckOn, time.Hour
		for j := range 2500 {
			a := netip.AddrFrom4([4]byte{10, byte(100 + i), byte(j / 250), byte(1 + j%250)})
			v.Reals = append(v.Reals, rs(netip.AddrPortFrom(a, 80).String(), masq, 1))
		}
		vss = append(vss, v)
	}
	cfg := cfgOf(vss...)
	cfg.CheckInterval = time.Hour
	return cfg
}

// benchResync10k runs the supervisor on client with 10,000 destinations and resyncs back to back (every
// 200ms, unpaced) for window, and reports what one resync costs: the cost the pacer sees (the larger of
// its wall time and the process's CPU time meanwhile), the process's CPU time per resync over the window,
// the share of one core that resyncs every 10s (the default) would take, and the interval the pacer
// would choose.
func benchResync10k(b *testing.B, client ipvsctl.Client, window time.Duration) {
	for b.Loop() {
		s, err := New(resync10kConfig(), Options{Client: client, Log: quietLogger(), ResyncInterval: 200 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		s.resyncShare = 1 // back to back: measure, do not pace
		var mu sync.Mutex
		var costs []time.Duration
		measuring := false
		s.resynced = func(cost, next time.Duration) {
			mu.Lock()
			if measuring {
				costs = append(costs, cost)
			}
			mu.Unlock()
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		for n := 0; n < 10000; {
			time.Sleep(100 * time.Millisecond)
			n = 0
			for _, v := range s.Snapshot().Virtuals {
				for _, r := range v.Reals {
					if r.InTable {
						n++
					}
				}
			}
		}
		time.Sleep(time.Second)
		mu.Lock()
		measuring = true
		mu.Unlock()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c0 := cpuTime()
		time.Sleep(window)
		cpu := cpuTime() - c0
		runtime.ReadMemStats(&m1)
		mu.Lock()
		measuring = false
		got := slices.Clone(costs)
		mu.Unlock()
		cancel()
		<-done
		if len(got) == 0 {
			b.Fatal("no resync in the window")
		}
		slices.Sort(got)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		perResync := cpu / time.Duration(len(got))
		b.ReportMetric(float64(len(got)), "resyncs")
		b.ReportMetric(ms(got[len(got)/2]), "ms-cost-p50")
		b.ReportMetric(ms(got[len(got)-1]), "ms-cost-max")
		b.ReportMetric(ms(perResync), "ms-cpu/resync")
		b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(len(got))/(1<<20), "MB-alloc/resync")
		b.ReportMetric(100*perResync.Seconds()/DefaultResyncInterval.Seconds(), "%core-at-10s")
		b.ReportMetric(resyncPacer{interval: DefaultResyncInterval, share: ResyncShare}.next(got[len(got)/2]).Seconds(), "s-paced-interval")
	}
}

// BenchmarkResync10k is the periodic resync of 10,000 destinations against the in-memory Fake (the
// supervisor's own cost: ReadTable through the Client interface, Desired, Diff). Run with -benchtime=1x.
func BenchmarkResync10k(b *testing.B) {
	benchResync10k(b, ipvsctl.NewFake(), 10*time.Second)
}
