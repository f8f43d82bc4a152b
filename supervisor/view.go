package supervisor

import (
	"maps"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// view is what the owner publishes for readers (Snapshot, the loader): an immutable record of its state.
// Nothing in a view is modified once it is stored; the owner builds the next one, sharing what did not
// change. A real's health is read from its unit (unit.shownState), where the owner stores it atomically.
type view struct {
	phase    config.AlertStatus
	gen      uint64
	cfg      *config.Config
	virtuals []*config.Virtual
	byReal   map[*config.Real]*unit
	table    ipvsctl.Table // the kernel table as the owner last knew it
}

// changes are what the owner changed since its last publish, for publish to copy.
type changes struct {
	reals    bool                       // byReal
	table    bool                       // the whole of have (read back or replaced)
	services map[ipvsctl.ServiceID]bool // these services of have
}

// tableChanged notes that the service id of s.have changed (owner goroutine).
func (s *Supervisor) tableChanged(id ipvsctl.ServiceID) {
	if s.changes.services == nil {
		s.changes.services = map[ipvsctl.ServiceID]bool{}
	}
	s.changes.services[id] = true
}

// publish stores a view of the owner's state. What did not change since the last one is shared with it:
// a copy of byReal after a reload, of the changed services of the table after kernel operations.
func (s *Supervisor) publish() {
	old := s.view.Load()
	v := &view{phase: s.phase, gen: s.gen, cfg: s.cfg, virtuals: s.virtuals, byReal: old.byReal, table: old.table}
	if s.changes.reals {
		v.byReal = maps.Clone(s.byReal)
	}
	switch {
	case s.changes.table:
		v.table = s.have.Clone()
	case len(s.changes.services) > 0:
		v.table = maps.Clone(old.table)
		if v.table == nil {
			v.table = ipvsctl.Table{}
		}
		for id := range s.changes.services {
			if vs := s.have[id]; vs != nil {
				v.table[id] = &ipvsctl.VirtualService{Service: vs.Service, Destinations: maps.Clone(vs.Destinations)}
			} else {
				delete(v.table, id)
			}
		}
	}
	s.changes = changes{}
	s.view.Store(v)
}
