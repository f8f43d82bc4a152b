package supervisor

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// resync reads the kernel table back and repairs every difference: changes made behind our back and
// operations that failed.
func (s *Supervisor) resync(ctx context.Context) {
	t, err := ipvsctl.ReadTable(ctx, s.opts.Client)
	if err != nil {
		s.log.Errorf("Could not read the IPVS table: %v", err)
		s.failed = true
		return
	}
	if !sameEntries(s.have, t) {
		s.changes.table = true // what Snapshot shows (in the table or not) may have changed
	}
	s.have = t
	s.failed = false
	s.reconcile(ctx, nil, nil, true)
}

// reconcile makes the kernel match the wanted table: for the virtuals in only, or for everything (only
// nil). some narrows a virtual of only to the reals at the given positions (and its fallback): a check
// event or a reload that changed only those reals costs their entries, not the whole service. With purge
// it also deletes the services of virtuals that a reload removed.
func (s *Supervisor) reconcile(ctx context.Context, only map[*config.Virtual]bool, some map[*config.Virtual][]int, purge bool) {
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
		if pos, ok := some[v]; ok && only != nil && s.have[id] != nil {
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
// tried. When ctx ends (the daemon stops), the operations left are not run, and not logged as errors
// each: a stop during the first round of 1,000 reals wrote 133 lines of "IPVS: apply: 1 of 1
// operations not run: context canceled".
func (s *Supervisor) apply(ctx context.Context, ops []ipvsctl.Op) {
	defer s.holdLog()()
	failed := map[ipvsctl.ServiceID]bool{}
	var at time.Time // the time of the log lines, read every logClockEvery operations
	for i, op := range ops {
		if ctx.Err() != nil {
			s.failed = true
			s.log.Debugf("IPVS: %d of %d operations not run: stopping", len(ops)-i, len(ops))
			return
		}
		id := op.Service.ServiceID
		if failed[id] && op.Kind >= ipvsctl.OpAddDestination {
			continue
		}
		key := op.String()
		if err := s.kernelOp(ctx, op); err != nil {
			if op.Kind == ipvsctl.OpAddService || op.Kind == ipvsctl.OpUpdateService {
				failed[id] = true
			}
			s.failed = true
			s.opFails[key]++
			s.logOpError(err, s.opFails[key])
			continue
		}
		delete(s.opFails, key)
		if i%logClockEvery == 0 || at.IsZero() {
			at = time.Now()
		}
		s.logOp(op, at)
		s.record(op)
	}
}

// logClockEvery is how many kernel operations' log lines share one reading of the clock: their stamps are
// to the second, and in user-mode Linux a reading is a system call that cost a tenth of a millisecond.
const logClockEvery = 16

// kernelOp runs one operation on the kernel table and tells the observer how it went.
func (s *Supervisor) kernelOp(ctx context.Context, op ipvsctl.Op) error {
	err := ipvsctl.Apply(ctx, s.opts.Client, []ipvsctl.Op{op})
	if s.opts.Observer != nil {
		s.opts.Observer.KernelOp(op.Kind, err)
	}
	return err
}

// record updates the cached kernel table after a successful operation.
func (s *Supervisor) record(op ipvsctl.Op) {
	id := op.Service.ServiceID
	s.tableChanged(id)
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
			if err := s.kernelOp(ctx, op); err != nil {
				s.log.Errorf("IPVS: %v", err)
				continue
			}
			s.record(op)
			msg := fmt.Sprintf("Purged real server (stop): %s (%s)", realText(r), v)
			s.log.Info(msg)
			s.alert(v, msg)
		}
		op := ipvsctl.Op{Kind: ipvsctl.OpDeleteService, Service: vs.Service}
		if err := s.kernelOp(ctx, op); err != nil {
			s.log.Errorf("IPVS: %v", err)
			continue
		}
		s.record(op)
		s.log.Infof("Purged virtual server (stop): %s", v)
	}
}
