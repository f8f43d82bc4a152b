package supervisor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// alive is Alive within limit.
func alive(s *Supervisor, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	return s.Alive(ctx)
}

// TestAlive: the supervisor is alive while its owner takes messages, not while the owner is stuck (here in
// a kernel change that does not return), again once it is free, and stopped once Run returned.
func TestAlive(t *testing.T) {
	h := newHarness(t, cfgOf(vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))), nil, nil)
	const notTaken = "the supervisor took no message for "
	if err := alive(h.s, 50*time.Millisecond); err == nil || !strings.HasPrefix(err.Error(), notTaken) {
		t.Fatalf("before Run: %v, want %q...", err, notTaken)
	}
	h.run()
	eventually(t, "the real in the table", func() bool { return inTable(h.fake) == 1 })
	if err := alive(h.s, 5*time.Second); err != nil {
		t.Fatalf("running: %v", err)
	}

	release, blocked := make(chan struct{}), make(chan struct{})
	h.fake.SetHook(func(ipvsctl.Op) error {
		close(blocked)
		<-release
		return nil
	})
	h.checks.down("10.0.0.1:80")
	<-blocked // the owner removes the real, and the kernel does not answer
	if err := alive(h.s, 100*time.Millisecond); err == nil || !strings.HasPrefix(err.Error(), notTaken) {
		t.Errorf("the owner stuck in a kernel change: %v, want %q...", err, notTaken)
	}
	close(release)
	if err := alive(h.s, 5*time.Second); err != nil {
		t.Errorf("the kernel answered: %v", err)
	}
	h.fake.SetHook(nil)
	h.stop()
	if err := alive(h.s, time.Second); !errors.Is(err, ErrStopped) {
		t.Errorf("stopped: %v, want %v", err, ErrStopped)
	}
}

// TestSchedulerStuck: the scheduler counts as stuck once it has not woken for longer than stuckAfter, not
// before it first woke; Alive then says so.
func TestSchedulerStuck(t *testing.T) {
	e := newEngine(100, func(string, string) {})
	now := time.Now()
	if d := e.stuck(now); d != 0 {
		t.Errorf("never woke: stuck %v, want 0", d)
	}
	e.turnAt.Store(now.Add(-stuckAfter).UnixNano())
	if d := e.stuck(now); d != 0 {
		t.Errorf("woke stuckAfter ago: stuck %v, want 0", d)
	}
	e.turnAt.Store(now.Add(-stuckAfter - time.Second).UnixNano())
	if d := e.stuck(now); d != stuckAfter+time.Second {
		t.Errorf("woke stuckAfter + 1 s ago: stuck %v, want %v", d, stuckAfter+time.Second)
	}

	h := newHarness(t, cfgOf(vs("10.9.9.9:80")), nil, nil) // no reals: the scheduler sleeps its longest
	h.run()
	defer h.stop()
	eventually(t, "the scheduler woke", func() bool { return h.s.eng.turnAt.Load() != 0 })
	h.s.eng.turnAt.Store(time.Now().Add(-time.Minute).UnixNano())
	if err := alive(h.s, 5*time.Second); err == nil || err.Error() != "the check scheduler has not run for 1m0s" {
		t.Errorf("the scheduler stuck for a minute: %v", err)
	}
}
