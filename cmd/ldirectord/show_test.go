package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
	"github.com/ldirectord-go/ldirectord/supervisor"
	"github.com/sirupsen/logrus"
)

func TestFormatState(t *testing.T) {
	day := func(d, h, m, s int) time.Time { return time.Date(2025, 3, d, h, m, s, 0, time.UTC) }
	p300 := uint32(300)
	doc := &stateDoc{
		Version: 1, PID: 1234, Config: "/etc/ha.d/ldirectord.cf", Phase: "running",
		Started: day(10, 23, 17, 0), ConfigLoaded: day(11, 1, 2, 3), Written: day(11, 1, 30, 2),
		Virtuals: []virtualState{
			{Virtual: "10.9.9.9:80", ID: "tcp:10.9.9.9:80", Protocol: "tcp", Scheduler: "wrr",
				CheckType: "negotiate", Service: "http", CheckInterval: 10, Fallback: "127.0.0.1:80",
				Reals: []realState{
					{Real: "10.1.0.2:8080", Forward: "masq", Weight: 1, Health: "up", Since: day(11, 1, 2, 5),
						FailureCount: 3, LastCheck: day(11, 1, 30, 2), InTable: true},
					{Real: "10.1.0.3:8080", Forward: "masq", Weight: 1, Health: "down", Since: day(11, 1, 20, 0),
						Failures: 3, FailureCount: 3, LastCheck: day(11, 1, 30, 1),
						LastError: "GET http://10.1.0.3:8080/: 500 Internal Server Error"},
					{Real: "10.1.0.4:8080", Forward: "masq", Weight: 10, Health: "up", Since: day(10, 23, 17, 1),
						Failures: 1, FailureCount: 3, LastCheck: day(11, 1, 30, 0),
						LastError: "GET http://10.1.0.4:8080/: timeout", InTable: true},
				}},
			{Virtual: "[2001:db8::1]:443", ID: "tcp:[2001:db8::1]:443", Protocol: "tcp", Scheduler: "sh",
				Persistent: &p300, CheckType: "combined", CombinedN: 3, Service: "https", CheckInterval: 2.5,
				Quiescent: true, Fallback: "[::1]:443", FallbackActive: true,
				Reals: []realState{
					{Real: "[2001:db8::10]:443", Forward: "gate", Weight: 5, Health: "unknown", Since: day(11, 1, 2, 3),
						FailureCount: 1},
					{Real: "[2001:db8::11]:443", Forward: "gate", Weight: 5, Health: "up", Since: day(11, 1, 2, 4),
						FailureCount: 1, LastCheck: day(11, 1, 29, 59)},
				}},
			{Virtual: "7", ID: "fwm:7", Protocol: "fwm", Scheduler: "rr", CheckType: "off", CheckInterval: 10},
		},
	}
	got := formatState(doc, day(11, 1, 30, 3), time.UTC)
	want := `ldirectord for /etc/ha.d/ldirectord.cf, pid 1234, up 2h13m, config loaded 01:02:03
virtual 10.9.9.9:80        tcp  wrr                checktype negotiate/http every 10s                 quiescent no   fallback 127.0.0.1:80 (inactive)
  real 10.1.0.2:8080       masq  weight 1   up       since 01:02:05             last check 01:30:02 ok
  real 10.1.0.3:8080       masq  weight 1   down     since 01:20:00             last check 01:30:01 failed: GET http://10.1.0.3:8080/: 500 Internal Server Error
  real 10.1.0.4:8080       masq  weight 10  up       since 2025-03-10 23:17:01  failures 1/3  last check 01:30:00 failed: GET http://10.1.0.4:8080/: timeout
virtual [2001:db8::1]:443  tcp  sh persistent 300  checktype 3 (connect, negotiate/https) every 2.5s  quiescent yes  fallback [::1]:443 (active)
  real [2001:db8::10]:443  gate  weight 5   unknown  since 01:02:03             not checked yet
  real [2001:db8::11]:443  gate  weight 5   up       since 01:02:04             last check 01:29:59 ok  not in the IPVS table
virtual 7                  fwm  rr                 checktype off                                      quiescent no
  no real servers
`
	if got != want {
		t.Errorf("formatState:\n%s\nwant:\n%s", got, want)
	}

	// Another phase is said in the header; times are shown in the given zone.
	doc.Phase, doc.Virtuals = "reloading", nil
	east := time.FixedZone("UTC+2", 2*3600)
	want = "ldirectord for /etc/ha.d/ldirectord.cf, pid 1234, reloading, up 3d0h, config loaded 2025-03-11 03:02:03\n"
	if got := formatState(doc, day(13, 23, 17, 59), east); got != want {
		t.Errorf("formatState:\n%s\nwant:\n%s", got, want)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 59*time.Second + 999*time.Millisecond: "59s", time.Minute: "1m0s",
		13*time.Minute + 5*time.Second: "13m5s", time.Hour: "1h0m", 23*time.Hour + 59*time.Minute + 59*time.Second: "23h59m",
		50 * time.Hour: "2d2h",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestSplitShowJSON(t *testing.T) {
	for _, c := range []struct {
		args, rest []string
		json       bool
	}{
		{[]string{"show", "--json"}, []string{"show"}, true},
		{[]string{"web.cf", "show", "--json"}, []string{"web.cf", "show"}, true},
		{[]string{"show", "show", "--json"}, []string{"show", "show"}, true},
		{[]string{"web.cf", "show"}, []string{"web.cf", "show"}, false},
		{[]string{"web.cf", "status", "--json"}, []string{"web.cf", "status", "--json"}, false},
		{[]string{"--json", "show"}, []string{"--json", "show"}, false},
		{[]string{"a", "b", "show", "--json"}, []string{"a", "b", "show", "--json"}, false},
	} {
		rest, json := splitShowJSON(c.args)
		if strings.Join(rest, " ") != strings.Join(c.rest, " ") || json != c.json {
			t.Errorf("splitShowJSON(%q) = %q, %v; want %q, %v", c.args, rest, json, c.rest, c.json)
		}
	}
}

func TestReadState(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ldirectord.web.cf.state")
	now := time.Date(2025, 3, 11, 1, 30, 0, 0, time.UTC)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(pid int, want string) {
		t.Helper()
		_, _, problem := readState(file, pid, now)
		if problem != want {
			t.Errorf("readState: %q, want %q", problem, want)
		}
	}
	check(42, "it has published no state: "+file+" does not exist")
	write(`{"version":1,"pid":42,"written":"2025-03-11T01:29:00Z","virtuals":[]}`)
	check(42, "")
	check(43, "its state file "+file+" is stale: it was written by pid 42")
	write(`{"version":1,"pid":42,"written":"2025-03-11T01:27:59Z","virtuals":[]}`)
	check(42, "its state file "+file+" is stale: last written 2025-03-11 01:27:59, 2m1s ago")
	write(`{"version":2,"pid":42}`)
	check(42, "its state file "+file+" has version 2; this ldirectord reads version 1")
	write(`{"version":1,"pid":`)
	check(42, "its state file "+file+" is not valid: unexpected end of JSON input")
	write(`{"version":1,"pid":"42"}`)
	check(42, "its state file "+file+" is not valid: json: cannot unmarshal string into Go struct field stateDoc.pid of type int")
}

// TestPublisher: the state file follows the supervisor's state, is written only when it changed (or at
// the heartbeat), keeps when each real's health last changed and when the config was loaded, and is
// removed only by the daemon that wrote it.
func TestPublisher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "ldirectord.web.cf.state")
		cfg := writeConfig(t, filepath.Join(dir, "web.cf"), "checkinterval=5\nquiescent=yes\nvirtual=10.9.9.9:80\n\treal=10.1.0.2:80 masq 2\n\treal=10.1.0.3:80 gate\n\tchecktype=negotiate\n\tservice=http\n\tfailurecount=2\n")
		start := time.Now()
		snap := supervisor.Snapshot{Phase: config.StatusStarting, Virtuals: []supervisor.VirtualState{{
			Virtual: "10.9.9.9:80", ID: "tcp:10.9.9.9:80",
			Reals: []supervisor.RealState{{Real: "10.1.0.2:80", Weight: 2}, {Real: "10.1.0.3:80", Weight: 1}},
		}}}
		// The test changes snap and cfg under mu while the publisher runs.
		var mu sync.Mutex
		src := func() (supervisor.Snapshot, *config.Config) {
			mu.Lock()
			defer mu.Unlock()
			return snap, cfg
		}
		p := newPublisher(file, "/etc/ha.d/web.cf", src, time.Now, logrus.New())
		read := func() *stateDoc { t.Helper(); return readStateDoc(t, file) }
		p.publish(true)
		doc := read()
		if doc.Version != 1 || doc.PID != os.Getpid() || doc.Config != "/etc/ha.d/web.cf" || doc.Phase != "starting" ||
			!doc.Started.Equal(start) || !doc.ConfigLoaded.Equal(start) || !doc.Written.Equal(start) {
			t.Errorf("first document: %+v", doc)
		}
		v := doc.Virtuals[0]
		if v.Protocol != "tcp" || v.Scheduler != "wrr" || v.Persistent != nil || v.CheckType != "negotiate" ||
			v.Service != "http" || v.CheckInterval != 5 || !v.Quiescent || v.Fallback != "" || len(v.Reals) != 2 {
			t.Errorf("virtual: %+v", v)
		}
		if r := v.Reals[0]; r.Real != "10.1.0.2:80" || r.Forward != "masq" || r.Weight != 2 || r.Health != "unknown" ||
			!r.Since.Equal(start) || r.FailureCount != 2 || !r.LastCheck.IsZero() {
			t.Errorf("real: %+v", r)
		}

		go p.run(t.Context())
		// Nothing changed: the file is not rewritten until the heartbeat.
		time.Sleep(StateHeartbeat - time.Millisecond)
		synctest.Wait()
		if doc := read(); !doc.Written.Equal(start) {
			t.Errorf("rewritten at %v with nothing changed", doc.Written.Sub(start))
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if doc := read(); !doc.Written.Equal(start.Add(StateHeartbeat)) {
			t.Errorf("heartbeat written %v after start, want %v", doc.Written.Sub(start), StateHeartbeat)
		}

		// A check result: rewritten within a poll interval; since moves with the health only.
		checked := time.Now()
		mu.Lock()
		snap = supervisor.Snapshot{Phase: config.StatusRunning, Virtuals: []supervisor.VirtualState{{
			Virtual: "10.9.9.9:80", ID: "tcp:10.9.9.9:80",
			Reals: []supervisor.RealState{
				{Real: "10.1.0.2:80", Weight: 2, Health: supervisor.Up, LastCheck: checked, InTable: true},
				{Real: "10.1.0.3:80", Weight: 1, Health: supervisor.Down, FailCount: 1, LastCheck: checked,
					LastError: "GET http://10.1.0.3:80/: connection refused", InTable: true},
			},
		}}}
		mu.Unlock()
		time.Sleep(StatePollInterval)
		synctest.Wait()
		doc = read()
		up, down := doc.Virtuals[0].Reals[0], doc.Virtuals[0].Reals[1]
		if doc.Phase != "running" || !doc.Written.Equal(checked.Add(StatePollInterval)) ||
			up.Health != "up" || !up.Since.Equal(doc.Written) || !up.LastCheck.Equal(checked) || !up.InTable ||
			down.Health != "down" || down.Failures != 1 || down.LastError != "GET http://10.1.0.3:80/: connection refused" {
			t.Errorf("after the first checks: %+v", doc)
		}
		upSince := up.Since
		mu.Lock()
		snap.Virtuals[0].Reals[0].LastCheck = checked.Add(5 * time.Second)
		mu.Unlock()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if doc := read(); !doc.Virtuals[0].Reals[0].Since.Equal(upSince) || !doc.ConfigLoaded.Equal(start) {
			t.Errorf("a check that changed nothing moved since or config_loaded: %+v", doc)
		}

		// A reload: config_loaded moves.
		cfg2 := writeConfig(t, filepath.Join(dir, "web.cf"), "virtual=10.9.9.9:80\n\treal=10.1.0.2:80 masq 2\n\treal=10.1.0.3:80 gate\n")
		reloaded := time.Now()
		mu.Lock()
		cfg = cfg2
		mu.Unlock()
		time.Sleep(StatePollInterval)
		synctest.Wait()
		if doc := read(); !doc.ConfigLoaded.Equal(reloaded.Add(StatePollInterval)) || !doc.Virtuals[0].Reals[0].Since.Equal(upSince) {
			t.Errorf("after the reload: config_loaded %v, since %v", doc.ConfigLoaded, doc.Virtuals[0].Reals[0].Since)
		}

		// The file of another daemon is left alone; its own goes.
		data, _ := os.ReadFile(file)
		os.WriteFile(file, []byte(`{"version":1,"pid":1}`), 0o644)
		p.remove()
		if _, err := os.Stat(file); err != nil {
			t.Errorf("removed another daemon's state file: %v", err)
		}
		os.WriteFile(file, data, 0o644)
		p.remove()
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Errorf("state file not removed: %v", err)
		}
	})
}

func writeConfig(t *testing.T, path, text string) *config.Config {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// freePort is a loopback address where nothing listens: a real server that fails its checks.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// clockTimes matches the times `show` prints, with the date when not today.
var clockTimes = regexp.MustCompile(`(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d`)

// TestPublisherVersion: with the supervisor's state version, the state file is rewritten when the version
// moves or the lag moves by a second (or a tenth), not for new last check times alone, which a refresh
// (`show`'s SIGUSR1) or the heartbeat writes.
func TestPublisherVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "ldirectord.web.cf.state")
		cfg := writeConfig(t, filepath.Join(dir, "web.cf"), "virtual=10.9.9.9:80\n\treal=10.1.0.2:80 masq\n")
		start := time.Now()
		var mu sync.Mutex
		var ver uint64
		var lag time.Duration
		real := supervisor.RealState{Real: "10.1.0.2:80", Weight: 1, Health: supervisor.Up, LastCheck: start, InTable: true}
		src := func() (supervisor.Snapshot, *config.Config) {
			mu.Lock()
			defer mu.Unlock()
			return supervisor.Snapshot{Phase: config.StatusRunning, Lag: lag, Virtuals: []supervisor.VirtualState{{
				Virtual: "10.9.9.9:80", ID: "tcp:10.9.9.9:80", Reals: []supervisor.RealState{real}}}}, cfg
		}
		p := newPublisher(file, "/etc/ha.d/web.cf", src, time.Now, logrus.New())
		p.version = func() uint64 { mu.Lock(); defer mu.Unlock(); return ver }
		p.lag = func() time.Duration { mu.Lock(); defer mu.Unlock(); return lag }
		read := func() *stateDoc { t.Helper(); return readStateDoc(t, file) }
		p.publish(true)
		go p.run(t.Context())
		step := func(what string, change func(), rewritten bool) {
			t.Helper()
			mu.Lock()
			real.LastCheck = time.Now()
			change()
			mu.Unlock()
			before := read().Written
			time.Sleep(StatePollInterval)
			synctest.Wait()
			doc := read()
			if got := !doc.Written.Equal(before); got != rewritten {
				t.Errorf("%s: rewritten %v, want %v", what, got, rewritten)
			}
			if rewritten && !doc.Virtuals[0].Reals[0].LastCheck.Equal(time.Now().Add(-StatePollInterval)) {
				t.Errorf("%s: last check %v, want the one of a second ago", what, doc.Virtuals[0].Reals[0].LastCheck)
			}
		}
		step("a new last check", func() {}, false)
		step("a new last check again", func() {}, false)
		step("a state change", func() { ver++ }, true)
		step("the lag starts", func() { lag = 3 * time.Second }, true)
		step("the lag moves by half a second", func() { lag = 3500 * time.Millisecond }, false)
		step("the lag moves by a second", func() { lag = 4 * time.Second }, true)
		step("the lag moves by a tenth of 20 s", func() { lag = 20 * time.Second }, true)
		step("the lag moves by 1.5 s of 20 s", func() { lag = 21500 * time.Millisecond }, false)
		step("the lag ends", func() { lag = 0 }, true)

		// show's refresh: written at once, with the last check as it is.
		mu.Lock()
		real.LastCheck = time.Now()
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		p.requestRefresh()
		synctest.Wait()
		if doc := read(); !doc.Written.Equal(time.Now()) || !doc.Virtuals[0].Reals[0].LastCheck.Equal(time.Now().Add(-100*time.Millisecond)) {
			t.Errorf("refresh: written %v ago, last check %v", time.Since(doc.Written), doc.Virtuals[0].Reals[0].LastCheck)
		}
		// The heartbeat writes the last checks too.
		written := read().Written
		mu.Lock()
		real.LastCheck = time.Now()
		mu.Unlock()
		time.Sleep(StateHeartbeat + StatePollInterval)
		synctest.Wait()
		if doc := read(); doc.Written.Sub(written) < StateHeartbeat || doc.Written.Sub(written) > StateHeartbeat+StatePollInterval ||
			!doc.Virtuals[0].Reals[0].LastCheck.Equal(written) {
			t.Errorf("heartbeat: written %v after the refresh, last check %v", doc.Written.Sub(written), doc.Virtuals[0].Reals[0].LastCheck)
		}
	})
}

// TestShow runs `show` against a --dry-run daemon with one healthy and one failing real: before it
// starts, while it runs (also with the config file broken), as JSON, and after it stops.
func TestShow(t *testing.T) {
	e := newEnv(t)
	up, down := backend(t, "127.0.0.1:0"), freePort(t)
	cfg := e.write("web.cf", fmt.Sprintf("logfile=%q\ncheckinterval=1\nvirtual=10.9.9.9:80\n\treal=%s masq\n\treal=%s masq 2\n\tchecktype=connect\n\tfailurecount=3\n",
		filepath.Join(e.dir, "web.log"), up, down))
	stateFile := filepath.Join(e.dir, "ldirectord.web.cf.state")

	out, errOut, code := e.run(cfg, "show")
	if code != 3 || out != "ldirectord is stopped for "+cfg+"\n" || errOut != "" {
		t.Errorf("show when stopped: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := e.run("--dry-run", cfg, "start"); code != 0 {
		t.Fatalf("start: exit %d, %s", code, errOut)
	}
	pid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf"))

	// The state is there as soon as start returns; the first checks follow within a second or two.
	w := max(len(up), len(down))
	want := strings.Join([]string{
		fmt.Sprintf("ldirectord for %s, pid %d, up X, config loaded T", cfg, pid),
		"virtual 10.9.9.9:80  tcp  wrr  checktype connect every 1s  quiescent no",
		fmt.Sprintf("  real %-*s  masq  weight 1  up    since T  last check T ok", w, up),
		fmt.Sprintf("  real %-*s  masq  weight 2  down  since T  last check T failed: connect %s: connection refused", w, down, down),
	}, "\n") + "\n"
	upTime := regexp.MustCompile(`, up \d+[smhd]\w*,`)
	normal := func(s string) string {
		return clockTimes.ReplaceAllString(upTime.ReplaceAllString(s, ", up X,"), "T")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, errOut, code = e.run(cfg, "show")
		if code == 0 && normal(out) == want && errOut == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 0 || normal(out) != want || errOut != "" {
		t.Fatalf("show: exit %d, stderr %q, stdout:\n%s\nwant (times as T):\n%s", code, errOut, out, want)
	}
	if lines := logLines(t, filepath.Join(e.dir, "web.log")); contains(lines, "Invoking ldirectord invoked as: ldirectord "+cfg+" show ") {
		t.Errorf("show logged its invocation")
	}

	// show asks the daemon for its state as of now: the last check times move every second
	// (checkinterval 1) although the state does not, and each show prints them fresh: a file
	// written after show was started, with a last check at most a check interval (and some
	// slack for a loaded machine) before that. Without the refresh the file is rewritten only
	// when the state changes or every StateHeartbeat.
	lastCheck := func() time.Time {
		t.Helper()
		asked := time.Now()
		out, errOut, code := e.run(cfg, "show", "--json")
		var doc stateDoc
		if err := json.Unmarshal([]byte(out), &doc); code != 0 || errOut != "" || err != nil {
			t.Fatalf("show --json: exit %d, stderr %q, %v:\n%s", code, errOut, err, out)
		}
		if age := doc.Written.Sub(doc.Virtuals[0].Reals[0].LastCheck); doc.Written.Before(asked) || age > 1500*time.Millisecond {
			t.Errorf("show --json: written %v before show was started, the last check %v older than that, at checkinterval 1:\n%s",
				asked.Sub(doc.Written), age, out)
		}
		return doc.Virtuals[0].Reals[0].LastCheck
	}
	first := lastCheck()
	time.Sleep(2500 * time.Millisecond)
	if next := lastCheck(); !next.After(first) {
		t.Errorf("show --json 2.5 s later: last check %v, was %v", next, first)
	}

	// --json is the state file.
	out, errOut, code = e.run(cfg, "show", "--json")
	var doc stateDoc
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || errOut != "" || err != nil {
		t.Fatalf("show --json: exit %d, stderr %q, %v:\n%s", code, errOut, err, out)
	}
	if doc.Version != 1 || doc.PID != pid || doc.Config != cfg || doc.Phase != "running" || len(doc.Virtuals) != 1 ||
		len(doc.Virtuals[0].Reals) != 2 || doc.Virtuals[0].Reals[0].Health != "up" || doc.Virtuals[0].Reals[1].Health != "down" ||
		doc.Virtuals[0].Reals[1].LastError != "connect "+down+": connection refused" {
		t.Errorf("show --json:\n%s", out)
	}

	// show reads neither the config nor the log: a broken file on disk does not matter.
	os.WriteFile(cfg, []byte("checkinterval=0\n"), 0o644)
	if out, errOut, code := e.run(cfg, "show"); code != 0 || errOut != "" || !strings.HasPrefix(out, fmt.Sprintf("ldirectord for %s, pid %d, up ", cfg, pid)) {
		t.Errorf("show with a broken config: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}

	if _, errOut, code := e.run(cfg, "stop"); code != 0 {
		t.Fatalf("stop: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("state file left after stop: %v", err)
	}
	if out, errOut, code := e.run(cfg, "show", "--json"); code != 3 || out != "ldirectord is stopped for "+cfg+"\n" || errOut != "" {
		t.Errorf("show --json after stop: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestShowWithoutState: a daemon that runs but publishes no state, or whose state file is another's,
// makes show say so and exit 1; a stale pid file is reported as status does.
func TestShowWithoutState(t *testing.T) {
	e := newEnv(t)
	e.extra = []string{standInEnv + "=stubborn"} // runs, never publishes
	cfg := goodConfig(e, "web.cf", "127.0.0.2:80")
	stateFile := filepath.Join(e.dir, "ldirectord.web.cf.state")
	if _, errOut, code := e.run("--dry-run", cfg, "start"); code != 0 {
		t.Fatalf("start: exit %d, %s", code, errOut)
	}
	pid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf"))
	defer syscall.Kill(pid, syscall.SIGKILL)

	out, errOut, code := e.run(cfg, "show")
	want := fmt.Sprintf("ldirectord for %s is running with pid: %d, but it has published no state: %s does not exist\n", cfg, pid, stateFile)
	if code != 1 || out != "" || errOut != want {
		t.Errorf("show without a state file: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	os.WriteFile(stateFile, []byte(fmt.Sprintf(`{"version":1,"pid":%d,"written":%q,"virtuals":[]}`, pid+1,
		time.Now().Format(time.RFC3339Nano))), 0o644)
	out, errOut, code = e.run(cfg, "show")
	want = fmt.Sprintf("ldirectord for %s is running with pid: %d, but its state file %s is stale: it was written by pid %d\n", cfg, pid, stateFile, pid+1)
	if code != 1 || out != "" || errOut != want {
		t.Errorf("show with another daemon's state file: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}

	syscall.Kill(pid, syscall.SIGKILL)
	for daemon.IsOurs(pid, "web.cf") {
		time.Sleep(10 * time.Millisecond)
	}
	out, errOut, code = e.run(cfg, "show")
	if code != 1 || out != "ldirectord is stopped for "+cfg+"\n" ||
		errOut != "ldirectord stale pid file "+daemonPidFile(e, "web.cf")+" for "+cfg+"\n" {
		t.Errorf("show with a stale pid file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestFormatStateLagAndNoVerdict: the daemon-wide lag in the header, and a real the director could not
// check (a local failure) with why and since when.
func TestFormatStateLagAndNoVerdict(t *testing.T) {
	day := func(d, h, m, s int) time.Time { return time.Date(2025, 3, d, h, m, s, 0, time.UTC) }
	doc := &stateDoc{
		Version: 1, PID: 1234, Config: "/etc/ha.d/ldirectord.cf", Phase: "running", Lag: 3.5,
		Started: day(11, 1, 0, 0), ConfigLoaded: day(11, 1, 0, 0), Written: day(11, 1, 30, 2),
		Virtuals: []virtualState{
			{Virtual: "10.9.9.9:80", ID: "tcp:10.9.9.9:80", Protocol: "tcp", Scheduler: "wrr",
				CheckType: "negotiate", Service: "http", CheckInterval: 1,
				Reals: []realState{
					{Real: "10.1.0.2:8080", Forward: "masq", Weight: 1, Health: "up", Since: day(11, 1, 0, 1),
						FailureCount: 1, LastCheck: day(11, 1, 29, 50), InTable: true,
						NoVerdict: "too many open files", NoVerdictSince: day(11, 1, 29, 51)},
					{Real: "10.1.0.3:8080", Forward: "masq", Weight: 1, Health: "up", Since: day(11, 1, 0, 1),
						FailureCount: 1, LastCheck: day(11, 1, 30, 1), InTable: true},
				}},
		},
	}
	want := `ldirectord for /etc/ha.d/ldirectord.cf, pid 1234, up 30m3s, config loaded 01:00:00, checks running 3.5 s behind checkinterval
virtual 10.9.9.9:80  tcp  wrr  checktype negotiate/http every 1s  quiescent no
  real 10.1.0.2:8080  masq  weight 1  up  since 01:00:01  last check 01:29:50 ok  no fresh verdict since 01:29:51: too many open files
  real 10.1.0.3:8080  masq  weight 1  up  since 01:00:01  last check 01:30:01 ok
`
	if got := formatState(doc, day(11, 1, 30, 3), time.UTC); got != want {
		t.Errorf("formatState:\n%s\nwant:\n%s", got, want)
	}
}

// readStateDoc reads and decodes the state file file.
func readStateDoc(t *testing.T, file string) *stateDoc {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := new(stateDoc)
	if err := json.Unmarshal(data, doc); err != nil {
		t.Fatal(err)
	}
	return doc
}
