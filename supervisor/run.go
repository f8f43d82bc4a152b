package supervisor

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// Run adopts the kernel table, starts the check loops and reconciles until ctx is done; then it stops the
// loops, applies cleanstop and returns. Kernel errors are logged and retried, never fatal; Run returns an
// error only when it was called twice.
//
// Run's goroutine is the owner: it alone changes the supervisor's state, and it handles one message at a
// time: a check result, a loaded config, a change of the config file, or the resync timer.
func (s *Supervisor) Run(ctx context.Context) error {
	s.startMu.Lock()
	if s.running || s.stopped {
		s.startMu.Unlock()
		return errors.New("supervisor: Run called twice")
	}
	s.running = true
	s.startMu.Unlock()
	defer close(s.done)

	loopCtx, cancelLoops := context.WithCancel(ctx)
	defer cancelLoops()
	var wg sync.WaitGroup
	s.eng.onLate = s.lateness
	wg.Go(func() { s.eng.run(loopCtx) })
	s.start = s.startChecks
	go s.runCommands(context.WithoutCancel(ctx))
	go s.loader(ctx)

	have, ok := s.readTable(ctx)
	if !ok {
		s.finish(ctx, cancelLoops, &wg)
		return nil
	}
	s.have = have
	s.changes.table = true
	fresh, _, _ := s.install(prepare(s.gen, nil, nil, s.cfg))
	s.reconcile(ctx, nil, nil, true)
	s.startAll(fresh)
	s.updatePhase()
	s.publish()
	s.watchConfig(ctx)

	meter := newResyncMeter()
	pacer := resyncPacer{interval: s.opts.ResyncInterval, share: cmp.Or(s.resyncShare, ResyncShare)}
	resync := time.NewTimer(s.opts.ResyncInterval)
	defer resync.Stop()
	pub := time.NewTimer(time.Hour)
	pub.Stop()
	defer pub.Stop()
	var pubArmed bool
	if s.failed {
		s.retrying = true
		resync.Reset(s.retry.failed())
	}
	for {
		select {
		case <-ctx.Done():
			s.finish(ctx, cancelLoops, &wg)
			return nil
		case ev := <-s.events:
			dirty, some := map[*config.Virtual]bool{}, map[*config.Virtual][]int{}
			s.handle(ev, dirty, some)
		drain:
			for {
				select {
				case ev := <-s.events:
					s.handle(ev, dirty, some)
				default:
					break drain
				}
			}
			if len(dirty) > 0 {
				s.reconcile(ctx, dirty, some, false)
			}
			s.updatePhase()
		case res := <-s.loaded:
			s.reloadDone(ctx, res)
			s.watchConfig(ctx)
		case path := <-s.changed:
			s.configChanged(path)
		case <-s.pings:
			continue // nothing changed
		case <-pub.C:
			pubArmed = false
		case <-resync.C:
			s.retrying = false
			meter.begin()
			s.resync(ctx)
			s.publish()
			cost := meter.end()
			if !s.failed {
				s.retry.succeeded()
				clear(s.opFails)
				next := pacer.next(cost)
				resync.Reset(next)
				if s.resynced != nil {
					s.resynced(cost, next)
				}
			}
		}
		tableOnly := s.tableOnly()
		if tableOnly && !pubArmed && time.Since(s.publishedAt) < publishEvery {
			// Check events changed the table again within publishEvery of the last publish: they are
			// published together, so that a storm of events (the first round of 10,000 reals) copies each
			// service's entries a few times a second rather than once per event.
			pub.Reset(publishEvery - time.Since(s.publishedAt))
			pubArmed = true
		} else if !pubArmed || !tableOnly {
			s.publish()
		}
		if s.failed && !s.retrying {
			s.retrying = true
			resync.Reset(s.retry.failed())
		}
	}
}

// readTable reads the kernel table at start, retrying (with backoff) until it works or ctx ends.
func (s *Supervisor) readTable(ctx context.Context) (ipvsctl.Table, bool) {
	b := backoff{base: s.opts.RetryInterval, max: s.opts.MaxRetryInterval}
	for {
		t, err := ipvsctl.ReadTable(ctx, s.opts.Client)
		if err == nil {
			return t, true
		}
		s.log.Errorf("Could not read the IPVS table: %v", err)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(b.failed()):
		}
	}
}

// logAt logs one line of the check engine at level (error or warning).
func (s *Supervisor) logAt(level, line string) {
	if level == "error" {
		s.log.Error(line)
		return
	}
	s.log.Warn(line)
}

// handle takes one loop event into the owner's state; dirty collects the virtuals to reconcile, some the
// positions of their reals whose health changed.
func (s *Supervisor) handle(ev event, dirty map[*config.Virtual]bool, some map[*config.Virtual][]int) {
	u := ev.u
	if !u.live { // a loop stopped by a reload
		return
	}
	if ev.first {
		s.uncount(u)
	}
	if u.state == ev.state {
		return
	}
	u.setState(ev.state)
	for _, m := range *u.members.Load() {
		dirty[m.v] = true
		some[m.v] = append(some[m.v], m.ri)
		if s.opts.Observer != nil && ev.state != Unknown {
			proto, _, _ := strings.Cut(m.v.ID(), ":")
			s.opts.Observer.Transition(m.v.String(), proto, realText(m.r), ev.state == Up)
		}
	}
}

func (s *Supervisor) updatePhase() {
	if s.phase == config.StatusStarting && s.pending <= 0 {
		s.phase = config.StatusRunning
	}
}

// finish stops the loops and the watcher, applies cleanstop and waits (at most CommandWait) for queued
// commands. It waits for nothing that could wait for the owner: the loops give up their messages once
// their context ends, and the loader is not waited for at all.
func (s *Supervisor) finish(ctx context.Context, cancelLoops context.CancelFunc, wg *sync.WaitGroup) {
	cancelLoops()
	wg.Wait()
	s.stopWatch()

	s.phase = config.StatusStopping
	s.publish()
	if s.have != nil {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.StopTimeout)
		s.cleanStop(kctx)
		cancel()
		s.publish()
	}
	s.startMu.Lock()
	s.stopped = true
	s.running = false
	s.startMu.Unlock()

	close(s.cmds)
	t := time.NewTimer(s.opts.CommandWait)
	defer t.Stop()
	select {
	case <-s.cmdsDone:
	case <-t.C:
		s.log.Errorf("fallbackcommand or callback still running at exit")
	}
}
