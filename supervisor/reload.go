package supervisor

import (
	"cmp"
	"reflect"
	"slices"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// A reload is incremental: a loaded config is first matched against the running one, off the owner
// goroutine (prepare), and the owner then re-plans, re-indexes and reconciles only the virtuals that
// changed (installChange). A virtual equal in every field to a running one (its reals included, line
// numbers included) stays the running one (Supervisor.virtuals keeps that *Virtual next to the new
// config), and nothing about it (checks, health, index, kernel entries) is looked at again. The new
// config itself is installed as given and never modified.

// change is a loaded config cfg matched against the running config base, installed as number gen.
type change struct {
	gen       uint64
	base, cfg *config.Config
	// virtuals are the virtuals to run, one for each of cfg.Virtuals: the running one wherever the loaded
	// one equals it.
	virtuals []*config.Virtual
	// full says to plan the whole config again: there was no running config, a global setting that
	// every check or table entry depends on changed, or a service is defined twice.
	full bool
	// changed are the virtuals of cfg that are not running ones, in config order.
	changed []*vchange
}

// vchange is one new or changed virtual.
type vchange struct {
	v   *config.Virtual
	old *config.Virtual // the running virtual of the same service, nil for a new service
	// same says v and old have the same settings but for Line and Reals. Then prev[i] is the running real
	// of old that the loaded real i equals in every field but Line, and v (a copy of the loaded virtual)
	// holds prev[i] itself at i: its check, health and index entry carry over untouched. dropped are the
	// reals of old that v does not hold. keys[i] and hashes[i] are the check of v.Reals[i] where prev[i] is
	// nil.
	same    bool
	prev    []*config.Real
	dropped []*config.Real
	keys    []unitKey
	hashes  []uint64
	// inPlace says v.Reals and old.Reals have the same length and kernel identity at each position, so
	// only the positions in changed (where prev is nil) need to be indexed and reconciled again.
	inPlace bool
	changed []int
}

// prepare matches cfg against the running config base and its virtuals running. It reads only config
// objects and slices that are never modified once made, so it runs on the caller's goroutine without the
// supervisor's lock.
func prepare(gen uint64, base *config.Config, running []*config.Virtual, cfg *config.Config) *change {
	ch := &change{gen: gen, base: base, cfg: cfg, virtuals: slices.Clone(cfg.Virtuals)}
	if base == nil || base.CheckInterval != cfg.CheckInterval || base.ReaddQuiescent != cfg.ReaddQuiescent {
		ch.full = true
		return ch
	}
	old := make(map[ipvsctl.ServiceID]*config.Virtual, len(running))
	for _, v := range running {
		id := serviceID(v)
		if old[id] != nil {
			ch.full = true
			return ch
		}
		old[id] = v
	}
	seen := make(map[ipvsctl.ServiceID]bool, len(ch.virtuals))
	for i, v := range ch.virtuals {
		id := serviceID(v)
		if seen[id] {
			ch.full = true
			return ch
		}
		seen[id] = true
		o := old[id]
		same := o != nil && sameSettings(o, v)
		if same && o.Line == v.Line && sameReals(o.Reals, v.Reals) {
			ch.virtuals[i] = o
			continue
		}
		vc := &vchange{v: v, old: o, same: same, prev: make([]*config.Real, len(v.Reals))}
		if same {
			used := matchReals(vc.prev, o.Reals, v.Reals)
			nv := *v
			nv.Reals = slices.Clone(v.Reals)
			vc.inPlace = len(o.Reals) == len(v.Reals)
			for j, p := range vc.prev {
				if p != nil {
					nv.Reals[j] = p
				} else {
					vc.changed = append(vc.changed, j)
				}
				vc.inPlace = vc.inPlace && (p == o.Reals[j] || p == nil && realDest(o, o.Reals[j]) == realDest(v, v.Reals[j]))
			}
			for j, r := range o.Reals {
				if !used[j] {
					vc.dropped = append(vc.dropped, r)
				}
			}
			v = &nv
			vc.v = v
			ch.virtuals[i] = v
		}
		vc.keys = make([]unitKey, len(v.Reals))
		vc.hashes = make([]uint64, len(v.Reals))
		for j, r := range v.Reals {
			if vc.prev[j] == nil {
				vc.keys[j] = keyOf(cfg, v, r)
				vc.hashes[j] = vc.keys[j].hash()
			}
		}
		ch.changed = append(ch.changed, vc)
	}
	return ch
}

// sameSettings says whether a and b are the same in every field but Line and Reals.
func sameSettings(a, b *config.Virtual) bool {
	x, y := *a, *b
	x.Line, y.Line = 0, 0
	x.Reals, y.Reals = nil, nil
	return reflect.DeepEqual(x, y)
}

func sameReal(a, b *config.Real) bool {
	x := *a
	x.Line = b.Line
	return x == *b
}

func sameReals(a, b []*config.Real) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if *a[i] != *b[i] {
			return false
		}
	}
	return true
}

// matchReals sets prev[i] to a real of old equal to now[i] in every field but Line, each real of old used
// once: the one at the same position when it is equal, else the first equal one left. used tells which
// reals of old were.
func matchReals(prev, old, now []*config.Real) (used []bool) {
	used = make([]bool, len(old))
	var rest []int
	for i, r := range now {
		if i < len(old) && sameReal(old[i], r) {
			prev[i], used[i] = old[i], true
		} else {
			rest = append(rest, i)
		}
	}
	if len(rest) == 0 {
		return used
	}
	left := map[config.Real][]int{}
	for i, r := range old {
		if !used[i] {
			k := *r
			k.Line = 0
			left[k] = append(left[k], i)
		}
	}
	for _, i := range rest {
		k := *now[i]
		k.Line = 0
		if q := left[k]; len(q) > 0 {
			prev[i], used[q[0]], left[k] = old[q[0]], true, q[1:]
		}
	}
	return used
}

// installChange makes ch.cfg the running config when ch.full is false and ch.base is the running config.
// Only the changed virtuals are planned and indexed: the checks of the virtuals that went (removed or
// replaced) lose those members, the reals of the changed virtuals join the check they had (when only
// Line differs) or the running check with their key, or a new one. A check left with no member stops. It
// returns the units whose loops must be started, the virtuals to reconcile, and for those of them whose
// reals kept their places, the positions of the reals to reconcile (the others are as they were).
func (s *Supervisor) installChange(ch *change) (fresh []*unit, only map[*config.Virtual]bool, some map[*config.Virtual][]int) {
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
		if !kept[v] {
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
				k = keyOf(cfg, v, r)
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
	if reordered {
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
		}
		s.units[c.hash] = append(s.units[c.hash], u)
		news[c] = u
	}

	// byReal and the index: out with the virtuals that went, in with the changed ones.
	for _, v := range gone {
		for _, r := range goneReals(v) {
			delete(s.byReal, r)
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
	for i, v := range ch.virtuals {
		s.vindex[serviceID(v)].pos = i
	}

	s.retire(ch.virtuals)
	s.cfg = cfg
	s.virtuals = ch.virtuals
	s.gen++
	dir := cfg.MaintenanceDir
	s.maintDir.Store(&dir)
	return fresh, only, some
}
