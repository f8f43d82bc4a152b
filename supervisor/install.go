package supervisor

import (
	"cmp"
	"context"
	"slices"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// install makes ch.cfg the running config; ch was prepared against the running config. It keeps the loop
// and health of every check that did not change, makes units for the new ones (adopting their state from
// the kernel table) and stops the rest. Only the changed virtuals are planned and indexed (all of them for
// a full change): the checks of the virtuals that went (removed or
// replaced) lose those members, the reals of the changed virtuals join the check they had (when only
// Line differs) or the running check with their key, or a new one. A check left with no member stops. It
// returns the units whose loops must be started and the virtuals to reconcile (nil: all), and some: for
// those of them whose reals kept their places, the positions of the reals to reconcile (the others are as
// they were).
func (s *Supervisor) install(ch *change) (fresh []*unit, only map[*config.Virtual]bool, some map[*config.Virtual][]int) {
	cfg := ch.cfg
	kept := make(map[*config.Virtual]bool, len(ch.virtuals))
	vpos := make(map[*config.Virtual]int, len(ch.virtuals))
	for i, v := range ch.virtuals {
		kept[v] = true
		vpos[v] = i
	}
	var gone []*config.Virtual
	goneSet := map[*config.Virtual]bool{}
	for _, v := range s.virtuals {
		if ch.full || !kept[v] { // a full change carries nothing over, even a virtual given again
			gone = append(gone, v)
			goneSet[v] = true
		}
	}
	// goneReals are the reals of a virtual that went that are not carried over: all of them, or for a
	// virtual with the same settings, the dropped ones.
	same := map[*config.Virtual]*vchange{}
	for _, vc := range ch.changed {
		if vc.same {
			same[vc.old] = vc
		}
	}
	goneReals := func(v *config.Virtual) []*config.Real {
		if vc := same[v]; vc != nil {
			return vc.dropped
		}
		return v.Reals
	}

	// A carried-over real keeps its unit, which gets the new virtual in its member. This comes first, so
	// that what follows sees those members as belonging to a running virtual.
	carried := func(vc *vchange, j int) *unit {
		if p := vc.prev[j]; p != nil {
			return s.byReal[p]
		}
		return nil
	}
	for _, vc := range ch.changed {
		for j, r := range vc.v.Reals {
			u := carried(vc, j)
			if u == nil {
				continue
			}
			ms := slices.Clone(*u.members.Load())
			for k := range ms {
				if ms[k].r == r {
					ms[k] = member{vc.v, r, j}
				}
			}
			if len(ms) > 1 {
				slices.SortFunc(ms, func(a, b member) int { return cmp.Or(cmp.Compare(vpos[a.v], vpos[b.v]), cmp.Compare(a.ri, b.ri)) })
			}
			u.members.Store(&ms)
		}
	}

	// touched holds the new members of every running unit whose members change.
	touched := map[*unit][]member{}
	touch := func(u *unit) {
		if _, ok := touched[u]; ok {
			return
		}
		var ms []member // a new slice: loops read the old one
		for _, m := range *u.members.Load() {
			if !goneSet[m.v] {
				ms = append(ms, m)
			}
		}
		touched[u] = ms
	}
	for _, v := range gone {
		for _, r := range goneReals(v) {
			if u := s.byReal[r]; u != nil {
				touch(u)
			}
		}
	}

	// The reals of the changed virtuals: an existing unit, or a new check.
	var newChecks []*check
	newByHash := map[uint64][]*check{}
	only = make(map[*config.Virtual]bool, len(ch.changed))
	some = map[*config.Virtual][]int{}
	unitOf := make([][]*unit, len(ch.changed)) // nil where the real is in a new check
	checkOf := make([][]*check, len(ch.changed))
	for ci, vc := range ch.changed {
		v := vc.v
		only[v] = true
		if vc.inPlace {
			some[v] = vc.changed
		}
		unitOf[ci] = make([]*unit, len(v.Reals))
		checkOf[ci] = make([]*check, len(v.Reals))
		for j, r := range v.Reals {
			m := member{v, r, j}
			var u *unit
			if carried(vc, j) != nil {
				continue // done above
			}
			k, h := vc.keys[j], vc.hashes[j]
			if vc.prev[j] != nil { // carried over, but not found running: planned as new
				k = keyOf(v, r)
				h = k.hash()
			}
			for _, x := range s.units[h] {
				if x.key == k {
					u = x
					break
				}
			}
			if u == nil {
				c := checkFor(newByHash, &newChecks, k, h)
				c.members = append(c.members, m)
				checkOf[ci][j] = c
				continue
			}
			touch(u)
			touched[u] = append(touched[u], m)
			unitOf[ci][j] = u
		}
	}

	// Units that lost every member stop; the others get their members in config order.
	for u, ms := range touched {
		if len(ms) == 0 {
			s.stopUnit(u)
			h := u.key.hash()
			us := slices.DeleteFunc(slices.Clone(s.units[h]), func(x *unit) bool { return x == u })
			if len(us) == 0 {
				delete(s.units, h)
			} else {
				s.units[h] = us
			}
			continue
		}
		if len(ms) > 1 {
			slices.SortFunc(ms, func(a, b member) int { return cmp.Or(cmp.Compare(vpos[a.v], vpos[b.v]), cmp.Compare(a.ri, b.ri)) })
		}
		u.members.Store(&ms)
	}
	// When running virtuals changed order, a check shared by several keeps its members in config order.
	oldPos := make(map[*config.Virtual]int, len(s.virtuals))
	for i, v := range s.virtuals {
		oldPos[v] = i
	}
	last, reordered := -1, false
	for _, v := range ch.virtuals {
		if p, ok := oldPos[v]; ok {
			reordered = reordered || p < last
			last = p
		}
	}
	if reordered && !ch.full {
		for _, us := range s.units {
			for _, u := range us {
				if _, done := touched[u]; done || len(*u.members.Load()) < 2 {
					continue
				}
				ms := slices.Clone(*u.members.Load())
				slices.SortFunc(ms, func(a, b member) int { return cmp.Or(cmp.Compare(vpos[a.v], vpos[b.v]), cmp.Compare(a.ri, b.ri)) })
				u.members.Store(&ms)
			}
		}
	}
	news := make(map[*check]*unit, len(newChecks))
	for _, c := range newChecks {
		u := s.newUnit(c.key, c.members)
		u.live = true
		if u.chk != nil {
			fresh = append(fresh, u)
			s.pending++
			u.counted = true
		}
		s.units[c.hash] = append(s.units[c.hash], u)
		news[c] = u
	}

	// byReal and the index: out with the virtuals that went, in with the changed ones.
	s.changes.reals = true
	for _, v := range gone {
		for _, r := range goneReals(v) {
			delete(s.byReal, r)
		}
		if ch.full {
			continue
		}
		if vc := same[v]; vc != nil && vc.inPlace {
			continue // its index is patched below
		}
		if id := serviceID(v); s.vindex[id] != nil && s.vindex[id].v == v {
			delete(s.vindex, id)
		}
	}
	for ci, vc := range ch.changed {
		for j, r := range vc.v.Reals {
			if u := unitOf[ci][j]; u != nil {
				s.byReal[r] = u
			} else if c := checkOf[ci][j]; c != nil {
				s.byReal[r] = news[c]
			}
		}
		id := serviceID(vc.v)
		if ch.full {
			continue
		}
		if !vc.inPlace {
			s.vindex[id] = newVindex(vc.v, 0)
			continue
		}
		// Same identities at the same places: the old index with the new virtual and the changed reals.
		vi := *s.vindex[id] // the old virtual's: its maps are reused
		vi.v = vc.v
		for _, j := range vc.changed {
			did := realDest(vc.v, vc.v.Reals[j])
			if vi.reals[did] == vc.old.Reals[j] {
				vi.reals[did] = vc.v.Reals[j]
			}
		}
		s.vindex[id] = &vi
	}
	s.retire(ch.virtuals)
	s.cfg = cfg
	s.virtuals = ch.virtuals
	s.gen++
	dir := cfg.MaintenanceDir
	s.maintDir.Store(&dir)
	if ch.full {
		s.index() // the first of two virtuals of one service owns it
		return fresh, nil, nil
	}
	for i, v := range ch.virtuals {
		s.vindex[serviceID(v)].pos = i
	}
	return fresh, only, some
}

// stopUnit stops the checks of a unit that is no longer part of the running config.
func (s *Supervisor) stopUnit(u *unit) {
	u.live = false
	s.stopChecks(u)
	s.uncount(u)
}

// uncount takes u out of the loops the phase waits for, once: its first event arrived, or it stopped
// (with its first event perhaps still queued, which handle then drops).
func (s *Supervisor) uncount(u *unit) {
	if u.counted {
		u.counted = false
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
	u.setState(state)
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
