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
	want := &ipvsctl.VirtualService{Service: serviceOf(v), Destinations: map[ipvsctl.DestinationID]ipvsctl.Destination{}}
	lookup := func(id ipvsctl.DestinationID) (ipvsctl.Destination, bool) {
		if have == nil {
			return ipvsctl.Destination{}, false
		}
		d, ok := have.Destinations[id]
		d.Stats = ipvsctl.Stats{}
		return d, ok
	}
	taken := map[ipvsctl.DestinationID]bool{}
	anyUp, anyUnknown := false, false
	for _, r := range v.Reals {
		id := realDest(v, r)
		if taken[id] {
			continue
		}
		taken[id] = true
		d := ipvsctl.Destination{DestinationID: id, Forward: forwardOf(r.Forward), Weight: r.Weight, Upper: r.Upper, Lower: r.Lower}
		switch healthOf(r) {
		case Up:
			anyUp = true
			want.Destinations[id] = d
		case Unknown:
			anyUnknown = true
			if h, ok := lookup(id); ok {
				want.Destinations[id] = h
			}
		case Down:
			if !v.Quiescent {
				continue
			}
			h, ok := lookup(id)
			if !ok && !readdQuiescent {
				continue
			}
			d.Weight = 0
			if ok && h.Weight == 0 && h.Forward == d.Forward {
				// Already quiesced: ldirectord leaves it be whatever its thresholds.
				d = h
			}
			want.Destinations[id] = d
		}
	}
	if f := v.Fallback; f != nil && f.Addr.IsValid() {
		id := fallbackDest(v)
		if !taken[id] {
			d := ipvsctl.Destination{DestinationID: id, Forward: forwardOf(f.Forward), Weight: 1}
			switch {
			case anyUp:
			case anyUnknown:
				if h, ok := lookup(id); ok {
					want.Destinations[id] = h
				}
			default:
				want.Destinations[id] = d
			}
		}
	}
	return want
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
