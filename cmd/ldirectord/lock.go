package main

import (
	"errors"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
)

// lockDaemon takes the config's daemon lock for the life of this process, so that one config has one
// daemon however many `start`s race past the pid-file check. When another daemon holds it, this one
// does nothing and exits 0, as `start` does when the pid file names a running daemon; ok is false and
// code is the exit code then.
func (a *app) lockDaemon(foreground bool) (lock *daemon.Lock, code int, ok bool) {
	lock, err := daemon.AcquireLock(a.cfgName)
	switch {
	case errors.Is(err, daemon.ErrLocked):
		if foreground {
			pid, _, _ := daemon.Lookup(a.cfgName)
			a.log.Infof("ldirectord for %s is already running with pid: %d", a.config, pid)
		}
		a.child.AlreadyRunning()
		return nil, a.exit(0, "Exiting from ldirectord start"), false
	case err != nil:
		a.child.Fail(err)
		return nil, a.initError(err.Error()), false
	}
	return lock, 0, true
}

// startLocked is start for a process that serves in the foreground (-d, supervised=yes): it holds the
// lock while it serves. A daemonised start takes the lock in the daemon (see run).
func (a *app) startLocked(cfg *config.Config) int {
	if !a.opts.debug && !cfg.Supervised {
		return a.start(cfg)
	}
	lock, code, ok := a.lockDaemon(true)
	if !ok {
		return code
	}
	defer lock.Release()
	return a.start(cfg)
}

// serveLocked is serveChild holding the lock.
func (a *app) serveLocked(cfg *config.Config, cfgErr error) int {
	if cfgErr != nil {
		return a.serveChild(cfg, cfgErr)
	}
	lock, code, ok := a.lockDaemon(false)
	if !ok {
		return code
	}
	defer lock.Release()
	return a.serveChild(cfg, cfgErr)
}
