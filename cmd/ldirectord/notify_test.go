package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ldirectord-go/ldirectord/internal/daemon"
)

// TestSystemdNotify runs `ldirectord start` as systemd's Type=notify unit does (examples/ldirectord.service):
// with $NOTIFY_SOCKET it stays in the foreground as the process systemd started, and tells systemd
// READY=1 once the first checks have programmed the table, RELOADING=1 and READY=1 around a reload (SIGHUP,
// the unit's ExecReload; also one that fails), and STOPPING=1 on SIGTERM, in that order and nothing else.
func TestSystemdNotify(t *testing.T) {
	e := newEnv(t)
	conn, sock := notifySocket(t, e.dir)
	// A real server whose check takes a second: READY=1 must wait for it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second)
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	real := srv.Listener.Addr().String()
	logf := filepath.Join(e.dir, "web.cf.log")
	cfg := e.write("web.cf", fmt.Sprintf(`logfile="%s"
checkinterval=5
virtual=10.9.9.9:80
	real=%s masq
	service=http
	request="/"
	receive="ok"
	negotiatetimeout=10
`, logf, real))

	e.extra = []string{daemon.NotifySocketEnv + "=" + sock}
	c := systemdStarted(t, e.cmd("--dry-run", cfg, "start"))
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	defer c.Process.Kill()

	next := func(what string) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v (log:\n%s)", what, err, strings.Join(logLines(t, logf), "\n"))
		}
		return string(buf[:n])
	}

	if got := next("READY=1"); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	// Ready means running: the first check is done and the table programmed from it.
	if lines := logLines(t, logf); !contains(lines, "Added real server: "+real+" (10.9.9.9:80) (Weight set to 1)") {
		t.Errorf("READY=1 before the real server was added; log:\n%s", strings.Join(lines, "\n"))
	}
	// The process systemd started is the daemon: no fork, its pid in the pid file.
	if pid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf")); pid != c.Process.Pid {
		t.Errorf("pid file has %d, the started process is %d", pid, c.Process.Pid)
	}

	if err := c.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	got := next("RELOADING=1")
	m := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=(\d+)$`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("notification after SIGHUP %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	var ts unix.Timespec
	if usec, _ := strconv.ParseInt(m[1], 10, 64); usec <= 0 {
		t.Errorf("MONOTONIC_USEC=%s", m[1])
	} else if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil && usec > ts.Nano()/1000 {
		t.Errorf("MONOTONIC_USEC=%d is later than now (%d): not CLOCK_MONOTONIC", usec, ts.Nano()/1000)
	}
	if got := next("READY=1 after the reload"); got != "READY=1" {
		t.Fatalf("notification after the reload %q, want READY=1", got)
	}
	waitLog(t, logf, "Reloading Linux Director Daemon config on signal")

	// A reload that fails (a config with an error) ends too: READY=1, on the running config.
	e.write("web.cf", "bogus=1\n")
	if err := c.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := next("RELOADING=1 of the failing reload"); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("notification after the second SIGHUP %q, want RELOADING=1", got)
	}
	if got := next("READY=1 after the failed reload"); got != "READY=1" {
		t.Fatalf("notification after the failed reload %q, want READY=1", got)
	}
	waitLog(t, logf, "Configuration file '"+cfg+"' not reloaded: keeping the running configuration")

	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := next("STOPPING=1"); got != "STOPPING=1" {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", got)
	}
	exitsQuietly(t, exited, conn)
	waitLog(t, logf, "Linux Director Daemon terminated on signal: TERM")
}

// notifySocket listens as systemd's notification socket does, in dir, until the test ends.
func notifySocket(t *testing.T, dir string) (*net.UnixConn, string) {
	t.Helper()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, sock
}

// exitsQuietly waits for the daemon to exit, cleanly, after STOPPING=1, and expects no notification after
// it on conn.
func exitsQuietly(t *testing.T, exited <-chan error, conn *net.UnixConn) {
	t.Helper()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not exit after SIGTERM")
	}
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 4096)); err == nil {
		t.Errorf("a notification after STOPPING=1 (%d bytes)", n)
	}
}

// systemdStarted makes c run as systemd starts a service's main process: with $SYSTEMD_EXEC_PID set to its
// own pid (a shell that execs it, as argv[0] "ldirectord").
func systemdStarted(t *testing.T, c *exec.Cmd) *exec.Cmd {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	c.Args = append([]string{"bash", "-c", `SYSTEMD_EXEC_PID=$$ exec -a ldirectord "$0" "$@"`, c.Path}, c.Args[1:]...)
	c.Path = bash
	return c
}

// TestSystemdNotifyInherited: a $NOTIFY_SOCKET that `ldirectord start` inherits from another service's
// process (systemd did not start it: $SYSTEMD_EXEC_PID is not its pid) does not keep it in the foreground,
// and the daemon sends nothing to that socket.
func TestSystemdNotifyInherited(t *testing.T) {
	e := newEnv(t)
	conn, sock := notifySocket(t, e.dir)
	real := backend(t, "127.0.0.1:0")
	cfg := goodConfig(e, "web.cf", real)
	e.extra = []string{daemon.NotifySocketEnv + "=" + sock, "SYSTEMD_EXEC_PID=1"}
	c := e.cmd("--dry-run", cfg, "start")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("start: %v", err)
		}
	case <-time.After(30 * time.Second):
		c.Process.Kill()
		t.Fatal("start stayed in the foreground")
	}
	waitLog(t, filepath.Join(e.dir, "web.cf.log"), "Added real server: "+real+" (10.9.9.9:80) (Weight set to 1)")
	if _, errOut, code := e.run(cfg, "stop"); code != 0 {
		t.Fatalf("stop: exit %d %s", code, errOut)
	}
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 4096)); err == nil {
		t.Errorf("the daemon wrote %d bytes to an inherited NOTIFY_SOCKET", n)
	}
}

// TestSystemdWatchdog runs `ldirectord start` as systemd runs a unit with WatchdogSec= ($WATCHDOG_USEC and
// $WATCHDOG_PID, here 600 ms): the daemon sends WATCHDOG=1 every half interval while it runs, and nothing
// after STOPPING=1.
func TestSystemdWatchdog(t *testing.T) {
	e := newEnv(t)
	conn, sock := notifySocket(t, e.dir)
	real := backend(t, "127.0.0.1:0")
	cfg := goodConfig(e, "web.cf", real)
	e.extra = []string{daemon.NotifySocketEnv + "=" + sock, "WATCHDOG_USEC=600000"}
	c := systemdStarted(t, e.cmd("--dry-run", cfg, "start"))
	c.Args[2] = `WATCHDOG_PID=$$ ` + c.Args[2]
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	defer c.Process.Kill()

	// READY=1 waits for the first check; the feeding starts at once.
	var got []string
	start := time.Now()
	for feeds := 0; feeds < 4 || !contains(got, "READY=1"); {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("after %v, %q: %v", time.Since(start), got, err)
		}
		got = append(got, string(buf[:n]))
		if string(buf[:n]) == "WATCHDOG=1" {
			feeds++
		}
	}
	for _, s := range got {
		if s != "READY=1" && s != "WATCHDOG=1" {
			t.Errorf("notification %q, want READY=1 and WATCHDOG=1 only (all: %q)", s, got)
		}
	}

	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("STOPPING=1: %v", err)
		}
		if s := string(buf[:n]); s == "STOPPING=1" {
			break
		} else if s != "WATCHDOG=1" {
			t.Errorf("notification %q before STOPPING=1", s)
		}
	}
	exitsQuietly(t, exited, conn)
}

// aliveRunner is a runner whose Alive answers with err, or waits for its context when stuck.
type aliveRunner struct {
	mu    sync.Mutex
	err   error
	stuck bool
}

func (r *aliveRunner) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (r *aliveRunner) RequestReload()                {}
func (r *aliveRunner) set(err error, stuck bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err, r.stuck = err, stuck
}
func (r *aliveRunner) Alive(ctx context.Context) error {
	r.mu.Lock()
	err, stuck := r.err, r.stuck
	r.mu.Unlock()
	if stuck {
		<-ctx.Done()
		return errors.New("the supervisor took no message for 50ms")
	}
	return err
}

// TestWatchdogFeeding: the watchdog is fed while the runner is alive, not while its Alive fails or does
// not answer within half the interval (logged once, as an error, until it is alive again, which is logged
// too), and it stops with its context.
func TestWatchdogFeeding(t *testing.T) {
	conn, sock := notifySocket(t, t.TempDir())
	t.Setenv(daemon.NotifySocketEnv, sock)
	read := func(limit time.Duration) (string, error) {
		conn.SetReadDeadline(time.Now().Add(limit))
		buf := make([]byte, 100)
		n, err := conn.Read(buf)
		return string(buf[:n]), err
	}
	var (
		mu    sync.Mutex
		lines []string
	)
	logf := func(level string) func(string, ...any) {
		return func(f string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, level+": "+fmt.Sprintf(f, args...))
		}
	}
	logged := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
	const iv = 100 * time.Millisecond
	r := &aliveRunner{}
	var n notifier
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.watchdog(ctx, r, iv, logf("error"), logf("info")); close(done) }()
	defer func() { cancel(); <-done }()

	for range 3 {
		if s, err := read(5 * time.Second); s != "WATCHDOG=1" || err != nil {
			t.Fatalf("alive: %q, %v; want WATCHDOG=1", s, err)
		}
	}
	for _, c := range []struct {
		err   error
		stuck bool
		want  string
	}{
		{errors.New("the check scheduler has not run for 11s"), false, "error: systemd watchdog not fed: the check scheduler has not run for 11s"},
		{nil, true, "error: systemd watchdog not fed: the supervisor took no message for 50ms"},
	} {
		r.set(c.err, c.stuck)
		deadline := time.Now().Add(5 * time.Second)
		for !contains(logged(), c.want) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		for { // the feeds of before the change
			if _, err := read(0); err != nil {
				break
			}
		}
		if s, err := read(5 * iv); err == nil {
			t.Errorf("%s: notification %q", c.want, s)
		}
		if got := logged(); len(got) != 1 || got[0] != c.want {
			t.Errorf("logged %q, want %q once", got, c.want)
		}
		r.set(nil, false)
		if s, err := read(5 * time.Second); s != "WATCHDOG=1" || err != nil {
			t.Fatalf("alive again: %q, %v; want WATCHDOG=1", s, err)
		}
		if got, want := logged(), []string{c.want, "info: systemd watchdog: the supervisor answers again"}; !slices.Equal(got, want) {
			t.Errorf("logged %q, want %q", got, want)
		}
		mu.Lock()
		lines = nil
		mu.Unlock()
	}
	cancel()
	<-done
	for {
		if _, err := read(0); err != nil {
			break
		}
	}
	if s, err := read(3 * iv); err == nil {
		t.Errorf("stopped: notification %q", s)
	}
}
