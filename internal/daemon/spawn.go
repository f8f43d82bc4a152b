package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ChildEnv names the environment variable that tells a re-executed process that it is the daemon, and
// on which file descriptor it reports to the process that started it.
const ChildEnv = "LDIRECTORD_DAEMON_FD"

// SpawnOptions say how to start the daemon.
type SpawnOptions struct {
	// Args is the daemon's argv, argv[0] included: `<argv[0] as invoked> [options] [<cfg>] start`, so that
	// `pgrep -f "ldirectord <cfg> start"` and IsOurs find it.
	Args []string
	// Env is the daemon's environment (nil: this process's); ChildEnv is added.
	Env []string
	// Dir is the daemon's initial working directory ("" = ours), so that it finds a relative config as
	// we did. The daemon then changes to "/" itself.
	Dir string
	// Timeout bounds the wait for the daemon's report (0 = 60s). When it passes the daemon is killed.
	Timeout time.Duration
}

// Spawn starts the daemon by re-executing this program (/proc/self/exe) in a new session with stdin,
// stdout and stderr on /dev/null, then waits until the daemon reports that it is running (Child.Ready),
// that another daemon for the config runs (Child.AlreadyRunning: the process has exited then) or why it
// could not start (Child.Fail), or exits. It returns the daemon's process on success; the
// caller may Release it. The error is a *ReportedError with the daemon's own message when it reported
// one.
func Spawn(o SpawnOptions) (*os.Process, error) {
	if len(o.Args) == 0 {
		return nil, errors.New("daemon: no argv")
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        o.Args,
		Env:         append(withoutEnv(env, ChildEnv), ChildEnv+"=3"),
		Dir:         o.Dir,
		ExtraFiles:  []*os.File{w}, // fd 3
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
		// nil Stdin, Stdout, Stderr: /dev/null.
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("ld_daemon: Could not start the daemon: %w", err)
	}
	w.Close()

	r.SetReadDeadline(time.Now().Add(timeout))
	report, rerr := io.ReadAll(io.LimitReader(r, 64<<10))
	msg := strings.TrimSpace(string(report))
	switch {
	case msg == "READY":
		return cmd.Process, nil
	case msg == "RUNNING":
		// Another daemon for the config won the race: nothing to start, as when the pid file names it.
		cmd.Wait()
		return cmd.Process, nil
	case errors.Is(rerr, os.ErrDeadlineExceeded):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("the daemon did not report that it was running within %v; killed it", timeout)
	case strings.HasPrefix(msg, "ERROR "):
		cmd.Wait()
		return nil, &ReportedError{Msg: strings.TrimPrefix(msg, "ERROR ")}
	}
	// The daemon closed the pipe without a report: it died.
	err = cmd.Wait()
	if err == nil {
		err = errors.New("exit status 0")
	}
	return nil, fmt.Errorf("the daemon exited before it was running: %v", err)
}

// ReportedError is an error the daemon reported itself (Child.Fail), and has therefore already logged.
type ReportedError struct{ Msg string }

func (e *ReportedError) Error() string { return e.Msg }

func withoutEnv(env []string, name string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// Child is the daemon's end of Spawn's report pipe. A nil *Child (a process that Spawn did not start)
// ignores every call.
type Child struct {
	w *bufio.Writer
	f *os.File
}

// ChildFromEnv returns the report pipe when this process was started by Spawn, else nil. It removes
// ChildEnv from the environment, so that processes the daemon starts (execute= instances) do not take
// themselves for a daemon child.
func ChildFromEnv() *Child {
	v, ok := os.LookupEnv(ChildEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(ChildEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	f := os.NewFile(uintptr(fd), "daemon-report")
	if f == nil {
		return nil
	}
	syscall.CloseOnExec(fd)
	return &Child{w: bufio.NewWriter(f), f: f}
}

// Ready reports that the daemon is running; the starting process then exits 0.
func (c *Child) Ready() { c.report("READY") }

// AlreadyRunning reports that another daemon for the config holds its lock, so this one exits; the
// starting process then exits 0, as `start` does when the pid file names a running daemon.
func (c *Child) AlreadyRunning() { c.report("RUNNING") }

// Fail reports why the daemon could not start; the starting process prints it and exits non-zero.
func (c *Child) Fail(err error) { c.report("ERROR " + err.Error()) }

func (c *Child) report(s string) {
	if c == nil || c.f == nil {
		return
	}
	c.w.WriteString(s + "\n")
	c.w.Flush()
	c.f.Close()
	c.f = nil
}
