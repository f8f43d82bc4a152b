package supervisor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// engineLog collects the engine's log lines.
type engineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *engineLog) log(level, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+": "+line)
}

func (l *engineLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// fakeJobs is n jobs at interval iv whose checks take cost each; it records starts and the most in flight.
type fakeJobs struct {
	mu       sync.Mutex
	starts   []int
	inflight int
	most     int
	late     []time.Duration // start - due of every check
	timeouts []time.Duration // deadline measured from started: always the full timeout
}

func (f *fakeJobs) add(e *engine, n int, iv, cost time.Duration) []*job {
	f.starts = make([]int, n)
	jobs := make([]*job, n)
	now := time.Now()
	for i := range n {
		j := &job{idx: -1, slot: newSlot(iv, float64(i)/float64(n), now)}
		j.run = func(ctx context.Context, started time.Time) time.Time {
			f.mu.Lock()
			f.starts[i]++
			f.inflight++
			f.most = max(f.most, f.inflight)
			f.late = append(f.late, started.Sub(j.slot.due))
			f.mu.Unlock()
			cctx, cancel := context.WithTimeout(ctx, cost)
			<-cctx.Done()
			dl, _ := cctx.Deadline()
			cancel()
			f.mu.Lock()
			f.inflight--
			f.timeouts = append(f.timeouts, dl.Sub(started))
			f.mu.Unlock()
			return time.Time{}
		}
		jobs[i] = j
		e.add(j)
	}
	return jobs
}

// TestEngineOnTime: with enough slots every check starts on its slot (within the batching quantum) and each
// job is checked once per interval.
func TestEngineOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l engineLog
		e := newEngine(100, l.log)
		ctx, cancel := context.WithCancel(context.Background())
		var f fakeJobs
		f.add(e, 50, time.Second, 10*time.Millisecond)
		done := make(chan struct{})
		go func() { e.run(ctx); close(done) }()
		time.Sleep(10*time.Second + 500*time.Millisecond)
		cancel()
		<-done
		for i, n := range f.starts {
			if n < 10 || n > 11 {
				t.Errorf("job %d checked %d times in 10.5 s at interval 1 s", i, n)
			}
		}
		if worst := slices.Max(f.late); worst > minQuantum || slices.Min(f.late) < 0 {
			t.Errorf("lateness between %v and %v, want within [0, %v]", slices.Min(f.late), worst, minQuantum)
		}
		if got := l.take(); len(got) != 0 {
			t.Errorf("log lines %q, want none", got)
		}
		if lag := e.lagNow(time.Now()); lag != 0 {
			t.Errorf("lag %v, want 0", lag)
		}
	})
}

// TestEngineOverloadIsLateAndFair: 40 checks a second due, 4 slots, each check 0.4 s: only 10 checks a
// second fit. Never more than 4 run at once, every job gets its turn in round-robin (no job is checked
// twice while another waits), every timeout runs in full from the start of its check, and the lag is
// logged once a minute.
func TestEngineOverloadIsLateAndFair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l engineLog
		e := newEngine(4, l.log)
		ctx, cancel := context.WithCancel(context.Background())
		var f fakeJobs
		jobs := f.add(e, 40, time.Second, 400*time.Millisecond)
		done := make(chan struct{})
		go func() { e.run(ctx); close(done) }()
		time.Sleep(100 * time.Second)
		synctest.Wait()
		lag := e.lagNow(time.Now())
		e.remove(jobs[0])
		time.Sleep(30 * time.Second)
		synctest.Wait()
		cancel()
		<-done

		if f.most != 4 {
			t.Errorf("at most %d in flight, want 4", f.most)
		}
		// 130 s of 10 checks a second over 40 jobs (39 after 100 s): about 32 each.
		lo, hi := slices.Min(f.starts[1:]), slices.Max(f.starts[1:])
		if lo < 30 || hi-lo > 1 {
			t.Errorf("checks per job between %d and %d, want at least 30 and a spread of at most 1: %v", lo, hi, f.starts)
		}
		if f.starts[0] < 22 || f.starts[0] > 26 {
			t.Errorf("removed job checked %d times, want about 25 (none after its removal)", f.starts[0])
		}
		for _, d := range f.timeouts {
			if d != 400*time.Millisecond {
				t.Fatalf("a check's timeout ran %v from its start, want 400ms", d)
			}
		}
		if lag < 2*time.Second || lag > 4*time.Second {
			t.Errorf("lag %v, want about 3 s (40 jobs / 10 a second, less the interval)", lag)
		}
		got := l.take()
		if len(got) != 3 {
			t.Fatalf("log lines %q, want three lag lines (at the start, after 60 s and 120 s)", got)
		}
		for _, line := range got {
			if !strings.HasPrefix(line, "warning: checks are running ") || !strings.HasSuffix(line, " s behind checkinterval") {
				t.Errorf("log line %q", line)
			}
		}
	})
}

// TestCheckIgnoringItsContext: a checker that does not return at its deadline is abandoned checkGrace
// later and counted as failed; the real is not checked again while the abandoned check still runs, and
// its late answer is dropped.
func TestCheckIgnoringItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
		v.NegotiateTimeout = 2 * time.Second
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1)}})
		h := newHarness(t, cfgOf(v), have, nil)
		h.checks.set("10.0.0.1:80", func(context.Context) error { time.Sleep(time.Minute); return nil })
		h.run()
		wait(4 * time.Second)
		h.expectLogs("Deleted real server: 10.0.0.1:80 (10.9.9.9:80)")
		if got := h.s.Snapshot().Virtuals[0].Reals[0].LastError; got != "check did not return within its timeout of 2s" {
			t.Errorf("last error %q", got)
		}
		wait(50 * time.Second)
		if n := h.checks.count("10.0.0.1:80"); n != 1 {
			t.Errorf("checked %d times while the first check ran, want 1", n)
		}
		h.expectLogs()
		h.stop()
	})
}

// TestTimeoutDuringStallIsLocal: a check that times out while the scheduler found the daemon stalled is
// the director's failure, not the real's; the next timeout, with no stall, counts.
func TestTimeoutDuringStallIsLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
		v.NegotiateTimeout = 2 * time.Second
		v.CheckInterval = 10 * time.Second
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1)}})
		h := newHarness(t, cfgOf(v), have, nil)
		h.checks.hang("10.0.0.1:80")
		h.run()
		wait(time.Second) // the first check runs (within firstRoundWindow) and hangs
		if h.checks.count("10.0.0.1:80") != 1 {
			t.Fatal("first check not started")
		}
		h.s.eng.mu.Lock()
		// What the scheduler notes when it wakes far later than planned: 0.6 s, more than a quarter of the
		// timeout.
		h.s.eng.noteStall(time.Now(), 600*time.Millisecond)
		h.s.eng.mu.Unlock()
		wait(2 * time.Second)
		h.expectLogs("E: Could not check real server 10.0.0.1:80 (tcp:10.9.9.9:80): timed out while this director was overloaded; it keeps its health (local error, logged once a minute per cause)")
		r := h.s.Snapshot().Virtuals[0].Reals[0]
		if r.Health != Up || r.NoVerdict != "timed out while this director was overloaded" {
			t.Errorf("health %s, no verdict %q", r.Health, r.NoVerdict)
		}
		wait(12 * time.Second) // the next check, no stall: the real is down
		h.expectLogs("Deleted real server: 10.0.0.1:80 (10.9.9.9:80)")
		h.stop()
	})
}

// TestTimeoutConfirmedUnderPressure: while the engine is short of CPU (throttled), a timeout of a real that
// is up is checked again at once and counts only when the second check times out too; without pressure
// one timeout counts.
func TestTimeoutConfirmedUnderPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
		v.NegotiateTimeout = 2 * time.Second
		v.CheckInterval = 10 * time.Second
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1)}})
		h := newHarness(t, cfgOf(v), have, nil)
		var mu sync.Mutex
		hangs := 1 // the first check hangs, the next ones answer
		h.checks.set("10.0.0.1:80", func(ctx context.Context) error {
			mu.Lock()
			hang := hangs > 0
			hangs--
			mu.Unlock()
			if hang {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		h.s.eng.mu.Lock()
		h.s.eng.pressedAt = time.Now().Add(time.Hour) // short of CPU all along
		h.s.eng.mu.Unlock()
		h.run()
		wait(4 * time.Second) // the first check (within 1 s) times out 2 s later and is confirmed at once
		if n := h.checks.count("10.0.0.1:80"); n < 2 {
			t.Errorf("%d checks, want at least 2 (the timeout and its confirmation)", n)
		}
		h.expectLogs()
		if r := h.s.Snapshot().Virtuals[0].Reals[0]; r.Health != Up {
			t.Errorf("health %s after a timeout not confirmed, want up", r.Health)
		}

		mu.Lock()
		hangs = 2 // the next check and its confirmation hang: the real is down
		mu.Unlock()
		n := h.checks.count("10.0.0.1:80")
		wait(15 * time.Second)
		h.expectLogs("Deleted real server: 10.0.0.1:80 (10.9.9.9:80)")
		if m := h.checks.count("10.0.0.1:80"); m < n+2 {
			t.Errorf("%d checks, want at least %d", m, n+2)
		}

		mu.Lock()
		hangs = 0
		mu.Unlock()
		h.s.eng.mu.Lock()
		h.s.eng.pressedAt = time.Time{} // no pressure: one timeout counts
		h.s.eng.mu.Unlock()
		wait(10 * time.Second) // a check that answers: up again
		h.expectLogs("Resetting soft failure count: 10.0.0.1:80 (tcp:10.9.9.9:80)", "Added real server: 10.0.0.1:80 (10.9.9.9:80) (Weight set to 1)")
		mu.Lock()
		hangs = 1
		mu.Unlock()
		wait(10 * time.Second)
		h.expectLogs("Deleted real server: 10.0.0.1:80 (10.9.9.9:80)")
		h.stop()
	})
}

// TestExcusedTimeoutsAreBounded: a real whose every check times out while this director is overloaded
// keeps its health for maxExcused timeouts (each logged as the director's local error), and the next one
// counts: overload makes the verdict late, it does not hide a dead real for good.
func TestExcusedTimeoutsAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
		v.NegotiateTimeout = 2 * time.Second
		v.CheckInterval = 10 * time.Second
		have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest("10.0.0.1:80", ipvsctl.Masq, 1)}})
		h := newHarness(t, cfgOf(v), have, nil)
		h.checks.hang("10.0.0.1:80")
		h.run()
		for i := 1; i <= maxExcused+1; i++ {
			for h.checks.count("10.0.0.1:80") < i {
				wait(100 * time.Millisecond)
			}
			// The director stalls while the check runs: its timeout is blamed on the director.
			h.s.eng.mu.Lock()
			h.s.eng.noteStall(time.Now(), 600*time.Millisecond)
			h.s.eng.mu.Unlock()
			wait(2500 * time.Millisecond)
			r := h.s.Snapshot().Virtuals[0].Reals[0]
			if i <= maxExcused && (r.Health != Up || r.NoVerdict != "timed out while this director was overloaded") {
				t.Fatalf("timeout %d: health %s, no verdict %q; want up, blamed on the director", i, r.Health, r.NoVerdict)
			}
			if i == maxExcused+1 && r.Health != Down {
				t.Fatalf("timeout %d: health %s, want down", i, r.Health)
			}
		}
		h.expectLogs(
			"E: Could not check real server 10.0.0.1:80 (tcp:10.9.9.9:80): timed out while this director was overloaded; it keeps its health (local error, logged once a minute per cause)",
			"Deleted real server: 10.0.0.1:80 (10.9.9.9:80)")
		if r := h.s.Snapshot().Virtuals[0].Reals[0]; !strings.HasSuffix(r.LastError, "(4 timeouts in a row, each while this director was overloaded: counted)") {
			t.Errorf("last error %q", r.LastError)
		}
		h.stop()
	})
}

// TestLoopWindowBoundsChecks: checks that run in the loop start while the loop holds fewer than its window;
// the others wait, in order, and each that ends hands its slot to the next.
func TestLoopWindowBoundsChecks(t *testing.T) {
	e := newEngine(100, func(string, string) {})
	e.window = 4
	type started struct {
		i    int
		done func(error, time.Time)
	}
	starts := make(chan started, 100)
	now := time.Now()
	for i := range 10 {
		// A timeout of an hour: every answer is fast, however slowly the test ends the checks.
		j := &job{idx: -1, slot: newSlot(time.Hour, float64(i)/1000, now.Add(-time.Hour)), timeout: time.Hour}
		j.run = func(ctx context.Context, started time.Time) time.Time {
			t.Errorf("job %d ran outside the loop", i)
			return time.Time{}
		}
		j.start = func(l *checker.Loop, at time.Time, done func(error, time.Time)) (*checker.Run, bool) {
			starts <- started{i, done}
			return nil, true
		}
		j.settle = func(ctx context.Context, s, end time.Time, err error, confirming, together bool) (time.Time, bool) {
			return end, false
		}
		e.add(j)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { e.run(ctx); close(stopped) }()
	take := func(n int) []started {
		var got []started
		for range n {
			select {
			case s := <-starts:
				got = append(got, s)
			case <-time.After(5 * time.Second):
				t.Fatalf("%d checks started, want %d", len(got), n)
			}
		}
		select {
		case s := <-starts:
			t.Fatalf("check %d started with the window full", s.i)
		case <-time.After(300 * time.Millisecond):
		}
		return got
	}
	first := take(4)
	for k, s := range first {
		if s.i != k {
			t.Errorf("start %d: check %d, want %d (in order)", k, s.i, k)
		}
	}
	first[0].done(errors.New("connection refused"), time.Now()) // one ends (failed: no round trip to learn from)
	next := take(1)
	if next[0].i != 4 {
		t.Errorf("after one ended, check %d started, want 4", next[0].i)
	}
	first[1].done(nil, time.Now()) // one passes at once: its slot goes on, and the window grows by one
	more := take(2)
	if more[0].i != 5 || more[1].i != 6 {
		t.Errorf("after one passed fast, checks %d and %d started, want 5 and 6", more[0].i, more[1].i)
	}
	cancel()
	for _, s := range append(append(first[2:], next...), more...) {
		s.done(context.Canceled, time.Now())
	}
	<-stopped
}
