package supervisor

import "github.com/ldirectord-go/ldirectord/config"

// SnapshotConfig is Snapshot together with the config it describes (the one the supervisor runs: the last
// one Reload accepted), so that snap.Virtuals[i] is cfg.Virtuals[i] and snap.Virtuals[i].Reals[j] is
// cfg.Virtuals[i].Reals[j]. The caller must not modify cfg.
func (s *Supervisor) SnapshotConfig() (Snapshot, *config.Config) {
	// One critical section: the virtuals a snapshot walks and s.cfg are installed together under s.mu.
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked(), s.cfg
}
