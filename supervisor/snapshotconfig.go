package supervisor

import "github.com/ldirectord-go/ldirectord/config"

// SnapshotConfig is Snapshot together with the config it describes (the one the supervisor runs: the last
// one Reload accepted), so that snap.Virtuals[i] is cfg.Virtuals[i] and snap.Virtuals[i].Reals[j] is
// cfg.Virtuals[i].Reals[j]. The caller must not modify cfg.
func (s *Supervisor) SnapshotConfig() (snap Snapshot, cfg *config.Config) {
	for {
		s.mu.Lock()
		cfg = s.cfg
		s.mu.Unlock()
		snap = s.Snapshot()
		s.mu.Lock()
		same := s.cfg == cfg
		s.mu.Unlock()
		if same {
			// cfg is still referenced here, so a later config cannot have been given its address.
			return snap, cfg
		}
	}
}
