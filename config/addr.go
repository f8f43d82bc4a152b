package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// parseIPv4 reads an IPv4 address the way glibc's getaddrinfo (inet_aton) does, as ldirectord 4.12 did:
// one to four parts, each decimal, octal (leading 0) or hex (0x). canonical is false for every form but
// the plain dotted quad, so the caller can warn that "010.0.0.1" means 8.0.0.1.
func parseIPv4(s string) (addr netip.Addr, canonical, ok bool) {
	if a, ok := parseQuad(s); ok {
		return a, true, true
	}
	return parseIPv4Aton(s)
}

// parseIPv4Aton is parseIPv4 for every form.
func parseIPv4Aton(s string) (addr netip.Addr, canonical, ok bool) {
	if s == "" {
		return netip.Addr{}, false, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		v, ok := parseCNumber(p)
		if !ok {
			return netip.Addr{}, false, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i := 0; i < last; i++ {
		if vals[i] > 255 {
			return netip.Addr{}, false, false
		}
		n |= vals[i] << (24 - 8*uint(i))
	}
	if vals[last] >= 1<<(32-8*uint(last)) {
		return netip.Addr{}, false, false
	}
	n |= vals[last]
	a := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	return a, a.String() == s, true
}

// parseCNumber parses an unsigned C integer literal: 0x.. hex, 0.. octal, else decimal.
func parseCNumber(p string) (uint64, bool) {
	if p == "" {
		return 0, false
	}
	base := 10
	digits := p
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, digits = 16, p[2:]
		if digits == "" {
			return 0, true // glibc accepts a bare "0x" as 0
		}
	case len(p) > 1 && p[0] == '0':
		base, digits = 8, p[1:]
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil || strings.ContainsAny(digits, "+-_") {
		return 0, false
	}
	return v, true
}

// parseLiteral reads a literal address of one family: IPv4 in inet_aton form, or IPv6 (brackets already
// removed). It never looks anything up.
func parseLiteral(host string, ipv6 bool) (addr netip.Addr, canonical, ok bool) {
	if ipv6 {
		if !strings.Contains(host, ":") || strings.Contains(host, "%") {
			return netip.Addr{}, false, false
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return netip.Addr{}, false, false
		}
		return a, true, true
	}
	return parseIPv4(host)
}

// stripBrackets removes the brackets of "[v6]".
func stripBrackets(h string) string {
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// numericPort reads a port the way ld_getservbyname does for digits: 0..65535.
func numericPort(s string) (uint16, bool) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > 65535 {
		return 0, false
	}
	return uint16(v), true
}
