package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked is returned by AcquireLock when another process holds the lock: a daemon for the config is
// already running.
var ErrLocked = errors.New("another ldirectord daemon holds the lock for this config")

// LockFile is the lock-file path for CFGNAME: <PidDir>/ldirectord.<CFGNAME>.lock, beside the pid file.
// (The pid file itself cannot carry the lock: it is replaced by rename on every write.)
func LockFile(cfgName string) string {
	return filepath.Join(PidDir(), "ldirectord."+cfgName+".lock")
}

// Lock is the daemon's exclusive lock on its config, held for the process's life. The kernel drops it when
// the process exits, however it exits, so a crashed daemon never blocks the next start.
type Lock struct{ f *os.File }

// AcquireLock takes the lock of CFGNAME without waiting (flock LOCK_EX|LOCK_NB on LockFile). It returns
// ErrLocked when a running daemon holds it. The lock file is never removed: removing it would let two
// processes lock two different files of the same name.
func AcquireLock(cfgName string) (*Lock, error) {
	path := LockFile(cfgName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("Can not open %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("Can not lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock. A nil *Lock does nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor drops the flock
	l.f = nil
	return err
}
