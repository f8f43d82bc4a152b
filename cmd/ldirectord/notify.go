package main

import (
	"context"
	"sync"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
	"github.com/ldirectord-go/ldirectord/supervisor"
)

// readyPoll is how often notifier.ready looks whether the supervisor has finished starting.
const readyPoll = 50 * time.Millisecond

// notifier tells systemd (Type=notify, $NOTIFY_SOCKET) the daemon's state: READY=1 once running,
// RELOADING=1 and READY=1 around a reload, STOPPING=1 when it stops. Nothing is sent after STOPPING=1.
// Without $NOTIFY_SOCKET it sends nothing.
type notifier struct {
	mu        sync.Mutex
	readySent bool // READY=1 was sent: the supervisor runs
	reloads   int  // reloads in flight
	stopping  bool
}

func (n *notifier) send(state string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		return
	}
	n.stopping = state == "STOPPING=1"
	n.readySent = n.readySent || state == "READY=1"
	daemon.Notify(state)
}

// ready sends READY=1 once the supervisor has run the first check of every real and programmed the
// kernel table from their results (its phase is "running"), or at once for a runner that cannot say
// (test stand-ins). It returns without sending when ctx ends first.
func (n *notifier) ready(ctx context.Context, r runner) {
	if !daemon.Notified() {
		return
	}
	if sc, ok := r.(interface {
		SnapshotConfig() (supervisor.Snapshot, *config.Config)
	}); ok {
		t := time.NewTicker(readyPoll)
		defer t.Stop()
		for {
			if snap, _ := sc.SnapshotConfig(); snap.Phase == config.StatusRunning {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
	n.send("READY=1")
}

// reload asks r to reload its config. When systemd watches and the daemon is ready, it waits for the
// reload to be done and brackets it with RELOADING=1 and READY=1 (once for reloads that overlap);
// otherwise it only asks (a runner that cannot say when its reload is done, such as a test stand-in,
// is only asked, and so is one that is still starting: systemd waits for READY=1 then anyway).
func (n *notifier) reload(r runner) {
	w, ok := r.(interface{ Reload() error })
	n.mu.Lock()
	notify := ok && daemon.Notified() && n.readySent && !n.stopping
	if notify {
		if n.reloads == 0 {
			daemon.Notify(daemon.Reloading())
		}
		n.reloads++
	}
	n.mu.Unlock()
	if !notify {
		r.RequestReload()
		return
	}
	w.Reload() // every error is logged by the supervisor
	n.mu.Lock()
	n.reloads--
	if n.reloads == 0 && !n.stopping {
		daemon.Notify("READY=1")
	}
	n.mu.Unlock()
}

// watchdog feeds systemd's watchdog (WatchdogSec=, interval iv) every half interval while r is alive: its
// Alive answers within half an interval (a runner that cannot say counts as alive). While it is not, the
// watchdog goes unfed, so that systemd kills a daemon whose supervisor is stuck, and errorf says why, once
// until it is alive again (then infof says so). It returns when ctx ends.
func (n *notifier) watchdog(ctx context.Context, r runner, iv time.Duration, errorf, infof func(string, ...any)) {
	a, _ := r.(interface{ Alive(context.Context) error })
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if a != nil {
			actx, cancel := context.WithTimeout(ctx, iv/2)
			err = a.Alive(actx)
			cancel()
		}
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			if failing {
				infof("systemd watchdog: the supervisor answers again")
			}
			failing = false
			n.send("WATCHDOG=1")
		case !failing:
			errorf("systemd watchdog not fed: %v", err)
			failing = true
		}
	}
}

// stopped sends STOPPING=1.
func (n *notifier) stopped() { n.send("STOPPING=1") }
