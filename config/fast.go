package config

import (
	"net/netip"
	"strings"
)

// Fast paths for the lines a large config is made of (an indented `real=IPv4:PORT masq WEIGHT`): each
// function here gives exactly what the regexp it stands for gives, or says it cannot (ok false) and the
// caller takes the regexp path. fast_test.go checks each against its regexp on random input, and
// FuzzFastPaths whole files parsed both ways.

// isPerlWS is Perl's \s (ws): Go's \s without the vertical tab is not it.
func isPerlWS(b byte) bool {
	switch b {
	case '\t', '\n', '\v', '\f', '\r', ' ':
		return true
	}
	return false
}

// isCommentLine is reCommentLine.MatchString(s): `^\s*#`.
func isCommentLine(s string) bool {
	i := 0
	for i < len(s) && isPerlWS(s[i]) {
		i++
	}
	return i < len(s) && s[i] == '#'
}

// indented is reIndented.FindStringSubmatch(strings.ReplaceAll(s, "\t", "    ")) for a line without '\n'
// (m[1], m != nil): `^ {4,}(.+)` after tab expansion. The expanded text is built only when a tab follows
// the indentation.
func indented(s string) (string, bool) {
	n, i := 0, 0 // n is the width of the leading blanks once expanded
	for ; i < len(s); i++ {
		if s[i] == ' ' {
			n++
		} else if s[i] == '\t' {
			n += 4
		} else {
			break
		}
	}
	if n < 4 {
		return "", false
	}
	if i == len(s) {
		// Only blanks: ` {4,}` gives its last space back to `(.+)`, if it can keep 4.
		if n > 4 {
			return " ", true
		}
		return "", false
	}
	rest := s[i:]
	if strings.IndexByte(rest, '\t') >= 0 {
		rest = strings.ReplaceAll(rest, "\t", "    ")
	}
	return rest, true
}

// realDirective is reRealDir.FindStringSubmatch(cmd): `^(real(6)?)\s*=\s*(.*)`, returning m[1] and m[3].
func realDirective(cmd string) (name, val string, ok bool) {
	if !strings.HasPrefix(cmd, "real") {
		return "", "", false
	}
	if v, ok := directive(cmd, "real6"); ok {
		return "real6", v, true
	}
	if v, ok := directive(cmd, "real"); ok {
		return "real", v, true
	}
	return "", "", false
}

// fastReal reads the common value of a real= line, `D.D.D.D[:DIGITS]<ws>gate|masq|ipip[<ws>DIGITS]` with
// at most 9 weight digits and nothing after, by hand. For such a value reReal matches at 0 with this host
// and port and no range, and perlFlags and saneFlags read the same method and weight and nothing else, so
// parseReal would return exactly this, without a warning. ok is false for every other value.
func fastReal(val string) (host, port string, fwd Forward, weight int, ok bool) {
	i := 0
	digits := func() bool {
		j := i
		for i < len(val) && val[i] >= '0' && val[i] <= '9' {
			i++
		}
		return i > j
	}
	for k := range 4 {
		if k > 0 {
			if i >= len(val) || val[i] != '.' {
				return "", "", 0, 0, false
			}
			i++
		}
		if !digits() {
			return "", "", 0, 0, false
		}
	}
	host = val[:i]
	if i < len(val) && val[i] == ':' {
		i++
		j := i
		if !digits() {
			return "", "", 0, 0, false
		}
		port = val[j:i]
	}
	// At least one blank, then the method.
	j := i
	for i < len(val) && isPerlWS(val[i]) {
		i++
	}
	if i == j || len(val)-i < 4 {
		return "", "", 0, 0, false
	}
	switch val[i : i+4] {
	case "gate":
		fwd = ForwardGate
	case "masq":
		fwd = ForwardMasq
	case "ipip":
		fwd = ForwardIPIP
	default:
		return "", "", 0, 0, false
	}
	i += 4
	if i == len(val) {
		return host, port, fwd, 1, true
	}
	j = i
	for i < len(val) && isPerlWS(val[i]) {
		i++
	}
	if i == j {
		return "", "", 0, 0, false // "masqX"
	}
	j = i
	if !digits() || i != len(val) || i-j > 9 {
		return "", "", 0, 0, false
	}
	for _, c := range val[j:i] {
		weight = weight*10 + int(c-'0')
	}
	return host, port, fwd, weight, true
}

// parseQuad reads a plain dotted quad (four parts of 0..255 without leading zeros): the only form
// parseIPv4 calls canonical, and by far the most common one.
func parseQuad(s string) (netip.Addr, bool) {
	var b [4]byte
	i := 0
	for k := range 4 {
		if k > 0 {
			if i >= len(s) || s[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		j, v := i, 0
		for i < len(s) && i-j < 3 && s[i] >= '0' && s[i] <= '9' {
			v = v*10 + int(s[i]-'0')
			i++
		}
		if i == j || v > 255 || (s[j] == '0' && i-j > 1) {
			return netip.Addr{}, false
		}
		b[k] = byte(v)
	}
	if i != len(s) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// The parser's entry points to the fast paths: with p.slow (set by tests only) every line takes the
// regexp path, so that the two can be compared on whole files.

func (p *parser) isCommentLine(s string) bool {
	if p.slow {
		return reCommentLine.MatchString(s)
	}
	return isCommentLine(s)
}

func (p *parser) indented(s string) (string, bool) {
	if p.slow {
		m := reIndented.FindStringSubmatch(strings.ReplaceAll(s, "\t", "    "))
		if m == nil {
			return "", false
		}
		return m[1], true
	}
	return indented(s)
}

func (p *parser) realDirective(cmd string) (name, val string, ok bool) {
	if p.slow {
		m := reRealDir.FindStringSubmatch(cmd)
		if m == nil {
			return "", "", false
		}
		return m[1], m[3], true
	}
	return realDirective(cmd)
}
