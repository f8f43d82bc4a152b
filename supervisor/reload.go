package supervisor

import (
	"reflect"
	"slices"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// A reload is incremental: a loaded config is first matched against the running one, off the owner
// goroutine (prepare, a pure function), and the owner then re-plans, re-indexes and reconciles only the
// virtuals that changed (install, install.go). Start is the full change of a config against none. A virtual equal in every field to a running one (its reals included, line
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
	// every check or table entry depends on changed, or a service is defined twice. Then changed holds
	// every virtual of cfg, with no real carried over.
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
		return ch.everything()
	}
	old := make(map[ipvsctl.ServiceID]*config.Virtual, len(running))
	for _, v := range running {
		id := serviceID(v)
		if old[id] != nil {
			return ch.everything()
		}
		old[id] = v
	}
	seen := make(map[ipvsctl.ServiceID]bool, len(ch.virtuals))
	for i, v := range ch.virtuals {
		id := serviceID(v)
		if seen[id] {
			return ch.everything()
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
				vc.keys[j] = keyOf(v, r)
				vc.hashes[j] = vc.keys[j].hash()
			}
		}
		ch.changed = append(ch.changed, vc)
	}
	return ch
}

// everything makes ch a full change: every virtual of ch.cfg is new, none carried over.
func (ch *change) everything() *change {
	ch.full = true
	ch.virtuals = slices.Clone(ch.cfg.Virtuals)
	ch.changed = make([]*vchange, len(ch.virtuals))
	for i, v := range ch.virtuals {
		vc := &vchange{v: v, prev: make([]*config.Real, len(v.Reals)), keys: make([]unitKey, len(v.Reals)),
			hashes: make([]uint64, len(v.Reals))}
		for j, r := range v.Reals {
			vc.keys[j] = keyOf(v, r)
			vc.hashes[j] = vc.keys[j].hash()
		}
		ch.changed[i] = vc
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
