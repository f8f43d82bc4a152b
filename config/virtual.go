package config

import (
	"regexp"
	"strconv"
	"strings"
)

// virtualSection parses `virtual=`/`virtual6=` at line ln and the indented block after it.
func (p *parser) virtualSection(ln int, ipv6 bool, val string) {
	vs := &vspec{line: ln, ipv6: ipv6}
	vs.v.Line = ln
	vs.v.IPv6 = ipv6
	ok := p.virtualAddr(vs, val)
	if ok {
		p.st.virtuals = append(p.st.virtuals, vs)
	}
	for p.pos < len(p.lines) {
		raw := p.lines[p.pos]
		if p.isCommentLine(raw) {
			p.pos++
			continue
		}
		m, ok := p.indented(stripCommentNaive(raw))
		if !ok {
			return // the line ends the section and is read again as a global line
		}
		p.pos++
		cur := p.pos
		var buf [2]string
		variants := append(buf[:0], trimRight(m))
		// Without a '#' both ways of removing the comment give the same line.
		if p.slow || strings.IndexByte(raw, '#') >= 0 {
			if q, ok := p.indented(stripCommentQuoted(raw)); ok {
				if v := trimRight(q); v != variants[0] {
					// A '#' inside quotes: ldirectord 4.12 cut the line there (and usually failed).
					variants = append(variants, v)
				}
			}
		}
		var firstErr string
		for i, v := range variants {
			// A real= line changes vs only by appending to vs.reals, as its last step: no copy needed.
			trial := vs
			if _, _, isReal := p.realDirective(v); !isReal || p.slow {
				trial = vs.clone()
			}
			nw := len(p.warns)
			p.altVariant = i > 0
			msg := p.vdirective(trial, cur, v)
			p.altVariant = false
			if msg == "" {
				if trial != vs {
					*vs = *trial
				}
				firstErr = ""
				break
			}
			p.warns = p.warns[:nw]
			if i == 0 {
				firstErr = msg
			}
		}
		if firstErr != "" {
			p.errorf(cur, "%s", firstErr)
		}
	}
}

func (vs *vspec) clone() *vspec {
	n := *vs
	// reals is shared, not copied (copying it made a section of n reals cost O(n²)): vdirective only ever
	// appends to it, as its last step, so a trial that fails leaves vs.reals[:len(vs.reals)] as it was.
	if vs.fallback != nil {
		f := *vs.fallback
		n.fallback = &f
	}
	return &n
}

// virtualAddr reads the value of virtual=/virtual6=, in ldirectord's order of forms.
func (p *parser) virtualAddr(vs *vspec, val string) bool {
	ln := vs.line
	var rest string
	switch {
	case !vs.ipv6 && reVirtV4.MatchString(val):
		m := reVirtV4.FindStringSubmatch(val)
		vs.host, vs.portText, rest = m[1], m[2], val[len(m[0]):]
	case reVirtHost.MatchString(val):
		m := reVirtHost.FindStringSubmatch(val)
		vs.host, vs.portText, rest = m[1], m[2], val[len(m[0]):]
	case reVirtFwm.MatchString(val):
		m := reVirtFwm.FindStringSubmatch(val)
		vs.host, vs.fwm, rest = m[1], true, val[len(m[0]):]
		n, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			p.errorf(ln, "invalid firewall mark %s for virtual server: it must be at most %d", m[1], uint32(1<<32-1))
			return false
		}
		vs.v.FWMark = uint32(n)
		if strings.HasPrefix(rest, ".") {
			p.warnf(ln, "virtual=%s has no port, so it is read as firewall mark %d, as ldirectord 4.12 did;"+
				" write virtual=%d for a firewall mark, or add :port", trimRight(stripCommentNaive(val)), n, n)
			rest = ""
		}
	case reVirtV6.MatchString(val) && !vs.ipv6:
		p.errorf(ln, `cannot specify an IPv6 address here. please use "virtual6" instead.`)
		return false
	case reVirtV6.MatchString(val):
		m := reVirtV6.FindStringSubmatch(val)
		if _, _, ok := parseLiteral(m[1], true); !ok {
			p.errorf(ln, "invalid ipv6 address for virtual server")
			return false
		}
		vs.host, vs.portText, rest = m[1], m[2], val[len(m[0]):]
	default:
		p.errorf(ln, "invalid address for virtual server")
		return false
	}
	if r := trimRight(stripCommentNaive(rest)); r != "" {
		p.warnf(ln, "text after the virtual service address is ignored: %q", r)
	}
	// Defaults (ldirectord L1369-1399).
	v := &vs.v
	v.Host = vs.host
	v.CheckType = defaults.checkType
	if vs.fwm {
		v.Protocol = FWM
		v.Service = "none"
	} else {
		v.Protocol = TCP
		if vs.portText == "53" || vs.portText == "domain" {
			v.Protocol = UDP
		}
	}
	v.Scheduler = defaults.scheduler
	v.CheckCommand = defaults.checkCommand
	v.Request = defaults.request
	v.HTTPMethod = defaults.httpMethod
	return true
}

var (
	reWord     = regexp.MustCompile(`(\w+)`)
	reWordDash = regexp.MustCompile(`([\w-]+)`)
	reLower    = regexp.MustCompile(`([a-z]+)`)
	reNonSpace = regexp.MustCompile(`(` + nws + `+)`)
	reQuad     = regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+$`)
	reRealDir  = regexp.MustCompile(`^(real(6)?)` + ws + `*=` + ws + `*(.*)`)
	reFallDir  = regexp.MustCompile(`^(fallback(6)?)` + ws + `*=` + ws + `*(.*)`)
)

// wordWarn warns when an extracted word is not the whole value.
func (p *parser) wordWarn(ln int, name, val, word string) {
	if val != word {
		p.warnf(ln, "%s=%s is read as %q", name, val, word)
	}
}

// quotedDir handles the directives whose value must be quoted.
func (p *parser) quotedDir(ln int, line, name string) (string, bool) {
	v, rest, ok := quoted(line, name)
	if !ok {
		return "", false
	}
	if r := trimRight(rest); r != "" {
		p.warnf(ln, "%s: text after the closing quote is ignored: %q", name, r)
	}
	return v, true
}

// vdirective applies one per-virtual directive (the text after the indentation, comment removed) through
// the table of directives.go.
func (p *parser) vdirective(vs *vspec, ln int, cmd string) string { return p.apply(ln, cmd, &vs.c, vs) }

// quotedOrNot matches `^name\s*=\s*"(.*)"` and else `^name\s*=\s*(.*)`.
func quotedOrNot(line, name string) (string, bool) {
	if v, _, ok := quoted(line, name); ok {
		return v, true
	}
	return directive(line, name)
}
