package supervisor

import (
	"net/netip"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// vs builds a TCP virtual with the defaults ldirectord resolves (checkinterval 1s for quick tests).
func vs(addr string, reals ...*config.Real) *config.Virtual {
	ap := netip.MustParseAddrPort(addr)
	v := &config.Virtual{Host: ap.Addr().String(), Addr: ap.Addr(), Port: ap.Port(), IPv6: ap.Addr().Is6(),
		Protocol: config.TCP, Scheduler: "wrr", CheckType: config.CheckNegotiate, Service: "http",
		Request: "/", HTTPMethod: "GET", CheckTimeout: 5 * time.Second, NegotiateTimeout: 5 * time.Second,
		CheckInterval: time.Second, CheckCount: 1, FailureCount: 1, SuccessCount: 1, CleanStop: true,
		CheckCommand: "/bin/true", EmailAlertStatus: config.StatusAll, Reals: reals}
	return v
}

func rs(addr string, fwd config.Forward, weight int) *config.Real {
	ap := netip.MustParseAddrPort(addr)
	return &config.Real{Host: ap.Addr().String(), Addr: ap.Addr(), Port: ap.Port(), Forward: fwd, Weight: weight, Request: "/"}
}

func fb(addr string) *config.Fallback {
	ap := netip.MustParseAddrPort(addr)
	return &config.Fallback{Host: ap.Addr().String(), Addr: ap.Addr(), Port: ap.Port(), Forward: config.ForwardGate}
}

func cfgOf(vs ...*config.Virtual) *config.Config {
	return &config.Config{File: "/etc/ha.d/test.cf", CheckInterval: time.Second, Virtuals: vs}
}

// dest is a kernel destination for tables in tests.
func dest(addr string, fwd ipvsctl.Forward, weight int) ipvsctl.Destination {
	ap := netip.MustParseAddrPort(addr)
	return ipvsctl.Destination{DestinationID: ipvsctl.DestinationID{Addr: ap.Addr(), Port: ap.Port()}, Forward: fwd, Weight: weight}
}

// table builds a kernel table: services in the wrr scheduler with the given destinations.
func table(svcs map[string][]ipvsctl.Destination) ipvsctl.Table {
	t := ipvsctl.Table{}
	for addr, ds := range svcs {
		ap := netip.MustParseAddrPort(addr)
		id := ipvsctl.ServiceID{Family: ipvsctl.IPv4, Protocol: ipvsctl.TCP, Addr: ap.Addr(), Port: ap.Port()}
		if ap.Addr().Is6() {
			id.Family = ipvsctl.IPv6
		}
		v := &ipvsctl.VirtualService{Service: ipvsctl.Service{ServiceID: id, Scheduler: "wrr"}, Destinations: map[ipvsctl.DestinationID]ipvsctl.Destination{}}
		for _, d := range ds {
			v.Destinations[d.DestinationID] = d
		}
		t[id] = v
	}
	return t
}
