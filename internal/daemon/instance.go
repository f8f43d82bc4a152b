package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// State is what a pid file says about an instance.
type State int

// Instance states, as `ldirectord status` reports them.
const (
	Stopped State = iota // no pid file: exit 3
	Stale                // a pid file whose process is gone or is not our daemon: exit 1
	Running              // exit 0
)

func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Stale:
		return "stale"
	case Running:
		return "running"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Lookup reads the pid file of CFGNAME and tells whether the instance it names is running. pid is the
// number in the file (0 when there is none or it is not a number).
func Lookup(cfgName string) (pid int, st State, err error) {
	pid, exists, err := ReadPidFile(PidFile(cfgName))
	switch {
	case err != nil:
		return 0, Stale, err
	case !exists:
		return 0, Stopped, nil
	case pid > 0 && IsOurs(pid, cfgName):
		return pid, Running, nil
	}
	return pid, Stale, nil
}

// Cmdline returns the argv of process pid from /proc/<pid>/cmdline; nil when the process is gone (or is
// a zombie, whose cmdline is empty).
func Cmdline(pid int) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(string(bytes.TrimSuffix(data, []byte{0})), "\x00")
}

// IsOurs tells whether process pid is an ldirectord daemon for CFGNAME (see MatchCmdline). A pid
// recycled by another program is not ours, so it is never signalled. A process running this very
// executable counts as an ldirectord whatever it is called (a binary installed under another name).
func IsOurs(pid int, cfgName string) bool {
	argv := Cmdline(pid)
	if len(argv) > 0 && !containsWord(argv) && sameExecutable(pid) {
		argv = append([]string{"ldirectord"}, argv[1:]...)
	}
	return MatchCmdline(argv, cfgName)
}

func sameExecutable(pid int) bool {
	a, err1 := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe")
	b, err2 := os.Stat("/proc/self/exe")
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// MatchCmdline tells whether argv is the command line of an ldirectord daemon for CFGNAME: it has a
// `start` argument whose preceding non-option argument is the config (basename CFGNAME) after a word
// containing `ldirectord`, or, for CFGNAME `ldirectord` (no config argument), is the ldirectord program
// itself. That is `ldirectord [opts] <cfg> start`, ours or the Perl one (`/usr/bin/perl -w
// /usr/sbin/ldirectord <cfg> start`), as `pgrep -f` in the OCF agent expects it; a recycled pid now
// used by `tail -f /var/log/ldirectord.log` or `vi ldirectord.cf` is not. (Perl only checks that the
// command line contains `ldirectord`.)
func MatchCmdline(argv []string, cfgName string) bool {
	for i := len(argv) - 1; i >= 1; i-- {
		if argv[i] != "start" {
			continue
		}
		j := i - 1
		for j > 0 && strings.HasPrefix(argv[j], "-") {
			j--
		}
		prev := argv[j]
		if j > 0 && CfgName(prev) == cfgName && containsWord(argv[:j]) {
			return true
		}
		if cfgName == "ldirectord" && strings.Contains(filepath.Base(prev), "ldirectord") && isProgram(argv, j) {
			return true
		}
		return false
	}
	return false
}

func containsWord(args []string) bool {
	for _, a := range args {
		if strings.Contains(a, "ldirectord") {
			return true
		}
	}
	return false
}

// isProgram tells whether argv[j] is the program: argv[0], or the script after an interpreter and its
// options (perl -w /usr/sbin/ldirectord).
func isProgram(argv []string, j int) bool {
	if j == 0 {
		return true
	}
	if !strings.HasPrefix(filepath.Base(argv[0]), "perl") {
		return false
	}
	for _, a := range argv[1:j] {
		if !strings.HasPrefix(a, "-") {
			return false
		}
	}
	return true
}

// ErrNotOurs is returned by Terminate when the pid is no longer an ldirectord daemon for the config.
var ErrNotOurs = errors.New("process is not an ldirectord daemon for this config")

// PollInterval is how often Terminate checks whether the daemon has exited.
const PollInterval = 50 * time.Millisecond

// Terminate sends SIGTERM to the daemon pid (after checking that it is ours) and waits until it has
// exited, at most timeout. It returns nil once the process is gone, ErrNotOurs when pid was not ours to
// begin with, and an error saying so when the daemon is still running after timeout.
func Terminate(pid int, cfgName string, timeout time.Duration) error {
	if !IsOurs(pid, cfgName) {
		return ErrNotOurs
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("kill -TERM %d: %w", pid, err)
	}
	return WaitExit(pid, cfgName, timeout)
}

// WaitExit waits until pid is no longer an ldirectord daemon for CFGNAME, at most timeout.
func WaitExit(pid int, cfgName string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for IsOurs(pid, cfgName) {
		if time.Now().After(deadline) {
			return fmt.Errorf("ldirectord pid %d has not exited %v after SIGTERM", pid, timeout)
		}
		time.Sleep(PollInterval)
	}
	return nil
}
