package config

import (
	"fmt"
	"net/netip"
)

// fakeResolver knows a few names, like a small /etc/hosts and /etc/services.
type fakeResolver struct{}

var testResolver Resolver = fakeResolver{}

var fakeHosts = map[string][2]string{
	"localhost":       {"127.0.0.1", "::1"},
	"web1":            {"192.0.2.11", "2001:db8::11"},
	"web2":            {"192.0.2.12", "2001:db8::12"},
	"web4":            {"192.0.2.14", ""},
	"www.example.com": {"192.0.2.80", "2001:db8::80"},
}

var fakeServices = map[string]map[string]uint16{
	"http":   {"tcp": 80},
	"https":  {"tcp": 443, "udp": 443},
	"domain": {"tcp": 53, "udp": 53},
	"ftp":    {"tcp": 21},
	"smtp":   {"tcp": 25},
	"sip":    {"tcp": 5060, "udp": 5060},
}

func (fakeResolver) LookupAddr(host string, ipv6 bool) (netip.Addr, error) {
	h, ok := fakeHosts[host]
	i := 0
	if ipv6 {
		i = 1
	}
	if !ok || h[i] == "" {
		return netip.Addr{}, fmt.Errorf("no such host %s", host)
	}
	return netip.MustParseAddr(h[i]), nil
}

func (fakeResolver) LookupPort(proto, service string) (uint16, error) {
	m, ok := fakeServices[service]
	if !ok {
		return 0, fmt.Errorf("unknown service %s", service)
	}
	if proto == "" {
		for _, p := range []string{"tcp", "udp"} {
			if n, ok := m[p]; ok {
				return n, nil
			}
		}
	}
	if n, ok := m[proto]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown service %s/%s", service, proto)
}
