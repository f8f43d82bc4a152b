package ipvsctl

import (
	"net/netip"
)

// svcID parses "TCP 10.0.0.1:80" style identities; "FWM 7" and "FWM 7 IPv6" for firewall marks.
func svcID(proto Protocol, addrPort string) ServiceID {
	ap := netip.MustParseAddrPort(addrPort)
	f := IPv4
	if ap.Addr().Is6() {
		f = IPv6
	}
	return ServiceID{Family: f, Protocol: proto, Addr: ap.Addr(), Port: ap.Port()}
}

func fwmID(mark uint32, f Family) ServiceID { return ServiceID{Family: f, FWMark: mark} }

func svc(id ServiceID, sched string) Service { return Service{ServiceID: id, Scheduler: sched} }

func dst(addrPort string, fwd Forward, weight int) Destination {
	ap := netip.MustParseAddrPort(addrPort)
	return Destination{DestinationID: DestinationID{Addr: ap.Addr(), Port: ap.Port()}, Forward: fwd, Weight: weight}
}

// table builds a Table from services, each followed by its destinations.
func table(entries ...any) Table {
	t := Table{}
	var cur *VirtualService
	for _, e := range entries {
		switch e := e.(type) {
		case Service:
			cur = &VirtualService{Service: e, Destinations: map[DestinationID]Destination{}}
			t[e.ServiceID] = cur
		case Destination:
			cur.Destinations[e.DestinationID] = e
		default:
			panic("table: unexpected entry")
		}
	}
	return t
}
