package supervisor

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// A reload applies only what changed: a reweighted real is updated in place and keeps its health, a new
// real waits for its check, a removed real and a removed virtual are purged, untouched entries get no
// operation, and a real whose check changed keeps its entry until its new check decides.
func TestReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mk := func() (*config.Virtual, *config.Virtual) {
			v1 := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.2:80", masq, 1), rs("10.0.0.3:80", masq, 1), rs("10.0.0.4:80", masq, 1))
			v1.FailureCount = 3
			v2 := vs("10.9.9.10:80", rs("10.0.0.1:80", masq, 1))
			v2.FailureCount = 3
			return v1, v2
		}
		v1, v2 := mk()
		var next *config.Config
		h := newHarness(t, cfgOf(v1, v2), nil, func(o *Options) {
			o.Load = func() (*config.Config, error) { return next, nil }
		})
		h.run()
		wait(time.Second)
		h.logs()
		h.ops()
		h.checks.down("10.0.0.1:80")
		wait(time.Second) // a soft failure 1/3 that must survive the reload
		h.expectLogs("Soft failure real server: 10.0.0.1:80 (tcp:10.9.9.9:80) failure 1/3",
			"Soft failure real server: 10.0.0.1:80 (tcp:10.9.9.10:80) failure 1/3")

		n1, _ := mk()
		n1.Reals[0].Weight = 5                           // reweight: same check
		n1.Reals = append(n1.Reals[:1], n1.Reals[2:]...) // 10.0.0.2 removed
		n1.Reals[1].Request = "/health"                  // 10.0.0.3: its check changed
		n1.Reals = append(n1.Reals, rs("10.0.0.5:80", masq, 1))
		next = cfgOf(n1) // v2 removed
		if err := h.s.Reload(); err != nil {
			t.Errorf("Reload: %v", err)
		}
		h.expectLogs("Restored real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 5)",
			"Purged real server (start): 10.0.0.2:80 (10.9.9.9:80)",
			"Purged virtual server (start): 10.9.9.10:80")
		h.expectOps("update destination 10.0.0.1:80 of TCP 10.9.9.9:80",
			"delete destination 10.0.0.2:80 of TCP 10.9.9.9:80",
			"delete service TCP 10.9.9.10:80")
		if got := h.alerts.list()[len(h.alerts.list())-1]; got.phase != config.StatusReloading {
			t.Errorf("alert phase during reload = %v, want reloading", got.phase)
		}
		wait(time.Second)
		// 10.0.0.1 kept its failure count: this is its second failure, and only one virtual is left.
		h.expectLogsAnyOrder("Soft failure real server: 10.0.0.1:80 (tcp:10.9.9.9:80) failure 2/3",
			"Resetting soft failure count: 10.0.0.5:80 (tcp:10.9.9.9:80)",
			"Added real server: 10.0.0.5:80 (10.9.9.9:80) (Weight set to 1)")
		h.expectOps("add destination 10.0.0.5:80 to TCP 10.9.9.9:80")
		h.expectTable(table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 5),
			dest("10.0.0.3:80", ipvsctl.Masq, 1), dest("10.0.0.4:80", ipvsctl.Masq, 1), dest("10.0.0.5:80", ipvsctl.Masq, 1)}}))
		h.stop()
	})
}

// A config that does not load is refused: every error logged, the running config and table kept.
func TestFailedReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
		bad := config.ErrorList{
			{File: "/etc/ha.d/test.cf", Line: 3, Msg: "invalid check timeout"},
			{File: "/etc/ha.d/test.cf", Line: 9, Msg: "forward method must be gate, masq or ipip"},
		}
		h := newHarness(t, cfgOf(v), nil, func(o *Options) {
			o.Load = func() (*config.Config, error) { return nil, bad }
		})
		h.run()
		wait(time.Second)
		h.logs()
		h.ops()
		if err := h.s.Reload(); err == nil {
			t.Error("Reload of a bad config returned nil")
		}
		pid := os.Getpid()
		h.expectLogs(fmt.Sprintf("E: Error [%d] reading file /etc/ha.d/test.cf at line 3: invalid check timeout", pid),
			fmt.Sprintf("E: Error [%d] reading file /etc/ha.d/test.cf at line 9: forward method must be gate, masq or ipip", pid),
			"E: Configuration file '/etc/ha.d/test.cf' not reloaded: keeping the running configuration")
		// The old config still works: the real still goes down and comes back.
		h.checks.down("10.0.0.1:80")
		wait(time.Second)
		h.expectLogs("Deleted real server: 10.0.0.1:80 (10.9.9.9:80)")
		h.stop()
	})
}

func TestMaintenanceNames(t *testing.T) {
	for _, c := range []struct {
		file string
		rip  string
		port uint16
		in   bool
	}{
		{"10.0.0.1:80", "10.0.0.1", 80, true},
		{"10.0.0.1", "10.0.0.1", 80, true},
		{"web1.example.com:80", "10.0.0.1", 80, true},
		{"web1.example.com", "10.0.0.1", 80, true},
		{"web1:80", "10.0.0.1", 80, true},
		{"web1", "10.0.0.1", 80, true},
		{"web1:81", "10.0.0.1", 80, false},
		{"10.0.0.11", "10.0.0.1", 80, false},
		{"[2001:db8::2]:80", "2001:db8::2", 80, true},
		{"[2001:db8::2]", "2001:db8::2", 80, true},
		{"10.0.0.1:0", "10.0.0.1", 0, true},
	} {
		t.Run(c.file, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, c.file), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			lookups := 0
			s := &Supervisor{opts: Options{LookupAddr: func(ctx context.Context, addr string) ([]string, error) {
				lookups++
				return []string{"web1.example.com."}, nil
			}}}
			v := vs("10.9.9.9:80")
			r := rs(netip.AddrPortFrom(netip.MustParseAddr(c.rip), c.port).String(), masq, 1)
			tg := targetOf(v, r)
			if got := s.inMaintenance(context.Background(), dir, &tg, time.Second); got != c.in {
				t.Errorf("file %q, real %s: in maintenance = %v, want %v", c.file, realText(r), got, c.in)
			}
		})
	}
	// An empty directory costs no reverse lookup.
	s := &Supervisor{opts: Options{LookupAddr: func(ctx context.Context, addr string) ([]string, error) {
		t.Error("reverse lookup with an empty maintenance directory")
		return nil, nil
	}}}
	tg := targetOf(vs("10.9.9.9:80"), rs("10.0.0.1:80", masq, 1))
	if s.inMaintenance(context.Background(), t.TempDir(), &tg, time.Second) {
		t.Error("empty directory: in maintenance")
	}
}

// maintenancedir forces a real down with no check, and the monitorfile gets one line per check result.
func TestMaintenanceAndMonitorFile(t *testing.T) {
	dir := t.TempDir()
	maint := filepath.Join(dir, "maint")
	monitor := filepath.Join(dir, "monitor.log")
	if err := os.Mkdir(maint, 0o755); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("127.0.0.2:8080", masq, 1))
		v.Reals[0].Request, v.Reals[0].Receive = "/index.html", "Test Page"
		v.MonitorFile = monitor
		v.FailureCount = 5
		cfg := cfgOf(v)
		cfg.MaintenanceDir = maint
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("127.0.0.2:8080", ipvsctl.Masq, 1)}})
		h := newHarness(t, cfg, have, func(o *Options) {
			o.Now = func() time.Time { return time.Date(2026, 11, 1, 9, 5, 7, 0, time.Local) }
		})
		h.run()
		wait(time.Second)
		h.checks.down("127.0.0.2:8080")
		wait(time.Second)
		if err := os.WriteFile(filepath.Join(maint, "127.0.0.2:8080"), nil, 0o644); err != nil {
			t.Error(err)
		}
		wait(time.Second)
		h.expectLogs("Soft failure real server: 127.0.0.2:8080 (tcp:10.9.9.9:80) failure 1/5",
			"Deleted real server: 127.0.0.2:8080 (10.9.9.9:80)")
		calls := h.checks.count("127.0.0.2:8080")
		wait(time.Second)
		if n := h.checks.count("127.0.0.2:8080"); n != calls {
			t.Errorf("a real in maintenance was checked")
		}
		os.Remove(filepath.Join(maint, "127.0.0.2:8080"))
		h.checks.up("127.0.0.2:8080")
		wait(time.Second)
		h.expectLogs("Resetting soft failure count: 127.0.0.2:8080 (tcp:10.9.9.9:80)",
			"Added real server: 127.0.0.2:8080 (10.9.9.9:80) (Weight set to 1)")
		h.stop()
	})
	b, err := os.ReadFile(monitor)
	if err != nil {
		t.Fatal(err)
	}
	id := "negotiate http tcp 127.0.0.2 8080 1 masq /index.html Test Page"
	pre := fmt.Sprintf("[Sun Nov  1 09:05:07 2026] [%d] %s ", os.Getpid(), id)
	want := []string{pre + "[up] -", pre + "[down] 500 Internal Server Error", pre + "[down] Server in maintenance",
		pre + "[down] Server in maintenance", pre + "[up] -"}
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("monitorfile:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMonitorEscape(t *testing.T) {
	if got, want := monitorEscape("a%b|c\r\nd"), "a%25b%7cc%0d%0ad"; got != want {
		t.Errorf("monitorEscape = %q, want %q", got, want)
	}
	if !regexp.MustCompile(`^\S`).MatchString(monitorEscape("x")) {
		t.Error("escape changed a plain string")
	}
}
