package supervisor

import (
	"context"
	"sync"
	"time"
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
	armed    time.Time // when the scheduler will wake next (zero: not sleeping on a timer)
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
	log  func(level, line string)
	// onLate, when set (benchmarks), is told how late each check started (called with mu held).
	onLate func(time.Duration)
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
	return &engine{quantum: minQuantum, limit: limit, wake: make(chan struct{}, 1), log: log,
		schedLat: newSchedLatency(), checkLat: newSchedLatency(),
		throttle: min(initialBudget, limit-1)} // an initial budget of the limit or more is none
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
	cancel := j.cancel
	e.mu.Unlock()
	if cancel != nil {
		cancel()
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
	switch {
	case p99 > throttleAbove && e.inflight >= throttleMinInflight:
		floor := e.budgetFloor()
		if e.throttle == 0 {
			e.throttle = max(e.startedWake/2, floor)
		} else {
			e.throttle = max(e.throttle/2, floor)
		}
	case e.throttle > 0 && (p99 < throttleAbove/2 || e.inflight < throttleMinInflight):
		if e.throttle += max(1, e.throttle/8); e.throttle >= e.limit {
			e.throttle = 0
		}
	}
	e.startedWake = 0
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
// the start budget or a slot, or started later than lagThreshold.
func (e *engine) pressed(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.head < len(e.ready) || e.lag.last >= lagThreshold || (!e.pressedAt.IsZero() && now.Sub(e.pressedAt) < pressedFor)
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
	defer e.wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var planned time.Time
	for {
		now := time.Now()
		e.mu.Lock()
		if !planned.IsZero() && now.Sub(planned) > stallThreshold {
			e.noteStall(now, now.Sub(planned))
		}
		e.readStarvation(now)
		e.compactReady()
		e.ready = e.sched.popDue(now, e.ready)
		e.startReady(ctx, now)
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

// startReady starts waiting checks while slots are free (mu held).
func (e *engine) startReady(ctx context.Context, now time.Time) {
	for e.mayStart() {
		j := e.nextReady()
		if j == nil {
			return
		}
		e.inflight++
		e.startedWake++
		e.observe(now.Sub(j.slot.due))
		e.wg.Add(1)
		go e.work(ctx, j, now)
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

// work runs j, schedules its next check, and goes on with the oldest waiting check while there is one, so
// that a busy engine hands slots over without waking the scheduler.
func (e *engine) work(ctx context.Context, j *job, started time.Time) {
	defer e.wg.Done()
	for {
		var now time.Time
		if ctx.Err() == nil {
			now = j.run(ctx, started)
		}
		if now.IsZero() {
			now = time.Now()
		}
		e.mu.Lock()
		poke := false
		if !j.stopped && ctx.Err() == nil {
			j.slot.advance(now)
			e.sched.add(j)
			poke = !e.armed.IsZero() && j.slot.due.Before(e.armed.Add(-e.quantum))
		}
		var next *job
		if e.throttle == 0 || e.startedWake < e.throttle {
			next = e.nextReady()
		}
		if next == nil || ctx.Err() != nil {
			e.inflight--
			e.mu.Unlock()
			if poke {
				e.poke()
			}
			return
		}
		e.startedWake++
		e.observe(now.Sub(next.slot.due))
		e.mu.Unlock()
		if poke {
			e.poke()
		}
		j, started = next, now
	}
}
