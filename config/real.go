package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

const perlAddr = `\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-fa-f:]+\]`

var (
	// reReal is ldirectord's real-server regex (L2019), unanchored, with its A-f typo.
	reReal = regexp.MustCompile(`(` + perlAddr + `)(->(` + perlAddr + `))?(:(\d+|[A-Za-z0-9_-]+))?` + ws + `+(.*)`)

	rePerlFwd     = regexp.MustCompile(`(\w+)(.*)`)
	rePerlWeight  = regexp.MustCompile(ws + `+(\d+)(.*)`)
	rePerlStrings = regexp.MustCompile(ws + `+"(.*)"[, ]` + ws + `*"(.*)"(.*)`)
	rePerlLower   = regexp.MustCompile(ws + `+l:(\d+)(.*)`)
	rePerlUpper   = regexp.MustCompile(ws + `+u:(\d+)(.*)`)
	rePerlNonWS   = regexp.MustCompile(nws)
)

// realFlags is what follows the address of a real line: weight, per-real check strings, thresholds.
type realFlags struct {
	fwd              Forward
	weight           int
	own              bool
	request, receive string
	lower, upper     uint32
	// ownRequestOnly is 4.12's bug W7: the request starts with '/', so receive and all that follows are
	// lost (the virtual's receive is used).
	ownRequestOnly bool
}

var fwdNames = map[string]Forward{"gate": ForwardGate, "masq": ForwardMasq, "ipip": ForwardIPIP}

func parseU32(d string) (uint32, bool) {
	n, err := strconv.ParseUint(d, 10, 32)
	return uint32(n), err == nil
}

// perlFlags is ldirectord 4.12's add_real_server. fixW7 keeps the receive string and the thresholds of a
// request that starts with '/'; ignoreJunk accepts text 4.12 would have rejected after the strings.
func perlFlags(flags string, fixW7 bool) (realFlags, string) {
	r := realFlags{weight: 1}
	m := rePerlFwd.FindStringSubmatch(flags)
	if m == nil {
		return r, "forward method must be gate, masq or ipip"
	}
	f, ok := fwdNames[m[1]]
	if !ok {
		return r, "forward method must be gate, masq or ipip"
	}
	r.fwd = f
	rest, defined := m[2], true
	if m := rePerlWeight.FindStringSubmatch(rest); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > maxNum {
			return r, fmt.Sprintf("invalid weight %s for real server: it must be at most %d", m[1], maxNum)
		}
		r.weight, rest = int(n), m[2]
	}
	if m := rePerlStrings.FindStringSubmatch(rest); m != nil {
		r.own = true
		r.request = m[1]
		if strings.HasPrefix(m[1], "/") && !fixW7 {
			r.ownRequestOnly = true
			defined = false
		} else {
			if !strings.HasPrefix(r.request, "/") {
				r.request = "/" + r.request
			}
			r.receive, rest = m[2], m[3]
		}
	}
	if !defined {
		return r, ""
	}
	if m := rePerlLower.FindStringSubmatch(rest); m != nil {
		n, ok := parseU32(m[1])
		if !ok {
			return r, fmt.Sprintf("invalid lower threshold l:%s for real server", m[1])
		}
		r.lower, rest = n, m[2]
	}
	if m := rePerlUpper.FindStringSubmatch(rest); m != nil {
		n, ok := parseU32(m[1])
		if !ok {
			return r, fmt.Sprintf("invalid upper threshold u:%s for real server", m[1])
		}
		r.upper, rest = n, m[2]
	}
	if rePerlNonWS.MatchString(rest) {
		return r, fmt.Sprintf("Invalid real server line, around %q", Excerpt(rest))
	}
	return r, ""
}

var reThreshold = regexp.MustCompile(`^([lu]):(\d+)$`)

// saneFlags reads the same grammar as a tokenizer: METHOD [WEIGHT] ["REQUEST"[,| ]"RECEIVE"] [l:N] [u:N],
// thresholds in any order, also in the quoted form of the manual ("l:3" "u:10"). ok is false when the
// text does not fit.
func saneFlags(flags string) (r realFlags, msg string, ok bool) {
	r.weight = 1
	s := flags
	isWS := func(b byte) bool { return strings.IndexByte("\t\n\v\f\r ", b) >= 0 }
	skip := func() {
		for s != "" && isWS(s[0]) {
			s = s[1:]
		}
	}
	word := func() string {
		i := 0
		for i < len(s) && !isWS(s[i]) && s[i] != '"' && s[i] != ',' {
			i++
		}
		w := s[:i]
		s = s[i:]
		return w
	}
	str := func() (string, bool) {
		if s == "" || s[0] != '"' {
			return "", false
		}
		i := strings.IndexByte(s[1:], '"')
		if i < 0 {
			return "", false
		}
		v := s[1 : 1+i]
		s = s[2+i:]
		return v, true
	}
	f, ok := fwdNames[word()]
	if !ok {
		return r, "", false
	}
	r.fwd = f
	seenW, seenS, seenL, seenU := false, false, false, false
	threshold := func(kind, d string) bool {
		n, ok := parseU32(d)
		if !ok {
			return false
		}
		if kind == "l" && !seenL {
			r.lower, seenL = n, true
			return true
		}
		if kind == "u" && !seenU {
			r.upper, seenU = n, true
			return true
		}
		return false
	}
	for {
		if s != "" && !isWS(s[0]) {
			return r, "", false
		}
		skip()
		if s == "" {
			return r, "", true
		}
		if s[0] == '"' {
			a, ok := str()
			if !ok {
				return r, "", false
			}
			if m := reThreshold.FindStringSubmatch(a); m != nil && (s == "" || isWS(s[0])) {
				if !threshold(m[1], m[2]) {
					return r, "", false
				}
				continue
			}
			if seenS || seenL || seenU {
				return r, "", false
			}
			// ldirectord's separator: exactly one ',' or ' ', then optional blanks.
			if s == "" || (s[0] != ',' && s[0] != ' ') {
				return r, "", false
			}
			s = s[1:]
			skip()
			b, ok := str()
			if !ok {
				return r, "", false
			}
			if !strings.HasPrefix(a, "/") {
				a = "/" + a
			}
			r.own, r.request, r.receive, seenS = true, a, b, true
			continue
		}
		w := word()
		switch {
		case isDigits(w) && !seenW && !seenS && !seenL && !seenU:
			n, err := strconv.ParseInt(w, 10, 64)
			if err != nil || n > maxNum {
				return r, fmt.Sprintf("invalid weight %s for real server: it must be at most %d", w, maxNum), false
			}
			r.weight, seenW = int(n), true
		case reThreshold.MatchString(w):
			m := reThreshold.FindStringSubmatch(w)
			if !threshold(m[1], m[2]) {
				return r, "", false
			}
		default:
			return r, "", false
		}
	}
}

// parseReal reads the value of a real=/real6= line (without resolving anything).
func (p *parser) parseReal(ln int, val string) (realSpec, string) {
	if !p.slow {
		if host, port, fwd, weight, ok := fastReal(val); ok {
			return realSpec{line: ln, host: host, portText: port, fwd: fwd, weight: weight}, ""
		}
	}
	return p.parseRealRegexp(ln, val)
}

// parseRealRegexp is parseReal for every form of the line.
func (p *parser) parseRealRegexp(ln int, val string) (realSpec, string) {
	rs := realSpec{line: ln}
	loc := reReal.FindStringSubmatchIndex(val)
	if loc == nil {
		return rs, "invalid address for real server (wrong format)"
	}
	sub := func(i int) string {
		if loc[2*i] < 0 {
			return ""
		}
		return val[loc[2*i]:loc[2*i+1]]
	}
	if loc[0] > 0 {
		p.warnf(ln, "real=%s: %q before the address is ignored, as ldirectord 4.12 did", val, val[:loc[0]])
	}
	rs.host, rs.host2, rs.portText = sub(1), sub(3), sub(5)
	flags := sub(6)

	perl, perlMsg := perlFlags(flags, false)
	sane, saneMsg, saneOK := saneFlags(flags)
	switch {
	case saneOK:
		if perlMsg == "" && !p.altVariant {
			if d := diffFlags(sane, perl); d != "" {
				p.warnf(ln, "this real server line means something else than in ldirectord 4.12: %s", d)
			}
		}
		rs.apply(sane)
	case saneMsg != "":
		return rs, saneMsg
	case perlMsg == "":
		// ldirectord 4.12 accepted the line: keep accepting it, with its reading of the line.
		lenient, msg := perlFlags(flags, true)
		if msg != "" || perl.ownRequestOnly {
			p.warnf(ln, "real server line: text after the check strings is ignored, as ldirectord 4.12 did: %q", flags)
			lenient = perl
			lenient.ownRequestOnly = false
			if pm := rePerlStrings.FindStringSubmatch(flagsAfterWeight(flags)); pm != nil {
				lenient.receive = pm[2]
			}
		} else {
			p.warnf(ln, "real server line %q is not in the documented form; it is read as %s", flags, describeFlags(lenient))
		}
		rs.apply(lenient)
	default:
		return rs, perlMsg
	}
	return rs, ""
}

// flagsAfterWeight repeats the first steps of perlFlags to find the text the strings regex sees.
func flagsAfterWeight(flags string) string {
	m := rePerlFwd.FindStringSubmatch(flags)
	if m == nil {
		return ""
	}
	rest := m[2]
	if w := rePerlWeight.FindStringSubmatch(rest); w != nil {
		rest = w[2]
	}
	return rest
}

func (rs *realSpec) apply(f realFlags) {
	rs.fwd, rs.weight, rs.own, rs.request, rs.receive, rs.lower, rs.upper =
		f.fwd, f.weight, f.own, f.request, f.receive, f.lower, f.upper
}

func describeFlags(f realFlags) string {
	s := fmt.Sprintf("%s, weight %d", f.fwd, f.weight)
	if f.own {
		s += fmt.Sprintf(", request %q, receive %q", f.request, f.receive)
	}
	if f.lower != 0 {
		s += fmt.Sprintf(", l:%d", f.lower)
	}
	if f.upper != 0 {
		s += fmt.Sprintf(", u:%d", f.upper)
	}
	return s
}

// diffFlags describes how ldirectord 4.12's reading (old) differs from ours (now).
func diffFlags(now, old realFlags) string {
	var d []string
	if now.weight != old.weight {
		d = append(d, fmt.Sprintf("weight is %d (ldirectord 4.12 read %d, from inside the quoted strings)", now.weight, old.weight))
	}
	if old.ownRequestOnly {
		d = append(d, fmt.Sprintf("receive %q and the thresholds after it are now used (ldirectord 4.12 ignored"+
			" everything after a request starting with '/', and for http also the request)", now.receive))
	} else {
		if now.own != old.own || now.request != old.request || now.receive != old.receive {
			if now.own {
				d = append(d, fmt.Sprintf("request %q, receive %q", now.request, now.receive))
			} else {
				d = append(d, "no per-real request and receive")
			}
			if old.own {
				d[len(d)-1] += fmt.Sprintf(" (ldirectord 4.12: request %q, receive %q)", old.request, old.receive)
			} else {
				d[len(d)-1] += " (ldirectord 4.12: none)"
			}
		}
		if now.lower != old.lower || now.upper != old.upper {
			d = append(d, fmt.Sprintf("thresholds l:%d u:%d (ldirectord 4.12: l:%d u:%d)", now.lower, now.upper, old.lower, old.upper))
		}
	}
	return strings.Join(d, "; ")
}

var (
	reFallbackTail = regexp.MustCompile(`(` + nws + `+)(` + ws + `+(` + nws + `+))?` + ws + `*$`)
	reFallbackPort = regexp.MustCompile(`(:(\d+|[A-Za-z0-9_-]+))?$`)
)

// parseFallback is ldirectord's parse_fallback: `host[:port] [gate|masq|ipip]`.
func (p *parser) parseFallback(ln int, val string, ipv6 bool) (*fallbackSpec, string) {
	f := &fallbackSpec{line: ln, ipv6: ipv6}
	line := val
	var fwd string
	if m := reFallbackTail.FindStringSubmatchIndex(val); m != nil {
		if m[0] > 0 && trimRight(val[:m[0]]) != "" {
			p.warnf(ln, "fallback %s: %q is ignored, as ldirectord 4.12 did", val, trimRight(val[:m[0]]))
		}
		line = val[m[2]:m[3]]
		if m[6] >= 0 {
			fwd = val[m[6]:m[7]]
		}
	}
	if m := reFallbackPort.FindStringSubmatchIndex(line); m != nil {
		if m[4] >= 0 {
			f.portText = line[m[4]:m[5]]
		}
		f.host = line[:m[0]]
	}
	if fwd != "" {
		fw, ok := fwdNames[fwd]
		if !ok {
			return nil, "forward method must be gate, masq or ipip"
		}
		f.fwd = fw
	}
	if ipv6 && !strings.HasPrefix(f.host, "[") && strings.Contains(f.host, ":") {
		p.warnf(ln, "fallback6=%s is read as host %q port %q, as ldirectord 4.12 did; write [address]:port", val, f.host, f.portText)
	}
	if f.host == "" {
		// getaddrinfo("") is the loopback address: 4.12 accepted an empty fallback as the local host.
		f.host = "127.0.0.1"
		if ipv6 {
			f.host = "[::1]"
		}
		p.warnf(ln, "fallback without an address is the local host %s, as in ldirectord 4.12", stripBrackets(f.host))
	}
	return f, ""
}
