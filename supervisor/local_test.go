package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestLocalErrorsKeepHealth makes the director itself fail to check three healthy reals (EMFILE, ENOBUFS,
// EADDRNOTAVAIL from the dialer, as a net.Dialer reports them) while a fourth keeps working: the three keep
// their health and their kernel entries, each cause is logged once, and the snapshot says which reals have
// no fresh verdict and why. The checks are the production HTTP checks against real loopback servers.
func TestLocalErrorsKeepHealth(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	port := netip.MustParseAddrPort(srv.Listener.Addr().String()).Port()
	// Four reals on four loopback addresses, all served by the one listener through its port on 127.0.0.1:
	// the dialer below connects every 127.0.0.x to it.
	addrs := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"}
	v := vs("10.0.0.1:80")
	v.CheckInterval, v.NegotiateTimeout = 100*time.Millisecond, 2*time.Second
	v.Receive = "ok"
	for _, a := range addrs {
		v.Reals = append(v.Reals, rs(fmt.Sprintf("%s:%d", a, port), masq, 1))
	}
	cfg := cfgOf(v)

	var mu sync.Mutex
	inject := map[string]error{} // by real address: the error the dialer returns
	var d net.Dialer
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		ap := netip.MustParseAddrPort(address)
		mu.Lock()
		err := inject[ap.Addr().String()]
		mu.Unlock()
		if err != nil {
			return nil, err
		}
		return d.DialContext(ctx, network, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()).String())
	}
	h := newHarness(t, cfg, nil, func(o *Options) {
		o.NewChecker = NewChecker
		o.Dial = dial
	})
	h.run()
	defer h.stop()

	waitFor(t, 10*time.Second, "all four reals in the table", func() bool { return inTable(h.fake) == 4 })
	before := h.fake.Table().String()
	h.logs()
	h.fake.ResetOps()

	mu.Lock()
	inject["127.0.0.11"] = dialErr("socket", syscall.EMFILE)
	inject["127.0.0.12"] = dialErr("connect", syscall.ENOBUFS)
	inject["127.0.0.13"] = dialErr("connect", syscall.EADDRNOTAVAIL)
	mu.Unlock()
	t1 := time.Now()
	// About ten checks of each real, at checkinterval 0.1 s.
	waitFor(t, 20*time.Second, "ten rounds of checks", func() bool {
		rs := h.s.Snapshot().Virtuals[0].Reals
		return rs[0].NoVerdict != "" && rs[1].NoVerdict != "" && rs[2].NoVerdict != "" &&
			rs[3].LastCheck.After(t1.Add(time.Second))
	})

	if ops := h.ops(); len(ops) != 0 {
		t.Errorf("kernel operations during local failures: %q", ops)
	}
	if got := h.fake.Table().String(); got != before {
		t.Errorf("kernel table changed:\n%swant\n%s", got, before)
	}
	who := func(a string) string { return fmt.Sprintf("%s:%d (tcp:10.0.0.1:80)", a, port) }
	h.expectLogsAnyOrder(
		"E: Could not check real server "+who("127.0.0.11")+": too many open files; it keeps its health (local error, logged once a minute per cause)",
		"E: Could not check real server "+who("127.0.0.12")+": no buffer space available; it keeps its health (local error, logged once a minute per cause)",
		"E: Could not check real server "+who("127.0.0.13")+": cannot assign requested address; it keeps its health (local error, logged once a minute per cause)",
	)
	snap := h.s.Snapshot()
	want := map[string]string{"127.0.0.11": "too many open files", "127.0.0.12": "no buffer space available",
		"127.0.0.13": "cannot assign requested address", "127.0.0.14": ""}
	for _, r := range snap.Virtuals[0].Reals {
		a := strings.Split(r.Real, ":")[0]
		if r.Health != Up || !r.InTable || r.LastError != "" || r.NoVerdict != want[a] {
			t.Errorf("%s: health %s, in table %v, last error %q, no verdict %q; want up, in the table, no error, no verdict %q",
				r.Real, r.Health, r.InTable, r.LastError, r.NoVerdict, want[a])
		}
		if want[a] != "" && (r.NoVerdictSince.Before(t1) || r.LastCheck.After(t1)) {
			t.Errorf("%s: no verdict since %v, last check %v; want since after %v, last check before", r.Real, r.NoVerdictSince, r.LastCheck, t1)
		}
	}

	// The director recovers: the next check of each real is a verdict again, logged as nothing.
	mu.Lock()
	clear(inject)
	mu.Unlock()
	t2 := time.Now()
	waitFor(t, 10*time.Second, "fresh verdicts", func() bool {
		return !slices.ContainsFunc(h.s.Snapshot().Virtuals[0].Reals, func(r RealState) bool {
			return r.NoVerdict != "" || r.LastCheck.Before(t2)
		})
	})
	h.expectLogs()
	h.expectOps()
	if served.Load() == 0 {
		t.Error("the backend served no check")
	}
}

// waitFor polls cond every 10 ms until it holds, and fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
