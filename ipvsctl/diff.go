package ipvsctl

import (
	"cmp"
	"slices"
)

// Diff returns the fewest operations that turn have into want.
//
// Services in want are added or updated and their destinations made to match exactly; observed Stats are
// ignored. A service in have but not in want is deleted only if managed(id) is true (a nil managed deletes
// nothing); every other service of have is left alone, and so are its destinations.
//
// Order: services added and updated first, then destinations deleted, updated and added, then services
// deleted (their destinations go with them, so they get no operations of their own). Within each group the
// operations are sorted by identity (IPv4 before IPv6, firewall marks after addresses), so the result is
// deterministic.
//
// A zero Netmask and the full mask (255.255.255.255 or /128) are the same setting: it is what the kernel
// stores for a service without one, and Clients report it as 0.
func Diff(have, want Table, managed func(ServiceID) bool) []Op {
	var svcOps, delDst, updDst, addDst, delSvc []Op
	for _, id := range sortedServiceIDs(want) {
		w := want[id]
		ws := w.Service
		ws.ServiceID = id
		h, ok := have[id]
		if !ok || h == nil {
			svcOps = append(svcOps, Op{Kind: OpAddService, Service: ws})
			for _, did := range sortedDestinationIDs(w.Destinations) {
				addDst = append(addDst, Op{Kind: OpAddDestination, Service: ws, Destination: withID(w.Destinations[did], did)})
			}
			continue
		}
		if !sameService(h.Service, ws) {
			svcOps = append(svcOps, Op{Kind: OpUpdateService, Service: ws})
		}
		// Walk the maps unsorted (the no-change case must be cheap) and sort only what changes.
		var del, upd, add []Op
		for did, hd := range h.Destinations {
			if _, ok := w.Destinations[did]; !ok {
				del = append(del, Op{Kind: OpDeleteDestination, Service: ws, Destination: withID(hd, did)})
			}
		}
		for did, wd := range w.Destinations {
			hd, ok := h.Destinations[did]
			switch {
			case !ok:
				add = append(add, Op{Kind: OpAddDestination, Service: ws, Destination: withID(wd, did)})
			case !sameDestination(hd, wd):
				upd = append(upd, Op{Kind: OpUpdateDestination, Service: ws, Destination: withID(wd, did)})
			}
		}
		delDst = append(delDst, sortByDestination(del)...)
		updDst = append(updDst, sortByDestination(upd)...)
		addDst = append(addDst, sortByDestination(add)...)
	}
	if managed != nil {
		for _, id := range sortedServiceIDs(have) {
			if _, ok := want[id]; ok || !managed(id) {
				continue
			}
			hs := have[id].Service
			hs.ServiceID = id
			delSvc = append(delSvc, Op{Kind: OpDeleteService, Service: hs})
		}
	}
	n := len(svcOps) + len(delDst) + len(updDst) + len(addDst) + len(delSvc)
	if n == 0 {
		return nil
	}
	return slices.Concat(svcOps, delDst, updDst, addDst, delSvc)
}

func sortByDestination(ops []Op) []Op {
	slices.SortFunc(ops, func(a, b Op) int {
		return compareDestinationID(a.Destination.DestinationID, b.Destination.DestinationID)
	})
	return ops
}

func withID(d Destination, id DestinationID) Destination {
	d.DestinationID = id
	d.Stats = Stats{}
	return d
}

// fullNetmask is what the kernel stores (and ipvsadm sends) for a service with no persistence netmask.
func fullNetmask(f Family) uint32 {
	if f == IPv6 {
		return 128
	}
	return 0xffffffff
}

// canonical returns s as Clients report it: a full persistence netmask reads as 0.
func canonical(s Service) Service {
	if s.Netmask == fullNetmask(s.Family) {
		s.Netmask = 0
	}
	return s
}

func netmaskOf(s Service) uint32 {
	if s.Netmask == 0 {
		return fullNetmask(s.Family)
	}
	return s.Netmask
}

func sameService(a, b Service) bool {
	return a.Scheduler == b.Scheduler && a.Flags == b.Flags && a.Timeout == b.Timeout && netmaskOf(a) == netmaskOf(b)
}

func sameDestination(a, b Destination) bool {
	return a.Forward == b.Forward && a.Weight == b.Weight && a.Upper == b.Upper && a.Lower == b.Lower
}

func compareServiceID(a, b ServiceID) int {
	return cmp.Or(
		cmp.Compare(a.Family, b.Family),
		cmp.Compare(a.FWMark, b.FWMark), // 0 (an address service) first
		cmp.Compare(a.Protocol, b.Protocol),
		a.Addr.Compare(b.Addr),
		cmp.Compare(a.Port, b.Port),
	)
}

func compareDestinationID(a, b DestinationID) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}

func sortedServiceIDs(t Table) []ServiceID {
	ids := make([]ServiceID, 0, len(t))
	for id := range t {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareServiceID)
	return ids
}

func sortedDestinationIDs(m map[DestinationID]Destination) []DestinationID {
	ids := make([]DestinationID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareDestinationID)
	return ids
}
