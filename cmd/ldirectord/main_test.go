package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
	"github.com/ldirectord-go/ldirectord/supervisor"
)

// The tests run this test binary as ldirectord (argv[0] "ldirectord"): TestMain turns it into the
// command when mainEnv is set. The daemon that `start` re-executes inherits the environment, so it is
// the command too.
const (
	mainEnv = "LDIRECTORD_TEST_MAIN"
	// standInEnv=stubborn replaces the supervisor with a stand-in that ignores the stop (tests only).
	standInEnv     = "LDIRECTORD_TEST_STANDIN"
	stopTimeoutEnv = "LDIRECTORD_TEST_STOP_TIMEOUT"
)

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "" {
		os.Exit(m.Run())
	}
	if os.Getenv(standInEnv) == "stubborn" {
		newRunner = func(*config.Config, supervisor.Options) (runner, error) { return stubborn{}, nil }
	}
	a := newApp(os.Args, os.Stdout, os.Stderr)
	if d, err := time.ParseDuration(os.Getenv(stopTimeoutEnv)); err == nil {
		a.stopTimeout = d
	}
	code := a.run()
	a.flushLog()
	os.Exit(code)
}

// stubborn is a daemon that never finishes its clean stop.
type stubborn struct{}

func (stubborn) Run(ctx context.Context) error { select {} }
func (stubborn) RequestReload()                {}

// env is one test's sandbox: pid-file directory, default log file, config files.
type env struct {
	t     *testing.T
	dir   string
	log   string
	extra []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, log: filepath.Join(dir, "ldirectord.log")}
	t.Cleanup(e.killAll)
	return e
}

// killAll kills every daemon whose pid file is in the sandbox (tests that failed half-way).
func (e *env) killAll() {
	ents, _ := os.ReadDir(e.dir)
	for _, ent := range ents {
		if strings.HasSuffix(ent.Name(), ".pid") {
			// Ours: its pid file is in the sandbox and it runs this test binary as "ldirectord" (a config
			// given by a relative name does not put the sandbox in its command line).
			pid, _, _ := daemon.ReadPidFile(filepath.Join(e.dir, ent.Name()))
			if args := daemon.Cmdline(pid); pid > 0 && len(args) > 0 && (args[0] == "ldirectord" ||
				strings.Contains(strings.Join(args, " "), e.dir)) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

func (e *env) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "LDIRECTORD_") {
			out = append(out, kv)
		}
	}
	return append(out, mainEnv+"=1", daemon.PidDirEnv+"="+e.dir, LogFileEnv+"="+e.log)
}

// cmd is the command `ldirectord args...` in the sandbox.
func (e *env) cmd(args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	return &exec.Cmd{Path: exe, Args: append([]string{"ldirectord"}, args...), Env: append(e.environ(), e.extra...),
		Dir: e.dir}
}

// run runs `ldirectord args...` to completion.
func (e *env) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	c := e.cmd(args...)
	var o, er bytes.Buffer
	c.Stdout, c.Stderr = &o, &er
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("ldirectord %v: %v", args, err)
	}
	return o.String(), er.String(), code
}

func (e *env) write(name, text string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// logLines returns the messages of the log file lines written by any process, prefixes removed.
func logLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		i := strings.Index(l, "] ")
		if !strings.HasPrefix(l, "[") || i < 0 {
			t.Fatalf("log line %q is not [time|cfg|pid] msg", l)
		}
		out = append(out, l[i+2:])
	}
	return out
}

// waitLog waits until the log has a line with the given text (the daemon is another process).
func waitLog(t *testing.T, path, want string) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		lines := logLines(t, path)
		for _, l := range lines {
			if l == want {
				return lines
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("log never had %q; it has:\n%s", want, strings.Join(lines, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// backend is a loopback TCP server, a healthy real server for checktype=connect.
func backend(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func goodConfig(e *env, name, real string) string {
	return e.write(name, fmt.Sprintf(`logfile="%s"
checkinterval=1
virtual=10.9.9.9:80
	real=%s masq
	checktype=connect
	checktimeout=2
`, filepath.Join(e.dir, name+".log"), real))
}

func TestVersion(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{{"-v"}, {"--version"}, {"-dv"}, {"-v", "start"}} {
		out, errOut, code := e.run(args...)
		if out != versionText || errOut != "" || code != 0 {
			t.Errorf("ldirectord %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if !strings.HasPrefix(versionText, "Linux Director v1.186-ha\n1999-2006 Jacob Rief, Horms and others\n") ||
		!strings.HasSuffix(versionText, "under certain conditions. See the GNU General Public Licence for details.\n") {
		t.Errorf("version text changed: %q", versionText)
	}
}

func TestUsage(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		args       []string
		stderr     string
		code       int
		wantUsage  bool
		wantStdout string
	}{
		{nil, "", 255, true, ""},
		{[]string{"frobnicate"}, "", 255, true, ""},
		{[]string{"x.cf", "frobnicate"}, "", 255, true, ""},
		{[]string{"--foo", "start"}, "Unknown option: foo\n", 255, true, ""},
		{[]string{"-dx", "start"}, "Unknown option: x\n", 255, true, ""},
		{[]string{"--foo", "-y", "start"}, "Unknown option: foo\nUnknown option: y\n", 255, true, ""},
		{[]string{"--debug=3", "start"}, "Option debug does not take an argument\n", 255, true, ""},
		// require_order: options after the first argument are arguments ("-d" is taken as the command).
		{[]string{"x.cf", "-d", "start"}, "", 255, true, ""},
		{[]string{"-h"}, "", 0, true, ""},
		{[]string{"-?"}, "", 0, true, ""},
		{[]string{"--help"}, "", 0, true, ""},
	} {
		out, errOut, code := e.run(c.args...)
		if code != c.code || errOut != c.stderr || (c.wantUsage && out != usageText) {
			t.Errorf("ldirectord %q: exit %d, stderr %q, stdout %.40q; want exit %d, stderr %q, usage", c.args, code, errOut, out, c.code, c.stderr)
		}
	}
	if !strings.HasPrefix(usageText, "Usage:\n    ldirectord [-d|--debug] [--] [configfile] start | stop | restart |\n    try-restart | reload | force-reload | status\n") {
		t.Errorf("usage text does not start as ldirectord's")
	}
}

func TestCheckConfig(t *testing.T) {
	e := newEnv(t)
	good := goodConfig(e, "good.cf", "127.0.0.2:80")
	bad := e.write("bad.cf", "checkinterval=0\nquiescent=maybe\nvirtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n")
	warn := e.write("warn.cf", "checkcount=3\nvirtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n")

	if out, errOut, code := e.run("-t", good); code != 0 || out != "" || errOut != "" {
		t.Errorf("-t good: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code := e.run("-t", bad)
	if want := bad + ":1: invalid check interval value\n" + bad + ":2: quiescent must be 'yes' or 'no'\n"; code != 2 || out != "" || errOut != want {
		t.Errorf("-t bad: exit %d, stdout %q, stderr %q; want exit 2, stderr %q", code, out, errOut, want)
	}
	out, errOut, code = e.run("-t", warn)
	if want := warn + ":1: warning: checkcount option is deprecated and slated for removal.  please see 'failurecount'\n"; code != 0 || out != "" || errOut != want {
		t.Errorf("-t warn: exit %d, stdout %q, stderr %q; want exit 0, stderr %q", code, out, errOut, want)
	}
	// What only the checkers can judge: a receive pattern Go cannot run, a protocol checked by connect only.
	regex := e.write("regex.cf", "virtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n\tservice=http\n\treceive=\"(ok)\\1\"\n")
	out, errOut, code = e.run("-t", regex)
	if want := regex + ":4: invalid receive string \"(ok)\\1\": backreference \\1 is not supported (Go regular expressions have no backreferences)\n"; code != 2 || out != "" || errOut != want {
		t.Errorf("-t regex: exit %d, stdout %q, stderr %q; want exit 2, stderr %q", code, out, errOut, want)
	}
	if _, errOut, code := e.run("-d", regex, "start"); code != 2 || !strings.Contains(errOut, "invalid receive string") {
		t.Errorf("start with an untranslatable receive: exit %d, stderr %q; want exit 2 and the error", code, errOut)
	}
	// -t opens no file: a log file that cannot be written is a warning (start refuses it, as ldirectord
	// 4.12 does); -d logs to stderr, so then it does not matter at all.
	nolog := e.write("nolog.cf", "logfile=\"/nonexistent-dir/ld.log\"\nvirtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n")
	if _, errOut, code := e.run("-t", nolog); code != 0 || errOut != nolog+":1: warning: unable to open logfile: /nonexistent-dir/ld.log: No such file or directory\n" {
		t.Errorf("-t with an unwritable log file: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := e.run("-d", "-t", nolog); code != 0 || errOut != "" {
		t.Errorf("-d -t with an unwritable log file: exit %d, stderr %q; want 0", code, errOut)
	}
	oracle := e.write("oracle.cf", "virtual=10.9.9.9:1521\n\treal=127.0.0.2:1521 masq\n")
	out, errOut, code = e.run("-t", oracle)
	if want := oracle + ":1: warning: service=oracle is checked with a TCP connect only: its protocol check is not implemented\n"; code != 0 || out != "" || errOut != want {
		t.Errorf("-t oracle: exit %d, stdout %q, stderr %q; want exit 0, stderr %q", code, out, errOut, want)
	}
	if _, errOut, code := e.run("-t", "nonexistent.cf"); code != 1 || errOut != "Config file nonexistent.cf not found\n" {
		t.Errorf("-t nonexistent: exit %d, stderr %q", code, errOut)
	}
	// The config is looked up as ldirectord does: relative names in the working directory last.
	if _, errOut, code := e.run("-t", "good.cf"); code != 0 || errOut != "" {
		t.Errorf("-t good.cf (relative): exit %d, stderr %q", code, errOut)
	}
	// -t logs nothing, writes no pid file and creates no file, not even logfile=.
	ents, _ := os.ReadDir(e.dir)
	for _, ent := range ents {
		if strings.HasSuffix(ent.Name(), ".pid") || strings.HasSuffix(ent.Name(), ".log") {
			t.Errorf("-t left %s behind", ent.Name())
		}
	}
	if _, errOut, code := e.run(nolog, "start"); code != 2 || errOut != nolog+":1: unable to open logfile: /nonexistent-dir/ld.log: No such file or directory\n" {
		t.Errorf("start with an unwritable log file: exit %d, stderr %q", code, errOut)
	}
}

func TestDumpConfig(t *testing.T) {
	e := newEnv(t)
	good := goodConfig(e, "good.cf", "127.0.0.2:80")
	out, errOut, code := e.run("--dump-config", good)
	if code != 0 || errOut != "" {
		t.Fatalf("--dump-config: exit %d, stderr %q", code, errOut)
	}
	orig, err := config.Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(config.Dump(orig)); out != want {
		t.Errorf("--dump-config printed\n%s\nwant\n%s", out, want)
	}
	// What it prints is a config that means the same.
	again, err := config.Parse(good, []byte(out))
	if err != nil {
		t.Fatalf("dumped config does not parse: %v", err)
	}
	if len(again.Virtuals) != 1 || len(again.Virtuals[0].Reals) != 1 || again.Virtuals[0].CheckType != config.CheckConnect {
		t.Errorf("dumped config reads back as %+v", again.Virtuals)
	}
	bad := e.write("bad.cf", "checkinterval=0\n")
	if out, errOut, code := e.run("--dump-config", bad); code != 2 || out != "" || errOut != bad+":1: invalid check interval value\n" {
		t.Errorf("--dump-config bad: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestStatusStopped(t *testing.T) {
	e := newEnv(t)
	cfg := goodConfig(e, "web.cf", "127.0.0.2:80")
	out, errOut, code := e.run(cfg, "status")
	if code != 3 || out != "ldirectord is stopped for "+cfg+"\n" || errOut != "" {
		t.Errorf("status: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := []string{
		"Invoking ldirectord invoked as: ldirectord " + cfg + " status ",
		"Exiting with exit_status 3: Exiting from ldirectord status",
	}
	if got := logLines(t, filepath.Join(e.dir, "web.cf.log")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// reload on a stopped daemon: exit 1.
	if _, errOut, code := e.run(cfg, "reload"); code != 1 || errOut != "ldirectord is stopped for "+cfg+"\n" {
		t.Errorf("reload when stopped: exit %d, stderr %q", code, errOut)
	}
	if got := logLines(t, filepath.Join(e.dir, "web.cf.log")); !contains(got, "ldirectord is stopped for "+cfg) ||
		got[len(got)-1] != "Exiting with exit_status 1: Exiting from ldirectord reload" {
		t.Errorf("log after reload:\n%s", strings.Join(got, "\n"))
	}
	// stop and try-restart on a stopped daemon: exit 0, nothing started.
	for _, c := range []string{"stop", "try-restart"} {
		if out, errOut, code := e.run(cfg, c); code != 0 || out != "" || errOut != "" {
			t.Errorf("%s when stopped: exit %d, stdout %q, stderr %q", c, code, out, errOut)
		}
	}
	if _, err := os.Stat(daemonPidFile(e, "web.cf")); !os.IsNotExist(err) {
		t.Errorf("a pid file appeared: %v", err)
	}
}

func daemonPidFile(e *env, cfgName string) string {
	return filepath.Join(e.dir, "ldirectord."+cfgName+".pid")
}

// TestStatusStale: a pid file naming a process that is not our daemon (here a sleep) is stale. The OCF
// agent greps stderr for "ldirectord stale pid file" and expects exit 1.
func TestStatusStale(t *testing.T) {
	e := newEnv(t)
	cfg := goodConfig(e, "web.cf", "127.0.0.2:80")
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	pf := daemonPidFile(e, "web.cf")
	os.WriteFile(pf, []byte(strconv.Itoa(sleep.Process.Pid)+"\n"), 0o644)
	out, errOut, code := e.run(cfg, "status")
	if code != 1 || out != "ldirectord is stopped for "+cfg+"\n" ||
		errOut != "ldirectord stale pid file "+pf+" for "+cfg+"\n" {
		t.Errorf("status: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// stop leaves the other process alone.
	if _, _, code := e.run(cfg, "stop"); code != 0 {
		t.Errorf("stop with a stale pid file: exit %d", code)
	}
	if err := sleep.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("stop signalled the unrelated process behind a stale pid file")
	}
}

func TestConfigNotFound(t *testing.T) {
	e := newEnv(t)
	out, errOut, code := e.run("nonexistent.cf", "start")
	if code != 1 || out != "" || errOut != "Config file nonexistent.cf not found\n" {
		t.Errorf("start: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := "Config file nonexistent.cf not found\nExiting with exit_status 1: Initialisation Error"
	if got := strings.Join(logLines(t, e.log), "\n"); got != want {
		t.Errorf("log (the default log file):\n%s\nwant:\n%s", got, want)
	}
}

func TestStartConfigError(t *testing.T) {
	e := newEnv(t)
	bad := e.write("bad.cf", "checkinterval=0\nvirtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n\tquiescent=maybe\n")
	out, errOut, code := e.run(bad, "start")
	want := bad + ":1: invalid check interval value\n" + bad + ":4: quiescent must be 'yes' or 'no'\n"
	if code != 2 || out != "" || errOut != want {
		t.Errorf("start: exit %d, stdout %q, stderr %q; want exit 2, stderr %q", code, out, errOut, want)
	}
	lines := logLines(t, e.log)
	if len(lines) != 3 ||
		!strings.HasPrefix(lines[0], "Error [") || !strings.HasSuffix(lines[0], "] reading file "+bad+" at line 1: invalid check interval value") ||
		!strings.HasSuffix(lines[1], "] reading file "+bad+" at line 4: quiescent must be 'yes' or 'no'") ||
		lines[2] != "Exiting with exit_status 2: config_error: Configuration Error" {
		t.Errorf("log:\n%s", strings.Join(lines, "\n"))
	}
	if _, err := os.Stat(daemonPidFile(e, "bad.cf")); !os.IsNotExist(err) {
		t.Errorf("pid file after a failed start: %v", err)
	}
	for _, c := range []string{"reload", "restart", "try-restart", "force-reload"} {
		if _, _, code := e.run(bad, c); code != 2 {
			t.Errorf("%s with a broken config: exit %d, want 2", c, code)
		}
	}
}

// TestLifecycle is start, status, reload, start again, restart and stop of a --dry-run daemon with the
// real supervisor and a healthy loopback real server.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	real := backend(t, "127.0.0.1:0")
	cfg := goodConfig(e, "web.cf", real)
	logf := filepath.Join(e.dir, "web.cf.log")

	out, errOut, code := e.run("--dry-run", cfg, "start")
	if code != 0 || out != "" || errOut != "" {
		t.Fatalf("start: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// start returns once the daemon runs: the pid file is there and complete, status says running.
	pid, exists, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf"))
	if !exists || pid <= 0 {
		t.Fatalf("no pid file after start")
	}
	if data, _ := os.ReadFile(daemonPidFile(e, "web.cf")); string(data) != strconv.Itoa(pid)+"\n" {
		t.Errorf("pid file %q", data)
	}
	if got, want := daemon.Cmdline(pid), []string{"ldirectord", "--dry-run", cfg, "start"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("daemon argv %q, want %q (pgrep -f \"ldirectord %s start\")", got, want, cfg)
	}
	out, errOut, code = e.run(cfg, "status")
	if code != 0 || out != "" || errOut != fmt.Sprintf("ldirectord for %s is running with pid: %d\n", cfg, pid) {
		t.Errorf("status: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	lines := waitLog(t, logf, "Added real server: "+real+" (10.9.9.9:80) (Weight set to 1)")
	for _, want := range []string{
		"Invoking ldirectord invoked as: ldirectord " + cfg + " start ",
		"Starting Linux Director v1.186-ha as daemon",
		"dry-run: ipvsadm -A -t 10.9.9.9:80 -s wrr",
		"Added virtual server: 10.9.9.9:80",
		"dry-run: ipvsadm -a -t 10.9.9.9:80 -r " + real + " -m -w 1",
		"ldirectord for " + cfg + " is running with pid: " + strconv.Itoa(pid),
		"Exiting from ldirectord status",
	} {
		if !contains(lines, want) {
			t.Errorf("log lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}

	// A second start does nothing.
	if _, _, code := e.run(cfg, "start"); code != 0 {
		t.Errorf("second start: exit %d", code)
	}
	if p, _, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf")); p != pid {
		t.Errorf("second start replaced the daemon (%d -> %d)", pid, p)
	}

	// reload: HUP.
	if _, errOut, code := e.run(cfg, "reload"); code != 0 || errOut != "" {
		t.Errorf("reload: exit %d, stderr %q", code, errOut)
	}
	waitLog(t, logf, "Reloading Linux Director Daemon config on signal")

	// USR1 and USR2 do not kill it (they kill the Perl daemon without cleanup).
	syscall.Kill(pid, syscall.SIGUSR1)
	syscall.Kill(pid, syscall.SIGUSR2)

	// restart: the old daemon has exited when the new one starts; the new one's argv says start.
	if _, errOut, code := e.run("--dry-run", cfg, "restart"); code != 0 || errOut != "" {
		t.Fatalf("restart: exit %d, stderr %q", code, errOut)
	}
	pid2, _, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf"))
	if pid2 == pid || pid2 <= 0 {
		t.Fatalf("restart: pid %d -> %d", pid, pid2)
	}
	if daemon.IsOurs(pid, "web.cf") {
		t.Errorf("old daemon %d still running after restart", pid)
	}
	if got := daemon.Cmdline(pid2); fmt.Sprint(got) != fmt.Sprint([]string{"ldirectord", "--dry-run", cfg, "start"}) {
		t.Errorf("restarted daemon argv %q", got)
	}
	lines = logLines(t, logf)
	if !contains(lines, "Linux Director Daemon terminated on signal: TERM") {
		t.Errorf("the first daemon did not stop cleanly (USR1/USR2 killed it?):\n%s", strings.Join(lines, "\n"))
	}

	// stop returns once the daemon has exited and removed its pid file.
	waitLog(t, logf, "Added real server: "+real+" (10.9.9.9:80) (Weight set to 1)")
	if out, errOut, code := e.run(cfg, "stop"); code != 0 || out != "" || errOut != "" {
		t.Fatalf("stop: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if daemon.IsOurs(pid2, "web.cf") {
		t.Errorf("stop returned while the daemon still runs")
	}
	if _, err := os.Stat(daemonPidFile(e, "web.cf")); !os.IsNotExist(err) {
		t.Errorf("pid file left after stop: %v", err)
	}
	lines = logLines(t, logf)
	tail := lines[len(lines)-4:]
	want := []string{
		"dry-run: ipvsadm -D -t 10.9.9.9:80",
		"Purged virtual server (stop): 10.9.9.9:80",
		"Linux Director Daemon terminated on signal: TERM",
		"Invoking ldirectord invoked as: ldirectord " + cfg + " stop ",
	}
	// The CLI's Invoking line comes first; the daemon's stop lines follow it.
	if !contains(lines, want[3]) || fmt.Sprint(tail[1:]) != fmt.Sprint(want[:3]) && fmt.Sprint(tail[:3]) != fmt.Sprint(want[:3]) {
		t.Errorf("log ends:\n%s\nwant the clean stop:\n%s", strings.Join(tail, "\n"), strings.Join(want, "\n"))
	}
	if !contains(lines, "Purged real server (stop): "+real+" (10.9.9.9:80)") {
		t.Errorf("no cleanstop of the real:\n%s", strings.Join(lines, "\n"))
	}
	if _, _, code := e.run(cfg, "status"); code != 3 {
		t.Errorf("status after stop: exit %d, want 3", code)
	}
}

// TestStopAndStatusWithBrokenConfig: the file on disk broke after the daemon started; stop and status
// still work (ldirectord exits 2 and leaves the daemon running).
func TestStopAndStatusWithBrokenConfig(t *testing.T) {
	e := newEnv(t)
	cfg := goodConfig(e, "web.cf", backend(t, "127.0.0.1:0"))
	if _, errOut, code := e.run("--dry-run", cfg, "start"); code != 0 {
		t.Fatalf("start: exit %d, %s", code, errOut)
	}
	pid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf"))
	os.WriteFile(cfg, []byte("checkinterval=0\n"), 0o644)
	if _, errOut, code := e.run(cfg, "status"); code != 0 || errOut != fmt.Sprintf("ldirectord for %s is running with pid: %d\n", cfg, pid) {
		t.Errorf("status: exit %d, stderr %q", code, errOut)
	}
	// restart refuses the broken file before stopping anything.
	if _, errOut, code := e.run("--dry-run", cfg, "restart"); code != 2 || errOut != cfg+":1: invalid check interval value\n" {
		t.Errorf("restart: exit %d, stderr %q", code, errOut)
	}
	if !daemon.IsOurs(pid, "web.cf") {
		t.Fatalf("restart with a broken config stopped the daemon")
	}
	// reload refuses the broken file up front and says why.
	if _, errOut, code := e.run(cfg, "reload"); code != 2 || errOut != cfg+":1: invalid check interval value\n" {
		t.Errorf("reload: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := e.run(cfg, "stop"); code != 0 || errOut != "" {
		t.Errorf("stop: exit %d, stderr %q", code, errOut)
	}
	if daemon.IsOurs(pid, "web.cf") {
		t.Errorf("daemon still running after stop")
	}
}

// TestStopTimeout: a daemon that does not finish its clean stop makes stop report it and exit 1 after
// the bound, instead of waiting forever (restart) or not at all (stop) as ldirectord does.
func TestStopTimeout(t *testing.T) {
	e := newEnv(t)
	e.extra = []string{standInEnv + "=stubborn", stopTimeoutEnv + "=500ms"}
	cfg := goodConfig(e, "web.cf", "127.0.0.2:80")
	if _, errOut, code := e.run("--dry-run", cfg, "start"); code != 0 {
		t.Fatalf("start: exit %d, %s", code, errOut)
	}
	pid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf"))
	defer syscall.Kill(pid, syscall.SIGKILL)
	_, errOut, code := e.run(cfg, "stop")
	want := fmt.Sprintf("ldirectord for %s did not stop: ldirectord pid %d has not exited 500ms after SIGTERM\n", cfg, pid)
	if code != 1 || errOut != want {
		t.Errorf("stop: exit %d, stderr %q; want exit 1, %q", code, errOut, want)
	}
}

// TestForeground runs `-d start` and a supervised=yes config in the foreground, as systemd Type=simple
// or Type=notify does: log on stderr (-d) or stdout (supervised), READY=1 and STOPPING=1 on
// NOTIFY_SOCKET, HUP reloads, USR1 is ignored, TERM (-d) or INT (supervised) stops cleanly with exit 0.
func TestForeground(t *testing.T) {
	for _, mode := range []string{"debug", "supervised"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			real := backend(t, "127.0.0.1:0")
			text := fmt.Sprintf("checkinterval=1\nvirtual=10.9.9.9:80\n\treal=%s masq\n\tchecktype=connect\n", real)
			args := []string{"-d", "--dry-run"}
			if mode == "supervised" {
				text = "supervised=yes\n" + text
				args = []string{"--dry-run"}
			}
			cfg := e.write("fg.cf", text)
			sock := filepath.Join(e.dir, "notify")
			notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer notify.Close()
			e.extra = []string{"NOTIFY_SOCKET=" + sock}
			c := e.cmd(append(args, cfg, "start")...)
			var stdout, stderr syncBuf
			c.Stdout, c.Stderr = &stdout, &stderr
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			defer c.Process.Kill()
			readNotify := func(want string) {
				t.Helper()
				notify.SetReadDeadline(time.Now().Add(15 * time.Second))
				buf := make([]byte, 64)
				n, err := notify.Read(buf)
				if err != nil || string(buf[:n]) != want {
					t.Fatalf("notify socket: %q, %v; want %q", buf[:n], err, want)
				}
			}
			readNotify("READY=1")
			logOut := &stderr
			if mode == "supervised" {
				logOut = &stdout
			}
			added := "Added real server: " + real + " (10.9.9.9:80) (Weight set to 1)"
			waitOut(t, logOut, added)
			if p, _, _ := daemon.ReadPidFile(daemonPidFile(e, "fg.cf")); p != c.Process.Pid {
				t.Errorf("foreground daemon pid file holds %d, want %d", p, c.Process.Pid)
			}
			c.Process.Signal(syscall.SIGUSR1)
			c.Process.Signal(syscall.SIGHUP)
			waitOut(t, logOut, "Reloading Linux Director Daemon config on signal")
			// RELOADING=1 (with MONOTONIC_USEC) and READY=1 around the reload: TestSystemdNotify.
			for range 2 {
				notify.SetReadDeadline(time.Now().Add(15 * time.Second))
				notify.Read(make([]byte, 64))
			}
			sig, sigName := syscall.SIGTERM, "TERM"
			if mode == "supervised" {
				sig, sigName = syscall.SIGINT, "INT"
			}
			c.Process.Signal(sig)
			readNotify("STOPPING=1")
			if err := c.Wait(); err != nil {
				t.Errorf("exit: %v\nstderr:\n%s", err, stderr.String())
			}
			out := logOut.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if mode == "debug" {
				for _, want := range []string{
					"Invoking ldirectord invoked as: ldirectord " + cfg + " start ",
					fmt.Sprintf("Starting Linux Director v1.186-ha with pid: %d", c.Process.Pid),
					added,
					"Linux Director Daemon terminated on signal: TERM",
					"Exiting with exit_status 0: Linux Director Daemon terminated on signal: TERM",
				} {
					if !contains(lines, want) {
						t.Errorf("stderr lacks %q:\n%s", want, out)
					}
				}
				if stdout.String() != "" {
					t.Errorf("stdout %q", stdout.String())
				}
			} else {
				for _, l := range lines {
					if len(l) < 27 || l[0] != '[' || l[25] != ']' {
						t.Errorf("supervised line %q is not [%%a %%b %%e %%H:%%M:%%S %%Y] msg", l)
					}
				}
				if !strings.HasSuffix(out, "] Linux Director Daemon terminated on signal: "+sigName+"\n") {
					t.Errorf("stdout ends %q", out[max(0, len(out)-200):])
				}
				if stderr.String() != "" {
					t.Errorf("stderr %q", stderr.String())
				}
			}
			if _, err := os.Stat(daemonPidFile(e, "fg.cf")); !os.IsNotExist(err) {
				t.Errorf("pid file left behind: %v", err)
			}
		})
	}
}

// TestExecute: execute= starts, reports and stops another instance with its own pid file.
func TestExecute(t *testing.T) {
	e := newEnv(t)
	t.Setenv(daemon.PidDirEnv, e.dir) // for daemon.Lookup in this process
	real := backend(t, "127.0.0.1:0")
	other := goodConfig(e, "other.cf", real)
	main := e.write("main.cf", fmt.Sprintf("logfile=%q\nexecute=%q\ncheckinterval=1\nvirtual=10.9.9.9:80\n\treal=%s masq\n\tchecktype=connect\n",
		filepath.Join(e.dir, "main.log"), other, real))
	if _, errOut, code := e.run("--dry-run", main, "start"); code != 0 {
		t.Fatalf("start: exit %d, %s", code, errOut)
	}
	waitLog(t, filepath.Join(e.dir, "other.cf.log"), "Starting Linux Director v1.186-ha as daemon")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, st, _ := daemon.Lookup("other.cf"); st == daemon.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the execute= instance never ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	otherPid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "other.cf"))
	if got := daemon.Cmdline(otherPid); fmt.Sprint(got[1:]) != fmt.Sprint([]string{"--dry-run", other, "start"}) {
		t.Errorf("instance argv %q", got)
	}
	_, errOut, code := e.run(main, "status")
	mainPid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "main.cf"))
	want := fmt.Sprintf("ldirectord for %s is running with pid: %d\nldirectord for %s is running with pid: %d\n", main, mainPid, other, otherPid)
	if code != 0 || errOut != want {
		t.Errorf("status: exit %d, stderr %q, want %q", code, errOut, want)
	}
	if _, _, code := e.run(main, "stop"); code != 0 {
		t.Errorf("stop: exit %d", code)
	}
	if daemon.IsOurs(otherPid, "other.cf") || daemon.IsOurs(mainPid, "main.cf") {
		t.Errorf("instances still running after stop")
	}
}

// syncBuf is a bytes.Buffer that a process's output pipe writes while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitOut(t *testing.T, b *syncBuf, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never had %q:\n%s", want, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSystemdUnit keeps examples/ldirectord-forking.service consistent with the command: the PIDFile is
// the pid file of the config ExecStart names, and the commands are start, stop and reload. (The notify
// unit examples/ldirectord.service: packaging.TestUnitHardening.)
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("../../examples/ldirectord-forking.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	section := ""
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "[") {
			section = l
		}
		if k, v, ok := strings.Cut(l, "="); ok && section == "[Service]" && !strings.HasPrefix(l, "#") {
			keys[k] = v
		}
	}
	argsOf := func(k, cmd string) []string {
		f := strings.Fields(keys[k])
		if len(f) < 2 || f[0] != "/usr/sbin/ldirectord" || f[len(f)-1] != cmd {
			t.Errorf("%s=%q, want /usr/sbin/ldirectord [cfg] %s", k, keys[k], cmd)
			return nil
		}
		return f[1:]
	}
	start := argsOf("ExecStart", "start")
	argsOf("ExecStop", "stop")
	argsOf("ExecReload", "reload")
	if keys["Type"] != "forking" {
		t.Errorf("Type=%s, want forking", keys["Type"])
	}
	cfgArg, _, ok := target(start)
	if !ok {
		t.Fatalf("ExecStart arguments %q", start)
	}
	if want := "/run/ldirectord." + daemon.CfgName(cfgArg) + ".pid"; keys["PIDFile"] != want {
		t.Errorf("PIDFile=%s, want %s", keys["PIDFile"], want)
	}
	if keys["KillMode"] == "none" {
		t.Errorf("KillMode=none is not needed: stop waits for the daemon")
	}
}

// TestRelativeConfigReload: a config found relative to the working directory is still found by the
// daemon (which works in /) when it reloads (W1).
func TestRelativeConfigReload(t *testing.T) {
	e := newEnv(t)
	a, b := backend(t, "127.0.0.1:0"), backend(t, "127.0.0.1:0")
	goodConfig(e, "rel.cf", a)
	logf := filepath.Join(e.dir, "rel.cf.log")
	if _, errOut, code := e.run("--dry-run", "rel.cf", "start"); code != 0 { // e.cmd runs in e.dir
		t.Fatalf("start: exit %d, %s", code, errOut)
	}
	pid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "rel.cf"))
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != "/" {
		t.Errorf("daemon cwd %q, want /", cwd)
	}
	if got := daemon.Cmdline(pid); fmt.Sprint(got) != fmt.Sprint([]string{"ldirectord", "--dry-run", "rel.cf", "start"}) {
		t.Errorf("daemon argv %q", got)
	}
	waitLog(t, logf, "Added real server: "+a+" (10.9.9.9:80) (Weight set to 1)")
	// show names the file the daemon loaded, made absolute in the caller's directory (not "/rel.cf").
	abs := filepath.Join(e.dir, "rel.cf")
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, errOut, code := e.run("rel.cf", "show", "--json")
		var doc struct{ Config string }
		json.Unmarshal([]byte(out), &doc)
		if code == 0 && doc.Config == abs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("show --json: exit %d, config %q (want %q), stderr %q", code, doc.Config, abs, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.write("rel.cf", fmt.Sprintf("logfile=%q\ncheckinterval=1\nvirtual=10.9.9.9:80\n\treal=%s masq\n\treal=%s masq\n\tchecktype=connect\n",
		logf, a, b))
	if _, errOut, code := e.run("rel.cf", "reload"); code != 0 {
		t.Fatalf("reload: exit %d, %s", code, errOut)
	}
	waitLog(t, logf, "Added real server: "+b+" (10.9.9.9:80) (Weight set to 1)")
	if _, _, code := e.run("rel.cf", "stop"); code != 0 {
		t.Errorf("stop: exit %d", code)
	}
}
