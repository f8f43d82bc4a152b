package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
)

// unit is one check. The owner goroutine reads and writes state; the engine runs its checks (job), whose
// results go to h and the last-check fields (under mu, for Snapshot); members is swapped by the owner on
// reload.
type unit struct {
	key     unitKey
	members atomic.Pointer[[]member]
	chk     checker.Checker // nil for checktype=off, which is never checked

	state Health       // owner only
	shown atomic.Int32 // state, for readers (Snapshot)
	live  bool         // owner only: part of the running config
	// counted says the unit counts in Supervisor.pending (owner only): from its start until the owner
	// takes its first event or stops it, whichever comes first.
	counted bool

	job job // its place in the check engine (set when its checks start)

	mu        sync.Mutex
	h         health
	checked   bool
	lastCheck time.Time
	lastErr   string
	since     time.Time // when the check last changed its health (or made its first check)
	// noVerdict is why the last check gave no verdict (a local failure: the director could not run it),
	// "" when it gave one; noVerdictAt is when.
	noVerdict   string
	noVerdictAt time.Time
	// excused counts the timeouts in a row blamed on this director's overload (verdict).
	excused int
}

// setState sets the owner's state of u and shows it to readers (owner goroutine).
func (u *unit) setState(h Health) {
	u.state = h
	u.shown.Store(int32(h))
}

// shownState is the owner's state of u, for any goroutine.
func (u *unit) shownState() Health { return Health(u.shown.Load()) }

// event is what a check tells the owner: the state after a change, or after the first check.
type event struct {
	u     *unit
	state Health
	first bool
}

// checkGrace is the least time a check may run past its deadline before it is abandoned and counted as
// failed. A checker that ignores its context is a bug, but it must not hold up its real's results.
const checkGrace = 250 * time.Millisecond

// abandonGrace is how long a check of the given timeout may run past its deadline before it is abandoned:
// half its timeout, at least checkGrace. A starved daemon runs the goroutine that would see the deadline
// late, so the abandon must wait longer than the starvation it can tell from a checker ignoring its
// context; and an abandon during a starvation is the director's failure, not the real's.
func abandonGrace(timeout time.Duration) time.Duration { return max(checkGrace, timeout/2) }

var errMaintenance = errors.New("Server in maintenance")

// startChecks puts u in the engine: its first check within firstRoundWindow of now, then every interval
// at its phase.
func (s *Supervisor) startChecks(u *unit, now time.Time) {
	u.job = job{slot: newSlot(u.key.Interval, u.key.stagger(), now), idx: -1,
		run: func(ctx context.Context, started time.Time) time.Time { return s.checkOnce(ctx, u, started, false) }}
	if s.opts.Dial == nil && checker.InLoop(u.chk) {
		u.job.timeout = u.key.timeout()
		u.job.start = func(l *checker.Loop, started time.Time, done func(error, time.Time)) (*checker.Run, bool) {
			return s.startCheck(l, u, started, done)
		}
		u.job.settle = func(ctx context.Context, started, end time.Time, err error, confirming, together bool) (time.Time, bool) {
			return end, s.settleCheck(ctx, u, started, end, err, confirming, together)
		}
		u.job.timedOutUp = func(started, end time.Time, err error) bool {
			return err != nil && !errors.Is(err, context.Canceled) && !end.Before(started.Add(u.key.timeout())) && u.up()
		}
		u.job.again = func(ctx context.Context, started time.Time) time.Time { return s.checkOnce(ctx, u, started, true) }
		u.job.up = u.up
	}
	s.eng.add(&u.job)
}

// stopChecks takes u out of the engine and cancels its running check.
func (s *Supervisor) stopChecks(u *unit) {
	if u.job.run != nil {
		s.eng.remove(&u.job)
	}
}

// checkOnce runs one check of u, which got its slot in the engine at started: it logs soft failures and
// resets, writes the monitorfile lines and tells the owner about a change. A local failure (the director
// could not run the check) changes nothing but is reported. It returns when the check ended (zero when it
// did not read the clock): one clock reading serves the check's duration, its verdict and the engine.
// confirming says this check confirms a timeout of the check before it (see confirmTimeout).
func (s *Supervisor) checkOnce(ctx context.Context, u *unit, started time.Time, confirming bool) time.Time {
	ms := *u.members.Load()
	t := u.key.Target
	timeout := u.key.timeout()
	if dir := s.maintDir.Load(); dir != nil && *dir != "" && s.inMaintenance(ctx, *dir, &t, timeout) {
		s.verdict(ctx, u, ms, errMaintenance, true, time.Time{})
		return time.Time{}
	}
	if s.opts.Dial != nil {
		ctx = checker.WithDial(ctx, s.opts.Dial)
	}
	// The timeout starts when the check runs: from started (when it got its slot), a check whose goroutine
	// waited to run on an overloaded core started with its deadline nearly or already passed, and failed
	// at once (at 30,000 reals on one core: 250 checks answered a second instead of 12,000).
	cctx, cancel := context.WithTimeout(ctx, timeout)
	deadline, _ := cctx.Deadline()
	defer cancel()
	if !s.eng.running(&u.job, cancel) {
		return time.Time{}
	}
	// A check that ignores its context is abandoned checkGrace after its deadline: the timer gives the
	// verdict, and the engine still waits for the checker to return before it checks the real again.
	abandon := time.AfterFunc(timeout+abandonGrace(timeout), func() {
		if s.eng.running(&u.job, cancel) {
			var err error = fmt.Errorf("check did not return within its timeout of %s", timeout)
			if s.eng.stalledSince(started, stallLimit(timeout)) {
				err = &localError{cause: "timed out while this director was overloaded", err: err}
			}
			s.verdict(ctx, u, ms, err, false, time.Time{})
		}
	})
	err := safeCheck(cctx, u.chk, &t)
	end := time.Now()
	s.eng.running(&u.job, nil)
	if !abandon.Stop() || errors.Is(cctx.Err(), context.Canceled) {
		return end // the verdict was given, or the check was stopped (reload, shutdown)
	}
	if s.judge(ctx, u, ms, started, end, deadline, err, confirming, false) {
		return s.checkOnce(ctx, u, end, true)
	}
	return end
}

// startCheck starts one check of u in the engine's check loop, unless it must run in a goroutine: when the
// maintenance directory is set, checkOnce reads it (and may look a name up) first.
func (s *Supervisor) startCheck(l *checker.Loop, u *unit, started time.Time, done func(error, time.Time)) (*checker.Run, bool) {
	if dir := s.maintDir.Load(); dir != nil && *dir != "" {
		return nil, false
	}
	return l.Start(u.chk, &u.key.Target, started.Add(u.key.timeout()), done)
}

// settleCheck takes the result of a check of u that ran in the loop, as checkOnce takes its own
// (confirming: it confirms a timeout; together: timeouts of other up reals came with it). again says that a timeout must be confirmed by another check,
// at once.
func (s *Supervisor) settleCheck(ctx context.Context, u *unit, started, end time.Time, err error, confirming, together bool) (again bool) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return false // stopped (reload, shutdown)
	}
	return s.judge(ctx, u, *u.members.Load(), started, end, started.Add(u.key.timeout()), err, confirming, together)
}

// judge takes the result err of a check of u that ran from started to end, to its deadline, and gives
// the verdict, unless the check must be repeated at once to confirm a timeout (again): a timeout of an up
// real while the engine is pressed, or together with timeouts of other up reals.
func (s *Supervisor) judge(ctx context.Context, u *unit, ms []member, started, end, deadline time.Time, err error, confirming, together bool) (again bool) {
	timeout := u.key.timeout()
	if err != nil && ctx.Err() == nil && !end.Before(deadline) {
		// A timeout measures the backend only if this daemon was running: when the check saw its deadline
		// long after it passed, or the daemon was starved meanwhile, the timeout is the daemon's own. The
		// goroutines' waits to run are the measure of it for the checks in the loop too: they wait for
		// the same CPU as the loop's thread and the answers it reads (a loop that ignored them removed
		// 6-71 healthy reals a run in user-mode Linux).
		if limit := stallLimit(timeout); end.Sub(deadline) > limit || s.eng.stalledSince(started, limit) {
			err = &localError{cause: "timed out while this director was overloaded", err: err}
		}
	}
	if err != nil && !confirming && !end.Before(deadline) {
		cause := ""
		switch {
		case together && u.up():
			cause = "timed out together with other real servers"
		case s.confirmTimeout(u, end):
			cause = "timed out while checks were running behind"
		}
		if cause != "" {
			s.observeCheck(u, end.Sub(started), &localError{cause: cause, err: err})
			return true
		}
	}
	s.observeCheck(u, end.Sub(started), err)
	s.verdict(ctx, u, ms, err, false, end)
	return false
}

// confirmTimeout says whether a timeout of u's check must be confirmed by a second check, at once, before
// it counts: when it would count against a real that is up while this director is short of CPU (its
// checks throttled or running behind) or the answers of the others come slowly. Then the timeout may be
// the director's own, in ways it cannot see (the backend shares its CPU, an answer waited in a queue); a
// second timeout in a row is the real's. It costs a timeout's time in detection only while the director
// or its backends are overloaded.
//
// This holds for the checks in the loop too, even while the other reals answer fast: in user-mode Linux,
// confirming a loop's timeout only when most answers had come slowly lately removed 2-4 healthy reals in
// 2 of 5 runs (a backend sharing the director's one CPU sometimes answers one check after its timeout
// while the others are fast).
func (s *Supervisor) confirmTimeout(u *unit, now time.Time) bool {
	return u.up() && s.eng.pressed(now)
}

// up says whether u's real is up.
func (u *unit) up() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.h.state == Up
}

// maxExcused is how many timeouts in a row a real may have blamed on this director's overload before the
// next one counts against it: overload makes a verdict late, it never hides a dead real for good.
const maxExcused = 3

// verdict takes one check result of u (maint: the real is in maintenance) that ended at end (zero: not
// read).
func (s *Supervisor) verdict(ctx context.Context, u *unit, ms []member, err error, maint bool, end time.Time) {
	if ctx.Err() != nil {
		return
	}
	now := end
	if now.IsZero() || !s.opts.wallClock {
		now = s.opts.Now()
	}
	if cause, ok := LocalCause(err); ok {
		var excuse *localError
		excused := errors.As(err, &excuse) // a timeout blamed on this director's overload, not an errno
		u.mu.Lock()
		if excused {
			u.excused++
		}
		if !excused || u.excused <= maxExcused {
			if u.noVerdict == "" {
				u.noVerdictAt = now
			}
			if u.noVerdict != cause {
				s.version.Add(1)
			}
			u.noVerdict = cause
			u.mu.Unlock()
			s.log.Debugf("Check not counted: real server=%s (virtual=%s): %v", realText(ms[0].r), ms[0].v.ID(), err)
			s.eng.noteLocal(cause, realText(ms[0].r)+" ("+ms[0].v.ID()+")", now)
			return
		}
		u.mu.Unlock()
		err = fmt.Errorf("%w (%d timeouts in a row, each while this director was overloaded: counted)",
			excuse.err, maxExcused+1)
	}
	u.mu.Lock()
	u.excused = 0
	before := u.h.fails
	var changed bool
	if maint {
		changed = u.h.forceDown()
	} else {
		changed = u.h.observe(err)
	}
	soft, reset, state := u.h.soft, u.h.reset, u.h.state
	first := !u.checked
	if changed || first {
		u.since = now
	}
	u.checked = true
	u.lastCheck = now
	lastErr := ""
	if err != nil {
		lastErr = err.Error()
	}
	if changed || first || u.h.fails != before || u.lastErr != lastErr || u.noVerdict != "" {
		s.version.Add(1) // something `show` prints other than the last check time
	}
	u.lastErr = lastErr
	u.noVerdict = ""
	u.mu.Unlock()

	if reset || soft > 0 {
		log := s.logWhen(now) // the check's own reading of the clock
		for _, m := range ms {
			if reset {
				log.Infof("Resetting soft failure count: %s (%s)", realText(m.r), m.v.ID())
			}
			if soft > 0 {
				log.Infof("Soft failure real server: %s (%s) failure %d/%d", realText(m.r), m.v.ID(), soft, u.key.FailureCount)
			}
		}
	}
	if err != nil {
		s.log.Debugf("Check failed: real server=%s (virtual=%s): %v", realText(ms[0].r), ms[0].v.ID(), err)
	}
	if u.key.Type != config.CheckOn {
		s.monitor(now, ms, err)
	}
	if changed || first {
		select {
		case s.events <- event{u: u, state: state, first: first}:
		case <-ctx.Done():
		}
	}
}

// safeCheck runs one check; a panic inside it is a failure, not a crash.
func safeCheck(ctx context.Context, c checker.Checker, t *checker.Target) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	if c == nil {
		return errors.New("no checker")
	}
	return c.Check(ctx, t)
}

var shortName = regexp.MustCompile(`^([a-z][a-z0-9\-]+)\.`)

// inMaintenance tests the six maintenancedir names of reference §5.10: RIP:RPORT, RIP, then with the
// reverse-DNS name of RIP: NAME:RPORT, NAME, SHORT:RPORT, SHORT. The directory is listed first, so an empty
// directory costs no DNS lookup.
func (s *Supervisor) inMaintenance(ctx context.Context, dir string, t *checker.Target, timeout time.Duration) bool {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return false
	}
	names := make(map[string]bool, len(ents))
	for _, e := range ents {
		names[e.Name()] = true
	}
	port := strconv.Itoa(int(t.RPort))
	if names[t.RIP+":"+port] || names[t.RIP] {
		return true
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hosts, err := s.opts.LookupAddr(lctx, t.Addr.String())
	if err != nil || len(hosts) == 0 {
		return false
	}
	name := strings.TrimSuffix(hosts[0], ".")
	if names[name+":"+port] || names[name] {
		return true
	}
	if m := shortName.FindStringSubmatch(name); m != nil {
		return names[m[1]+":"+port] || names[m[1]]
	}
	return false
}

// monitor appends one line per virtual with a monitorfile (reference §5.11):
// `[<localtime>] [<pid>] <munged real id> [up|down] <message>`.
func (s *Supervisor) monitor(now time.Time, ms []member, err error) {
	for _, m := range ms {
		if m.v.MonitorFile == "" {
			continue
		}
		status, msg := "up", checker.Message(err)
		if err != nil {
			status = "down"
		}
		line := fmt.Sprintf("[%s] [%d] %s [%s] %s\n", now.Format("Mon Jan _2 15:04:05 2006"), os.Getpid(), realID(m.v, m.r), status, monitorEscape(msg))
		f, ferr := os.OpenFile(m.v.MonitorFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if ferr == nil {
			_, ferr = f.WriteString(line)
			if cerr := f.Close(); ferr == nil {
				ferr = cerr
			}
		}
		if ferr != nil {
			s.log.Errorf("Error writing to monitorfile '%s': %v", m.v.MonitorFile, ferr)
		}
	}
}

var monitorReplacer = strings.NewReplacer("%", "%25", "|", "%7c", "\r", "%0d", "\n", "%0a")

func monitorEscape(s string) string { return monitorReplacer.Replace(s) }
