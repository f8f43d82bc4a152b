package checker

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// External is checktype=external: it runs checkcommand with the arguments VIP VPORT RIP RPORT, without a
// shell; exit status 0 means healthy. VIP is the virtual's address (IPv6 in brackets) or its firewall mark,
// VPORT is 0 for a firewall-mark virtual, RIP and RPORT are the real's configured address and port (not
// the check port), exactly as ldirectord passes them.
//
// The command runs in its own process group with cwd "/", the daemon's environment and stdin from
// /dev/null. When ctx ends first, the whole process group is killed (SIGKILL), so helpers the script
// started do not pile up. Up to 512 bytes of the end of its combined stdout and stderr go into the error.
//
// A checkcommand that names an existing file is run as is; otherwise it is split on spaces, so
// `checkcommand = "/usr/local/bin/check --tls"` runs check with --tls before the four arguments (in
// ldirectord such a command can never run).
var External Checker = Func(func(ctx context.Context, t *Target) error { return runExternal(ctx, t, false) })

// ExternalPerl is checktype=external-perl: like External, but the script runs as `perl <checkcommand>
// VIP VPORT RIP RPORT` in its own process instead of inside the daemon. `exit 0` and falling off the end
// are healthy, `die` (exit status 255) and any other status are not, as in ldirectord.
var ExternalPerl Checker = Func(func(ctx context.Context, t *Target) error { return runExternal(ctx, t, true) })

// perlPath is the interpreter external-perl uses.
var perlPath = "perl"

const maxExternalOutput = 512

func runExternal(ctx context.Context, t *Target, perl bool) error {
	argv := commandArgv(t.Command)
	if len(argv) == 0 {
		return errorf("external check: no checkcommand")
	}
	if perl {
		argv = append([]string{perlPath}, argv...)
	}
	argv = append(argv, t.VIP, strconv.Itoa(int(t.VPort)), t.RIP, strconv.Itoa(int(t.RPort)))
	name := strings.Join(argv, " ")
	if err := ctx.Err(); err != nil {
		return failf(err, "%s", name)
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &tailBuffer{max: maxExternalOutput}
	cmd.Stdout = out
	cmd.Stderr = out
	// Stop waiting for the output pipe shortly after the kill even if something escaped the group and
	// holds it open.
	cmd.WaitDelay = 100 * time.Millisecond
	if err := cmd.Start(); err != nil {
		return failf(err, "%s", name)
	}
	pgid := cmd.Process.Pid
	killed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		close(killed)
	})
	err := cmd.Wait()
	if !stop() {
		<-killed
		// The leader may have exited before the kill; its children are killed by then either way.
		return errorf("%s: %s, killed its process group%s", name, describe(ctx.Err()), out.suffix())
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0 but left a process behind that still holds its output open: healthy, as in
		// ldirectord; the output is simply no longer read.
		err = nil
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return errorf("%s: killed by signal %s%s", name, ws.Signal(), out.suffix())
			}
			return errorf("%s: exit status %d%s", name, ee.ExitCode(), out.suffix())
		}
		return failf(err, "%s", name)
	}
	return nil
}

// commandArgv splits checkcommand: an existing file is one word, anything else splits on white space.
func commandArgv(cmd string) []string {
	cmd = strings.TrimSpace(cmd)
	if cmd == "" {
		return nil
	}
	if _, err := os.Stat(cmd); err == nil {
		return []string{cmd}
	}
	return strings.Fields(cmd)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu        sync.Mutex
	max       int
	b         []byte
	truncated bool
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	if len(p) >= w.max {
		w.truncated = w.truncated || len(p) > w.max || len(w.b) > 0
		w.b = append(w.b[:0], p[len(p)-w.max:]...)
		return n, nil
	}
	if over := len(w.b) + len(p) - w.max; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
		w.truncated = true
	}
	w.b = append(w.b, p...)
	return n, nil
}

// suffix is ": <output>" for the error text, on one line, or "" when there was no output.
func (w *tailBuffer) suffix() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.TrimSpace(string(w.b))
	if s == "" {
		return ""
	}
	s = strings.Join(strings.Fields(s), " ")
	if w.truncated {
		s = "..." + s
	}
	return ": " + strconvQuoteIfNeeded(s)
}

func strconvQuoteIfNeeded(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return strconv.Quote(s)
		}
	}
	return s
}
