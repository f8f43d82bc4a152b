// Package supervisor is the daemon's brain: one check loop per distinct real-server check, the health of
// each real, the table ldirectord wants, and the reconciliation of the kernel IPVS table with it, across
// reloads and until stop.
//
// One goroutine, the owner (Run), holds all mutable state and is the only one that waits on anything.
// Check loops, the config watcher, the config loader and SIGHUP send it messages; readers (Snapshot)
// read an immutable view the owner publishes (view.go). The files follow the owner's jobs: run.go (the
// loop), reload.go (planning a reload, a pure function) and install.go (making a plan the running state),
// reconcile.go (the kernel table), phrases.go (log lines and alerts), commands.go (fallbackcommand and
// callback), load.go and watch.go (the config file).
package supervisor

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/logging"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// Alerter receives every e-mail-worthy event (reference §5.12): Added/Restored/Deleted/Quiescent/Readd
// Quiescent real or fallback server and Purged real server (start|stop), with the exact log message (no
// [servicename] prefix), the virtual it concerns and the daemon phase. It is called from the supervisor's
// own goroutine and must not block for long.
type Alerter interface {
	Alert(v *config.Virtual, phase config.AlertStatus, msg string)
}

// Observer is told what the daemon does, for metrics. Checked is called by the check loops, the rest on the
// owner goroutine; no method may block.
type Observer interface {
	// Checked reports one check of the given kind (service= of a negotiate check, else the checktype),
	// how long it ran and its result.
	Checked(check string, d time.Duration, err error)
	// Transition reports that a real of a virtual (ldirectord's forms, and the protocol: tcp, udp, sctp,
	// fwm or fwm6) became up or down.
	Transition(virtual, protocol, real string, up bool)
	// KernelOp reports one kernel table operation and its outcome.
	KernelOp(kind ipvsctl.OpKind, err error)
	// Reloaded reports a config reload: nil when the new config is in force, else why the old one stays.
	Reloaded(err error)
}

// Options are the supervisor's collaborators and settings. Client and Log are required; the rest have
// production defaults (the Default* constants).
type Options struct {
	// Client is the kernel IPVS table, or an in-memory one (ipvsctl.NewFake) for a dry run.
	Client ipvsctl.Client
	// Log receives ldirectord's phrases at Info, failures at Error and details (check failures) at Debug.
	Log logrus.FieldLogger
	// Load re-reads the config file (Find, Parse, Resolve) for a reload. It runs on a goroutine of its
	// own and may take long (DNS): nothing waits for it but the caller of Reload. Nil makes reloads fail.
	Load func() (*config.Config, error)
	// Reloaded, when set, is called on the owner goroutine with every config a reload installs (SIGHUP,
	// Reload or autoreload), once it runs. It must not block: hand the work to another goroutine.
	Reloaded func(cfg *config.Config)
	// Alert may be nil.
	Alert Alerter
	// Observer, when set, is told of checks, health changes, kernel operations and reloads (metrics).
	Observer Observer
	// Hostname is this host's name, for the alerter's use.
	Hostname string

	// NewChecker builds the checker of real r of virtual v. Default: by checktype and service, from the
	// checker package.
	NewChecker func(v *config.Virtual, r *config.Real) (checker.Checker, error)
	// Run runs fallbackcommand and callback; argv comes from internal/command (Perl's system(STRING)
	// rule). Default: command.Run with a CommandTimeout limit.
	Run func(ctx context.Context, argv []string) error
	// Now is the clock for monitorfile lines and Snapshot. Default time.Now.
	Now func() time.Time
	// wallClock says Now is time.Now (the default): a check's own clock reading serves as its Now.
	wallClock bool
	// LookupAddr is the reverse DNS lookup for maintenancedir. Default net.DefaultResolver.LookupAddr.
	LookupAddr func(ctx context.Context, addr string) ([]string, error)

	// ResyncInterval is how often the kernel table is read back and repaired (drift: entries changed
	// behind the daemon's back). Default DefaultResyncInterval. When a resync takes longer than
	// ResyncShare of the interval, the next one waits that much longer (pacer.go).
	ResyncInterval time.Duration
	// RetryInterval is the first delay before a failed kernel operation is retried; each failed retry
	// doubles it, up to MaxRetryInterval. Default DefaultRetryInterval.
	RetryInterval time.Duration
	// MaxRetryInterval caps the delay between retries of failed kernel operations. Default
	// DefaultMaxRetryInterval.
	MaxRetryInterval time.Duration
	// Debounce is how long the config watcher waits after the last change event before it reads the file,
	// so an editor's write-rename-chmod burst makes one reload. Default DefaultDebounce.
	Debounce time.Duration
	// StopTimeout bounds the kernel operations of the clean stop. Default DefaultStopTimeout.
	StopTimeout time.Duration
	// CommandWait is how long stopping waits for queued fallbackcommand and callback runs. Default
	// DefaultCommandWait.
	CommandWait time.Duration
	// MaxInFlight bounds the checks running at once. Default: derived from the RLIMIT_NOFILE soft limit
	// (inflightLimit).
	MaxInFlight int
	// Dial, when set, opens the checks' connections instead of a net.Dialer (tests inject the director's
	// own failures with it).
	Dial checker.DialFunc
}

// Defaults of Options.
const (
	DefaultResyncInterval   = 10 * time.Second
	DefaultRetryInterval    = 2 * time.Second
	DefaultMaxRetryInterval = time.Minute
	DefaultDebounce         = 250 * time.Millisecond
	DefaultStopTimeout      = 30 * time.Second
	DefaultCommandWait      = 5 * time.Second
)

// CommandTimeout limits a fallbackcommand or callback run by the default Options.Run.
const CommandTimeout = time.Minute

// ErrStopped is returned by Reload once Run has returned.
var ErrStopped = errors.New("supervisor: stopped")

// Supervisor runs ldirectord's checks and keeps the kernel table as they say. Make one with New.
type Supervisor struct {
	opts Options
	log  logrus.FieldLogger

	// The owner's state: only Run's goroutine (or New, and Reload before Run) reads and writes it.
	cfg *config.Config // the running config, as New or a reload was given it (never modified)
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
	retry    backoff
	retrying bool           // the resync timer is set for a retry
	opFails  map[string]int // operation -> consecutive failures, for the log
	start    func(*unit, time.Time)
	eng      *engine // runs the checks
	watcher  *watcher
	changes  changes // what the next publish must copy
	// publishedAt is when the owner last published a view (publishEvery).
	publishedAt time.Time

	// view is what readers see (view.go); only the owner stores it.
	view atomic.Pointer[view]
	// version counts the changes a reader of Snapshot can see other than the last check times: the
	// published view, and a real's health, failure count, error or missing verdict (StateVersion).
	version  atomic.Uint64
	maintDir atomic.Pointer[string]

	// startMu guards the lifecycle flags between Run and a Reload before Run; it is never held while
	// waiting.
	startMu sync.Mutex
	running bool
	stopped bool

	events   chan event      // from the check loops
	loads    chan loadReq    // to the loader
	loaded   chan loadResult // from the loader
	changed  chan string     // from the config watcher: the file changed
	pings    chan struct{}   // from Alive: taken by the owner between two messages
	done     chan struct{}   // closed when Run returns
	cmds     chan command
	cmdsDone chan struct{}

	// lateness, when set (benchmarks), is told how late each check started.
	lateness func(time.Duration)
	// resyncShare, when set (benchmarks), replaces ResyncShare.
	resyncShare float64
	// resynced, when set (benchmarks), is told what each periodic resync cost and when the next comes.
	resynced func(cost, next time.Duration)
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
	if err := checkResolved(cfg); err != nil {
		return nil, err
	}
	o.setDefaults()
	s := &Supervisor{
		opts:     o,
		log:      o.Log,
		units:    map[uint64][]*unit{},
		byReal:   map[*config.Real]*unit{},
		retired:  map[ipvsctl.ServiceID]*config.Virtual{},
		fbcmd:    map[ipvsctl.ServiceID]fbcmdState{},
		opFails:  map[string]int{},
		retry:    backoff{base: o.RetryInterval, max: o.MaxRetryInterval},
		phase:    config.StatusStarting,
		events:   make(chan event, 1024),
		loads:    make(chan loadReq, 64),
		loaded:   make(chan loadResult),
		changed:  make(chan string),
		pings:    make(chan struct{}),
		done:     make(chan struct{}),
		cmds:     make(chan command, 256),
		cmdsDone: make(chan struct{}),
	}
	s.eng = newEngine(o.MaxInFlight, s.logAt)
	s.eng.holdLog = s.holdLog
	s.view.Store(&view{})
	s.setConfig(cfg)
	return s, nil
}

func (o *Options) setDefaults() {
	if o.NewChecker == nil {
		o.NewChecker = NewChecker
	}
	if o.Run == nil {
		o.Run = runCommand
	}
	if o.Now == nil {
		o.Now, o.wallClock = time.Now, true
	}
	if o.LookupAddr == nil {
		o.LookupAddr = net.DefaultResolver.LookupAddr
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = inflightLimit(nofileLimit())
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{
		{&o.ResyncInterval, DefaultResyncInterval}, {&o.RetryInterval, DefaultRetryInterval},
		{&o.MaxRetryInterval, DefaultMaxRetryInterval},
		{&o.Debounce, DefaultDebounce}, {&o.StopTimeout, DefaultStopTimeout}, {&o.CommandWait, DefaultCommandWait},
	} {
		if *d.p <= 0 {
			*d.p = d.def
		}
	}
}

// setConfig makes cfg the config of a supervisor that does not run yet: nothing is planned before Run.
func (s *Supervisor) setConfig(cfg *config.Config) {
	s.cfg = cfg
	s.virtuals = cfg.Virtuals
	s.gen++
	s.index()
	s.changes.reals = true
	s.publish()
}

// holdLog gathers the lines logged until the returned release is called into one write of the log file
// (logging.Hold): a burst of them (the kernel operations of one reconcile, the verdicts of one batch of
// checks) costs one open, write and close.
func (s *Supervisor) holdLog() (release func()) {
	switch l := s.log.(type) {
	case *logrus.Logger:
		return logging.Hold(l)
	case *logrus.Entry:
		return logging.Hold(l.Logger)
	}
	return func() {}
}

// logWhen is the logger for lines that happened at t, a reading of the wall clock the caller has (a log
// line reads the clock otherwise, a system call where there is no vDSO); with another clock (tests) or no
// t, the log's own.
func (s *Supervisor) logWhen(t time.Time) logrus.FieldLogger {
	if l, ok := s.log.(interface{ WithTime(time.Time) *logrus.Entry }); ok && !t.IsZero() && s.opts.wallClock {
		return l.WithTime(t) // *logrus.Logger and *logrus.Entry
	}
	return s.log
}
