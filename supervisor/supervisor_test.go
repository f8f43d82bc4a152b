package supervisor

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

const (
	masq = config.ForwardMasq
	gate = config.ForwardGate
)

// A cold start adds the virtual at once, each real only after its first good check, never the dead one,
// and no fallback once a real is up; fallbackcommand runs once, with "stop".
func TestColdStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.2:80", masq, 2))
		v.Fallback = fb("127.0.0.1:80")
		v.FallbackCommand = "/usr/local/bin/fb"
		h := newHarness(t, cfgOf(v), nil, nil)
		h.checks.down("10.0.0.2:80")
		h.run()
		synctest.Wait()
		h.expectLogs("Added virtual server: 10.9.9.9:80")
		h.expectTable(table(map[string][]ipvsctl.Destination{"10.9.9.9:80": nil}))
		wait(time.Second)
		h.expectLogs("Resetting soft failure count: 10.0.0.1:80 (tcp:10.9.9.9:80)",
			"Added real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 1)")
		h.expectTable(table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1)}}))
		h.expectCommands("/usr/local/bin/fb stop 10.9.9.9:80 tcp")
		if s := h.s.Snapshot(); s.Phase != config.StatusRunning || s.Virtuals[0].Reals[1].Health != Down || s.Virtuals[0].Reals[1].LastError != errDown.Error() {
			t.Errorf("snapshot after the first round: %+v", s)
		}
		up := h.s.Snapshot().Virtuals[0].Reals[0]
		if up.Since.IsZero() || !up.Since.Equal(up.LastCheck) {
			t.Errorf("a real that came up on its first check: since %v, last check %v; want both the check's time", up.Since, up.LastCheck)
		}
		wait(10 * time.Second)
		h.expectLogs()
		if again := h.s.Snapshot().Virtuals[0].Reals[0]; !again.Since.Equal(up.Since) || !again.LastCheck.After(up.LastCheck) {
			t.Errorf("more good checks: since %v (was %v), last check %v (was %v); want since kept, last check later",
				again.Since, up.Since, again.LastCheck, up.LastCheck)
		}
		h.stop()
		h.expectLogs("Purged real server (stop): 10.0.0.1:80 (10.9.9.9:80)", "Purged virtual server (stop): 10.9.9.9:80")
		h.expectTable(ipvsctl.Table{})
		want := []alert{
			{"10.9.9.9:80", config.StatusStarting, "Added real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 1)"},
			{"10.9.9.9:80", config.StatusStopping, "Purged real server (stop): 10.0.0.1:80 (10.9.9.9:80)"},
		}
		if got := h.alerts.list(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("alerts: got %+v, want %+v", got, want)
		}
	})
}

// Soft failures with failurecount=3, the fallback on the last real going, and the recovery, in
// ldirectord's order (reference §6.3); fallbackcommand start then stop.
func TestSoftFailuresFallbackAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("127.0.0.2:8080", masq, 1))
		v.FailureCount = 3
		v.Fallback = fb("127.0.0.1:80")
		v.FallbackCommand = "/fb"
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("127.0.0.2:8080", ipvsctl.Masq, 1)}})
		h := newHarness(t, cfgOf(v), have, nil)
		h.run()
		wait(time.Second)
		h.expectLogs() // adopted: nothing to do, nothing logged
		h.expectOps()
		h.expectCommands("/fb stop 10.9.9.9:80 tcp")
		h.checks.down("127.0.0.2:8080")
		wait(time.Second)
		h.expectLogs("Soft failure real server: 127.0.0.2:8080 (tcp:10.9.9.9:80) failure 1/3")
		wait(time.Second)
		h.expectLogs("Soft failure real server: 127.0.0.2:8080 (tcp:10.9.9.9:80) failure 2/3")
		wait(time.Second)
		h.expectLogs("Deleted real server: 127.0.0.2:8080 (10.9.9.9:80)",
			"Added fallback server: 127.0.0.1:80 (10.9.9.9:80) (Weight set to 1)")
		h.expectTable(table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("127.0.0.1:80", ipvsctl.Route, 1)}}))
		h.expectCommands("/fb start 10.9.9.9:80 tcp")
		wait(3 * time.Second)
		h.expectLogs() // failures of a down real are not counted
		h.checks.up("127.0.0.2:8080")
		wait(time.Second)
		h.expectLogs("Resetting soft failure count: 127.0.0.2:8080 (tcp:10.9.9.9:80)",
			"Added real server: 127.0.0.2:8080 (10.9.9.9:80) (Weight set to 1)",
			"Deleted fallback server: 127.0.0.1:80 (10.9.9.9:80)")
		h.expectCommands("/fb stop 10.9.9.9:80 tcp")
		h.expectTable(have)
		h.stop()
	})
}

func TestQuiescent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:8080", gate, 5), rs("10.0.0.2:80", masq, 1))
		v.Quiescent = true
		v.Fallback = fb("127.0.0.1:80")
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Route, 5), dest("10.0.0.2:80", ipvsctl.Masq, 1)}})
		h := newHarness(t, cfgOf(v), have, nil)
		h.run()
		wait(time.Second)
		h.expectLogs()
		h.checks.down("10.0.0.1:8080", "10.0.0.2:80")
		wait(time.Second)
		h.expectLogsAnyOrder("Quiescent real server: 10.0.0.1:80 mapped from 10.0.0.1:8080 (10.9.9.9:80) (Weight set to 0)",
			"Quiescent real server: 10.0.0.2:80 (10.9.9.9:80) (Weight set to 0)",
			"Added fallback server: 127.0.0.1:80 (10.9.9.9:80) (Weight set to 1)")
		h.expectTable(table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Route, 0), dest("10.0.0.2:80", ipvsctl.Masq, 0), dest("127.0.0.1:80", ipvsctl.Route, 1)}}))
		h.checks.up("10.0.0.1:8080")
		wait(time.Second)
		h.expectLogs("Resetting soft failure count: 10.0.0.1:8080 (tcp:10.9.9.9:80)",
			"Restored real server: 10.0.0.1:8080 (10.9.9.9:80) (Weight set to 5)",
			"Deleted fallback server: 127.0.0.1:80 (10.9.9.9:80)")
		h.stop()
		// cleanstop: the up real is purged one by one, the quiesced one goes with the service.
		h.expectLogs("Purged real server (stop): 10.0.0.1:8080 (10.9.9.9:80)", "Purged virtual server (stop): 10.9.9.9:80")
	})
}

// readdquiescent=yes keeps a quiesced real in the table (resync puts it back); with no, a quiesced real
// removed by hand stays out.
func TestReaddQuiescent(t *testing.T) {
	for _, readd := range []bool{true, false} {
		t.Run(map[bool]string{true: "yes", false: "no"}[readd], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
				v.Quiescent = true
				cfg := cfgOf(v)
				cfg.ReaddQuiescent = readd
				h := newHarness(t, cfg, nil, func(o *Options) { o.ResyncInterval = 10 * time.Second })
				h.checks.down("10.0.0.1:80")
				h.run()
				wait(time.Second)
				quiesced := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 0)}})
				empty := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": nil})
				if readd {
					h.expectLogs("Added virtual server: 10.9.9.9:80", "Readd Quiescent real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 0)")
					h.expectTable(quiesced)
					h.fake.Load(empty) // removed by hand
					wait(10 * time.Second)
					h.expectLogs("Readd Quiescent real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 0)")
					h.expectTable(quiesced)
				} else {
					h.expectLogs("Added virtual server: 10.9.9.9:80")
					h.expectTable(empty)
					h.checks.up("10.0.0.1:80")
					wait(time.Second)
					h.checks.down("10.0.0.1:80")
					wait(time.Second)
					h.expectLogs("Resetting soft failure count: 10.0.0.1:80 (tcp:10.9.9.9:80)",
						"Added real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 1)",
						"Quiescent real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 0)")
					h.fake.Load(empty)
					wait(10 * time.Second)
					h.expectLogs()
					h.expectTable(empty)
				}
				h.stop()
			})
		})
	}
}

func TestCheckTypeOnOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		off := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
		off.CheckType = config.CheckOff
		off.Fallback = fb("127.0.0.1:80")
		off.FallbackCommand = "/fb"
		on := vs("10.9.9.10:80", rs("10.0.0.2:80", masq, 1))
		on.CheckType = config.CheckOn
		on.Fallback = fb("127.0.0.1:80")
		// checktype=off takes down a real that was serving.
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1)}})
		h := newHarness(t, cfgOf(off, on), have, nil)
		h.checks.down("10.0.0.2:80") // never asked: checktype=on does not check
		h.run()
		synctest.Wait()
		h.expectLogs("Added virtual server: 10.9.9.10:80",
			"Deleted real server: 10.0.0.1:80 (10.9.9.9:80)",
			"Added fallback server: 127.0.0.1:80 (10.9.9.9:80) (Weight set to 1)")
		h.expectCommands("/fb start 10.9.9.9:80 tcp")
		wait(time.Second)
		h.expectLogs("Resetting soft failure count: 10.0.0.2:80 (tcp:10.9.9.10:80)",
			"Added real server: 10.0.0.2:80 (10.9.9.10:80) (Weight set to 1)")
		if n := h.checks.count("10.0.0.1:80") + h.checks.count("10.0.0.2:80"); n != 0 {
			t.Errorf("checktype on/off ran %d checks", n)
		}
		h.stop()
	})
}

// A real shared by two virtuals with the same check is checked once per interval, and each failure counts
// once for both (W11 fixed).
func TestSharedReal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v1 := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
		v2 := vs("10.9.9.10:80", rs("10.0.0.1:80", masq, 4))
		v1.FailureCount, v2.FailureCount = 2, 2
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1)}, "10.9.9.10:80": nil})
		h := newHarness(t, cfgOf(v1, v2), have, nil)
		h.run()
		synctest.Wait()
		// Adopted as up from the first virtual: the second gets it at once.
		h.expectLogs("Added real server: 10.0.0.1:80 (10.9.9.10:80) (Weight set to 4)")
		wait(10 * time.Second)
		if n := h.checks.count("10.0.0.1:80"); n != 10 {
			t.Errorf("shared real checked %d times in 10 intervals, want 10", n)
		}
		h.logs()
		h.checks.down("10.0.0.1:80")
		wait(time.Second)
		h.expectLogs("Soft failure real server: 10.0.0.1:80 (tcp:10.9.9.9:80) failure 1/2",
			"Soft failure real server: 10.0.0.1:80 (tcp:10.9.9.10:80) failure 1/2")
		wait(time.Second)
		h.expectLogs("Deleted real server: 10.0.0.1:80 (10.9.9.9:80)", "Deleted real server: 10.0.0.1:80 (10.9.9.10:80)")
		h.stop()
	})
}

// At start, what is in the kernel is adopted: serving reals are not touched, entries we do not know in
// our virtuals are purged, services that are not ours are left alone, gate reals stored under the
// virtual's port cause no churn, and a real with weight 0 waits for its check.
func TestStartupAdoption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:8080", gate, 1), rs("10.0.0.2:80", masq, 1), rs("10.0.0.3:80", masq, 1))
		have := table(map[string][]ipvsctl.Destination{
			"10.9.9.9:80":  {dest("10.0.0.1:80", ipvsctl.Route, 1), dest("10.0.0.2:80", ipvsctl.Masq, 0), dest("10.0.0.99:80", ipvsctl.Masq, 1)},
			"10.9.9.77:80": {dest("10.0.0.5:80", ipvsctl.Masq, 1)},
		})
		h := newHarness(t, cfgOf(v), have, nil)
		h.checks.down("10.0.0.2:80", "10.0.0.3:80")
		h.run()
		synctest.Wait()
		h.expectLogs("Purged real server (start): 10.0.0.99:80 (10.9.9.9:80)")
		h.expectOps("delete destination 10.0.0.99:80 of TCP 10.9.9.9:80")
		wait(time.Second)
		h.expectLogs("Deleted real server: 10.0.0.2:80 (10.9.9.9:80)")
		h.expectOps("delete destination 10.0.0.2:80 of TCP 10.9.9.9:80")
		wait(5 * time.Second)
		h.expectOps()
		h.expectTable(table(map[string][]ipvsctl.Destination{
			"10.9.9.9:80":  {dest("10.0.0.1:80", ipvsctl.Route, 1)},
			"10.9.9.77:80": {dest("10.0.0.5:80", ipvsctl.Masq, 1)},
		}))
		h.cancel()
		<-h.done
		// cleanstop leaves the service that is not ours.
		h.expectTable(table(map[string][]ipvsctl.Destination{"10.9.9.77:80": {dest("10.0.0.5:80", ipvsctl.Masq, 1)}}))
	})
}

func TestCleanStopNo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
		v.CleanStop = false
		v.Fallback = fb("127.0.0.1:80")
		h := newHarness(t, cfgOf(v), nil, nil)
		h.checks.down("10.0.0.1:80")
		h.run()
		wait(time.Second)
		before := h.fake.Table()
		h.ops()
		h.stop()
		h.expectOps()
		h.expectTable(before)
		h.expectLogs("Added virtual server: 10.9.9.9:80", "Added fallback server: 127.0.0.1:80 (10.9.9.9:80) (Weight set to 1)")
	})
}

// Resync puts back what was changed behind our back and retries what failed.
func TestResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.2:80", masq, 1))
		h := newHarness(t, cfgOf(v), nil, func(o *Options) { o.ResyncInterval = 30 * time.Second; o.RetryInterval = 2 * time.Second })
		var broken atomic.Bool
		broken.Store(true)
		h.fake.SetHook(func(op ipvsctl.Op) error {
			if broken.Load() && op.Kind == ipvsctl.OpAddDestination && op.Destination.Port == 80 && op.Destination.Addr.String() == "10.0.0.1" {
				return errors.New("netlink: no buffer space available")
			}
			return nil
		})
		h.run()
		wait(time.Second)
		h.expectLogsAnyOrder("Added virtual server: 10.9.9.9:80",
			"Resetting soft failure count: 10.0.0.1:80 (tcp:10.9.9.9:80)", "Resetting soft failure count: 10.0.0.2:80 (tcp:10.9.9.9:80)",
			"E: IPVS: netlink: no buffer space available",
			"Added real server: 10.0.0.2:80 (10.9.9.9:80) (Weight set to 1)")
		good := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1), dest("10.0.0.2:80", ipvsctl.Masq, 1)}})
		// The other real's check event does not retry the failed operation: only the retry timer does,
		// with its backoff.
		wait(2 * time.Second) // a retry, still failing
		h.expectLogs("E: IPVS: netlink: no buffer space available (failed 2 times in a row)")
		broken.Store(false)
		wait(2 * time.Second) // the next retry waits twice as long
		h.expectLogs()
		wait(2 * time.Second) // and works
		h.expectLogs("Added real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 1)")
		h.expectTable(good)
		// Someone reweights one real and adds an entry by hand: the next resync (30s) undoes it.
		drift := good.Clone()
		id := serviceID(v)
		drift[id].Destinations[dest("10.0.0.2:80", 0, 0).DestinationID] = dest("10.0.0.2:80", ipvsctl.Masq, 7)
		drift[id].Destinations[dest("10.0.0.9:80", 0, 0).DestinationID] = dest("10.0.0.9:80", ipvsctl.Masq, 1)
		h.fake.Load(drift)
		h.ops()
		wait(30 * time.Second)
		h.expectLogs("Restored real server: 10.0.0.2:80 (10.9.9.9:80) (Weight set to 1)", "Purged real server (start): 10.0.0.9:80 (10.9.9.9:80)")
		h.expectOps("update destination 10.0.0.2:80 of TCP 10.9.9.9:80", "delete destination 10.0.0.9:80 of TCP 10.9.9.9:80")
		h.expectTable(good)
		h.stop()
	})
}

// A panic in a check is a failure; a hanging check delays no other real.
func TestPanicAndHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.2:80", masq, 1), rs("10.0.0.3:80", masq, 1))
		v.NegotiateTimeout = 30 * time.Second
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1), dest("10.0.0.2:80", ipvsctl.Masq, 1), dest("10.0.0.3:80", ipvsctl.Masq, 1)}})
		h := newHarness(t, cfgOf(v), have, nil)
		h.checks.set("10.0.0.1:80", func(context.Context) error { panic("boom") })
		h.checks.hang("10.0.0.2:80")
		h.run()
		wait(time.Second)
		h.expectLogs("Deleted real server: 10.0.0.1:80 (10.9.9.9:80)")
		if s := h.s.Snapshot(); s.Virtuals[0].Reals[0].LastError != "check panicked: boom" {
			t.Errorf("last error %q", s.Virtuals[0].Reals[0].LastError)
		}
		wait(10 * time.Second)
		if n := h.checks.count("10.0.0.3:80"); n != 11 {
			t.Errorf("healthy real checked %d times in 11 intervals next to a hanging one, want 11", n)
		}
		if n := h.checks.count("10.0.0.2:80"); n != 1 {
			t.Errorf("hanging real checked %d times, want 1 (one check in flight)", n)
		}
		wait(20 * time.Second)
		h.expectLogs("Deleted real server: 10.0.0.2:80 (10.9.9.9:80)")
		h.stop()
	})
}

// TestApplyWhenStopping: kernel operations that a stop cut short are not run, and not logged as errors one
// by one (a stop during the first round of 1,000 reals wrote 133 "IPVS: apply: 1 of 1 operations not run:
// context canceled" lines); the table counts as not in sync.
func TestApplyWhenStopping(t *testing.T) {
	h := newHarness(t, cfgOf(vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))), nil, nil)
	want := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1)}})
	svc := want[ipvsctl.ServiceID{Family: ipvsctl.IPv4, Protocol: ipvsctl.TCP, Addr: netip.MustParseAddr("10.9.9.9"), Port: 80}].Service
	ops := []ipvsctl.Op{
		{Kind: ipvsctl.OpAddService, Service: svc},
		{Kind: ipvsctl.OpAddDestination, Service: svc, Destination: dest("10.0.0.1:80", ipvsctl.Masq, 1)},
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.s.apply(ctx, ops)
	h.expectLogs()
	if got := h.fake.Ops(); len(got) != 0 {
		t.Errorf("kernel operations run after the stop: %q", got)
	}
	if !h.s.failed {
		t.Error("operations not run, but the table counts as in sync")
	}
}
