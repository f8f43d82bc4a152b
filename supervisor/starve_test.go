package supervisor

import (
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/checker"
)

// TestAdaptThrottle: the start budget halves while goroutines wait longer than throttleAbove to run,
// grows by an eighth (at least one) per wake-up while they wait less than half of it, and is lifted once it reaches the in-flight
// limit.
func TestAdaptThrottle(t *testing.T) {
	e := newEngine(100, func(string, string) {})
	if e.throttle != initialBudget {
		t.Fatalf("a new engine's budget %d, want %d", e.throttle, initialBudget)
	}
	e.startedWake = 40
	e.adapt(10 * time.Millisecond)
	if e.throttle != 0 || e.startedWake != 0 {
		t.Fatalf("short waits: throttle %d, started %d; want 0, 0", e.throttle, e.startedWake)
	}
	e.startedWake = 40
	e.inflight = 10 // few checks running: the waits are not theirs
	e.adapt(300 * time.Millisecond)
	if e.throttle != 0 {
		t.Fatalf("long waits with %d checks in flight: throttle %d, want none", e.inflight, e.throttle)
	}
	e.throttle = 8
	e.adapt(300 * time.Millisecond)
	if e.throttle != 9 {
		t.Fatalf("long waits with %d checks in flight: throttle %d, want 9 (grown: the waits are not theirs)", e.inflight, e.throttle)
	}
	e.throttle = 0
	e.inflight = throttleMinInflight
	e.startedWake = 40
	want := []int{20, 10, 5, 2, 1, 1}
	for i, w := range want {
		e.adapt(300 * time.Millisecond)
		if e.throttle != w {
			t.Fatalf("long waits, step %d: throttle %d, want %d", i, e.throttle, w)
		}
	}
	e.adapt(70 * time.Millisecond) // between half the threshold and the threshold: unchanged
	if e.throttle != 1 {
		t.Fatalf("waits in the band: throttle %d, want 1", e.throttle)
	}
	steps := 0
	for e.throttle != 0 {
		e.adapt(time.Millisecond)
		if steps++; steps > 200 {
			t.Fatalf("the throttle never lifts: %d", e.throttle)
		}
	}
	if steps != 32 {
		t.Errorf("lifted after %d steps, want 32 (from 1, grows by an eighth, at least one, per wake-up up to the limit of 100)", steps)
	}
	if !e.mayStart() {
		t.Error("unthrottled engine with free slots may not start")
	}
	e.throttle, e.startedWake = 3, 3
	if e.mayStart() {
		t.Error("throttled engine past its budget may start")
	}
}

// TestStallLog: a stall counts for the checks that started before it, when it is longer than their limit.
func TestStallLog(t *testing.T) {
	var l stallLog
	t0 := time.Unix(1000, 0)
	l.note(t0.Add(time.Second), 600*time.Millisecond)
	for range 20 { // older small stalls do not push out the check of a later one
		l.note(t0.Add(2*time.Second), 100*time.Millisecond)
	}
	l.note(t0.Add(3*time.Second), 700*time.Millisecond)
	cases := []struct {
		start time.Time
		limit time.Duration
		want  bool
	}{
		{t0, 500 * time.Millisecond, true},
		{t0.Add(2500 * time.Millisecond), 500 * time.Millisecond, true},
		{t0.Add(2500 * time.Millisecond), 800 * time.Millisecond, false},
		{t0.Add(4 * time.Second), 0, false},
	}
	for _, c := range cases {
		if got := l.since(c.start, c.limit); got != c.want {
			t.Errorf("since(%v, %v) = %v, want %v", c.start.Sub(t0), c.limit, got, c.want)
		}
	}
}

// TestSchedLatencyReads: the runtime reports scheduling latencies; the first read is the baseline.
func TestSchedLatencyReads(t *testing.T) {
	s := newSchedLatency()
	if w, p := s.read(); w != 0 || p != 0 {
		t.Errorf("first read %v, %v; want zeros (the baseline)", w, p)
	}
	if s.last == nil {
		t.Fatalf("%s is not a histogram in this Go runtime", schedLatencyMetric)
	}
	done := make(chan struct{})
	for range 100 {
		go func() { done <- struct{}{} }()
	}
	for range 100 {
		<-done
	}
	w, p := s.read()
	if w < p || w > time.Minute {
		t.Errorf("after 100 goroutines: worst %v, p99 %v", w, p)
	}
}

// TestBudgetFloor: the throttle never cuts the budget below a sixteenth of the checks due per wake-up.
func TestBudgetFloor(t *testing.T) {
	e := newEngine(1024, func(string, string) {})
	jobs := make([]job, 4000)
	for i := range jobs {
		jobs[i] = job{slot: newSlot(time.Second, 0.5, time.Unix(0, 0)), idx: -1}
		e.add(&jobs[i])
	}
	// 4,000 checks a second on the 20 ms grid: 80 due per wake-up, a floor of 5.
	if f := e.budgetFloor(); f != 5 {
		t.Fatalf("floor %d, want 5", f)
	}
	e.inflight, e.startedWake = 500, 40
	for range 10 {
		e.adapt(time.Second)
	}
	if e.throttle != 5 {
		t.Errorf("throttle %d after long waits, want the floor 5", e.throttle)
	}
	for i := range jobs[:3200] {
		e.remove(&jobs[i])
		e.remove(&jobs[i]) // twice: counted once
	}
	if f := e.budgetFloor(); f != 1 {
		t.Errorf("floor %d with 800 checks a second, want 1", f)
	}
}

// TestAdaptWindow: the window of the checks in the loop starts at initialWindow, grows by an eighth (at least
// one) per wake-up while the checks that passed answered within a quarter of their timeout and the loop
// uses at least half of it, up to the in-flight limit; it is cut by a quarter, at most once per such
// quarter, down to minWindow, while most answers were slower or up reals timed out together; without
// answers it stays. (windowed: the checks in the loop that count in the window.)
func TestAdaptWindow(t *testing.T) {
	if e := newEngine(maxInflight, func(string, string) {}); e.window != initialWindow {
		t.Fatalf("a new engine's window %d, want %d", e.window, initialWindow)
	}
	e := newEngine(100, func(string, string) {})
	if e.window != 100 {
		t.Fatalf("a new engine's window with an in-flight limit of 100: %d, want 100", e.window)
	}
	e.window = 64
	now := time.Now()
	e.windowed = 64
	e.noteAnswer(100*time.Millisecond, 2*time.Second)
	e.adaptWindow(now)
	if e.window != 72 {
		t.Fatalf("fast answers: window %d, want 72", e.window)
	}
	e.adaptWindow(now) // no answers
	if e.window != 72 {
		t.Fatalf("no answers: window %d, want 72", e.window)
	}
	e.windowed = 35 // less than half of it in use: it does not grow
	e.noteAnswer(100*time.Millisecond, 2*time.Second)
	e.adaptWindow(now)
	if e.window != 72 {
		t.Fatalf("fast answers, window half unused: window %d, want 72", e.window)
	}
	e.windowed = 72
	for range 10 {
		e.noteAnswer(time.Millisecond, 2*time.Second)
		e.adaptWindow(now)
	}
	if e.window != 100 {
		t.Fatalf("fast answers: window %d, want the in-flight limit 100", e.window)
	}
	e.noteAnswer(100*time.Millisecond, 2*time.Second)
	e.noteAnswer(600*time.Millisecond, 2*time.Second)
	e.noteAnswer(700*time.Millisecond, 2*time.Second)
	e.adaptWindow(now)
	if e.window != 75 {
		t.Fatalf("slow answers: window %d, want 75", e.window)
	}
	e.noteAnswer(700*time.Millisecond, 2*time.Second)
	e.adaptWindow(now.Add(499 * time.Millisecond))
	if e.window != 75 {
		t.Fatalf("slow answers again within 500 ms of the cut: window %d, want 75", e.window)
	}
	e.noteAnswer(time.Millisecond, 2*time.Second) // fast, but up reals timed out together
	e.upTimeouts = 2
	e.adaptWindow(now.Add(500 * time.Millisecond))
	if e.window != 56 {
		t.Fatalf("up reals timed out together: window %d, want 56", e.window)
	}
	for i := range 20 {
		e.noteAnswer(time.Second, 2*time.Second)
		e.adaptWindow(now.Add(time.Duration(i+2) * 500 * time.Millisecond))
	}
	if e.window != minWindow {
		t.Fatalf("slow answers all along: window %d, want %d", e.window, minWindow)
	}
}

// TestAnswerMix: the engine counts as pressed while at least an eighth of the answers of the last
// pressedFor, and at least two, were slow (more than a quarter of their timeout), and not once they are
// older than that.
func TestAnswerMix(t *testing.T) {
	now := time.Now()
	var m answerMix
	if m.slowLately(now) {
		t.Fatal("no answers: slow")
	}
	m.add(now, 13, 1)
	if m.slowLately(now) {
		t.Fatal("1 slow answer of 14: slow")
	}
	m.add(now.Add(100*time.Millisecond), 0, 1)
	if !m.slowLately(now.Add(100 * time.Millisecond)) {
		t.Fatal("2 slow answers of 15: not slow")
	}
	m.add(now.Add(pressedFor/2), 1, 0) // a new period: the one before still counts
	if !m.slowLately(now.Add(pressedFor / 2)) {
		t.Fatal("2 slow answers of 16, over two periods: not slow")
	}
	m.add(now.Add(pressedFor/2), 1, 0)
	if m.slowLately(now.Add(pressedFor / 2)) {
		t.Fatal("2 slow answers of 17: slow")
	}
	m.add(now.Add(pressedFor), 0, 0) // the first period goes
	if m.slowLately(now.Add(pressedFor)) {
		t.Fatal("the slow answers are older than pressedFor: slow")
	}
	m.add(now.Add(2*pressedFor), 2, 2)
	if !m.slowLately(now.Add(2 * pressedFor)) {
		t.Fatal("2 slow answers of 4: not slow")
	}
	if m.slowLately(now.Add(3 * pressedFor)) {
		t.Fatal("no answers for pressedFor: slow")
	}
	m.add(now.Add(4*pressedFor), 15, 1) // more than a whole period later: nothing before counts
	if m.slowLately(now.Add(4 * pressedFor)) {
		t.Fatal("1 slow answer of 16 after a gap: slow")
	}

	e := newEngine(100, func(string, string) {})
	e.noteAnswer(600*time.Millisecond, 2*time.Second)
	e.noteAnswer(700*time.Millisecond, 2*time.Second)
	e.answers.add(now, e.fast, e.slow)
	if !e.pressed(now) {
		t.Fatal("slow answers: the engine is not pressed")
	}
	if e.pressed(now.Add(pressedFor)) {
		t.Fatal("slow answers pressedFor ago: the engine is pressed")
	}
}

// TestWindowAgesOut: a check in the loop counts in the window from its start; a check of a real that is not
// up and whose last check timed out leaves it a quarter of its timeout after it started (it most likely
// waits on a hanging backend, at no cost to this director); a check of a real that is up, or whose last
// check did not time out, stays in it until it ends; a check that ended and started again counts from its
// new start.
func TestWindowAgesOut(t *testing.T) {
	e := newEngine(100, func(string, string) {})
	defer func() {
		if e.loop != nil {
			e.loop.Close()
		}
	}()
	mk := func(up, timedOut bool) *job {
		return &job{idx: -1, timeout: 2 * time.Second, up: func() bool { return up }, timedOut: timedOut,
			start: func(*checker.Loop, time.Time, func(error, time.Time)) (*checker.Run, bool) { return nil, true }}
	}
	down, up, again, fresh := mk(false, true), mk(true, true), mk(false, true), mk(false, false)
	now := time.Now()
	for _, j := range []*job{down, up, again, fresh} {
		if !e.begin(j, now) {
			t.Fatal("the check did not start in the loop")
		}
	}
	if e.windowed != 4 {
		t.Fatalf("4 checks started: %d in the window", e.windowed)
	}
	// again ends at once and starts again 400 ms later.
	e.mu.Lock()
	e.unwindow(again)
	e.mu.Unlock()
	e.begin(again, now.Add(400*time.Millisecond))
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ageWindow(now.Add(499 * time.Millisecond))
	if e.windowed != 4 {
		t.Fatalf("499 ms after the starts: %d in the window, want 4", e.windowed)
	}
	e.ageWindow(now.Add(500 * time.Millisecond))
	if e.windowed != 3 || down.windowed || !up.windowed || !again.windowed || !fresh.windowed {
		t.Fatalf("500 ms after the starts: %d in the window (down %v, up %v, started again %v, last check not timed out %v), want 3: all but down",
			e.windowed, down.windowed, up.windowed, again.windowed, fresh.windowed)
	}
	e.ageWindow(now.Add(900 * time.Millisecond))
	if e.windowed != 2 || !up.windowed || !fresh.windowed {
		t.Fatalf("900 ms after the starts: %d in the window, want 2: the up real's and the one whose last check did not time out", e.windowed)
	}
	e.ageWindow(now.Add(time.Hour))
	if e.windowed != 2 || len(e.aging) != 0 {
		t.Fatalf("an hour later: %d in the window, %d aging, want 2 and 0", e.windowed, len(e.aging))
	}
	e.unwindow(up)
	e.unwindow(up)
	e.unwindow(fresh)
	if e.windowed != 0 {
		t.Fatalf("the checks ended: %d in the window", e.windowed)
	}
}
