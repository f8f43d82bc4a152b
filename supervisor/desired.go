package supervisor

import (
	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// desired is the kernel entry ldirectord wants for virtual v (reference §5.3-5.5), given the health of
// each of its reals and what the kernel has now (have may be nil). It is a pure function.
//
//   - An up real is present with its configured weight, forwarding and thresholds.
//   - A down real is removed, or with quiescent=yes set to weight 0. With readdquiescent=yes a quiesced
//     real that is missing is added back at weight 0; with readdquiescent=no it stays out (it is only set
//     to 0 if it is there).
//   - An unknown real (not checked yet, not serving at start) is left exactly as the kernel has it.
//   - The fallback (weight 1, never quiesced) is present exactly when no real is up, once every real has
//     been checked; while some real is still unknown and none is up it is left as the kernel has it.
//   - Anything else in the service is not wanted (it is purged).
//
// Reals are keyed by the identity the kernel stores (see kernelDest); when two entries map to the same
// identity the first real in config order wins, and a real wins over the fallback.
func desired(v *config.Virtual, readdQuiescent bool, healthOf func(*config.Real) Health, have *ipvsctl.VirtualService) *ipvsctl.VirtualService {
	want := &ipvsctl.VirtualService{Service: serviceOf(v), Destinations: make(map[ipvsctl.DestinationID]ipvsctl.Destination, len(v.Reals)+1)}
	taken := make(map[ipvsctl.DestinationID]bool, len(v.Reals))
	anyUp, anyUnknown := false, false
	for _, r := range v.Reals {
		id := realDest(v, r)
		if taken[id] {
			continue
		}
		taken[id] = true
		h := healthOf(r)
		anyUp = anyUp || h == Up
		anyUnknown = anyUnknown || h == Unknown
		if d, ok := desiredReal(v, r, id, h, readdQuiescent, have); ok {
			want.Destinations[id] = d
		}
	}
	if v.Fallback != nil && v.Fallback.Addr.IsValid() {
		id := fallbackDest(v)
		if !taken[id] {
			if d, ok := desiredFallback(v, id, anyUp, anyUnknown, have); ok {
				want.Destinations[id] = d
			}
		}
	}
	return want
}

// desiredSome is desired(v, ...) restricted to the destinations dids: the same entries, without going
// through every real. owner(id) is the real that owns destination id (the first in config order), if any.
func desiredSome(v *config.Virtual, dids []ipvsctl.DestinationID, owner func(ipvsctl.DestinationID) *config.Real,
	readdQuiescent bool, healthOf func(*config.Real) Health, have *ipvsctl.VirtualService) *ipvsctl.VirtualService {
	want := &ipvsctl.VirtualService{Service: serviceOf(v), Destinations: make(map[ipvsctl.DestinationID]ipvsctl.Destination, len(dids))}
	var fb ipvsctl.DestinationID
	hasFB := v.Fallback != nil && v.Fallback.Addr.IsValid()
	if hasFB {
		fb = fallbackDest(v)
	}
	for _, id := range dids {
		if r := owner(id); r != nil {
			if d, ok := desiredReal(v, r, id, healthOf(r), readdQuiescent, have); ok {
				want.Destinations[id] = d
			}
			continue
		}
		if !hasFB || id != fb {
			continue
		}
		anyUp, anyUnknown := false, false
		for _, r := range v.Reals {
			if owner(realDest(v, r)) != r {
				continue // not counted by desired either
			}
			switch healthOf(r) {
			case Up:
				anyUp = true
			case Unknown:
				anyUnknown = true
			}
			if anyUp {
				break
			}
		}
		if d, ok := desiredFallback(v, id, anyUp, anyUnknown, have); ok {
			want.Destinations[id] = d
		}
	}
	return want
}

func lookup(have *ipvsctl.VirtualService, id ipvsctl.DestinationID) (ipvsctl.Destination, bool) {
	if have == nil {
		return ipvsctl.Destination{}, false
	}
	d, ok := have.Destinations[id]
	d.Stats = ipvsctl.Stats{}
	return d, ok
}

// desiredReal is the entry real r (whose destination is id, health h) wants, if any.
func desiredReal(v *config.Virtual, r *config.Real, id ipvsctl.DestinationID, h Health, readdQuiescent bool, have *ipvsctl.VirtualService) (ipvsctl.Destination, bool) {
	d := ipvsctl.Destination{DestinationID: id, Forward: forwardOf(r.Forward), Weight: r.Weight, Upper: r.Upper, Lower: r.Lower}
	switch h {
	case Up:
		return d, true
	case Unknown:
		return lookup(have, id)
	case Down:
		if !v.Quiescent {
			return d, false
		}
		hd, ok := lookup(have, id)
		if !ok && !readdQuiescent {
			return d, false
		}
		d.Weight = 0
		if ok && hd.Weight == 0 && hd.Forward == d.Forward {
			// Already quiesced: ldirectord leaves it be whatever its thresholds.
			d = hd
		}
		return d, true
	}
	return d, false
}

// desiredFallback is the entry of v's fallback server (destination id), if any.
func desiredFallback(v *config.Virtual, id ipvsctl.DestinationID, anyUp, anyUnknown bool, have *ipvsctl.VirtualService) (ipvsctl.Destination, bool) {
	switch {
	case anyUp:
		return ipvsctl.Destination{}, false
	case anyUnknown:
		return lookup(have, id)
	}
	return ipvsctl.Destination{DestinationID: id, Forward: forwardOf(v.Fallback.Forward), Weight: 1}, true
}

// fallbackState is whether v's fallbackcommand should be in the "start" state (no real up) or "stop"
// (some real up); ok is false while no real is up and some real has not been checked yet.
func fallbackState(v *config.Virtual, healthOf func(*config.Real) Health) (start, ok bool) {
	unknown := false
	for _, r := range v.Reals {
		switch healthOf(r) {
		case Up:
			return false, true
		case Unknown:
			unknown = true
		}
	}
	return true, !unknown
}
