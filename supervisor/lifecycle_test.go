package supervisor

import (
	"testing"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// TestPhaseAfterReloadStopsCheckedUnit (issue 9, item 2): a reload stops a unit whose loop has made its
// first check but whose first event is still queued for the owner. The phase must still leave "starting"
// once the other loops have reported. The owner's steps are called directly, in the order that loses the
// count: the loop checks, the reload stops the unit, the owner takes the queued event.
func TestPhaseAfterReloadStopsCheckedUnit(t *testing.T) {
	one := cfgOf(vs("10.9.9.1:80", rs("10.0.0.1:80", masq, 1)), vs("10.9.9.2:80", rs("10.0.0.2:80", masq, 1)))
	s, err := New(one, Options{Client: ipvsctl.NewFake(), Log: quietLogger(), NewChecker: newChecks().newChecker})
	if err != nil {
		t.Fatal(err)
	}
	s.have = ipvsctl.Table{}
	s.install(prepare(s.gen, nil, nil, s.cfg))
	gone, stays := s.byReal[one.Virtuals[0].Reals[0]], s.byReal[one.Virtuals[1].Reals[0]]
	if s.pending != 2 {
		t.Fatalf("pending %d after start, want 2", s.pending)
	}

	// The loop of the first real checks: its first event is queued.
	gone.mu.Lock()
	gone.checked = true
	gone.mu.Unlock()
	queued := event{u: gone, state: Up, first: true}

	// A reload drops that real's virtual.
	two := cfgOf(one.Virtuals[1])
	s.install(prepare(s.gen, s.cfg, s.virtuals, two))
	if gone.live {
		t.Fatal("the unit of the dropped virtual still runs")
	}

	// The owner takes the queued event, then the event of the other loop's first check.
	s.handle(queued, map[*config.Virtual]bool{})
	s.handle(event{u: stays, state: Up, first: true}, map[*config.Virtual]bool{})
	s.updatePhase()
	if s.pending != 0 || s.phase != config.StatusRunning {
		t.Errorf("after every running loop reported: pending %d, phase %s; want 0, running", s.pending, s.phase)
	}
}
