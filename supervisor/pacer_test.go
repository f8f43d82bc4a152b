package supervisor

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

func TestResyncPacer(t *testing.T) {
	p := resyncPacer{interval: 10 * time.Second, share: ResyncShare}
	for _, c := range []struct{ cost, want time.Duration }{
		{0, 10 * time.Second},
		{5 * time.Millisecond, 10 * time.Second},
		{100 * time.Millisecond, 10 * time.Second},
		{150 * time.Millisecond, 15 * time.Second},
		{2 * time.Second, 200 * time.Second},
	} {
		if got := p.next(c.cost); got != c.want {
			t.Errorf("after a resync of %s: next in %s, want %s", c.cost, got, c.want)
		}
	}
}

func TestResyncCost(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name             string
		wall, cpu, gc    time.Duration
		resAlloc, allocs uint64
		want             time.Duration
	}{
		{"wall time", 20 * ms, 15 * ms, 0, 0, 0, 20 * ms},
		{"CPU on other cores", 60 * ms, 136 * ms, 0, 0, 0, 136 * ms},
		{"all of the cycle's garbage", 40 * ms, 30 * ms, 170 * ms, 42 << 20, 42 << 20, 210 * ms},
		{"a quarter of it", 40 * ms, 30 * ms, 100 * ms, 1 << 20, 4 << 20, 65 * ms},
		{"no allocation", 40 * ms, 30 * ms, 100 * ms, 0, 0, 40 * ms},
		{"inconsistent readings", 40 * ms, 30 * ms, 100 * ms, 8, 4, 40 * ms},
	} {
		if got := resyncCost(c.wall, c.cpu, c.gc, c.resAlloc, c.allocs); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// TestDriftRepairedWithin10s (issue 9, item 15): with the default options, an entry deleted and another
// re-weighted behind the daemon's back are repaired within 10s (it was up to 30s).
func TestDriftRepairedWithin10s(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.2:80", masq, 1))
		h := newHarness(t, cfgOf(v), nil, nil)
		h.run()
		wait(time.Second)
		good := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1), dest("10.0.0.2:80", ipvsctl.Masq, 1)}})
		h.expectTable(good)
		h.logs()
		drift := good.Clone()
		id := serviceID(v)
		delete(drift[id].Destinations, dest("10.0.0.1:80", 0, 0).DestinationID)
		drift[id].Destinations[dest("10.0.0.2:80", 0, 0).DestinationID] = dest("10.0.0.2:80", ipvsctl.Masq, 7)
		h.fake.Load(drift)
		wait(9 * time.Second) // 10s after the start
		h.expectLogs("Added real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 1)",
			"Restored real server: 10.0.0.2:80 (10.9.9.9:80) (Weight set to 1)")
		h.expectTable(good)
		h.stop()
	})
}
