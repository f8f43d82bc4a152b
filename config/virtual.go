package config

import (
	"fmt"
	"regexp"
	"slices"
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
	v.CheckType = CheckNegotiate
	if vs.fwm {
		v.Protocol = FWM
		v.Service = "none"
	} else {
		v.Protocol = TCP
		if vs.portText == "53" || vs.portText == "domain" {
			v.Protocol = UDP
		}
	}
	v.Scheduler = "wrr"
	v.CheckCommand = "/bin/true"
	v.Request = "/"
	v.HTTPMethod = "GET"
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

// vdirective applies one per-virtual directive (the text after the indentation, comment removed).
func (p *parser) vdirective(vs *vspec, ln int, cmd string) string {
	v := &vs.v
	c := &vs.c
	if name, val, ok := p.realDirective(cmd); ok {
		if vs.ipv6 != (name == "real6") {
			want := "real"
			if vs.ipv6 {
				want = "real6"
			}
			return fmt.Sprintf(`cannot specify "%s" here.  please use "%s" instead`, name, want)
		}
		rs, msg := p.parseReal(ln, val)
		if msg != "" {
			return msg
		}
		vs.reals = append(vs.reals, rs)
		return ""
	}
	if msg, ok := p.both(ln, cmd, c); ok {
		return msg
	}
	if s, ok := p.quotedDir(ln, cmd, "request"); ok {
		if s == "" {
			return "no request string specified"
		}
		if !strings.HasPrefix(s, "/") {
			s = "/" + s
		}
		v.Request, vs.requestLn = s, ln
		return ""
	}
	if s, ok := p.quotedDir(ln, cmd, "receive"); ok {
		if s == "" {
			return "invalid receive string"
		}
		v.Receive, vs.receiveLn = s, ln
		return ""
	}
	if s, ok := directive(cmd, "checktype"); ok {
		if d := reDigits.FindString(s); d != "" {
			n, err := strconv.ParseInt(d, 10, 64)
			if err != nil || n > maxNum {
				return `checktype must be "connect", "negotiate", "on", "off", "ping", "external", "external-perl" or a positive number`
			}
			if s != d {
				p.warnf(ln, "checktype=%s contains digits, so it is read as checktype=%d (a negotiate check"+
					" after every %d connect checks), as ldirectord 4.12 did", s, n, n)
			}
			v.CheckType, v.CombinedN = CheckCombined, int(n)
			return ""
		}
		w := reWordDash.FindString(s)
		ct, ok := map[string]CheckType{"connect": CheckConnect, "negotiate": CheckNegotiate, "ping": CheckPing,
			"off": CheckOff, "on": CheckOn, "external": CheckExternal, "external-perl": CheckExternalPerl}[w]
		if !ok {
			return `checktype must be "connect", "negotiate", "on", "off", "ping", "external", "external-perl" or a positive number`
		}
		p.wordWarn(ln, "checktype", s, w)
		v.CheckType, v.CombinedN = ct, 0
		return ""
	}
	if s, ok := quotedOrNot(cmd, "checkcommand"); ok {
		if s == "" {
			return "invalid check command"
		}
		v.CheckCommand = s
		return ""
	}
	if s, ok := directive(cmd, "checktimeout"); ok {
		return p.num(ln, "checktimeout", s, &c.checkTimeout, "invalid check timeout")
	}
	if _, ok := directive(cmd, "connecttimeout"); ok {
		return "connecttimeout directive deprecated in favour of negotiatetimeout"
	}
	if s, ok := directive(cmd, "negotiatetimeout"); ok {
		return p.num(ln, "negotiatetimeout", s, &c.negotiateTimeout, "invalid negotiate timeout")
	}
	if s, ok := directive(cmd, "checkcount"); ok {
		if msg := p.num(ln, "checkcount", s, &c.checkCount, "invalid check count"); msg != "" {
			return msg
		}
		p.warnf(ln, "checkcount option is deprecated and slated for removal.  please see 'failurecount'")
		return ""
	}
	if s, ok := directive(cmd, "failurecount"); ok {
		return p.num(ln, "failurecount", s, &c.failureCount, "invalid failure count")
	}
	if s, ok := directive(cmd, "successcount"); ok {
		return p.num(ln, "successcount", s, &c.successCount, "invalid success count")
	}
	if s, ok := directive(cmd, "checkinterval"); ok {
		return p.num(ln, "checkinterval", s, &c.checkInterval, "invalid checkinterval")
	}
	if s, ok := directive(cmd, "checkport"); ok {
		d := reDigits.FindString(s)
		if d == "" {
			return "invalid port"
		}
		n, err := strconv.ParseUint(d, 10, 64)
		if err != nil || n < 1 || n > 65535 {
			return "checkport must be in range 1..65535"
		}
		p.wordWarn(ln, "checkport", s, d)
		v.CheckPort = uint16(n)
		return ""
	}
	for _, q := range []struct {
		name, msg string
		dst       *string
	}{{"login", "invalid login string", &v.Login}, {"passwd", "invalid password", &v.Passwd},
		{"database", "invalid database", &v.Database}, {"secret", "invalid secret", &v.Secret}} {
		if s, ok := p.quotedDir(ln, cmd, q.name); ok {
			if s == "" {
				return q.msg
			}
			*q.dst = s
			return ""
		}
	}
	if s, ok := p.quotedDir(ln, cmd, "load"); ok {
		w := reWord.FindString(s)
		if w == "" {
			return "invalid string for load testing"
		}
		v.Load = w
		return ""
	}
	if s, ok := directive(cmd, "scheduler"); ok {
		w := reLower.FindString(s)
		if w == "" {
			return "invalid scheduler, should be only lowercase letters (a-z)"
		}
		p.wordWarn(ln, "scheduler", s, w)
		v.Scheduler, vs.schedLn = w, ln
		return ""
	}
	if s, ok := directive(cmd, "persistent"); ok {
		d := reDigits.FindString(s)
		n, err := strconv.ParseUint(d, 10, 32)
		if d == "" || err != nil {
			return "invalid persistent timeout"
		}
		p.wordWarn(ln, "persistent", s, d)
		v.Persistent, v.IsPersistent = uint32(n), true
		return ""
	}
	if s, ok := directive(cmd, "schedflags"); ok {
		w := reNonSpace.FindString(s)
		if w == "" {
			return "invalid sched-flags"
		}
		v.SchedFlags = w
		return ""
	}
	if s, ok := directive(cmd, "netmask"); ok {
		if vs.ipv6 {
			n, err := strconv.ParseUint(s, 10, 64)
			if !isDigits(s) || err != nil || n < 1 || n > 128 {
				return "invalid netmask: a prefix length between 1 and 128 is required"
			}
			v.Netmask = uint32(n)
			return ""
		}
		if !reQuad.MatchString(s) {
			return "invalid netmask: dotted quad notation is required"
		}
		var m uint32
		for _, part := range strings.Split(s, ".") {
			n, err := strconv.ParseUint(part, 10, 64)
			if err != nil || n > 255 {
				return "invalid netmask: dotted quad notation is required (each part 0..255)"
			}
			m = m<<8 | uint32(n)
		}
		v.Netmask = m
		return ""
	}
	if s, ok := directive(cmd, "protocol"); ok {
		w := reWord.FindString(s)
		if w == "" {
			return "invalid protocol"
		}
		if vs.fwm {
			if w != "fwm" {
				return "protocol must be fwm if the virtual service is a fwmark (a number)"
			}
		} else {
			switch w {
			case "tcp":
				v.Protocol = TCP
			case "udp":
				v.Protocol = UDP
			case "sctp":
				v.Protocol = SCTP
			default:
				return "protocol must be tcp, udp or sctp if the virtual service is an address and port"
			}
		}
		p.wordWarn(ln, "protocol", s, w)
		return ""
	}
	if s, ok := directive(cmd, "ops"); ok {
		return yesNo(s, &v.OPS, "ops must be 'yes' or 'no'")
	}
	if s, ok := directive(cmd, "service"); ok {
		w := reWord.FindString(s)
		if !slices.Contains(Services, w) {
			return "service must be " + strings.Join(Services[:len(Services)-1], ", ") + " or " + Services[len(Services)-1]
		}
		p.wordWarn(ln, "service", s, w)
		v.Service = w
		vs.service = true
		switch {
		case w == "ftp" && v.Login == "":
			v.Login = "anonymous"
		case w == "sip" && v.Login == "":
			v.Login = "ldirectord@" + hostname()
		}
		if w == "ftp" && v.Passwd == "" {
			v.Passwd = "ldirectord@" + hostname()
		}
		return ""
	}
	if s, ok := directive(cmd, "httpmethod"); ok {
		w := strings.ToUpper(reWord.FindString(s))
		if w != "GET" && w != "HEAD" {
			return "httpmethod must be GET or HEAD"
		}
		if !strings.EqualFold(s, w) {
			p.warnf(ln, "httpmethod=%s is read as %q", s, w)
		}
		v.HTTPMethod = w
		return ""
	}
	if s, ok := directive(cmd, "virtualhost"); ok {
		// /\"?([^\"]*)\"?/
		s = strings.TrimPrefix(s, `"`)
		if i := strings.IndexByte(s, '"'); i >= 0 {
			s = s[:i]
		}
		v.VirtualHost, vs.vhostLn = s, ln
		return ""
	}
	if m := reFallDir.FindStringSubmatch(cmd); m != nil {
		if vs.ipv6 != (m[2] == "6") {
			want := "fallback"
			if vs.ipv6 {
				want = "fallback6"
			}
			return fmt.Sprintf(`cannot specify "%s" here.  please use "%s" instead`, m[1], want)
		}
		f, msg := p.parseFallback(ln, m[3], vs.ipv6)
		if msg != "" {
			return msg
		}
		if f.portText == "" {
			f.portText = vs.portText
			if vs.fwm {
				f.portText = "0"
			}
		}
		vs.fallback = f
		return ""
	}
	if s, ok := quotedOrNot(cmd, "fallbackcommand"); ok {
		if s == "" {
			return "invalid fallback command"
		}
		c.fallbackCommand = sval{v: s, set: true, line: ln}
		return ""
	}
	if s, ok := quotedOrNot(cmd, "monitorfile"); ok {
		if s == "" {
			return "unable to open monitorfile : No such file or directory"
		}
		v.MonitorFile = s
		vs.monitorLn = ln
		return ""
	}
	if s, ok := directive(cmd, "servicename"); ok {
		v.ServiceName = s
		return ""
	}
	if s, ok := directive(cmd, "comment"); ok {
		v.Comment = s
		return ""
	}
	return fmt.Sprintf("Unknown command %q", Excerpt(p.lines[ln-1]))
}

// quotedOrNot matches `^name\s*=\s*"(.*)"` and else `^name\s*=\s*(.*)`.
func quotedOrNot(line, name string) (string, bool) {
	if v, _, ok := quoted(line, name); ok {
		return v, true
	}
	return directive(line, name)
}
