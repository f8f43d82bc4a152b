package supervisor

import (
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// Snapshot is the supervisor's state at one moment, for `status` and tests.
type Snapshot struct {
	Phase config.AlertStatus
	// Lag is how far the checks run behind their checkinterval, daemon-wide: how late the oldest waiting
	// check is, or else how late the last check started; 0 while they run on time.
	Lag      time.Duration
	Virtuals []VirtualState
}

// VirtualState is one virtual service.
type VirtualState struct {
	Virtual string // ldirectord's form: IP:PORT, [IP6]:PORT or the fwmark
	ID      string // tcp:IP:PORT, udp:..., fwm:N, fwm6:N
	// Service is the virtual's identity in the kernel table.
	Service ipvsctl.ServiceID
	// FallbackActive says the fallback server is in the kernel table.
	FallbackActive bool
	Reals          []RealState
}

// RealState is one real server of a virtual.
type RealState struct {
	Real string // RIP:RPORT as configured
	// Dest is the real's identity in the kernel table (the port is the virtual's for fwmark and gate).
	Dest      ipvsctl.DestinationID
	Weight    int // configured weight
	Health    Health
	FailCount int       // consecutive failures (ldirectord's failcount)
	LastCheck time.Time // zero before the first check
	LastError string    // "" after a successful check
	Since     time.Time // when the check last changed the health (zero before the first check)
	InTable   bool      // present in the kernel table (at any weight)
	// NoVerdict is why the real has no fresh verdict, "" when its last check gave one: the local failure
	// (the director could not run the check; the real keeps its health), since NoVerdictSince.
	NoVerdict      string
	NoVerdictSince time.Time
}

// Snapshot returns the state the owner last published. It never waits for the owner.
func (s *Supervisor) Snapshot() Snapshot { return s.withLag(s.view.Load().snapshot()) }

// SnapshotConfig is Snapshot together with the config it describes (the one the supervisor runs: the last
// one a reload installed), so that snap.Virtuals[i] is cfg.Virtuals[i] and snap.Virtuals[i].Reals[j] is
// cfg.Virtuals[i].Reals[j]. The caller must not modify cfg.
func (s *Supervisor) SnapshotConfig() (Snapshot, *config.Config) {
	v := s.view.Load()
	return s.withLag(v.snapshot()), v.cfg
}

// StateVersion changes whenever Snapshot would show something new other than a last check time or the
// lag: a publisher that saw the same version (and lag) need not build a Snapshot again.
func (s *Supervisor) StateVersion() uint64 { return s.version.Load() }

// Phase is the supervisor's phase as last published (Snapshot.Phase, without building a Snapshot).
func (s *Supervisor) Phase() config.AlertStatus { return s.view.Load().phase }

// Lag is how far the checks run behind their checkinterval now (Snapshot.Lag).
func (s *Supervisor) Lag() time.Duration { return s.eng.lagNow(time.Now()) }

// withLag adds the engine's lag to snap.
func (s *Supervisor) withLag(snap Snapshot) Snapshot {
	snap.Lag = s.Lag()
	return snap
}

// snapshot is the Snapshot of v: its published parts, with each real's health and last check as they are
// now.
func (v *view) snapshot() Snapshot {
	snap := Snapshot{Phase: v.phase}
	for _, vv := range v.virtuals {
		id := serviceID(vv)
		vs := VirtualState{Virtual: vv.String(), ID: vv.ID(), Service: id}
		h := v.table[id]
		if h != nil && vv.Fallback != nil && vv.Fallback.Addr.IsValid() {
			_, vs.FallbackActive = h[fallbackDest(vv)]
		}
		for _, r := range vv.Reals {
			rs := RealState{Real: realText(r), Dest: realDest(vv, r), Weight: r.Weight, Health: Unknown}
			if u := v.byReal[r]; u != nil {
				rs.Health = u.shownState()
				u.mu.Lock()
				rs.FailCount, rs.LastCheck, rs.LastError, rs.Since = u.h.fails, u.lastCheck, u.lastErr, u.since
				rs.NoVerdict, rs.NoVerdictSince = u.noVerdict, u.noVerdictAt
				u.mu.Unlock()
			}
			if h != nil {
				_, rs.InTable = h[realDest(vv, r)]
			}
			vs.Reals = append(vs.Reals, rs)
		}
		snap.Virtuals = append(snap.Virtuals, vs)
	}
	return snap
}
