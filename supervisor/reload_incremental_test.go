package supervisor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// layout renders what install decides for the running config: per virtual its index entry, and per real
// its check and that check's members (virtual position, real index), in config order.
func layout(s *Supervisor) string {
	var b strings.Builder
	pos := map[*config.Virtual]int{}
	for i, v := range s.virtuals {
		pos[v] = i
	}
	for i, v := range s.virtuals {
		vi := s.vindex[serviceID(v)]
		fmt.Fprintf(&b, "virtual %d %s pos=%d own=%v fb=%v\n", i, v, vi.pos, vi.v == v, vi.hasFB)
		for j, r := range v.Reals {
			u := s.byReal[r]
			var ms []string
			for _, m := range *u.members.Load() {
				ms = append(ms, fmt.Sprintf("%d/%d", pos[m.v], m.ri))
				if m.v.Reals[m.ri] != m.r {
					ms = append(ms, "BAD-RI")
				}
			}
			did := realDest(v, r)
			fmt.Fprintf(&b, "  real %d %s live=%v check=%s:%d %q members=%v index=%v/%d\n", j, realText(r), u.live,
				u.key.Target.Addr, u.key.Target.Port, u.key.Target.Request, ms, vi.reals[did] == r, vi.realPos[did])
		}
	}
	n := 0
	for _, us := range s.units {
		for _, u := range us {
			if !u.live {
				b.WriteString("a stopped unit in s.units\n")
			}
			n++
		}
	}
	fmt.Fprintf(&b, "units=%d byReal=%d vindex=%d\n", n, len(s.byReal), len(s.vindex))
	return b.String()
}

// An incremental reload must leave the supervisor exactly as a full install of the same config would
// (checks, members in config order, index), keep the unit (loop and health) of every check that is still
// there, and plan only the virtuals that changed.
func TestReloadIncrementalMatchesFull(t *testing.T) {
	base := func() *config.Config {
		v1 := vs("10.9.9.1:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.2:80", masq, 1), rs("10.0.0.3:80", masq, 1))
		v2 := vs("10.9.9.2:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.4:80", masq, 1))
		v3 := vs("10.9.9.3:80", rs("10.0.0.5:80", masq, 1), rs("10.0.0.3:80", masq, 2))
		v3.Fallback = fb("10.0.0.99:80")
		for i, v := range []*config.Virtual{v1, v2, v3} {
			v.Line = 10 * (i + 1)
			for j, r := range v.Reals {
				r.Line = v.Line + j + 1
			}
		}
		return cfgOf(v1, v2, v3)
	}
	for _, c := range []struct {
		name    string
		edit    func(c *config.Config)
		full    bool
		changed int // virtuals planned again
		stopped int // units stopped
	}{
		{name: "same", edit: func(c *config.Config) {}},
		{name: "reweight", edit: func(c *config.Config) { c.Virtuals[0].Reals[1].Weight = 7 }, changed: 1},
		{name: "shared real reweighted in one virtual", edit: func(c *config.Config) { c.Virtuals[1].Reals[0].Weight = 3 }, changed: 1},
		{name: "lines shifted", edit: func(c *config.Config) {
			for _, v := range c.Virtuals[1:] {
				v.Line++
				for _, r := range v.Reals {
					r.Line++
				}
			}
		}, changed: 2},
		{name: "reals reordered, one removed, one added", edit: func(c *config.Config) {
			v := c.Virtuals[0]
			v.Reals = []*config.Real{v.Reals[2], rs("10.0.0.6:80", masq, 1), v.Reals[0]}
		}, changed: 1, stopped: 1},
		{name: "check changed for one virtual", edit: func(c *config.Config) {
			v := c.Virtuals[1]
			v.Request = "/health"
			for _, r := range v.Reals {
				r.Request = "/health"
			}
		}, changed: 1, stopped: 1},
		{name: "shared real removed from one virtual", edit: func(c *config.Config) {
			c.Virtuals[1].Reals = c.Virtuals[1].Reals[1:]
		}, changed: 1},
		{name: "virtual removed", edit: func(c *config.Config) { c.Virtuals = c.Virtuals[:2] }, stopped: 1},
		{name: "virtuals reordered and one added", edit: func(c *config.Config) {
			c.Virtuals = []*config.Virtual{c.Virtuals[2], vs("10.9.9.4:80", rs("10.0.0.2:80", masq, 1), rs("10.0.0.7:80", masq, 1)), c.Virtuals[0], c.Virtuals[1]}
		}, changed: 1},
		{name: "fallback changed", edit: func(c *config.Config) { c.Virtuals[2].Fallback = fb("10.0.0.98:80") }, changed: 1},
		{name: "checkinterval", edit: func(c *config.Config) { c.CheckInterval = 2 * time.Second }, full: true},
		{name: "readdquiescent", edit: func(c *config.Config) { c.ReaddQuiescent = true }, full: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(base(), Options{Client: ipvsctl.NewFake(), Log: quietLogger(), NewChecker: newChecks().newChecker})
			if err != nil {
				t.Fatal(err)
			}
			s.have = ipvsctl.Table{}
			s.install(prepare(s.gen, nil, nil, s.cfg))
			byKey := map[unitKey]*unit{}
			for _, us := range s.units {
				for _, u := range us {
					byKey[u.key] = u
				}
			}
			running := slices.Clone(s.virtuals)
			next := base()
			c.edit(next)
			ch := prepare(s.gen, s.cfg, s.virtuals, next)
			if ch.full != c.full {
				t.Fatalf("full = %v, want %v", ch.full, c.full)
			}
			if c.full {
				return
			}
			if len(ch.changed) != c.changed {
				t.Errorf("%d virtuals changed, want %d", len(ch.changed), c.changed)
			}
			fresh, only, _ := s.install(ch)
			if len(only) != c.changed {
				t.Errorf("%d virtuals to reconcile, want %d", len(only), c.changed)
			}
			stopped := 0
			for _, u := range byKey {
				if !u.live {
					stopped++
				}
			}
			if stopped != c.stopped {
				t.Errorf("%d units stopped, want %d", stopped, c.stopped)
			}
			// A virtual equal to a running one is the running one; a check still there keeps its unit.
			for _, v := range s.virtuals {
				if !only[v] && !slices.Contains(running, v) {
					t.Errorf("virtual %s is neither changed nor the running one", v)
				}
				for _, r := range v.Reals {
					u := s.byReal[r]
					if old := byKey[u.key]; old != nil && old != u {
						t.Errorf("real %s of %s: its check has a new unit", realText(r), v)
					}
					if byKey[u.key] == nil && !slices.Contains(fresh, u) {
						t.Errorf("real %s of %s: new unit not started", realText(r), v)
					}
				}
			}

			ref, err := New(ch.cfg, Options{Client: ipvsctl.NewFake(), Log: quietLogger(), NewChecker: newChecks().newChecker})
			if err != nil {
				t.Fatal(err)
			}
			ref.have = ipvsctl.Table{}
			ref.install(prepare(ref.gen, nil, nil, ref.cfg))
			if got, want := layout(s), layout(ref); got != want {
				t.Errorf("incremental install:\n%s\nfull install:\n%s", got, want)
			}
		})
	}
}

// A reload that only shifts line numbers (or changes nothing) issues no kernel operation and keeps every
// check's health: a soft failure before the reload is counted on after it, in config order across the
// two virtuals that share the check, one of which changed.
func TestReloadIncrementalKeepsHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mk := func(line int) *config.Config {
			v1 := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.2:80", masq, 1))
			v2 := vs("10.9.9.10:80", rs("10.0.0.1:80", masq, 1))
			for _, v := range []*config.Virtual{v1, v2} {
				v.FailureCount = 3
			}
			v1.Line, v2.Line = 1, line
			return cfgOf(v1, v2)
		}
		var next *config.Config
		h := newHarness(t, mk(5), nil, func(o *Options) {
			o.Load = func() (*config.Config, error) { return next, nil }
		})
		h.run()
		wait(time.Second)
		h.logs()
		h.ops()
		h.checks.down("10.0.0.1:80")
		wait(time.Second)
		h.expectLogs("Soft failure real server: 10.0.0.1:80 (tcp:10.9.9.9:80) failure 1/3",
			"Soft failure real server: 10.0.0.1:80 (tcp:10.9.9.10:80) failure 1/3")
		for _, line := range []int{5, 6} {
			next = mk(line)
			if err := h.s.Reload(); err != nil {
				t.Fatal(err)
			}
			h.expectLogs()
			h.expectOps()
		}
		next = mk(6)
		next.Virtuals[1].Reals[0].Weight = 4
		if err := h.s.Reload(); err != nil {
			t.Fatal(err)
		}
		h.expectLogs("Restored real server: 10.0.0.1:80 (10.9.9.10:80) (Weight set to 4)")
		h.expectOps("update destination 10.0.0.1:80 of TCP 10.9.9.10:80")
		wait(time.Second)
		h.expectLogs("Soft failure real server: 10.0.0.1:80 (tcp:10.9.9.9:80) failure 2/3",
			"Soft failure real server: 10.0.0.1:80 (tcp:10.9.9.10:80) failure 2/3")
		wait(time.Second)
		h.expectLogs("Deleted real server: 10.0.0.1:80 (10.9.9.9:80)",
			"Deleted real server: 10.0.0.1:80 (10.9.9.10:80)")
		h.expectTable(table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.2:80", ipvsctl.Masq, 1)}, "10.9.9.10:80": nil}))
		h.stop()
	})
}

// desiredSome gives, for the destinations asked, exactly the entries desired gives.
func TestDesiredSome(t *testing.T) {
	healths := []Health{Up, Down, Unknown}
	for _, quiescent := range []bool{false, true} {
		for _, readd := range []bool{false, true} {
			for mask := range 27 * 3 {
				// Three reals (the third is the first one's address again, with another port that a gate real
				// ignores) with every combination of health, and the kernel holding some of them.
				v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 2), rs("10.0.0.2:80", masq, 3), rs("10.0.0.1:81", config.ForwardGate, 4))
				v.Quiescent = quiescent
				v.Fallback = fb("10.0.0.99:80")
				hs := map[*config.Real]Health{}
				m := mask
				for _, r := range v.Reals {
					hs[r] = healths[m%3]
					m /= 3
				}
				health := func(r *config.Real) Health { return hs[r] }
				have := desired(v, false, func(*config.Real) Health { return Up }, nil)
				switch m {
				case 1:
					delete(have.Destinations, realDest(v, v.Reals[0]))
				case 2:
					have.Destinations[fallbackDest(v)] = ipvsctl.Destination{DestinationID: fallbackDest(v), Weight: 1}
				}
				full := desired(v, readd, health, have)
				vi := newVindex(v, 0)
				owner := func(id ipvsctl.DestinationID) *config.Real { return vi.reals[id] }
				for _, ids := range [][]ipvsctl.DestinationID{{realDest(v, v.Reals[0])}, {realDest(v, v.Reals[1]), fallbackDest(v)}, {fallbackDest(v)}} {
					got := desiredSome(v, ids, owner, readd, health, have)
					want := limit(full, ids)
					if got.Service != want.Service || fmt.Sprint(ipvsctl.Table{{}: got}) != fmt.Sprint(ipvsctl.Table{{}: want}) {
						t.Errorf("quiescent=%v readd=%v healths=%v kernel=%d dests %v:\n got  %v\n want %v", quiescent, readd, hs, m, ids, got.Destinations, want.Destinations)
					}
				}
			}
		}
	}
}
