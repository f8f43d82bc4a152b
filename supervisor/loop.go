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

// unit is one check and its loop. The owner goroutine reads and writes state; the loop owns h and the
// last-check fields (under mu, for Snapshot); members is swapped by the owner on reload.
type unit struct {
	key     unitKey
	members atomic.Pointer[[]member]
	chk     checker.Checker // nil for checktype=off, which has no loop

	state Health       // owner only
	shown atomic.Int32 // state, for readers (Snapshot)
	live  bool         // owner only: part of the running config
	// counted says the unit counts in Supervisor.pending (owner only): from its start until the owner
	// takes its first event or stops it, whichever comes first.
	counted bool

	mu        sync.Mutex
	h         health
	checked   bool
	lastCheck time.Time
	lastErr   string
	since     time.Time // when the check loop last changed its health (or made its first check)

	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has returned
}

// setState sets the owner's state of u and shows it to readers (owner goroutine).
func (u *unit) setState(h Health) {
	u.state = h
	u.shown.Store(int32(h))
}

// shownState is the owner's state of u, for any goroutine.
func (u *unit) shownState() Health { return Health(u.shown.Load()) }

// event is what a check loop tells the owner: the state after a change, or after the first check.
type event struct {
	u     *unit
	state Health
	first bool
}

// firstRoundWindow bounds the stagger of the first checks after start or reload, so that healthy reals
// reach the table quickly even with a long checkinterval; later checks spread over the whole interval.
const firstRoundWindow = time.Second

// checkGrace is how long a check may run past its deadline before it is abandoned and counted as failed.
// A checker that ignores its context is a bug, but it must not hold up its real's results.
const checkGrace = 250 * time.Millisecond

var errMaintenance = errors.New("Server in maintenance")

// loop checks u every interval until ctx ends. Checks happen at a fixed phase of the interval (a hash of
// the target), one at a time; a check that overruns makes the loop skip the slots it missed.
func (s *Supervisor) loop(ctx context.Context, u *unit, start time.Time) {
	defer close(u.done)
	iv := u.key.Interval
	frac := u.key.stagger()
	base := start.Add(time.Duration(frac * float64(iv)))
	next := start.Add(time.Duration(frac * float64(min(iv, firstRoundWindow))))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var prev chan struct{}
	for {
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if prev != nil { // the previous check overran and was abandoned: still one in flight at a time
			select {
			case <-prev:
			case <-ctx.Done():
				return
			}
		}
		if s.lateness != nil {
			s.lateness(time.Since(next))
		}
		prev = s.checkOnce(ctx, u)
		k := time.Since(base)/iv + 1
		next = base.Add(max(k, 1) * iv)
	}
}

// checkOnce runs one check of u, logs soft failures and resets, writes the monitorfile lines and tells the
// owner about a change. It returns a channel that is closed when the checker has returned (nil when no
// checker ran).
func (s *Supervisor) checkOnce(ctx context.Context, u *unit) (running chan struct{}) {
	ms := *u.members.Load()
	t := u.key.Target
	timeout := u.key.timeout()
	var err error
	maint := false
	if dir := s.maintDir.Load(); dir != nil && *dir != "" && s.inMaintenance(ctx, *dir, &t, timeout) {
		maint, err = true, errMaintenance
	} else {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		res := make(chan error, 1)
		running = make(chan struct{})
		go func() {
			defer close(running)
			res <- safeCheck(cctx, u.chk, &t)
		}()
		select {
		case err = <-res:
		case <-cctx.Done():
			grace := time.NewTimer(checkGrace)
			select {
			case err = <-res:
			case <-grace.C:
				err = fmt.Errorf("check did not return within its timeout of %s", timeout)
			}
			grace.Stop()
		}
		cancel()
	}
	if ctx.Err() != nil {
		return running
	}

	now := s.opts.Now()
	u.mu.Lock()
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
	u.lastErr = ""
	if err != nil {
		u.lastErr = err.Error()
	}
	u.mu.Unlock()

	for _, m := range ms {
		if reset {
			s.log.Infof("Resetting soft failure count: %s (%s)", realText(m.r), m.v.ID())
		}
		if soft > 0 {
			s.log.Infof("Soft failure real server: %s (%s) failure %d/%d", realText(m.r), m.v.ID(), soft, u.key.FailureCount)
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
	return running
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
