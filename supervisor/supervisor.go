// Package supervisor is the daemon's brain: one check loop per distinct real-server check, the health of
// each real, the table ldirectord wants, and the reconciliation of the kernel IPVS table with it, across
// reloads and until stop.
package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// Alerter receives every e-mail-worthy event (reference §5.12): Added/Restored/Deleted/Quiescent/Readd
// Quiescent real or fallback server and Purged real server (start|stop), with the exact log message (no
// [servicename] prefix), the virtual it concerns and the daemon phase. It is called from the supervisor's
// own goroutine and must not block for long.
type Alerter interface {
	Alert(v *config.Virtual, phase config.AlertStatus, msg string)
}

// Options are the supervisor's collaborators. Client and Log are required; the rest have production
// defaults.
type Options struct {
	// Client is the kernel IPVS table, or an in-memory one (ipvsctl.NewFake) for a dry run.
	Client ipvsctl.Client
	// Log receives ldirectord's phrases at Info, failures at Error and details (check failures) at Debug.
	Log logrus.FieldLogger
	// Load re-reads the config file (Find, Parse, Resolve) for Reload. Nil makes Reload fail.
	Load func() (*config.Config, error)
	// Alert may be nil.
	Alert Alerter
	// Hostname is this host's name, for the alerter's use.
	Hostname string

	// NewChecker builds the checker of real r of virtual v. Default: by checktype and service, from the
	// checker package.
	NewChecker func(v *config.Virtual, r *config.Real) (checker.Checker, error)
	// Run runs fallbackcommand and callback, without a shell. Default: exec with a one-minute limit.
	Run func(ctx context.Context, argv []string) error
	// Now is the clock for monitorfile lines and Snapshot. Default time.Now.
	Now func() time.Time
	// LookupAddr is the reverse DNS lookup for maintenancedir. Default net.DefaultResolver.LookupAddr.
	LookupAddr func(ctx context.Context, addr string) ([]string, error)
	// ResyncInterval is how often the kernel table is read back and repaired. Default 30s. After a failed
	// kernel operation the next resync comes after RetryInterval instead.
	ResyncInterval time.Duration
	// RetryInterval is the delay before a failed kernel operation is retried. Default 2s.
	RetryInterval time.Duration
	// MaxInFlight bounds the checks running at once. Default: derived from the RLIMIT_NOFILE soft limit
	// (see inflightLimit).
	MaxInFlight int
	// Dial, when set, opens the checks' connections instead of a net.Dialer (tests inject the director's
	// own failures with it).
	Dial checker.DialFunc
}

// DefaultResyncInterval is the default period of the kernel table resync.
const DefaultResyncInterval = 30 * time.Second

// DefaultRetryInterval is the default delay before failed kernel operations are retried.
const DefaultRetryInterval = 2 * time.Second

// CommandTimeout limits a fallbackcommand or callback run by the default Options.Run.
const CommandTimeout = time.Minute

// ErrStopped is returned by Reload once Run has returned.
var ErrStopped = errors.New("supervisor: stopped")

// Supervisor runs ldirectord's checks and keeps the kernel table as they say. Make one with New.
type Supervisor struct {
	opts Options
	log  logrus.FieldLogger

	// mu guards what follows; the owner goroutine (Run) is the only writer, Snapshot a reader.
	mu  sync.Mutex
	cfg *config.Config // the running config, as New or Reload was given it (never modified)
	// virtuals are the running virtual services, one for each of cfg.Virtuals, at the same index: that
	// one, or the running virtual it equals, kept from an earlier config (see reload.go).
	virtuals []*config.Virtual
	gen      uint64             // counts the configs installed, so a reload knows what it was matched against
	units    map[uint64][]*unit // by unitKey hash
	byReal   map[*config.Real]*unit
	vindex   map[ipvsctl.ServiceID]*vindex
	have     ipvsctl.Table
	retired  map[ipvsctl.ServiceID]*config.Virtual
	fbcmd    map[ipvsctl.ServiceID]fbcmdState
	phase    config.AlertStatus
	pending  int  // loops that have not reported their first check yet
	failed   bool // a kernel operation failed since the last resync
	running  bool
	stopped  bool
	// some, during a reload's reconcile, limits a virtual to the destinations of the reals at these
	// positions and its fallback: the rest of it did not change.
	some map[*config.Virtual][]int

	maintDir atomic.Pointer[string]
	events   chan event
	reloads  chan reloadReq
	done     chan struct{}
	cmds     chan []string
	cmdsDone chan struct{}
	loopCtx  context.Context
	start    func(*unit)
	eng      *engine
	watcher  *watcher

	// lateness, when set (benchmarks), is told how late each check started.
	lateness func(time.Duration)
	// watchStarted, when set (tests), is called once the config watcher has its first hash.
	watchStarted func()
}

// vindex maps the kernel entries of one virtual back to its config, to name them in log lines.
type vindex struct {
	v        *config.Virtual
	pos      int
	reals    map[ipvsctl.DestinationID]*config.Real
	realPos  map[ipvsctl.DestinationID]int
	fallback ipvsctl.DestinationID
	hasFB    bool
}

type fbcmdState struct {
	state, cmd string
}

type reloadReq struct {
	ch   *change
	done chan struct{}
}

// New checks the options and returns a supervisor for cfg. Nothing runs until Run.
func New(cfg *config.Config, o Options) (*Supervisor, error) {
	if cfg == nil {
		return nil, errors.New("supervisor: no config")
	}
	if o.Client == nil {
		return nil, errors.New("supervisor: no IPVS client")
	}
	if o.Log == nil {
		return nil, errors.New("supervisor: no logger")
	}
	if o.NewChecker == nil {
		o.NewChecker = NewChecker
	}
	if o.Run == nil {
		o.Run = runCommand
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LookupAddr == nil {
		o.LookupAddr = net.DefaultResolver.LookupAddr
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = DefaultResyncInterval
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = inflightLimit(nofileLimit())
	}
	s := &Supervisor{
		opts:     o,
		log:      o.Log,
		cfg:      cfg,
		virtuals: cfg.Virtuals,
		units:    map[uint64][]*unit{},
		byReal:   map[*config.Real]*unit{},
		retired:  map[ipvsctl.ServiceID]*config.Virtual{},
		fbcmd:    map[ipvsctl.ServiceID]fbcmdState{},
		phase:    config.StatusStarting,
		eng:      newEngine(o.MaxInFlight, nil),
		events:   make(chan event, 1024),
		reloads:  make(chan reloadReq),
		done:     make(chan struct{}),
		cmds:     make(chan []string, 256),
	}
	s.eng.log = s.logAt
	s.index()
	return s, nil
}

// logAt logs one line of the check engine at level (error or warning).
func (s *Supervisor) logAt(level, line string) {
	if level == "error" {
		s.log.Error(line)
		return
	}
	s.log.Warn(line)
}

func runCommand(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	return cmd.Run()
}

// Run adopts the kernel table, starts the check loops and reconciles until ctx is done; then it stops the
// loops, applies cleanstop and returns. Kernel errors are logged and retried, never fatal; Run returns an
// error only when it was called twice.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.stopped {
		s.mu.Unlock()
		return errors.New("supervisor: Run called twice")
	}
	s.running = true
	s.mu.Unlock()
	defer close(s.done)

	loopCtx, cancelLoops := context.WithCancel(ctx)
	defer cancelLoops()
	s.loopCtx = loopCtx
	var wg sync.WaitGroup
	s.eng.onLate = s.lateness
	wg.Go(func() { s.eng.run(loopCtx) })
	s.start = func(u *unit) { s.startChecks(u, time.Now()) }
	s.cmdsDone = make(chan struct{})
	go s.runCommands(context.WithoutCancel(ctx))

	have, ok := s.readTable(ctx)
	if !ok {
		s.finish(ctx, &wg)
		return nil
	}
	s.mu.Lock()
	s.have = have
	fresh := s.install(s.cfg)
	s.reconcile(ctx, nil, true)
	for _, u := range fresh {
		s.start(u)
	}
	s.updatePhase()
	s.mu.Unlock()
	s.watchConfig(ctx)

	resync := time.NewTimer(s.nextResync())
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			s.finish(ctx, &wg)
			return nil
		case ev := <-s.events:
			s.mu.Lock()
			dirty := map[*config.Virtual]bool{}
			s.handle(ev, dirty)
		drain:
			for {
				select {
				case ev := <-s.events:
					s.handle(ev, dirty)
				default:
					break drain
				}
			}
			if len(dirty) > 0 {
				s.reconcile(ctx, dirty, false)
			}
			s.updatePhase()
			retry := s.failed
			s.mu.Unlock()
			if retry {
				resync.Reset(s.opts.RetryInterval)
			}
		case req := <-s.reloads:
			s.mu.Lock()
			s.reload(ctx, req.ch)
			retry := s.failed
			s.mu.Unlock()
			close(req.done)
			s.watchConfig(ctx)
			if retry {
				resync.Reset(s.opts.RetryInterval)
			}
		case <-resync.C:
			s.resync(ctx)
			resync.Reset(s.nextResync())
		}
	}
}

func (s *Supervisor) nextResync() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return s.opts.RetryInterval
	}
	return s.opts.ResyncInterval
}

// readTable reads the kernel table at start, retrying until it works or ctx ends.
func (s *Supervisor) readTable(ctx context.Context) (ipvsctl.Table, bool) {
	for {
		t, err := ipvsctl.ReadTable(ctx, s.opts.Client)
		if err == nil {
			return t, true
		}
		s.log.Errorf("Could not read the IPVS table: %v", err)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(s.opts.RetryInterval):
		}
	}
}

// resync reads the kernel table back and repairs every difference: changes made behind our back and
// operations that failed.
func (s *Supervisor) resync(ctx context.Context) {
	t, err := ipvsctl.ReadTable(ctx, s.opts.Client)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.log.Errorf("Could not read the IPVS table: %v", err)
		s.failed = true
		return
	}
	s.have = t
	s.failed = false
	s.reconcile(ctx, nil, true)
}

// handle takes one loop event into the owner's state; dirty collects the virtuals to reconcile.
func (s *Supervisor) handle(ev event, dirty map[*config.Virtual]bool) {
	u := ev.u
	if !u.live { // a loop stopped by a reload
		return
	}
	if ev.first {
		s.pending--
	}
	if u.state == ev.state {
		return
	}
	u.state = ev.state
	for _, m := range *u.members.Load() {
		dirty[m.v] = true
	}
}

func (s *Supervisor) updatePhase() {
	if s.phase == config.StatusStarting && s.pending <= 0 {
		s.phase = config.StatusRunning
	}
}

// install makes cfg the running config: it keeps the loop and health of every check that did not change,
// makes units for the new ones (adopting their state from the kernel table) and stops the rest. It returns
// the units whose loops must be started.
func (s *Supervisor) install(cfg *config.Config) (fresh []*unit) {
	checks := plan(cfg)
	units := make(map[uint64][]*unit, len(checks))
	byReal := make(map[*config.Real]*unit, len(checks))
	for _, c := range checks {
		var u *unit
		for _, x := range s.units[c.hash] {
			if x.key == c.key {
				u = x
				break
			}
		}
		if u != nil {
			ms := c.members
			u.members.Store(&ms)
			u.kept = true
		} else {
			u = s.newUnit(c.key, c.members)
			u.live = true
			if u.chk != nil {
				fresh = append(fresh, u)
				s.pending++
			}
		}
		units[c.hash] = append(units[c.hash], u)
		for _, m := range c.members {
			byReal[m.r] = u
		}
	}
	for _, us := range s.units {
		for _, u := range us {
			if u.kept {
				u.kept = false
				continue
			}
			s.stopUnit(u)
		}
	}
	s.retire(cfg.Virtuals)
	s.cfg = cfg
	s.virtuals = cfg.Virtuals
	s.gen++
	s.units = units
	s.byReal = byReal
	s.index()
	dir := cfg.MaintenanceDir
	s.maintDir.Store(&dir)
	return fresh
}

// stopUnit stops the loop of a unit that is no longer part of the running config.
func (s *Supervisor) stopUnit(u *unit) {
	u.live = false
	s.stopChecks(u)
	u.mu.Lock()
	checked := u.checked
	u.mu.Unlock()
	if !checked && u.chk != nil {
		s.pending--
	}
}

// retire notes the services of the running virtuals that next no longer has, for the next reconcile to
// purge, and forgets those that next has again.
func (s *Supervisor) retire(next []*config.Virtual) {
	ids := make(map[ipvsctl.ServiceID]bool, len(next))
	for _, v := range next {
		ids[serviceID(v)] = true
	}
	for _, v := range s.virtuals {
		if id := serviceID(v); !ids[id] {
			s.retired[id] = v
		}
	}
	for id := range ids {
		delete(s.retired, id)
	}
}

func (s *Supervisor) index() {
	s.vindex = make(map[ipvsctl.ServiceID]*vindex, len(s.virtuals))
	for i, v := range s.virtuals {
		id := serviceID(v)
		if _, dup := s.vindex[id]; dup {
			continue
		}
		s.vindex[id] = newVindex(v, i)
	}
}

func newVindex(v *config.Virtual, pos int) *vindex {
	vi := &vindex{v: v, pos: pos, reals: make(map[ipvsctl.DestinationID]*config.Real, len(v.Reals)),
		realPos: make(map[ipvsctl.DestinationID]int, len(v.Reals))}
	for j, r := range v.Reals {
		did := realDest(v, r)
		if _, ok := vi.reals[did]; !ok {
			vi.reals[did] = r
			vi.realPos[did] = j
		}
	}
	if v.Fallback != nil && v.Fallback.Addr.IsValid() {
		vi.fallback, vi.hasFB = fallbackDest(v), true
	}
	return vi
}

// newUnit makes the unit of check k. Its first state comes from the kernel: a real that is in the table
// of one of its virtuals with a weight above 0 is up until its first check says otherwise (so a restart
// with cleanstop=no changes nothing); any other is unknown until its first check. checktype=off is down
// for good.
func (s *Supervisor) newUnit(k unitKey, ms []member) *unit {
	u := &unit{key: k}
	u.members.Store(&ms)
	state := Unknown
	switch {
	case k.Type == config.CheckOff:
		state = Down
	case s.serving(ms):
		state = Up
	}
	u.state = state
	u.h = newHealth(state, k.FailureCount, k.SuccessCount)
	if k.Type == config.CheckOff {
		return u
	}
	if k.Type == config.CheckOn {
		u.chk = checker.On
		return u
	}
	chk, err := s.opts.NewChecker(ms[0].v, ms[0].r)
	if err != nil {
		s.log.Errorf("Can not check real server %s (%s): %v", realText(ms[0].r), ms[0].v.ID(), err)
		chk = checker.Func(func(context.Context, *checker.Target) error { return err })
	}
	u.chk = chk
	return u
}

func (s *Supervisor) serving(ms []member) bool {
	for _, m := range ms {
		if vs := s.have[serviceID(m.v)]; vs != nil {
			if d, ok := vs.Destinations[realDest(m.v, m.r)]; ok && d.Weight > 0 {
				return true
			}
		}
	}
	return false
}

func (s *Supervisor) healthOf(r *config.Real) Health {
	if u := s.byReal[r]; u != nil {
		return u.state
	}
	return Unknown
}

// reconcile makes the kernel match the wanted table: for the virtuals in only, or for everything (only
// nil). With purge it also deletes the services of virtuals that a reload removed.
func (s *Supervisor) reconcile(ctx context.Context, only map[*config.Virtual]bool, purge bool) {
	want := ipvsctl.Table{}
	have := s.have
	if only != nil {
		have = ipvsctl.Table{}
		if purge {
			for id := range s.retired {
				if h := s.have[id]; h != nil {
					have[id] = h
				}
			}
		}
	}
	for _, v := range s.virtuals {
		if only != nil && !only[v] {
			continue
		}
		id := serviceID(v)
		if s.vindex[id].v != v { // a duplicate virtual: the first one owns the service
			continue
		}
		if pos, ok := s.some[v]; ok && only != nil && s.have[id] != nil {
			// Only these reals changed: their entries and the fallback's, not the whole service.
			dids := s.someDests(v, pos)
			want[id] = desiredSome(v, dids, func(did ipvsctl.DestinationID) *config.Real { return s.vindex[id].reals[did] },
				s.cfg.ReaddQuiescent, s.healthOf, s.have[id])
			have[id] = limit(s.have[id], dids)
			continue
		}
		want[id] = desired(v, s.cfg.ReaddQuiescent, s.healthOf, s.have[id])
		if only != nil && s.have[id] != nil {
			have[id] = s.have[id]
		}
	}
	var managed func(ipvsctl.ServiceID) bool
	if purge {
		managed = func(id ipvsctl.ServiceID) bool { return s.retired[id] != nil }
	}
	ops := ipvsctl.Diff(have, want, managed)
	s.sortOps(ops)
	s.apply(ctx, ops)
	s.fallbackCommands(only)
}

// someDests are the destinations of the reals of v at pos and of its fallback, each once.
func (s *Supervisor) someDests(v *config.Virtual, pos []int) []ipvsctl.DestinationID {
	dids := make([]ipvsctl.DestinationID, 0, len(pos)+1)
	for _, i := range pos {
		dids = append(dids, realDest(v, v.Reals[i]))
	}
	if v.Fallback != nil && v.Fallback.Addr.IsValid() {
		dids = append(dids, fallbackDest(v))
	}
	slices.SortFunc(dids, func(a, b ipvsctl.DestinationID) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	return slices.Compact(dids)
}

// limit is vs with only the destinations dids.
func limit(vs *ipvsctl.VirtualService, dids []ipvsctl.DestinationID) *ipvsctl.VirtualService {
	n := &ipvsctl.VirtualService{Service: vs.Service, Destinations: make(map[ipvsctl.DestinationID]ipvsctl.Destination, len(dids))}
	for _, did := range dids {
		if d, ok := vs.Destinations[did]; ok {
			n.Destinations[did] = d
		}
	}
	return n
}

// sortOps orders operations as ldirectord's log shows them: services first; then per virtual (config
// order) its reals (config order), the purged entries, and the fallback last, so a real coming up is
// added before the fallback goes and a real going down is removed before the fallback comes; deleted
// services last.
func (s *Supervisor) sortOps(ops []ipvsctl.Op) {
	type rank struct{ group, svc, role, pos int }
	rankOf := func(op ipvsctl.Op) rank {
		r := rank{group: 1, svc: len(s.virtuals)}
		vi := s.vindex[op.Service.ServiceID]
		if vi != nil {
			r.svc = vi.pos
		}
		switch op.Kind {
		case ipvsctl.OpAddService, ipvsctl.OpUpdateService:
			r.group = 0
			return r
		case ipvsctl.OpDeleteService:
			r.group = 2
			return r
		}
		did := op.Destination.DestinationID
		switch {
		case vi == nil:
			r.role = 1
		case vi.reals[did] != nil:
			r.role, r.pos = 0, vi.realPos[did]
		case vi.hasFB && vi.fallback == did:
			r.role = 2
		default:
			r.role = 1
		}
		return r
	}
	slices.SortStableFunc(ops, func(a, b ipvsctl.Op) int {
		x, y := rankOf(a), rankOf(b)
		return cmp.Or(cmp.Compare(x.group, y.group), cmp.Compare(x.svc, y.svc), cmp.Compare(x.role, y.role), cmp.Compare(x.pos, y.pos))
	})
}

// apply runs ops one by one, so that each success is logged in ldirectord's words and each failure is
// logged and left for the next resync. The destinations of a service that could not be added are not
// tried.
func (s *Supervisor) apply(ctx context.Context, ops []ipvsctl.Op) {
	failed := map[ipvsctl.ServiceID]bool{}
	for _, op := range ops {
		id := op.Service.ServiceID
		if failed[id] && op.Kind >= ipvsctl.OpAddDestination {
			continue
		}
		if err := ipvsctl.Apply(ctx, s.opts.Client, []ipvsctl.Op{op}); err != nil {
			if op.Kind == ipvsctl.OpAddService || op.Kind == ipvsctl.OpUpdateService {
				failed[id] = true
			}
			s.failed = true
			s.log.Errorf("IPVS: %v", err)
			continue
		}
		s.logOp(op)
		s.record(op)
	}
}

// record updates the cached kernel table after a successful operation.
func (s *Supervisor) record(op ipvsctl.Op) {
	id := op.Service.ServiceID
	vs := s.have[id]
	switch op.Kind {
	case ipvsctl.OpAddService, ipvsctl.OpUpdateService:
		if vs == nil {
			vs = &ipvsctl.VirtualService{Destinations: map[ipvsctl.DestinationID]ipvsctl.Destination{}}
			s.have[id] = vs
		}
		vs.Service = op.Service
	case ipvsctl.OpDeleteService:
		delete(s.have, id)
		delete(s.retired, id)
	case ipvsctl.OpAddDestination, ipvsctl.OpUpdateDestination:
		if vs != nil {
			vs.Destinations[op.Destination.DestinationID] = op.Destination
		}
	case ipvsctl.OpDeleteDestination:
		if vs != nil {
			delete(vs.Destinations, op.Destination.DestinationID)
		}
	}
}

// logOp logs a successful operation with ldirectord's phrase (reference §5.3, §6.2) and alerts.
func (s *Supervisor) logOp(op ipvsctl.Op) {
	id := op.Service.ServiceID
	vi := s.vindex[id]
	switch op.Kind {
	case ipvsctl.OpAddService:
		if vi != nil {
			s.log.Infof("Added virtual server: %s", vi.v)
		}
		return
	case ipvsctl.OpUpdateService:
		if vi != nil {
			s.log.Infof("Changed virtual server: %s", vi.v)
		}
		return
	case ipvsctl.OpDeleteService:
		if v := s.retired[id]; v != nil {
			s.log.Infof("Purged virtual server (start): %s", v)
		} else if vi != nil {
			s.log.Infof("Purged virtual server (start): %s", vi.v)
		}
		return
	}
	if vi == nil {
		return
	}
	v, d := vi.v, op.Destination
	did := d.DestinationID
	kid := did.String()
	var msg string
	if r := vi.reals[did]; r != nil {
		up := s.healthOf(r) == Up
		cfgText := realText(r)
		switch op.Kind {
		case ipvsctl.OpAddDestination:
			if up {
				msg = fmt.Sprintf("Added real server: %s (%s) (Weight set to %d)", cfgText, v, d.Weight)
			} else {
				msg = fmt.Sprintf("Readd Quiescent real server: %s (%s) (Weight set to 0)", cfgText, v)
			}
		case ipvsctl.OpUpdateDestination:
			if up {
				msg = fmt.Sprintf("Restored real server: %s (%s) (Weight set to %d)", cfgText, v, d.Weight)
			} else {
				msg = fmt.Sprintf("Quiescent real server: %s %s(%s) (Weight set to 0)", kid, mapped(kid, cfgText), v)
			}
		case ipvsctl.OpDeleteDestination:
			msg = fmt.Sprintf("Deleted real server: %s %s(%s)", kid, mapped(kid, cfgText), v)
		}
	} else if vi.hasFB && vi.fallback == did {
		cfgText := v.Fallback.AddrPort().String()
		switch op.Kind {
		case ipvsctl.OpAddDestination:
			msg = fmt.Sprintf("Added fallback server: %s (%s) (Weight set to 1)", cfgText, v)
		case ipvsctl.OpUpdateDestination:
			msg = fmt.Sprintf("Restored fallback server: %s (%s) (Weight set to 1)", cfgText, v)
		case ipvsctl.OpDeleteDestination:
			msg = fmt.Sprintf("Deleted fallback server: %s %s(%s)", kid, mapped(kid, cfgText), v)
		}
	} else if op.Kind == ipvsctl.OpDeleteDestination {
		msg = fmt.Sprintf("Purged real server (start): %s (%s)", kid, v)
	}
	if msg != "" {
		s.log.Info(msg)
		s.alert(v, msg)
	}
}

// mapped is ldirectord's "mapped from <RIP:RPORT> " when the kernel stores the entry under another port.
func mapped(kid, cfgText string) string {
	if kid == cfgText {
		return ""
	}
	return "mapped from " + cfgText + " "
}

func (s *Supervisor) alert(v *config.Virtual, msg string) {
	if s.opts.Alert != nil {
		s.opts.Alert.Alert(v, s.phase, msg)
	}
}

// fallbackCommands runs `fallbackcommand start|stop <VIP>:<VPORT> <proto>` for each virtual whose state
// changed (reference §5.5): start when no real is up, stop when one is. The first decision after start
// always runs; nothing runs while no real is up and some have not been checked yet.
func (s *Supervisor) fallbackCommands(only map[*config.Virtual]bool) {
	for _, v := range s.virtuals {
		if only != nil && !only[v] {
			continue
		}
		start, ok := fallbackState(v, s.healthOf)
		if !ok {
			continue
		}
		st := "stop"
		if start {
			st = "start"
		}
		id := serviceID(v)
		next := fbcmdState{state: st, cmd: v.FallbackCommand}
		if s.fbcmd[id] == next {
			continue
		}
		s.fbcmd[id] = next
		if v.FallbackCommand == "" {
			continue
		}
		argv := append(splitCommand(v.FallbackCommand), st, v.String(), v.Protocol.String())
		select {
		case s.cmds <- argv:
		default:
			s.log.Errorf("system(%s) failed: too many commands queued", strings.Join(argv, " "))
		}
	}
}

// runCommands runs fallbackcommand and callback invocations one at a time, in order, off the owner
// goroutine, so a slow command delays no check and no kernel update.
func (s *Supervisor) runCommands(ctx context.Context) {
	defer close(s.cmdsDone)
	for argv := range s.cmds {
		if err := s.opts.Run(ctx, argv); err != nil {
			s.log.Errorf("system(%s) failed: %v", strings.Join(argv, " "), err)
		}
	}
}

// splitCommand splits a command line into words as a shell would for plain words and quotes, with no
// expansion of any kind: the program is exec'd, never given to a shell.
func splitCommand(s string) []string {
	var out []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
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
	var fresh []*unit
	if ch.full {
		fresh = s.install(ch.cfg)
		s.reconcile(ctx, nil, true)
	} else {
		var only map[*config.Virtual]bool
		fresh, only, s.some = s.installChange(ch)
		s.reconcile(ctx, only, true)
		s.some = nil
	}
	for _, u := range fresh {
		s.start(u)
	}
	s.phase = prev
	s.updatePhase()
}

// Reload re-reads the config through Options.Load and applies the difference: unchanged reals keep their
// health and their kernel entries untouched. A config that does not load is refused: every error is
// logged and the running config and the kernel table are kept. Safe to call from any goroutine; it returns
// once the new config is applied, with the load error if any.
func (s *Supervisor) Reload() error {
	if s.opts.Load == nil {
		return errors.New("supervisor: no Load function")
	}
	cfg, err := s.opts.Load()
	if err != nil {
		s.logConfigErrors(err)
		return err
	}
	return s.use(cfg)
}

func (s *Supervisor) use(cfg *config.Config) error {
	s.mu.Lock()
	switch {
	case s.stopped:
		s.mu.Unlock()
		return ErrStopped
	case !s.running:
		s.cfg = cfg
		s.virtuals = cfg.Virtuals
		s.gen++
		s.index()
		s.mu.Unlock()
		return nil
	}
	gen, base, running := s.gen, s.cfg, s.virtuals
	s.mu.Unlock()
	// The matching of the new config against the running one is done here, off the owner goroutine, so
	// check results keep flowing meanwhile; the owner matches again if another reload came first.
	req := reloadReq{ch: prepare(gen, base, running, cfg), done: make(chan struct{})}
	select {
	case s.reloads <- req:
		<-req.done
		return nil
	case <-s.done:
		return ErrStopped
	}
}

// logConfigErrors logs every error of a refused config as ldirectord does (reference §5.7).
func (s *Supervisor) logConfigErrors(err error) {
	s.mu.Lock()
	file := s.cfg.File
	s.mu.Unlock()
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			if e.Line > 0 {
				s.log.Errorf("Error [%d] reading file %s at line %d: %s", os.Getpid(), e.File, e.Line, e.Msg)
			} else {
				s.log.Errorf("Error [%d] reading file %s: %s", os.Getpid(), e.File, e.Msg)
			}
		}
	} else {
		s.log.Errorf("Error [%d] reading file %s: %v", os.Getpid(), file, err)
	}
	s.log.Errorf("Configuration file '%s' not reloaded: keeping the running configuration", file)
}

// finish stops the loops, applies cleanstop and waits for queued commands.
func (s *Supervisor) finish(ctx context.Context, wg *sync.WaitGroup) {
	s.mu.Lock()
	for _, us := range s.units {
		for _, u := range us {
			s.stopChecks(u)
		}
	}
	s.mu.Unlock()
	wg.Wait()
	s.stopWatch()

	s.mu.Lock()
	s.phase = config.StatusStopping
	if s.have != nil {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		s.cleanStop(kctx)
		cancel()
	}
	s.stopped = true
	s.running = false
	s.mu.Unlock()

	close(s.cmds)
	select {
	case <-s.cmdsDone:
	case <-time.After(5 * time.Second):
		s.log.Errorf("fallbackcommand or callback still running at exit")
	}
}

// cleanStop removes the services of every virtual with cleanstop=yes, each up real first (reference
// §5.8): `Purged real server (stop): ...` then `Purged virtual server (stop): ...`.
func (s *Supervisor) cleanStop(ctx context.Context) {
	for _, v := range s.virtuals {
		id := serviceID(v)
		vs := s.have[id]
		if !v.CleanStop || vs == nil || s.vindex[id].v != v {
			continue
		}
		for _, r := range v.Reals {
			did := realDest(v, r)
			if s.healthOf(r) != Up || s.vindex[id].reals[did] != r {
				continue
			}
			if _, ok := vs.Destinations[did]; !ok {
				continue
			}
			op := ipvsctl.Op{Kind: ipvsctl.OpDeleteDestination, Service: vs.Service, Destination: vs.Destinations[did]}
			if err := ipvsctl.Apply(ctx, s.opts.Client, []ipvsctl.Op{op}); err != nil {
				s.log.Errorf("IPVS: %v", err)
				continue
			}
			s.record(op)
			msg := fmt.Sprintf("Purged real server (stop): %s (%s)", realText(r), v)
			s.log.Info(msg)
			s.alert(v, msg)
		}
		op := ipvsctl.Op{Kind: ipvsctl.OpDeleteService, Service: vs.Service}
		if err := ipvsctl.Apply(ctx, s.opts.Client, []ipvsctl.Op{op}); err != nil {
			s.log.Errorf("IPVS: %v", err)
			continue
		}
		s.record(op)
		s.log.Infof("Purged virtual server (stop): %s", v)
	}
}
