package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"math"
	"os"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
	"github.com/ldirectord-go/ldirectord/supervisor"
	"github.com/sirupsen/logrus"
)

// stateVersion is the version of the state file format; `show` reads only this version.
const stateVersion = 1

// StatePollInterval is how often the daemon looks whether its supervisor's state changed, and rewrites
// the state file when it did. A change is what `show` prints other than the last check times: health,
// failures, errors, a missing verdict, the kernel table, the phase, the config, a lag that moved by a
// second or a tenth. The last check times alone are written with the heartbeat, or at once when `show`
// asks (SIGUSR1): at 10,000 reals rewriting the file for them every second cost more CPU than the checks.
const StatePollInterval = time.Second

// StateHeartbeat is how often the state file is rewritten even when nothing changed, so that `show` can
// tell a live daemon from one whose state stopped moving.
const StateHeartbeat = 30 * time.Second

// StateStaleAfter is the age at which `show` calls a state file stale.
const StateStaleAfter = 2 * time.Minute

// stateDoc is the state file (<piddir>/ldirectord.<CFGNAME>.state): JSON, one document, replaced
// atomically. Times are RFC 3339 in the daemon's local zone.
type stateDoc struct {
	Version int       `json:"version"`
	PID     int       `json:"pid"`
	Config  string    `json:"config"`
	Started time.Time `json:"started"`
	// ConfigLoaded is when the daemon started running the present config (at start or reload; within
	// StatePollInterval).
	ConfigLoaded time.Time `json:"config_loaded"`
	// Written is when this file was written: within StatePollInterval of a change, else every
	// StateHeartbeat.
	Written time.Time `json:"written"`
	// Phase is the daemon's phase: starting, running, reloading or stopping.
	Phase string `json:"phase"`
	// Lag is how many seconds the checks run behind their checkinterval (0.1 s steps); absent when they
	// run on time.
	Lag      float64        `json:"lag,omitempty"`
	Virtuals []virtualState `json:"virtuals"`
}

type virtualState struct {
	Virtual   string `json:"virtual"` // ldirectord's form: IP:PORT, [IP6]:PORT or the fwmark
	ID        string `json:"id"`      // tcp:IP:PORT, udp:..., fwm:N, fwm6:N
	Protocol  string `json:"protocol"`
	Scheduler string `json:"scheduler"`
	// Persistent is the persistence timeout in seconds; absent when the virtual is not persistent.
	Persistent    *uint32 `json:"persistent,omitempty"`
	CheckType     string  `json:"checktype"`
	CombinedN     int     `json:"combined_n,omitempty"` // N of checktype=N
	Service       string  `json:"service,omitempty"`
	CheckInterval float64 `json:"checkinterval"` // seconds
	Quiescent     bool    `json:"quiescent"`
	Fallback      string  `json:"fallback,omitempty"`
	// FallbackActive says the fallback server is in the IPVS table.
	FallbackActive bool        `json:"fallback_active"`
	Reals          []realState `json:"reals"`
}

type realState struct {
	Real    string `json:"real"`
	Forward string `json:"forward"`
	Weight  int    `json:"weight"`
	Health  string `json:"health"` // up, down or unknown
	// Since is when the real's check put it in its present health (before its first check: when the daemon
	// first saw it, within StatePollInterval).
	Since time.Time `json:"since"`
	// Failures is ldirectord's failcount: consecutive failures while up, at least 1 while down.
	Failures     int       `json:"failures"`
	FailureCount int       `json:"failurecount"`
	LastCheck    time.Time `json:"last_check,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	InTable      bool      `json:"in_table"`
	// NoVerdict is why the last check gave no verdict (the director could not run it; the real keeps its
	// health), since NoVerdictSince; absent when the last check gave one.
	NoVerdict      string    `json:"no_verdict,omitempty"`
	NoVerdictSince time.Time `json:"no_verdict_since,omitzero"`
}

// stateSource is the supervisor's state and the config it runs (supervisor.SnapshotConfig).
type stateSource func() (supervisor.Snapshot, *config.Config)

// publisher keeps the state file in line with the supervisor's state.
type publisher struct {
	path    string
	pid     int
	config  string
	source  stateSource
	now     func() time.Time
	log     logrus.FieldLogger
	started time.Time

	cfg     *config.Config // the config last seen, to know when it was loaded
	loaded  time.Time
	since   map[sinceKey]sinceEntry // when each real's health last changed
	gen     uint64                  // counts the documents built, to forget the reals that are gone
	last    [sha256.Size]byte       // the hash of the document last written, without its written time (a copy is megabytes at 10,000 reals)
	written time.Time
	lastErr string // the last write error logged, to log each distinct one once
	size    int    // the capacity to allocate for the next document: the last one's size and an eighth

	// version, when set, is the supervisor's StateVersion and lag its lag: publish builds the document
	// only when one of them moved (or the heartbeat or a refresh is due). ver and lagAt are what the last
	// document showed.
	version func() uint64
	lag     func() time.Duration
	ver     uint64
	lagAt   time.Duration
	refresh chan struct{}
}

type sinceKey struct{ virtual, real string } // the virtual's ID and the real

type sinceEntry struct {
	health string
	since  time.Time
	gen    uint64 // the document that last showed the real
}

func newPublisher(path, configPath string, src stateSource, now func() time.Time, log logrus.FieldLogger) *publisher {
	t := now()
	return &publisher{path: path, pid: os.Getpid(), config: configPath, source: src, now: now, log: log,
		started: t, since: map[sinceKey]sinceEntry{}, refresh: make(chan struct{}, 1)}
}

// lagMoved says whether the lag moved enough since the last document to write a new one: it started or
// ended, or changed by a second or a tenth of itself, whichever is more.
func lagMoved(was, now time.Duration) bool {
	if (was == 0) != (now == 0) {
		return true
	}
	d := now - was
	return d.Abs() >= max(time.Second, was/10)
}

// build is the state file document for the present state, without its written time.
func (p *publisher) build(now time.Time) *stateDoc {
	snap, cfg := p.source()
	if cfg != p.cfg {
		p.cfg, p.loaded = cfg, now
	}
	doc := &stateDoc{Version: stateVersion, PID: p.pid, Config: p.config, Started: p.started,
		ConfigLoaded: p.loaded, Phase: snap.Phase.String(),
		Lag: math.Round(snap.Lag.Seconds()*10) / 10, Virtuals: make([]virtualState, 0, len(snap.Virtuals))}
	p.gen++
	if len(p.since) == 0 {
		// The first document (at start) meets every real at once: one table instead of its growth.
		n := 0
		for _, vs := range snap.Virtuals {
			n += len(vs.Reals)
		}
		p.since = make(map[sinceKey]sinceEntry, n)
	}
	for i, vs := range snap.Virtuals {
		var v *config.Virtual
		if cfg != nil && i < len(cfg.Virtuals) && cfg.Virtuals[i].ID() == vs.ID {
			v = cfg.Virtuals[i]
		}
		out := virtualState{Virtual: vs.Virtual, ID: vs.ID, FallbackActive: vs.FallbackActive, Reals: make([]realState, 0, len(vs.Reals))}
		if v != nil {
			out.Protocol, out.Scheduler = v.Protocol.String(), v.Scheduler
			if v.IsPersistent {
				out.Persistent = &v.Persistent
			}
			out.CheckType, out.Service = v.CheckType.String(), v.Service
			if v.CheckType == config.CheckCombined {
				out.CombinedN = v.CombinedN
			}
			if v.CheckType != config.CheckNegotiate && v.CheckType != config.CheckCombined {
				out.Service = ""
			}
			out.CheckInterval = math.Round(v.CheckInterval.Seconds()*1000) / 1000
			out.Quiescent = v.Quiescent
			if v.Fallback != nil && v.Fallback.Addr.IsValid() {
				out.Fallback = v.Fallback.AddrPort().String()
			}
		}
		for j, rs := range vs.Reals {
			r := realState{Real: rs.Real, Weight: rs.Weight, Health: rs.Health.String(), Failures: rs.FailCount,
				LastCheck: rs.LastCheck, LastError: rs.LastError, InTable: rs.InTable,
				NoVerdict: rs.NoVerdict, NoVerdictSince: rs.NoVerdictSince}
			if v != nil && j < len(v.Reals) {
				r.Forward, r.FailureCount = v.Reals[j].Forward.String(), v.FailureCount
			}
			key := sinceKey{vs.ID, rs.Real}
			e, ok := p.since[key]
			if !ok || e.health != r.Health {
				e.health, e.since = r.Health, now
			}
			e.gen = p.gen
			p.since[key] = e
			r.Since = e.since
			if !rs.Since.IsZero() {
				r.Since = rs.Since // the check loop's own time of the change
			}
			out.Reals = append(out.Reals, r)
		}
		doc.Virtuals = append(doc.Virtuals, out)
	}
	for k, e := range p.since {
		if e.gen != p.gen {
			delete(p.since, k)
		}
	}
	return doc
}

// publish writes the state file when the state changed or the heartbeat is due; force writes it in any
// case (a refresh: the last check times as they are now).
func (p *publisher) publish(force bool) {
	now := p.now()
	var ver uint64
	var lag time.Duration
	if p.version != nil {
		ver, lag = p.version(), p.lag()
		if !force && !p.written.IsZero() && now.Sub(p.written) < StateHeartbeat && ver == p.ver && !lagMoved(p.lagAt, lag) {
			return
		}
	}
	doc := p.build(now)
	var sum [sha256.Size]byte
	if p.version == nil {
		// Without the supervisor's version, only the document itself says whether something changed. With
		// it, marshaling the document twice a second (1,000 reals coming up) was a tenth of the daemon's CPU
		// in user-mode Linux.
		sum = sha256.Sum256(appendStateDoc(make([]byte, 0, p.size), doc))
		if !force && sum == p.last && now.Sub(p.written) < StateHeartbeat && !p.written.IsZero() {
			return
		}
	}
	doc.Written = now
	full := append(appendStateDoc(make([]byte, 0, p.size), doc), '\n')
	p.size = len(full) + len(full)/8
	if err := daemon.WriteFileAtomic(p.path, full, 0o644); err != nil {
		if msg := err.Error(); msg != p.lastErr {
			p.lastErr = msg
			p.log.Errorf("Could not write the state file %s: %v", p.path, err)
		}
		return
	}
	p.last, p.written, p.lastErr = sum, now, ""
	p.ver, p.lagAt = ver, lag
}

// run publishes every StatePollInterval until ctx is done.
func (p *publisher) run(ctx context.Context) {
	t := time.NewTicker(StatePollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.publish(false)
		case <-p.refresh:
			p.publish(true)
		}
	}
}

// remove removes the state file if this daemon wrote it.
func (p *publisher) remove() {
	daemon.RemoveIfOwned(p.path, func(data []byte) bool {
		var d struct {
			PID int `json:"pid"`
		}
		return json.Unmarshal(data, &d) == nil && d.PID == p.pid
	})
}

// requestRefresh asks the publisher to write the state file now, without waiting.
func (p *publisher) requestRefresh() {
	select {
	case p.refresh <- struct{}{}:
	default:
	}
}

// startPublisher writes the state file of the daemon now and keeps it current until the returned stop
// is called, which waits for the publisher and removes the file; refresh has it written at once. It
// publishes nothing when the runner cannot report its state.
func startPublisher(a *app, r runner) (stop, refresh func()) {
	sc, ok := r.(interface {
		SnapshotConfig() (supervisor.Snapshot, *config.Config)
	})
	if !ok {
		return func() {}, func() {}
	}
	p := newPublisher(daemon.StateFile(a.cfgName), a.absConfig(), sc.SnapshotConfig, time.Now, a.log)
	if v, ok := r.(interface {
		StateVersion() uint64
		Lag() time.Duration
	}); ok {
		p.version, p.lag = v.StateVersion, v.Lag
	}
	p.publish(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()
	return func() {
		cancel()
		// A publish stuck on a wedged supervisor must not keep the daemon from exiting.
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		p.remove()
	}, p.requestRefresh
}
