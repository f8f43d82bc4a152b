package supervisor

import (
	"maps"
	"time"

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
	table    entries // the kernel table as the owner last knew it
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

// publishEvery is how often at most check events that changed only the kernel table are published: what
// Snapshot shows of the table may be that much behind the owner.
const publishEvery = 100 * time.Millisecond

// tableOnly says whether what changed since the last publish is some services of the table, and nothing
// else (owner goroutine).
func (s *Supervisor) tableOnly() bool {
	return len(s.changes.services) > 0 && s.sameBut(s.view.Load())
}

// sameBut says whether the owner's state is old's but for the services of the table in s.changes: its
// phase, generation, config and reals are the same (owner goroutine).
func (s *Supervisor) sameBut(old *view) bool {
	return old != nil && !s.changes.reals && !s.changes.table && old.phase == s.phase && old.gen == s.gen && old.cfg == s.cfg
}

// publish stores a view of the owner's state. What did not change since the last one is shared with it:
// a copy of byReal after a reload, of the changed services of the table after kernel operations.
func (s *Supervisor) publish() {
	old := s.view.Load()
	if len(s.changes.services) == 0 && s.sameBut(old) {
		return // nothing new to show
	}
	s.version.Add(1)
	s.publishedAt = time.Now()
	v := &view{phase: s.phase, gen: s.gen, cfg: s.cfg, virtuals: s.virtuals, byReal: old.byReal, table: old.table}
	if s.changes.reals {
		v.byReal = maps.Clone(s.byReal)
	}
	switch {
	case s.changes.table:
		v.table = make(entries, len(s.have))
		for id, vs := range s.have {
			v.table[id] = destsOf(vs)
		}
	case len(s.changes.services) > 0:
		v.table = maps.Clone(old.table)
		if v.table == nil {
			v.table = entries{}
		}
		for id := range s.changes.services {
			if vs := s.have[id]; vs != nil {
				v.table[id] = destsOf(vs)
			} else {
				delete(v.table, id)
			}
		}
	}
	s.changes = changes{}
	s.view.Store(v)
}

// entries are the destinations of each service of the kernel table, without their settings: what a view
// shows of the table (whether a real or a fallback is in it), at a fraction of a copy's memory.
type entries map[ipvsctl.ServiceID]map[ipvsctl.DestinationID]struct{}

// destsOf is the set of vs's destinations.
func destsOf(vs *ipvsctl.VirtualService) map[ipvsctl.DestinationID]struct{} {
	m := make(map[ipvsctl.DestinationID]struct{}, len(vs.Destinations))
	for did := range vs.Destinations {
		m[did] = struct{}{}
	}
	return m
}

// sameEntries says whether a and b hold the same services with the same destinations, whatever their
// settings and counters: what a view's table is read for (whether a real or a fallback is in the table).
func sameEntries(a, b ipvsctl.Table) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		y := b[id]
		if y == nil || len(x.Destinations) != len(y.Destinations) {
			return false
		}
		for did := range x.Destinations {
			if _, ok := y.Destinations[did]; !ok {
				return false
			}
		}
	}
	return true
}
