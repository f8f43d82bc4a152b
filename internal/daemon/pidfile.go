// Package daemon holds ldirectord's process plumbing: the pid file, finding a running instance, stopping
// it, daemonising by re-exec, and systemd readiness notification.
package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PidDirEnv names the environment variable that overrides the pid-file directory (default /var/run).
// Tests use it; so can a user who runs ldirectord without root.
const PidDirEnv = "LDIRECTORD_PIDDIR"

// DefaultPidDir is ldirectord's pid-file directory.
const DefaultPidDir = "/var/run"

// PidDir is the pid-file directory: $LDIRECTORD_PIDDIR, else /var/run.
func PidDir() string {
	if d := os.Getenv(PidDirEnv); d != "" {
		return d
	}
	return DefaultPidDir
}

// CfgName is ldirectord's CFGNAME for the config argument as given on the command line: its last path
// component, or `ldirectord` when no config argument was given.
func CfgName(configArg string) string {
	if configArg == "" {
		return "ldirectord"
	}
	if i := strings.LastIndexByte(configArg, '/'); i >= 0 {
		if configArg[i+1:] == "" {
			// Perl's /([^\/]+)$/ does not match "dir/", leaving CFGNAME at its default.
			return "ldirectord"
		}
		return configArg[i+1:]
	}
	return configArg
}

// PidFile is the pid-file path for CFGNAME: <PidDir>/ldirectord.<CFGNAME>.pid.
func PidFile(cfgName string) string {
	return filepath.Join(PidDir(), "ldirectord."+cfgName+".pid")
}

// WritePidFile writes "<pid>\n" to path atomically: a temporary file in the same directory is written,
// synced and renamed over path, so a reader sees either the old content or the whole new one, never an
// empty or partial file (the Perl ldirectord leaves the file empty for a moment while it forks).
func WritePidFile(path string, pid int) error {
	if err := WriteFileAtomic(path, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("Can not open %s: %w", path, err)
	}
	return nil
}

// ReadPidFile reads the first line of a pid file. exists is false when there is no file; pid is 0 when
// the file exists but does not start with a positive number.
func ReadPidFile(path string) (pid int, exists bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, err
	}
	first, _, _ := bytes.Cut(data, []byte("\n"))
	pid, perr := strconv.Atoi(strings.TrimSpace(string(first)))
	if perr != nil || pid <= 0 {
		return 0, true, nil
	}
	return pid, true, nil
}

// RemovePidFile removes path if it still names pid, so that a daemon that is shutting down never removes
// the pid file of the instance that replaced it.
func RemovePidFile(path string, pid int) error {
	got, exists, err := ReadPidFile(path)
	if err != nil || !exists || got != pid {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
