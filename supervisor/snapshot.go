package supervisor

import (
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// Snapshot is the supervisor's state at one moment, for `status` and tests.
type Snapshot struct {
	Phase    config.AlertStatus
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
}

// Snapshot returns the current state.
func (s *Supervisor) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

// snapshotLocked is Snapshot for a caller that holds s.mu.
func (s *Supervisor) snapshotLocked() Snapshot {
	snap := Snapshot{Phase: s.phase}
	for _, v := range s.virtuals {
		id := serviceID(v)
		vs := VirtualState{Virtual: v.String(), ID: v.ID(), Service: id}
		h := s.have[id]
		if h != nil && v.Fallback != nil && v.Fallback.Addr.IsValid() {
			_, vs.FallbackActive = h.Destinations[fallbackDest(v)]
		}
		for _, r := range v.Reals {
			rs := RealState{Real: realText(r), Dest: realDest(v, r), Weight: r.Weight, Health: s.healthOf(r)}
			if u := s.byReal[r]; u != nil {
				u.mu.Lock()
				rs.FailCount, rs.LastCheck, rs.LastError, rs.Since = u.h.fails, u.lastCheck, u.lastErr, u.since
				u.mu.Unlock()
			}
			if h != nil {
				_, rs.InTable = h.Destinations[realDest(v, r)]
			}
			vs.Reals = append(vs.Reals, rs)
		}
		snap.Virtuals = append(snap.Virtuals, vs)
	}
	return snap
}
