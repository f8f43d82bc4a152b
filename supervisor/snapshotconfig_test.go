package supervisor

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// TestSnapshotConfig: the snapshot always describes the config returned with it, also while reloads
// replace the config under a running supervisor.
func TestSnapshotConfig(t *testing.T) {
	one := cfgOf(vs("10.9.9.9:80", rs("10.1.0.2:80", config.ForwardMasq, 1)))
	two := cfgOf(vs("10.9.9.8:80", rs("10.1.0.3:80", config.ForwardGate, 2), rs("10.1.0.4:80", config.ForwardGate, 3)),
		vs("10.9.9.9:80", rs("10.1.0.2:80", config.ForwardMasq, 1)))
	var (
		mu   sync.Mutex
		next = two
	)
	load := func() (*config.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		c := next
		if next == two {
			next = one
		} else {
			next = two
		}
		return c, nil
	}
	logger, _ := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	s, err := New(one, Options{Client: ipvsctl.NewFake(), Log: logger, Load: load,
		NewChecker: func(*config.Virtual, *config.Real) (checker.Checker, error) {
			return checker.Func(func(context.Context, *checker.Target) error { return nil }), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	aligned := func(snap Snapshot, cfg *config.Config) bool {
		if len(snap.Virtuals) != len(cfg.Virtuals) {
			return false
		}
		for i, v := range cfg.Virtuals {
			if snap.Virtuals[i].ID != v.ID() || len(snap.Virtuals[i].Reals) != len(v.Reals) {
				return false
			}
			for j, r := range v.Reals {
				if snap.Virtuals[i].Reals[j].Weight != r.Weight {
					return false
				}
			}
		}
		return true
	}
	if snap, cfg := s.SnapshotConfig(); cfg != one || !aligned(snap, cfg) {
		t.Fatalf("before Run: config %p (want %p), snapshot %+v", cfg, one, snap)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if snap, cfg := s.SnapshotConfig(); cfg != two || !aligned(snap, cfg) {
		t.Fatalf("after a reload: config %p (want %p), snapshot %+v", cfg, two, snap)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for s.Snapshot().Phase == config.StatusStarting { // Run owns the config from here on
		time.Sleep(time.Millisecond)
	}
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for range 50 {
			if err := s.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case <-reloads:
			running = false
		default:
		}
		snap, cfg := s.SnapshotConfig()
		if !aligned(snap, cfg) {
			t.Fatalf("snapshot of another config: %d virtuals, config has %d", len(snap.Virtuals), len(cfg.Virtuals))
		}
	}
	// 51 reloads so far, alternately two and one: the running config is two; the next reload makes it one.
	if _, cfg := s.SnapshotConfig(); cfg != two {
		t.Errorf("after the reloads: config %p, want %p", cfg, two)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if snap, cfg := s.SnapshotConfig(); cfg != one || !aligned(snap, cfg) {
		t.Errorf("after a reload while running: config %p (want %p), snapshot %+v", cfg, one, snap)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestStateVersion: the state version moves when Snapshot shows something new other than a last check
// time (health, the table, soft failures, an error), and stays while checks only pass again.
func TestStateVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.2:80", masq, 1))
		v.FailureCount = 3
		h := newHarness(t, cfgOf(v), nil, nil)
		h.run()
		wait(1500 * time.Millisecond) // first checks: both up and in the table
		ver := h.s.StateVersion()
		wait(3 * time.Second) // three more checks each, all passing
		if got := h.s.StateVersion(); got != ver {
			t.Errorf("passing checks moved the state version from %d to %d", ver, got)
		}
		h.checks.down("10.0.0.1:80")
		wait(time.Second) // a soft failure: failure 1/3, and its error
		soft := h.s.StateVersion()
		if soft == ver {
			t.Errorf("a soft failure did not move the state version")
		}
		wait(3 * time.Second) // failures 2/3 and 3/3: down, out of the table
		if got := h.s.StateVersion(); got == soft {
			t.Errorf("a real going down did not move the state version")
		}
		if st := h.s.Snapshot().Virtuals[0].Reals[0]; st.Health != Down || st.InTable {
			t.Fatalf("10.0.0.1:80 after three failures: %+v", st)
		}
		down := h.s.StateVersion()
		wait(3 * time.Second) // it stays down with the same error
		if got := h.s.StateVersion(); got != down {
			t.Errorf("a real failing the same way again moved the state version from %d to %d", down, got)
		}
		h.stop()
	})
}
