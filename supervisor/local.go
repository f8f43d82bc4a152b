package supervisor

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"
	"time"
)

// localErrnos are the errors that say the director itself could not run a check: out of file
// descriptors, kernel buffers, memory or ephemeral ports. The real server was never asked, so its
// health must not change.
var localErrnos = []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL}

// LocalCause says whether err is the director's own failure rather than the real server's, and names
// the cause for the log ("too many open files"). Checker errors wrap the syscall error, so errors.Is
// sees through the checker's message.
func LocalCause(err error) (cause string, ok bool) {
	if err == nil {
		return "", false
	}
	for _, e := range localErrnos {
		if errors.Is(err, e) {
			return e.Error(), true
		}
	}
	var le *localError
	if errors.As(err, &le) {
		return le.cause, true
	}
	return "", false
}

// localError is a check result the engine itself decided is not the real's fault (a timeout that
// coincided with the daemon's own stall).
type localError struct {
	cause string
	err   error
}

func (e *localError) Error() string { return e.cause + ": " + e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// localReportWindow is how often each cause of local failures is logged at most.
const localReportWindow = time.Minute

// localReport is one cause's window: when its last line was logged and how many failures came since.
type localReport struct {
	logged time.Time
	count  int
}

// localReporter rate-limits the log lines of local failures: the first failure of a cause is logged at
// once; the ones that follow within a minute are counted and logged as one line when the minute is over.
// A plain value: the caller serialises calls and passes the time.
type localReporter struct {
	causes map[string]*localReport
}

// note records one local failure of cause for the real named who. It returns the lines to log now: none
// when the failure is only counted.
func (r *localReporter) note(cause, who string, now time.Time) []string {
	if r.causes == nil {
		r.causes = map[string]*localReport{}
	}
	c := r.causes[cause]
	if c != nil && now.Sub(c.logged) < localReportWindow {
		c.count++
		return nil
	}
	var lines []string
	if c != nil && c.count > 0 {
		lines = append(lines, summary(cause, c.count))
	}
	r.causes[cause] = &localReport{logged: now}
	return append(lines, fmt.Sprintf("Could not check real server %s: %s; it keeps its health (local error, logged once a minute per cause)", who, cause))
}

// flush returns the summary lines of the causes whose minute is over with failures counted in it, and
// forgets the causes that had none.
func (r *localReporter) flush(now time.Time) []string {
	var lines []string
	for _, cause := range slices.Sorted(maps.Keys(r.causes)) {
		c := r.causes[cause]
		if now.Sub(c.logged) < localReportWindow {
			continue
		}
		if c.count == 0 {
			delete(r.causes, cause)
			continue
		}
		lines = append(lines, summary(cause, c.count))
		r.causes[cause] = &localReport{logged: now}
	}
	return lines
}

// summary is the line for n failures of cause counted since the cause's last line.
func summary(cause string, n int) string {
	checks := "checks"
	if n == 1 {
		checks = "check"
	}
	return fmt.Sprintf("Could not run %d more %s in the last minute: %s; the real servers keep their health", n, checks, cause)
}
