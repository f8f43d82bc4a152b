package supervisor

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ldirectord-go/ldirectord/checker"
)

// The check engine runs every periodic check of the daemon with one scheduler goroutine and a bounded
// number of checks in flight.
//
//   - Batched wake-ups: the scheduler sleeps until the next check is due, rounded up to the next multiple
//     of the quantum, and starts every check due by then. At 1,000 checks a second that is 20 checks per
//     wake-up instead of one wake-up (and one timer, one goroutine) per check, which is where a Go daemon
//     spends most of its CPU on a mostly idle machine.
//   - Bounded in flight: at most limit checks run at once (derived from the file descriptor limit). A due
//     check that finds no free slot waits in a FIFO queue; the check that finishes takes the oldest
//     waiting one in its own goroutine, with no wake-up of the scheduler. FIFO by due time is round-robin:
//     a real is queued again only after its check ran, so no real starves while others are checked twice.
//   - A check's timeout starts when the check starts, never while it waits for its slot; how late it
//     started is the lag (lagMeter), logged once a minute and shown by `show`.
//
// Mutable state is under mu rather than owned by one goroutine: the scheduler and the goroutines whose
// checks just finished all touch the queues, and a hand-off through a channel would cost the very
// wake-up per check this engine exists to avoid. Every critical section is a few heap operations.
type engine struct {
	mu       sync.Mutex
	quantum  time.Duration // the wake-up grid (quantumFor the shortest interval seen)
	minIv    time.Duration
	sched    schedule
	ready    []*job // due and waiting for a slot, oldest first, from head
	head     int
	inflight int
	limit    int
	armed    time.Time    // when the scheduler will wake next (zero: not sleeping on a timer)
	turnAt   atomic.Int64 // when the scheduler last woke, in Unix nanoseconds (0: never), for stuck
	// stalls are the recent times the daemon was starved of CPU: the scheduler woke later than
	// stallThreshold after it planned to, or 1 % of the goroutines waited that long to run (read by the
	// scheduler from schedLat, by checks that time out from checkLat: each reads the latencies since its
	// own last reading).
	stalls   stallLog
	schedLat *schedLatency
	checkLat *schedLatency
	// throttle is how many checks may start per wake-up of the scheduler while the daemon is short of CPU
	// (adapt), 0 when not throttled; startedWake counts the starts since the last wake-up.
	throttle    int
	startedWake int
	pressedAt   time.Time // when checks last waited for the budget or a slot, or started late
	dueRate     float64   // checks due per second, all jobs together
	lag         lagMeter
	local       localReporter

	wake chan struct{}
	wg   sync.WaitGroup

	// The check loop (checker.Loop) runs the checks that can run there, without a goroutine each: started
	// when the first such check is due (nil until then, and when it cannot be made), closed when the engine
	// stops. Their results queue in settled for the settler goroutine, which judges them (job.settle) and
	// schedules the next checks: one wake-up for the checks that ended together, not one per check.
	loop      *checker.Loop
	loopTried bool
	settled   []settled
	settleSig chan struct{}
	// upTimeoutAt are when the latest checks of up reals timed out in the loop (within 2 holdFor of the
	// last); upTimeouts counts them since the last wake-up, for adapt and adaptWindow.
	upTimeoutAt []time.Time
	upTimeouts  int
	inLoop      int // checks running in the loop (mu)
	// window bounds the checks in the loop that count in it, windowed (see adaptWindow): every check, but
	// a check of a real that is not up and whose last check timed out only for the first quarter of its
	// timeout (aging holds those, in start order, see ageWindow). fast and slow count the checks that
	// passed since the last wake-up, in less or more than a quarter of their timeout; cutAt is when the
	// window was last cut, and slowAfter the last of those quarters.
	window     int
	windowed   int
	aging      []aging
	fast, slow int
	answers    answerMix // fast and slow over the last pressedFor, for pressed
	cutAt      time.Time
	slowAfter  time.Duration
	log        func(level, line string)
	// holdLog, when set, gathers the lines logged until its release into one write (the settler holds
	// them over each batch of results).
	holdLog func() (release func())
	// onLate, when set (benchmarks), is told how late each check started (called with mu held).
	onLate func(time.Duration)
	// onChecked, when set (tests), is told of each check that ended, whichever path ran it (mu held).
	onChecked func(*job)
}

// job is one periodic check in the engine. run performs one check and handles its result; started is
// when it got its slot (its timeout starts then). run returns when the check ended, read once by the
// check for all its uses (zero: the engine reads the clock): in user-mode Linux every clock read is a
// system call.
type job struct {
	slot    slot
	idx     int  // in the schedule; -1 when not in it (mu)
	stopped bool // (mu)
	// cancel cancels the running check, nil when none runs (mu). Jobs share the engine's context rather
	// than have one each: a context per job cost 500 bytes per real and a map entry in the parent.
	cancel context.CancelFunc
	run    func(ctx context.Context, started time.Time) time.Time
	// start, when set, starts the check in the engine's loop, with done to call when it ended; it reports
	// false when this check cannot run there (run runs it then). settle judges the result of such a check
	// and returns when it ended; again says the check must be repeated at once, by run's path (a timeout to
	// confirm, see confirmTimeout).
	start  func(l *checker.Loop, started time.Time, done func(err error, end time.Time)) (*checker.Run, bool)
	settle func(ctx context.Context, started, end time.Time, err error, confirming, together bool) (at time.Time, again bool)
	// timedOutUp says whether a result of the loop is a timeout of a real that is up.
	timedOutUp func(started, end time.Time, err error) bool
	again      func(ctx context.Context, started time.Time) time.Time
	confirming bool          // the check in the loop confirms a timeout (the settler's, while it holds the slot)
	pending    *checker.Run  // the check running in the loop (mu)
	timeout    time.Duration // the check's timeout, for the loop's window
	// up says whether the job's real is up (for the loop's window; nil: it counts as up).
	up func() bool
	// windowed says the running check counts in the loop's window; begins counts the job's starts in the
	// loop, so that an aging entry of an earlier check is told from the running one; timedOut says the
	// job's last check in the loop timed out (mu).
	windowed bool
	timedOut bool
	begins   uint32
}

// aging is a check in the loop of a real that is not up and whose last check timed out, which leaves the
// window a quarter of its timeout after it started (ageWindow), unless it ended or started again (begins)
// meanwhile.
type aging struct {
	j      *job
	at     time.Time
	begins uint32
}

// settled is the result of a check that ran in the loop.
type settled struct {
	j       *job
	started time.Time
	end     time.Time
	err     error
}

// Engine defaults.
const (
	// minQuantum and maxQuantum bound the wake-up grid of the scheduler: checks due within one step of it
	// start together, up to one step late.
	minQuantum = 20 * time.Millisecond
	maxQuantum = 100 * time.Millisecond
	// stallThreshold is how much later than planned the scheduler may wake before the daemon counts as
	// stalled (starved of CPU): timeouts that coincide with a stall are not held against the real.
	stallThreshold = 250 * time.Millisecond
	// maxIdleSleep bounds the scheduler's sleep, so the once-a-minute reports are flushed on time.
	maxIdleSleep = 5 * time.Second
	// maxInflight caps the checks in flight whatever the fd limit: each running check holds a goroutine
	// stack (8-32 KiB), and beyond about a thousand concurrent checks a core only switches between them.
	// 1,000 reals with a quarter hanging at negotiatetimeout 2 hold about 300 slots.
	maxInflight = 1024
	// throttleAbove is the scheduling wait (99th percentile of the goroutines made runnable since the last
	// wake-up) above which the engine starts fewer checks: well below stallThreshold, so that the throttle
	// acts before timeouts have to be excused.
	throttleAbove = 100 * time.Millisecond
	// initialBudget is the start budget per wake-up when the engine starts (0: none until the latencies
	// rise). A budget of 16 from the start spread the first round of 30,000 reals over many seconds, and
	// the owner's table computation, done again for each batch of reals that came up, then took the CPU
	// the checks needed (316 checks/s at a full core, against 7,171 without it; docs/benchmarks.md).
	initialBudget = 0
	// pressedFor is how long the engine counts as short of CPU after checks last waited for the budget or
	// a slot, or started late.
	pressedFor = 2 * time.Second
	// throttleMinInflight is the number of checks in flight below which the engine does not cut its
	// budget but grows it: with that few checks running, the waits come from elsewhere (the owner computing a table of
	// 30,000 reals, the collector), and fewer checks would only slow the round that ends them (at 30,000
	// reals on one core, cutting anyway fell to 250 checks a second at a full core).
	throttleMinInflight = 64
	// initialWindow and minWindow bound the loop's window from below: where it starts, and how far it is
	// cut. The start is the first round, every real due at once and a quarter of them perhaps hanging
	// (their checks hold the window for their whole timeout until they have timed out once): in user-mode
	// Linux, 1,000 reals, a start at 64 added 150-200 reals a second and converged in 5.5-6.8 s, at 256
	// in 4.3-6.9 s (median 5.1), at 512 in 5.5-6.6 s (more checks at once than the CPU gets through
	// answer slowly, and the window is cut).
	initialWindow = 256
	minWindow     = 8
)

// inflightLimit is how many checks may be in flight with nofile file descriptors: one descriptor per
// check (a socket, or a pipe for an external check), less a reserve for the log, the netlink socket, the
// config watcher, the state file, the children of external checks and what the process had open at
// start: 64 plus an eighth of the limit.
func inflightLimit(nofile uint64) int {
	reserve := 64 + nofile/8
	if nofile <= reserve {
		return 1
	}
	return int(min(nofile-reserve, maxInflight))
}

func newEngine(limit int, log func(level, line string)) *engine {
	limit = max(limit, 1)
	return &engine{quantum: minQuantum, limit: limit, wake: make(chan struct{}, 1), settleSig: make(chan struct{}, 1), log: log,
		schedLat: newSchedLatency(), checkLat: newSchedLatency(),
		throttle: min(initialBudget, limit-1), // an initial budget of the limit or more is none
		window:   min(initialWindow, limit)}
}

// quantumFor is the wake-up grid for checks whose shortest checkinterval is iv: a fiftieth of it, from 20
// to 100 ms. A coarser grid batches more checks per wake-up (at checkinterval 10, 100 checks at 1,000/s:
// 15 % less CPU per check than a 20 ms grid, measured); a check is never late by more than 2 % of its
// interval for it.
func quantumFor(iv time.Duration) time.Duration { return min(max(iv/50, minQuantum), maxQuantum) }

// add schedules a new job whose first check is due at j.slot.due.
func (e *engine) add(j *job) {
	e.mu.Lock()
	if e.minIv == 0 || j.slot.iv < e.minIv {
		e.minIv = j.slot.iv
		e.quantum = quantumFor(e.minIv)
	}
	e.sched.add(j)
	e.dueRate += 1 / j.slot.iv.Seconds()
	poke := e.armed.IsZero() || j.slot.due.Before(e.armed)
	e.mu.Unlock()
	if poke {
		e.poke()
	}
}

// remove stops j: it is taken out of the schedule and its running check is cancelled. A check that is
// running finishes (cancelled) but is not scheduled again.
func (e *engine) remove(j *job) {
	e.mu.Lock()
	if !j.stopped {
		e.dueRate = max(e.dueRate-1/j.slot.iv.Seconds(), 0)
	}
	j.stopped = true
	e.sched.remove(j)
	cancel, pending, loop := j.cancel, j.pending, e.loop
	e.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if pending != nil && loop != nil {
		loop.Cancel(pending)
	}
}

// running registers the cancel function of j's running check (nil: it returned), so that remove can
// cancel it. It reports false, and cancels at once, when j was removed already.
func (e *engine) running(j *job, cancel context.CancelFunc) bool {
	e.mu.Lock()
	stopped := j.stopped
	j.cancel = cancel
	if stopped {
		j.cancel = nil
	}
	e.mu.Unlock()
	if stopped && cancel != nil {
		cancel()
	}
	return !stopped
}

// stalledSince says whether the daemon was found starved of CPU for more than limit at or after t. It
// reads the runtime's scheduling latencies first, so a check that ends in a starvation the scheduler has
// not woken up to see yet still finds it.
func (e *engine) stalledSince(t time.Time, limit time.Duration) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.checkLat != nil {
		if _, p99 := e.checkLat.read(); p99 > stallThreshold {
			e.noteStall(time.Now(), p99)
		}
	}
	return e.stalls.since(t, limit)
}

// readStarvation notes a stall when the goroutines made runnable since the scheduler's last reading waited
// longer than stallThreshold to run (the 99th percentile: one goroutine's wait, such as the collector's, is
// not a starvation, and excusing the timeouts around it would hide a hanging real), and adapts the start
// budget to the latencies (scheduler, mu held).
func (e *engine) readStarvation(now time.Time) {
	if e.schedLat == nil {
		return
	}
	_, p99 := e.schedLat.read()
	if p99 > stallThreshold {
		e.noteStall(now, p99)
	}
	e.adapt(p99)
}

// adapt sets the start budget from how long runnable goroutines waited to run lately (mu held). Past
// throttleAbove the daemon has more checks in progress than its CPU gets through: starting more only makes
// every check slower, until their own timeouts expire while their answers wait to be read. So the starts
// per wake-up are halved while the waits stay high, and grow by an eighth (at least one) per wake-up while
// they stay under half of it, until the budget reaches the in-flight limit and is lifted: from 16 to 1,024
// in 35 wake-ups (0.7 s on the 20 ms grid, 3.5 s on the 100 ms one), each of them a check of the latencies
// the last starts caused. The due checks that do not start wait, in order, as lag.
func (e *engine) adapt(p99 time.Duration) {
	// The latencies are the goroutines' (the checks outside the loop); the loop's checks press the engine
	// when several of them time out on up reals together.
	goroutines := e.inflight - e.inLoop
	timeouts := e.upTimeouts > 1 && e.inflight >= throttleMinInflight
	switch {
	case timeouts || p99 > throttleAbove && goroutines >= throttleMinInflight:
		floor := e.budgetFloor()
		if e.throttle == 0 {
			e.throttle = max(e.startedWake/2, floor)
		} else {
			e.throttle = max(e.throttle/2, floor)
		}
	case e.throttle > 0 && (p99 < throttleAbove/2 || goroutines < throttleMinInflight):
		if e.throttle += max(1, e.throttle/8); e.throttle >= e.limit {
			e.throttle = 0
		}
	}
	e.startedWake = 0
}

// adaptWindow sets the window of the checks in the loop from how fast the checks that passed since the
// last wake-up answered (mu held), as TCP's congestion control sets its window from the round trips: when
// most of them took more than a quarter of their timeout, or up reals timed out together, the checks
// queue somewhere (this director's CPU, its network, the backends) and more of them at once only makes
// every one slower until healthy reals time out; the window is cut by a quarter, at most once per such
// quarter of a timeout (the answers of the checks started before the cut come back meanwhile), never below
// minWindow. While they answer fast and at least half of the window is in use, it grows by an eighth (at
// least one) per wake-up, up to the in-flight limit. It starts at initialWindow: the first round starts
// that many checks, and more as they answer. Checks that failed do not count: a farm of dead reals says
// nothing about the others' round trips.
func (e *engine) adaptWindow(now time.Time) {
	switch {
	case e.slow > e.fast || e.upTimeouts > 1:
		if now.Sub(e.cutAt) >= e.slowAfter {
			e.window = max(e.window*3/4, min(minWindow, e.window))
			e.cutAt = now
		}
	case e.fast > 0 && e.windowed >= e.window/2:
		e.window = min(e.window+max(1, e.window/8), e.limit)
	}
	e.fast, e.slow = 0, 0
}

// ageWindow takes out of the window the checks that started more than a quarter of their timeout ago of
// reals that are not up and whose last check timed out (mu held). Such a check most likely waits on a
// hanging backend, which costs this director nothing until its deadline: with a quarter of the reals
// hanging at negotiatetimeout 2, their checks held the window for 2 s each, and only the room they left
// checked the healthy reals. Every other check stays in it to the end: a slow answer there is the sign of
// a queue (this director's CPU, the backends') that more checks would only lengthen until healthy reals
// time out (letting the checks of every real that was not up out after a quarter, the first round of
// 1,000 reals in user-mode Linux put all of them in flight at once, and they all answered slowly).
func (e *engine) ageWindow(now time.Time) {
	i := 0
	for ; i < len(e.aging); i++ {
		a := e.aging[i]
		if now.Sub(a.at) < a.j.timeout/4 {
			break
		}
		if a.j.begins == a.begins && a.j.windowed {
			a.j.windowed = false
			e.windowed--
		}
	}
	if i > 0 {
		n := copy(e.aging, e.aging[i:])
		clear(e.aging[n:])
		e.aging = e.aging[:n]
	}
}

// unwindow takes j's check out of the window, if it is in it (mu held).
func (e *engine) unwindow(j *job) {
	if j.windowed {
		j.windowed = false
		e.windowed--
	}
}

// noteAnswer counts a check in the loop that passed in d, of the given timeout (mu held).
func (e *engine) noteAnswer(d, timeout time.Duration) {
	e.slowAfter = timeout / 4
	if d > e.slowAfter {
		e.slow++
	} else {
		e.fast++
	}
}

// headWaits says whether the oldest waiting check must wait for the loop's window, counting extra checks
// about to start (mu held).
func (e *engine) headWaits(extra int) bool {
	for _, j := range e.ready[e.head:] {
		if !j.stopped {
			return j.start != nil && e.windowed+extra >= e.window
		}
	}
	return false
}

// budgetFloor is the least start budget per wake-up: a sixteenth of the checks due per wake-up (at least
// one; a quarter kept the single CPU of user-mode Linux so busy that a hanging real's timeouts were all
// excused). The throttle trades lag for timeouts, but below that the lag grows without bound, and on a daemon
// whose waits come from its own bookkeeping (the owner recomputing the table of 30,000 reals for each
// batch of reals that came up) a smaller budget only feeds the waits: the first round trickles, and each
// trickle costs a whole recomputation (mu held).
func (e *engine) budgetFloor() int {
	return max(1, int(e.dueRate*e.quantum.Seconds()/16))
}

// mayStart says whether one more check may start before the next wake-up (mu held).
func (e *engine) mayStart() bool {
	return e.inflight < e.limit && (e.throttle == 0 || e.startedWake < e.throttle)
}

// noteStall records that the daemon was starved of CPU for d, seen at at (mu held).
func (e *engine) noteStall(at time.Time, d time.Duration) { e.stalls.note(at, d) }

// stallLimit is how long the daemon may have been starved during a check of the given timeout before
// the check's timeout no longer counts against the real: a quarter of the timeout, at least
// stallThreshold.
func stallLimit(timeout time.Duration) time.Duration { return max(stallThreshold, timeout/4) }

// lagNow is the daemon-wide lag: how late the oldest waiting check is, or else how late the last check
// started; 0 below lagThreshold (checks on time, give or take the batching and a busy machine).
func (e *engine) lagNow(now time.Time) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.lag.last
	for _, j := range e.ready[e.head:] {
		if !j.stopped {
			l = max(l, now.Sub(j.slot.due))
			break
		}
	}
	if l < lagThreshold {
		return 0
	}
	return l
}

// pressed says whether the engine was short of CPU or slots within pressedFor of now: checks waited for
// the start budget or a slot, or started later than lagThreshold, or the answers came slowly
// (answerMix.slowLately).
func (e *engine) pressed(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.head < len(e.ready) || e.lag.last >= lagThreshold || (!e.pressedAt.IsZero() && now.Sub(e.pressedAt) < pressedFor) ||
		e.answers.slowLately(now)
}

// answerMix counts the checks in the loop that passed fast and slow (within a quarter of their timeout
// or not), in two periods of half pressedFor: the current one, from at, and the one before.
type answerMix struct {
	at         time.Time
	fast, slow [2]int
}

// add counts fast and slow answers at now.
func (m *answerMix) add(now time.Time, fast, slow int) {
	if d := now.Sub(m.at); d >= pressedFor/2 {
		m.fast[1], m.slow[1] = m.fast[0], m.slow[0]
		if d >= pressedFor {
			m.fast[1], m.slow[1] = 0, 0
		}
		m.fast[0], m.slow[0] = 0, 0
		m.at = now
	}
	m.fast[0] += fast
	m.slow[0] += slow
}

// slowLately says whether at least an eighth of the answers of the last pressedFor, and at least two, were
// slow: the backends or this director are short of CPU across the board, not one backend slow, and a
// timeout then may be the same slowness a little worse. In user-mode Linux, the guest's one CPU busy
// all along, the healthy reals answered in about a second at negotiatetimeout 2 while no check started
// late, and one of them, alone, timed out and was removed for it.
func (m *answerMix) slowLately(now time.Time) bool {
	if now.Sub(m.at) >= pressedFor {
		return false
	}
	slow := m.slow[0] + m.slow[1]
	return slow >= 2 && slow*8 >= slow+m.fast[0]+m.fast[1]
}

// stuckAfter is how long the scheduler may go without waking before stuck reports it: its longest sleep
// and as much again for a director short of CPU.
const stuckAfter = 2 * maxIdleSleep

// stuck says how long the scheduler has not woken, when that is longer than stuckAfter (0 otherwise, and
// before it first woke).
func (e *engine) stuck(now time.Time) time.Duration {
	at := e.turnAt.Load()
	if at == 0 {
		return 0
	}
	if d := now.Sub(time.Unix(0, at)); d > stuckAfter {
		return d
	}
	return 0
}

// noteLocal counts a local failure for the once-a-minute log.
func (e *engine) noteLocal(cause, who string, now time.Time) {
	e.mu.Lock()
	lines := e.local.note(cause, who, now)
	e.mu.Unlock()
	for _, l := range lines {
		e.log("error", l)
	}
}

func (e *engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// run is the scheduler: it starts due checks until ctx ends, then waits for the running ones.
func (e *engine) run(ctx context.Context) {
	settlerDone := make(chan struct{})
	stopSettler := make(chan struct{})
	go func() { defer close(settlerDone); e.settler(ctx, stopSettler) }()
	defer func() {
		e.mu.Lock()
		loop := e.loop
		e.loopTried = true // no loop after this
		e.mu.Unlock()
		if loop != nil {
			loop.Close() // every check in it ends (canceled) and queues for the settler
		}
		e.wg.Wait()
		close(stopSettler)
		<-settlerDone
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var planned time.Time
	for {
		now := time.Now()
		e.turnAt.Store(now.UnixNano())
		e.mu.Lock()
		if !planned.IsZero() && now.Sub(planned) > stallThreshold {
			e.noteStall(now, now.Sub(planned))
		}
		e.answers.add(now, e.fast, e.slow)
		e.adaptWindow(now)
		e.ageWindow(now)
		e.readStarvation(now)
		e.upTimeouts = 0 // counted per wake-up (the harness of the fake-time tests reads no latencies)
		e.compactReady()
		e.ready = e.sched.popDue(now, e.ready)
		inLoop := e.startReady(ctx, now, nil)
		lagLine := e.lag.report(now)
		locals := e.local.flush(now)
		sleep := maxIdleSleep
		if next, ok := e.sched.next(); ok {
			at := next.Truncate(e.quantum)
			if at.Before(next) {
				at = at.Add(e.quantum)
			}
			sleep = min(max(at.Sub(now), 0), maxIdleSleep)
		}
		if e.head < len(e.ready) || e.lag.last >= lagThreshold {
			e.pressedAt = now
		}
		if e.head < len(e.ready) {
			sleep = min(sleep, e.quantum) // checks wait for the budget or a slot: start more next step
		}
		planned = now.Add(sleep)
		e.armed = planned
		e.mu.Unlock()
		e.startInLoop(ctx, inLoop, now)
		if lagLine != "" {
			e.log("warning", lagLine)
		}
		for _, l := range locals {
			e.log("error", l)
		}

		timer.Reset(sleep)
		select {
		case <-ctx.Done():
			e.mu.Lock()
			e.armed = time.Time{}
			e.mu.Unlock()
			return
		case <-timer.C:
		case <-e.wake:
			planned = time.Time{} // woken early: no lateness to measure
		}
	}
}

// startReady starts waiting checks while slots are free (mu held). The ones that may run in the loop are
// appended to inLoop, for startInLoop once mu is released.
func (e *engine) startReady(ctx context.Context, now time.Time, inLoop []*job) []*job {
	for e.mayStart() && !e.headWaits(len(inLoop)) {
		j := e.nextReady()
		if j == nil {
			break
		}
		e.inflight++
		e.startedWake++
		e.observe(now.Sub(j.slot.due))
		e.wg.Add(1)
		if j.start != nil {
			inLoop = append(inLoop, j)
			continue
		}
		go e.work(ctx, j, now, j.run)
	}
	return inLoop
}

// startInLoop starts the given jobs, which have their slots, in the loop, or in goroutines of their own
// when they cannot run there (mu not held).
func (e *engine) startInLoop(ctx context.Context, jobs []*job, now time.Time) {
	for _, j := range jobs {
		if !e.begin(j, now) {
			go e.work(ctx, j, now, j.run)
		}
	}
}

// begin starts j, which has its slot, in the loop; false when it cannot run there (mu not held).
func (e *engine) begin(j *job, now time.Time) bool {
	loop := e.checkLoop()
	if loop == nil {
		return false
	}
	up := j.up == nil || j.up() // before mu: the real's own lock is never taken under it
	e.mu.Lock()
	e.inLoop++ // before the check can end
	e.windowed++
	j.windowed = true
	j.begins++
	if !up && j.timedOut {
		e.aging = append(e.aging, aging{j, now, j.begins})
	}
	e.mu.Unlock()
	r, ok := j.start(loop, now, func(err error, end time.Time) { e.ended(settled{j, now, end, err}) })
	e.mu.Lock()
	stopped := false
	if ok {
		j.pending = r // stale if the check ended already: canceling it then does nothing
		stopped = j.stopped
	} else {
		e.inLoop--
		e.unwindow(j)
	}
	e.mu.Unlock()
	if stopped {
		// Removed (reload) while it started, before remove could see it pending: the check must not
		// hold its connection to its deadline.
		loop.Cancel(r)
	}
	return ok
}

// checkLoop is the engine's check loop, made on first use; nil when it cannot be made or the engine stopped.
func (e *engine) checkLoop() *checker.Loop {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loop == nil && !e.loopTried {
		e.loopTried = true
		l, err := checker.NewLoop()
		if err != nil {
			e.log("error", "cannot start the check loop, checks run in goroutines: "+err.Error())
		}
		e.loop = l
	}
	return e.loop
}

// ended queues the result of a check that ran in the loop for the settler (called by the loop).
func (e *engine) ended(r settled) {
	e.mu.Lock()
	e.settled = append(e.settled, r)
	e.mu.Unlock()
	select {
	case e.settleSig <- struct{}{}:
	default:
	}
}

// settler judges the results of the checks that ran in the loop and schedules their next checks, until
// stop is closed. A timeout of a real that is up waits holdFor first (the check keeps its slot): when
// another up real timed out within holdFor of it, before or after, the timeouts came together, which is
// the director's trouble (its CPU, its network) far more often than each real's, and each must be
// confirmed by a second check before it counts (see judge).
func (e *engine) settler(ctx context.Context, stop chan struct{}) {
	var batch, held []settled
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	for {
		select {
		case <-e.settleSig:
		case <-hold.C:
		case <-stop:
			return
		}
		e.mu.Lock()
		batch, e.settled = e.settled, batch[:0]
		e.mu.Unlock()
		release := func() {}
		if e.holdLog != nil {
			release = e.holdLog()
		}
		for i, r := range batch {
			batch[i] = settled{}
			if ctx.Err() == nil && r.j.timedOutUp != nil && r.j.timedOutUp(r.started, r.end, r.err) {
				e.noteUpTimeout(r.end)
				held = append(held, r)
				continue
			}
			e.settleOne(ctx, r, false)
		}
		now := time.Now()
		n := 0
		for _, r := range held {
			if ctx.Err() == nil && now.Sub(r.end) < holdFor {
				held[n] = r
				n++
				continue
			}
			e.settleOne(ctx, r, e.upTimeoutsNear(r.end) > 1)
		}
		release()
		clear(held[n:])
		held = held[:n]
		if len(held) > 0 {
			hold.Reset(holdFor - now.Sub(held[0].end))
		}
	}
}

// holdFor is how long the settler holds the timeout of an up real, to see whether others come with it.
const holdFor = 250 * time.Millisecond

// noteUpTimeout records that a check of an up real timed out at end.
func (e *engine) noteUpTimeout(end time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.upTimeouts++
	n := 0
	for _, t := range e.upTimeoutAt {
		if end.Sub(t) < 2*holdFor {
			e.upTimeoutAt[n] = t
			n++
		}
	}
	e.upTimeoutAt = append(e.upTimeoutAt[:n], end)
}

// upTimeoutsNear is how many checks of up reals timed out within holdFor of t (the one at t included).
func (e *engine) upTimeoutsNear(t time.Time) (n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, at := range e.upTimeoutAt {
		if d := at.Sub(t); d > -holdFor && d < holdFor {
			n++
		}
	}
	return n
}

// settleOne judges r, a check that ran in the loop (together: timeouts of other up reals came with its
// own), and hands its slot on.
func (e *engine) settleOne(ctx context.Context, r settled, together bool) {
	j := r.j
	e.mu.Lock()
	j.pending = nil
	e.inLoop--
	e.unwindow(j)
	j.timedOut = r.err != nil && j.timeout > 0 && !r.end.Before(r.started.Add(j.timeout))
	if r.err == nil {
		e.noteAnswer(r.end.Sub(r.started), j.timeout)
	}
	stopped := j.stopped // removed (reload): no verdict, as a canceled check in run's path
	e.mu.Unlock()
	var end time.Time
	again := false
	if ctx.Err() == nil && !stopped {
		end, again = j.settle(ctx, r.started, r.end, r.err, j.confirming, together)
	}
	j.confirming = false
	if end.IsZero() {
		end = r.end
	}
	if again {
		// The confirmation runs in the loop too, at once, in the same slot.
		if j.confirming = true; !e.begin(j, end) {
			j.confirming = false
			go e.work(ctx, j, end, j.again)
		}
		return
	}
	next := e.checked(ctx, j, end)
	if next == nil {
		e.wg.Done()
		return
	}
	if next.start == nil || !e.begin(next, end) {
		go e.work(ctx, next, end, next.run)
	}
}

// observe accounts for a check that started late late (mu held).
func (e *engine) observe(late time.Duration) {
	e.lag.observe(late)
	if e.onLate != nil {
		e.onLate(late)
	}
}

// nextReady takes the oldest waiting job that was not stopped (mu held), or nil.
func (e *engine) nextReady() *job {
	for e.head < len(e.ready) {
		j := e.ready[e.head]
		e.ready[e.head] = nil
		e.head++
		if !j.stopped {
			return j
		}
	}
	// Empty: reuse the backing array from the start.
	e.ready, e.head = e.ready[:0], 0
	return nil
}

// compactReady moves the waiting jobs to the front of ready once the taken ones fill half of it, so that
// a queue that never empties (sustained overload) does not grow without bound (mu held).
func (e *engine) compactReady() {
	if e.head == 0 || e.head < len(e.ready)/2 {
		return
	}
	n := copy(e.ready, e.ready[e.head:])
	clear(e.ready[n:])
	e.ready, e.head = e.ready[:n], 0
}

// work runs j (with run), schedules its next check, and goes on with the oldest waiting check while there
// is one, so that a busy engine hands slots over without waking the scheduler. A waiting check that can run
// in the loop is started there, and work ends. A slot in use counts once in wg, whichever path holds it.
func (e *engine) work(ctx context.Context, j *job, started time.Time, run func(context.Context, time.Time) time.Time) {
	for {
		var now time.Time
		if ctx.Err() == nil {
			now = run(ctx, started)
		}
		if now.IsZero() {
			now = time.Now()
		}
		next := e.checked(ctx, j, now)
		if next == nil {
			e.wg.Done()
			return
		}
		if next.start != nil && e.begin(next, now) {
			return // the slot goes on in the loop
		}
		j, started, run = next, now, next.run
	}
}

// checked schedules j's next check after its check ended at now, and hands its slot to the oldest waiting
// check, which it returns, or frees it (nil).
func (e *engine) checked(ctx context.Context, j *job, now time.Time) *job {
	e.mu.Lock()
	poke := false
	if e.onChecked != nil {
		e.onChecked(j)
	}
	if !j.stopped && ctx.Err() == nil {
		j.slot.advance(now)
		e.sched.add(j)
		poke = !e.armed.IsZero() && j.slot.due.Before(e.armed.Add(-e.quantum))
	}
	var next *job
	if (e.throttle == 0 || e.startedWake < e.throttle) && !e.headWaits(0) {
		next = e.nextReady()
	}
	if next == nil || ctx.Err() != nil {
		e.inflight--
		e.mu.Unlock()
		if poke {
			e.poke()
		}
		return nil
	}
	e.startedWake++
	e.observe(now.Sub(next.slot.due))
	e.mu.Unlock()
	if poke {
		e.poke()
	}
	return next
}
