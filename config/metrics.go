package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// metricsAddr reads a metrics= value, [ADDR:]PORT, into the address to listen on: only a port means
// 127.0.0.1 (metrics are off the network unless the operator says otherwise), ADDR is an IPv4 address, an
// IPv6 address in brackets, or * for every address; "no" turns metrics off. It returns the error message
// for a bad value.
func metricsAddr(v string) (addr, msg string) {
	const bad = "invalid metrics address: must be [ADDR:]PORT (ADDR an IPv4 address, [IPv6] or *)"
	if v == "no" {
		return "", ""
	}
	host, port := "127.0.0.1", v
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		host, port = v[:i], v[i+1:]
		switch {
		case host == "*":
			host = ""
		case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]"):
			a, err := netip.ParseAddr(host[1 : len(host)-1])
			if err != nil || !a.Is6() || a.Zone() != "" {
				return "", bad
			}
			host = a.String()
		default:
			a, err := netip.ParseAddr(host)
			if err != nil || !a.Is4() {
				return "", bad
			}
			host = a.String()
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '+' {
		return "", "invalid metrics port: must be 1-65535"
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), ""
}

// metricsText writes an address metricsAddr made as a metrics= value.
func metricsText(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "*" + addr
	}
	return addr
}
