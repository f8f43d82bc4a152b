package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
)

// maxRange is the largest real-server range accepted (a /16); maxReals bounds the real servers of one
// config, so that a few range lines cannot exhaust memory.
const (
	maxRange = 65536
	maxReals = 1 << 20
)

type addrResult struct {
	addr netip.Addr
	ok   bool // resolved
	bad  bool // cannot be resolved
}

// lookupAddr resolves a host of one family: literals here, names through r (nil: leave unresolved).
func (p *parser) lookupAddr(ln int, host string, ipv6 bool, r Resolver) addrResult {
	h := stripBrackets(host)
	if addr, canonical, ok := parseLiteral(h, ipv6); ok {
		if !canonical {
			p.warnf(ln, "address %s is read as %s, as ldirectord 4.12 (inet_aton) did", h, addr)
		}
		return addrResult{addr: addr, ok: true}
	}
	if _, _, ok := parseLiteral(h, !ipv6); ok || h == "" {
		return addrResult{bad: true} // a literal of the other family never resolves
	}
	p.needResolver = true
	if r == nil {
		return addrResult{}
	}
	addr, err := r.LookupAddr(h, ipv6)
	if err != nil || !addr.IsValid() || addr.Is6() != ipv6 || addr.Is4In6() {
		return addrResult{bad: true}
	}
	return addrResult{addr: addr, ok: true}
}

// lookupPort resolves a port text: "" is 0, digits must be 0..65535, names go through r.
func lookupPort(text, proto string, r Resolver) (port uint16, ok, bad bool) {
	if text == "" {
		return 0, true, false
	}
	if isDigits(text) {
		n, ok := numericPort(text)
		return n, ok, !ok
	}
	if r == nil {
		return 0, false, false
	}
	switch proto {
	case "fwm":
		return 0, false, true // getservbyname(name, "fwm") fails, as in 4.12
	case "sctp":
		proto = "tcp"
	}
	n, err := r.LookupPort(proto, text)
	if err != nil {
		return 0, false, true
	}
	return n, true, false
}

// lookupPort is lookupPort, noting when the port is a name (see needResolver).
func (p *parser) lookupPort(text, proto string, r Resolver) (port uint16, ok, bad bool) {
	if text != "" && !isDigits(text) {
		p.needResolver = true
	}
	return lookupPort(text, proto, r)
}

// firstSet returns the first set value, else def.
func firstSet(def int64, vals ...ival) int64 {
	for _, v := range vals {
		if v.set {
			return v.v
		}
	}
	return def
}

// build turns the parsed specs into c.Virtuals. With r == nil only literals are resolved and names stay
// unresolved (zero Addr / Port) for Resolve, which calls build again with a resolver.
func (p *parser) build(r Resolver) {
	st := p.st
	c := p.cfg
	g := &st.g
	c.CheckInterval = seconds(firstSet(defaults.checkInterval, g.checkInterval))

	// The global fallbacks' hosts are checked where they are written, even when no virtual uses them.
	for _, f := range []*fallbackSpec{st.fallback, st.fallback6} {
		if f == nil {
			continue
		}
		if a := p.lookupAddr(f.line, f.host, f.ipv6, r); a.bad {
			p.errorf(f.line, "invalid %s address or could not resolve for fallback server: %s", family(f.ipv6), f.host)
		}
		if _, _, bad := lookupPort(f.portText, "tcp", nil); bad {
			p.errorf(f.line, "invalid port for fallback server")
		}
	}

	p.nreals = 0
	fresh := make([]*Virtual, 0, len(st.virtuals))
	seen := map[string]int{}
	for _, vs := range st.virtuals {
		v := vs.v // a copy of the directive values
		// As many as real lines; ranges grow it.
		v.Reals = make([]*Real, 0, len(vs.reals))
		resolved := true
		if !vs.fwm {
			a := p.lookupAddr(vs.line, vs.host, vs.ipv6, r)
			port, pok, pbad := p.lookupPort(vs.portText, v.Protocol.String(), r)
			switch {
			case a.bad || pbad:
				p.errorf(vs.line, "invalid address for virtual service")
				resolved = false
			case !a.ok || !pok:
				resolved = false
			}
			v.Addr, v.Port = a.addr, port
			if !vs.service {
				switch {
				case !pok:
					v.Service = ""
				case len(vs.portText) > 1 && vs.portText[0] == '0' && isDigits(vs.portText):
					v.Service = "none" // 4.12 compares the port text with "80", "443", ...
				default:
					v.Service = DefaultService(port)
				}
			}
		}

		cc := &vs.c
		v.CheckTimeout = seconds(firstSet(defaults.checkTimeout, cc.checkTimeout, cc.negotiateTimeout, g.checkTimeout, g.negotiateTimeout))
		v.NegotiateTimeout = seconds(firstSet(defaults.negotiateTimeout, cc.negotiateTimeout, cc.checkTimeout, g.negotiateTimeout, g.checkTimeout))
		v.CheckInterval = seconds(firstSet(defaults.checkInterval, cc.checkInterval, g.checkInterval))
		v.CheckCount = int(firstSet(defaults.checkCount, cc.checkCount, g.checkCount))
		v.FailureCount = int(firstSet(defaults.failureCount, cc.failureCount, g.failureCount))
		v.SuccessCount = int(firstSet(defaults.successCount, cc.successCount, g.successCount))
		v.Quiescent = pickBool(defaults.quiescent, cc.quiescent, g.quiescent)
		v.CleanStop = pickBool(defaults.cleanStop, cc.cleanStop, g.cleanStop)
		v.FallbackCommand = pickStr(cc.fallbackCommand, g.fallbackCommand)
		v.EmailAlert = pickStr(cc.emailAlert, g.emailAlert)
		v.SMTP = pickStr(cc.smtp, g.smtp)
		v.EmailAlertFreq = seconds(firstSet(defaults.emailAlertFreq, cc.emailAlertFreq, g.emailAlertFreq))
		v.EmailAlertStatus = g.emailAlertStatus.v
		if cc.emailAlertStatus.set {
			v.EmailAlertStatus = cc.emailAlertStatus.v
		}

		if cc.checkInterval.set && !c.Fork {
			p.warnf(cc.checkInterval.line, "checkinterval in virtual service %s is honoured even when fork=no"+
				" (ldirectord 4.12 ignored it and used the global checkinterval)", vs.id(v))
		}

		// Fallback: per virtual, else the global one of the virtual's family.
		f := vs.fallback
		global := false
		if f == nil {
			global = true
			f = st.fallback
			if vs.ipv6 {
				f = st.fallback6
			}
			if f != nil && vs.fwm {
				p.warnf(vs.line, "the global fallback %s now also applies to firewall-mark virtual service %s"+
					" (ldirectord 4.12 produced a broken ipvsadm command for it)", f.host, vs.host)
			}
		}
		if f != nil {
			fb := &Fallback{Line: f.line, Host: stripBrackets(f.host), Forward: f.fwd}
			a := p.lookupAddr(f.line, f.host, f.ipv6, r)
			if a.bad && !global {
				p.errorf(f.line, "invalid %s address or could not resolve for fallback server: %s", family(f.ipv6), f.host)
			}
			fb.Addr = a.addr
			switch {
			case f.portText == "":
				fb.Port = v.Port
			default:
				proto := v.Protocol.String()
				if global && v.Protocol == FWM {
					proto = "tcp" // W15 fixed: a global fallback's port for a fwmark service
				}
				port, _, bad := p.lookupPort(f.portText, proto, r)
				if bad && (!global || !isDigits(f.portText)) {
					p.errorf(f.line, "invalid port for fallback server")
				}
				fb.Port = port
			}
			v.Fallback = fb
		}

		for _, rs := range vs.reals {
			p.buildReals(&v, vs, rs, r)
		}
		p.checkHTTP(&v, vs)

		if resolved {
			id := v.ID()
			if first, dup := seen[id]; dup {
				p.errorf(vs.line, "duplicate virtual server %s (first defined at line %d)", id, first)
			} else {
				seen[id] = vs.line
			}
		}
		nv := v
		fresh = append(fresh, &nv)
	}
	if len(c.Virtuals) == len(fresh) {
		for i := range fresh {
			*c.Virtuals[i] = *fresh[i]
		}
	} else {
		c.Virtuals = fresh
	}
	p.errs = dedupe(p.errs)
}

func dedupe(l ErrorList) ErrorList {
	seen := map[Error]bool{}
	out := l[:0]
	for _, e := range l {
		if !seen[*e] {
			seen[*e] = true
			out = append(out, e)
		}
	}
	return out
}

func family(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

func pickBool(def bool, vals ...bval) bool {
	for _, v := range vals {
		if v.set {
			return v.v
		}
	}
	return def
}

func pickStr(vals ...sval) string {
	for _, v := range vals {
		if v.set {
			return v.v
		}
	}
	return ""
}

// id is the virtual id for messages, also before resolution.
func (vs *vspec) id(v Virtual) string {
	if vs.fwm || v.Addr.IsValid() {
		return v.ID()
	}
	h := vs.host
	if vs.ipv6 {
		h = "[" + h + "]"
	}
	return v.Protocol.String() + ":" + h + ":" + vs.portText
}

// buildReals resolves one real line and appends its real servers (one, or one per address of a range).
func (p *parser) buildReals(v *Virtual, vs *vspec, rs realSpec, r Resolver) {
	ln := rs.line
	mk := func(host string, addr netip.Addr, port uint16) *Real {
		rl := &Real{Line: ln, Host: stripBrackets(host), Addr: addr, Port: port, Forward: rs.fwd, Weight: rs.weight,
			Request: v.Request, Receive: v.Receive, HasOwnCheck: rs.own, Lower: rs.lower, Upper: rs.upper}
		if rs.own {
			rl.Request, rl.Receive = rs.request, rs.receive
		}
		return rl
	}
	a1 := p.lookupAddr(ln, rs.host, vs.ipv6, r)
	if a1.bad {
		p.errorf(ln, "invalid address (%s) for real server (could not resolve host)", rs.host)
		return
	}
	port, _, pbad := p.lookupPort(rs.portText, "", r)
	if pbad {
		p.errorf(ln, "invalid port (%s) for real server (could not resolve port)", rs.portText)
		return
	}
	if rs.host2 == "" {
		v.Reals = append(v.Reals, mk(rs.host, a1.addr, port))
		return
	}
	if vs.ipv6 {
		p.errorf(ln, "Address range for IPv6 is not supported yet")
		return
	}
	a2 := p.lookupAddr(ln, rs.host2, vs.ipv6, r)
	if a2.bad {
		p.errorf(ln, "invalid address (%s) for real server (could not resolve end host)", rs.host2)
		return
	}
	if !a1.ok || !a2.ok {
		v.Reals = append(v.Reals, mk(rs.host, a1.addr, port)) // expanded by Resolve
		return
	}
	first, last := ip4int(a1.addr), ip4int(a2.addr)
	if first > last {
		p.errorf(ln, "Invalid Range: %s-%s: First value must be less than or equal to the second value", a1.addr, a2.addr)
		return
	}
	if last-first >= maxRange {
		p.errorf(ln, "Invalid Range: %s-%s: more than %d addresses", a1.addr, a2.addr, maxRange)
		return
	}
	if p.nreals+int(last-first)+1 > maxReals {
		p.errorf(ln, "too many real servers: more than %d in one configuration", maxReals)
		return
	}
	p.nreals += int(last-first) + 1
	if len(fmt.Sprint(first)) != len(fmt.Sprint(last)) {
		p.warnf(ln, "range %s-%s: ldirectord 4.12 added none of these real servers (it compared the"+
			" addresses as decimal strings); all %d are now added", a1.addr, a2.addr, last-first+1)
	}
	for n := uint64(first); n <= uint64(last); n++ { // not uint32: last may be 255.255.255.255
		i := uint32(n)
		a := netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		v.Reals = append(v.Reals, mk(a.String(), a, port))
	}
}

func ip4int(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Resolve fills in every Addr/Port left by Parse, expands hostname ranges, applies port-derived defaults
// that need the resolved port, and checks for duplicate virtuals. Errors are an ErrorList, as for Parse;
// on error c is left as it was.
func (c *Config) Resolve(r Resolver) error {
	if c.state == nil {
		return nil // not from Parse (or built by hand): nothing to resolve
	}
	if c.state.literal && !c.state.slow {
		// Every host and port is a literal: building again would give the same Virtuals, CheckInterval
		// and warnings as Parse did, and in a 10,000-real config cost as much as all the rest of Load.
		c.Warnings = append([]*Error(nil), c.state.warns...)
		return nil
	}
	if r == nil {
		r = DefaultResolver
	}
	tmp := *c
	tmp.Virtuals = nil
	p := &parser{file: c.File, st: c.state, cfg: &tmp, warns: append([]*Error(nil), c.state.parseWarns...)}
	p.build(r)
	sortErrors(p.errs)
	if len(p.errs) > 0 {
		return p.errs
	}
	sortErrors(p.warns)
	for i := range tmp.Virtuals {
		*c.Virtuals[i] = *tmp.Virtuals[i]
	}
	c.CheckInterval = tmp.CheckInterval
	c.Warnings = p.warns
	return nil
}

// CheckFiles does what ldirectord 4.12 did with files while parsing: it opens (creating if needed) the
// log file and every monitorfile for appending, and warns when maintenancedir does not exist.
func (c *Config) CheckFiles() error { return c.checkFiles(true, false) }

// checkFiles is CheckFiles; the log file only when logFile is set (not with ldirectord -d). With noCreate
// (ldirectord -t) no file is opened: one this user could not open for writing is a warning.
func (c *Config) checkFiles(logFile, noCreate bool) error {
	var errs ErrorList
	var st parseState
	if c.state != nil {
		st = *c.state
	}
	try := func(ln int, path, msg string) {
		if noCreate {
			if err := writable(path); err != nil {
				c.Warnings = append(c.Warnings, &Error{File: c.File, Line: ln, Msg: msg + errnoText(err)})
				sortErrors(c.Warnings)
			}
			return
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			errs = append(errs, &Error{File: c.File, Line: ln, Msg: msg + errnoText(err)})
			return
		}
		f.Close()
	}
	if logFile && len(c.LogFile) > 0 && c.LogFile[0] == '/' && !c.Supervised {
		try(st.logfileLn, c.LogFile, "unable to open logfile: "+c.LogFile+": ")
	}
	for i, v := range c.Virtuals {
		if v.MonitorFile != "" {
			ln := v.Line
			if i < len(st.virtuals) {
				ln = st.virtuals[i].monitorLn
			}
			try(ln, v.MonitorFile, "unable to open monitorfile "+v.MonitorFile+": ")
		}
	}
	if c.MaintenanceDir != "" {
		if fi, err := os.Stat(c.MaintenanceDir); err != nil || !fi.IsDir() {
			c.Warnings = append(c.Warnings, &Error{File: c.File, Line: st.maintdirLn, Msg: "maintenance directory does not exist"})
			sortErrors(c.Warnings)
		}
	}
	sortErrors(errs)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// writable says whether this process could open path for appending, creating it if missing, without
// opening or creating anything (access(2), with the real user: ldirectord -t is run by a person).
func writable(path string) error {
	err := syscall.Access(path, accessW)
	if err == nil || !errors.Is(err, syscall.ENOENT) {
		return pathError(path, err)
	}
	// Missing: the directory must exist and let us create the file.
	return pathError(path, syscall.Access(filepath.Dir(path), accessW|accessX))
}

// access(2) mode bits.
const (
	accessW = 0x2
	accessX = 0x1
)

func pathError(path string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: "access", Path: path, Err: err}
}

func errnoText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		s := pe.Err.Error()
		if s != "" {
			return string(s[0]-32) + s[1:] // "permission denied" -> "Permission denied", as Perl's $!
		}
	}
	return err.Error()
}
