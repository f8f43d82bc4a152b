package supervisor

import (
	"context"
	"errors"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
)

// A reload goes: a request (Reload, RequestReload, or the watcher through the owner) -> the loader
// goroutine, which runs Options.Load and matches the new config against the running one (prepare) ->
// the owner, which installs it. The owner never waits for the loader, so a load that hangs (a FIFO
// where a file was expected, slow DNS) delays that reload and nothing else, and stop still stops.

// loadReq asks the loader for one load; requests that queue up while a load runs are served by the next
// one together.
type loadReq struct {
	reply    chan error // nil when nobody waits for the outcome
	callback command    // the callback to run once the reload is done (autoreload); no argv for none
}

// loadResult is a load's outcome, for the owner.
type loadResult struct {
	ch   *change // nil when the load failed
	err  error
	reqs []loadReq
}

// RequestReload asks for the config to be read again and applied, as Reload does, and returns at once.
// Every error is logged; requests made while a load runs are served by one more load.
func (s *Supervisor) RequestReload() {
	select {
	case s.loads <- loadReq{}:
	default: // enough loads are queued already
	}
}

// Reload re-reads the config through Options.Load and applies the difference: unchanged reals keep their
// health and their kernel entries untouched. A config that does not load is refused: every error is
// logged and the running config and the kernel table are kept. It returns once the new config is applied,
// with the load error if any, or ErrStopped when Run returns first. Before Run, the loaded config simply
// replaces the one New was given (not concurrently with Run).
func (s *Supervisor) Reload() error {
	if s.opts.Load == nil {
		return errors.New("supervisor: no Load function")
	}
	s.startMu.Lock()
	started, stopped := s.running, s.stopped
	s.startMu.Unlock()
	switch {
	case stopped:
		return ErrStopped
	case !started:
		cfg, err := s.load()
		if err != nil {
			s.logConfigErrors(err)
			return err
		}
		s.setConfig(cfg)
		return nil
	}
	reply := make(chan error, 1)
	select {
	case s.loads <- loadReq{reply: reply}:
	case <-s.done:
		return ErrStopped
	}
	select {
	case err := <-reply:
		return err
	case <-s.done:
		return ErrStopped
	}
}

// loader serves load requests until ctx ends. It reads only the published view, never the owner's state.
func (s *Supervisor) loader(ctx context.Context) {
	for {
		var reqs []loadReq
		select {
		case <-ctx.Done():
			return
		case r := <-s.loads:
			reqs = append(reqs, r)
		}
	more:
		for {
			select {
			case r := <-s.loads:
				reqs = append(reqs, r)
			default:
				break more
			}
		}
		res := loadResult{reqs: reqs}
		cfg, err := s.load()
		if err != nil {
			s.logConfigErrors(err)
			res.err = err
		} else {
			v := s.view.Load()
			res.ch = prepare(v.gen, v.cfg, v.virtuals, cfg)
		}
		select {
		case s.loaded <- res:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Supervisor) load() (*config.Config, error) {
	if s.opts.Load == nil {
		return nil, errors.New("supervisor: no Load function")
	}
	cfg, err := s.opts.Load()
	if err == nil {
		err = checkResolved(cfg)
	}
	return cfg, err
}

// requestLoad queues a load for the owner, which must not wait: when the queue is full, a load that will
// serve this request is queued already, but a reply or callback needs its own place, so it is made later.
func (s *Supervisor) requestLoad(r loadReq) {
	select {
	case s.loads <- r:
	default:
		go func() {
			select {
			case s.loads <- r:
			case <-s.done:
			}
		}()
	}
}

// reloadDone installs a loaded config (owner goroutine), answers whoever waits, tells Options.Reloaded and
// queues the callbacks of the changes that asked for the load.
func (s *Supervisor) reloadDone(ctx context.Context, res loadResult) {
	if s.opts.Observer != nil && (res.ch != nil || res.err != nil) {
		s.opts.Observer.Reloaded(res.err)
	}
	if res.ch != nil {
		s.reload(ctx, res.ch)
		s.publish() // whoever Reload answers sees the new config in Snapshot
		if s.opts.Reloaded != nil {
			s.opts.Reloaded(s.cfg)
		}
	}
	for _, r := range res.reqs {
		if r.reply != nil {
			r.reply <- res.err
		}
		if r.callback.argv != nil {
			s.queue(r.callback)
		}
	}
}

// startAll starts the checks of units, with one reading of the clock for all of them (in user-mode Linux,
// where each is a system call, a reading per real was 0.18 s of the start of 1,000 reals).
func (s *Supervisor) startAll(units []*unit) {
	if len(units) == 0 {
		return
	}
	now := time.Now()
	for _, u := range units {
		s.start(u, now)
	}
}

// reload makes the config of ch the running config (owner goroutine): only what changed, unless ch was
// matched against another config than the running one (a reload in between: it is matched again) or
// asks for everything.
func (s *Supervisor) reload(ctx context.Context, ch *change) {
	prev := s.phase
	s.phase = config.StatusReloading
	for _, w := range ch.cfg.Warnings {
		s.log.Warn(w.Error())
	}
	if ch.gen != s.gen {
		ch = prepare(s.gen, s.cfg, s.virtuals, ch.cfg)
	}
	fresh, only, some := s.install(ch)
	s.reconcile(ctx, only, some, true)
	s.startAll(fresh)
	s.phase = prev
	s.updatePhase()
}
