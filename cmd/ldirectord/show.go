package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
)

// splitShowJSON removes the `--json` that may follow the show command (`show --json`,
// `<cfg> show --json`) from the positional arguments; Perl's option parsing stops at the first
// argument, so it arrives as one.
func splitShowJSON(args []string) (rest []string, asJSON bool) {
	for i := 0; i < 2 && i+1 < len(args); i++ {
		if args[i] == "show" && args[i+1] == "--json" {
			return slices.Delete(slices.Clone(args), i+1, i+2), true
		}
	}
	return args, false
}

// show is `ldirectord [configfile] show [--json]`: the state the running daemon publishes, as a table
// (or the state file itself with --json). It reads neither the config (so it works when the file on
// disk is broken) nor writes a log line (so it can run every second). Exit 0 when the daemon runs and
// its state file is current, 3 when it is stopped, 1 when the pid file is stale or the daemon runs but
// its state file is missing, unreadable or stale.
func (a *app) show(name string) int {
	path, err := config.Find(name)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return 1
	}
	a.config = path
	pid, st, err := daemon.Lookup(a.cfgName)
	if err != nil {
		fmt.Fprintf(a.stderr, "Can not open %s: %v\n", daemon.PidFile(a.cfgName), err)
		return 1
	}
	switch st {
	case daemon.Stopped:
		fmt.Fprintln(a.stdout, "ldirectord is stopped for "+a.config)
		return 3
	case daemon.Stale:
		fmt.Fprintf(a.stderr, "ldirectord stale pid file %s for %s\n", daemon.PidFile(a.cfgName), a.config)
		fmt.Fprintln(a.stdout, "ldirectord is stopped for "+a.config)
		return 1
	}
	file := daemon.StateFile(a.cfgName)
	refreshState(file, pid, showRefreshWait)
	data, doc, problem := readState(file, pid, time.Now())
	if problem != "" {
		fmt.Fprintf(a.stderr, "ldirectord for %s is running with pid: %d, but %s\n", a.config, pid, problem)
		return 1
	}
	if a.showJSON {
		a.stdout.Write(data)
		return 0
	}
	io.WriteString(a.stdout, formatState(doc, time.Now(), time.Local))
	return 0
}

// showRefreshWait is how long `show` waits for the daemon to rewrite its state file when asked.
const showRefreshWait = 2 * time.Second

// refreshState asks the daemon with the given pid to rewrite its state file now (SIGUSR1), so that `show`
// prints the last check times as they are, and waits at most wait for it. It asks only a daemon whose own
// state file is there (this ldirectord's: the Perl ldirectord writes none, and dies of SIGUSR1); when the
// daemon cannot be signalled or does not answer in time, the file is read as it is.
func refreshState(file string, pid int, wait time.Duration) {
	written := func() (time.Time, bool) {
		var head struct {
			PID     int       `json:"pid"`
			Written time.Time `json:"written"`
		}
		data, err := os.ReadFile(file)
		if err != nil || json.Unmarshal(data, &head) != nil || head.PID != pid {
			return time.Time{}, false
		}
		return head.Written, true
	}
	if _, ok := written(); !ok {
		return
	}
	asked := time.Now()
	if syscall.Kill(pid, syscall.SIGUSR1) != nil {
		return
	}
	for deadline := asked.Add(wait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if w, ok := written(); !ok || !w.Before(asked) {
			return
		}
	}
}

// readState reads the state file of the daemon with the given pid. problem, when not "", says in words
// why the file does not describe that daemon now.
func readState(file string, pid int, now time.Time) (data []byte, doc *stateDoc, problem string) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, "it has published no state: " + file + " does not exist"
	}
	if err != nil {
		return nil, nil, "its state file cannot be read: " + err.Error()
	}
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, nil, fmt.Sprintf("its state file %s is not valid: %v", file, err)
	}
	if head.Version != stateVersion {
		return nil, nil, fmt.Sprintf("its state file %s has version %d; this ldirectord reads version %d",
			file, head.Version, stateVersion)
	}
	doc = new(stateDoc)
	if err := json.Unmarshal(data, doc); err != nil {
		return nil, nil, fmt.Sprintf("its state file %s is not valid: %v", file, err)
	}
	if doc.PID != pid {
		return nil, nil, fmt.Sprintf("its state file %s is stale: it was written by pid %d", file, doc.PID)
	}
	if age := now.Sub(doc.Written); age > StateStaleAfter {
		return nil, nil, fmt.Sprintf("its state file %s is stale: last written %s, %s ago",
			file, doc.Written.Format("2006-01-02 15:04:05"), duration(age))
	}
	return data, doc, ""
}

// formatState is the table `show` prints: a header line, then each virtual with its reals, columns
// aligned across the whole table. Times are shown in loc, as HH:MM:SS when on the same day as now and
// with the date otherwise.
func formatState(doc *stateDoc, now time.Time, loc *time.Location) string {
	now = now.In(loc)
	at := func(t time.Time) string {
		t = t.In(loc)
		if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
			return t.Format("15:04:05")
		}
		return t.Format("2006-01-02 15:04:05")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ldirectord for %s, pid %d", doc.Config, doc.PID)
	if doc.Phase != "running" {
		b.WriteString(", " + doc.Phase)
	}
	fmt.Fprintf(&b, ", up %s, config loaded %s", duration(now.Sub(doc.Started)), at(doc.ConfigLoaded))
	if doc.Lag > 0 {
		fmt.Fprintf(&b, ", checks running %s s behind checkinterval", strconv.FormatFloat(doc.Lag, 'f', 1, 64))
	}
	b.WriteString("\n")

	var vrows, rrows [][]string
	var tails []string
	for _, v := range doc.Virtuals {
		sched := v.Scheduler
		if v.Persistent != nil {
			sched += " persistent " + strconv.FormatUint(uint64(*v.Persistent), 10)
		}
		check := "checktype " + v.CheckType
		switch v.CheckType {
		case config.CheckNegotiate.String():
			check += "/" + v.Service
		case config.CheckCombined.String():
			check = fmt.Sprintf("checktype %d (connect, negotiate/%s)", v.CombinedN, v.Service)
		}
		if v.CheckType != config.CheckOn.String() && v.CheckType != config.CheckOff.String() {
			check += " every " + seconds(v.CheckInterval)
		}
		row := []string{"virtual " + v.Virtual, v.Protocol, sched, check, "quiescent " + yesNo(v.Quiescent)}
		if v.Fallback != "" {
			state := "inactive"
			if v.FallbackActive {
				state = "active"
			}
			row = append(row, "fallback "+v.Fallback+" ("+state+")")
		}
		vrows = append(vrows, row)
		for _, r := range v.Reals {
			rrows = append(rrows, []string{"  real " + r.Real, r.Forward, "weight " + strconv.Itoa(r.Weight),
				r.Health, "since " + at(r.Since)})
			var tail []string
			if r.Health == "up" && r.Failures > 0 {
				tail = append(tail, fmt.Sprintf("failures %d/%d", r.Failures, r.FailureCount))
			}
			switch {
			case r.LastCheck.IsZero():
				tail = append(tail, "not checked yet")
			case r.LastError == "":
				tail = append(tail, "last check "+at(r.LastCheck)+" ok")
			default:
				tail = append(tail, "last check "+at(r.LastCheck)+" failed: "+r.LastError)
			}
			if r.NoVerdict != "" {
				tail = append(tail, "no fresh verdict since "+at(r.NoVerdictSince)+": "+r.NoVerdict)
			}
			if r.Health == "up" && !r.InTable {
				tail = append(tail, "not in the IPVS table")
			}
			tails = append(tails, strings.Join(tail, "  "))
		}
	}
	vw, rw := widths(vrows), widths(rrows)
	ri := 0
	for i, v := range doc.Virtuals {
		b.WriteString(aligned(vrows[i], vw) + "\n")
		if len(v.Reals) == 0 {
			b.WriteString("  no real servers\n")
		}
		for range v.Reals {
			b.WriteString(aligned(append(rrows[ri], tails[ri]), rw) + "\n")
			ri++
		}
	}
	return b.String()
}

// widths is the width of each column of rows: the widest cell.
func widths(rows [][]string) []int {
	var w []int
	for _, row := range rows {
		for i, c := range row {
			if i == len(w) {
				w = append(w, 0)
			}
			w[i] = max(w[i], len(c))
		}
	}
	return w
}

// aligned joins cells with two spaces, each padded to its column's width; the last cell is not padded.
func aligned(cells []string, w []int) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteString("  ")
		}
		b.WriteString(c)
		if i < len(cells)-1 && i < len(w) {
			b.WriteString(strings.Repeat(" ", w[i]-len(c)))
		}
	}
	return b.String()
}

// duration is d for a reader, at most two units: 45s, 13m5s, 2h13m, 3d4h.
func duration(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}

// seconds is an interval in seconds as ldirectord's config writes it: 10s, 0.5s.
func seconds(s float64) string {
	return strconv.FormatFloat(s, 'f', -1, 64) + "s"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
