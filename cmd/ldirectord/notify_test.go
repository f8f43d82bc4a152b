package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
	sock := filepath.Join(e.dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
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
	waitLog(t, logf, "Linux Director Daemon terminated on signal: TERM")
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
	sock := filepath.Join(e.dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
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
