package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dline is one directive line being applied.
type dline struct {
	ln   int
	line string // global: the line; per virtual: the text after the indentation, comment removed
	name string // what the line starts with, up to a blank or '='
	val  string // the value: what follows `name\s*=\s*`
	c    *common
	vs   *vspec // nil at the global level
}

// handler applies one directive line and returns its error message, or "". ok is false when the line
// is not the directive after all (a value that must be quoted is not): that is `Unknown command`.
type handler func(p *parser, d *dline) (msg string, ok bool)

// directiveSpec is one entry of the table: how the directive is read at each level (nil: not valid there).
// Where ldirectord reads a directive the same way globally and per virtual, both are the same handler.
type directiveSpec struct {
	global, virtual handler
}

// both, globalOnly and virtualOnly make the entry of a directive read by h at both levels, at the global
// level only, and in a virtual section only.
func both(h handler) directiveSpec        { return directiveSpec{global: h, virtual: h} }
func globalOnly(h handler) directiveSpec  { return directiveSpec{global: h} }
func virtualOnly(h handler) directiveSpec { return directiveSpec{virtual: h} }

// defaults are the values of the directives a config does not give (reference §3.2, §3.3 and §3.9), in
// one place.
var defaults = struct {
	logFile                                       string
	checkInterval, checkTimeout, negotiateTimeout int64 // seconds
	checkCount, failureCount, successCount        int64
	emailAlertFreq                                int64
	quiescent, cleanStop                          bool
	emailAlertStatus                              AlertStatus
	checkType                                     CheckType
	scheduler, checkCommand, request, httpMethod  string
}{
	logFile:          "/var/log/ldirectord.log",
	checkInterval:    10,
	checkTimeout:     5,
	negotiateTimeout: 30,
	checkCount:       1,
	failureCount:     1,
	successCount:     1,
	cleanStop:        true,
	emailAlertStatus: StatusAll,
	checkType:        CheckNegotiate,
	scheduler:        "wrr",
	checkCommand:     "/bin/true",
	request:          "/",
	httpMethod:       "GET",
}

// directives is every directive of ldirectord.cf but virtual=/virtual6=, by name.
var directives = map[string]directiveSpec{
	// Read the same at both levels.
	"quiescent": both(func(p *parser, d *dline) (string, bool) {
		return yesNoVal(d.val, &d.c.quiescent, "quiescent must be 'yes' or 'no'"), true
	}),
	"cleanstop": both(func(p *parser, d *dline) (string, bool) {
		return yesNoVal(d.val, &d.c.cleanStop, "cleanstop must be 'yes' or 'no'"), true
	}),
	"emailalert": both(func(p *parser, d *dline) (string, bool) {
		a, msg := readEmailAlert(d.val)
		if msg == "" {
			d.c.emailAlert = sval{v: a, set: true, line: d.ln}
		}
		return msg, true
	}),
	"emailalertfreq": both(func(p *parser, d *dline) (string, bool) {
		return p.emailFreq(d.ln, d.val, &d.c.emailAlertFreq), true
	}),
	"emailalertstatus": both(func(p *parser, d *dline) (string, bool) {
		st, msg := parseEmailAlertStatus(d.val)
		if msg == "" {
			d.c.emailAlertStatus.v, d.c.emailAlertStatus.set = st, true
		}
		return msg, true
	}),
	"smtp": both(func(p *parser, d *dline) (string, bool) { return p.smtp(d.ln, d.val, &d.c.smtp), true }),
	"connecttimeout": both(func(p *parser, d *dline) (string, bool) {
		return "connecttimeout directive deprecated in favour of negotiatetimeout", true
	}),

	// Numbers read at both levels, with each level's own message; the global timeouts must also be > 0
	// as numbers ("00" is an error there).
	"checktimeout": count(func(c *common) *ival { return &c.checkTimeout },
		"invalid check timeout value", "invalid check timeout", true, ""),
	"negotiatetimeout": count(func(c *common) *ival { return &c.negotiateTimeout },
		"invalid negotiate timeout value", "invalid negotiate timeout", true, ""),
	"checkinterval": count(func(c *common) *ival { return &c.checkInterval },
		"invalid check interval value", "invalid checkinterval", false, ""),
	"checkcount": count(func(c *common) *ival { return &c.checkCount },
		"invalid check count value", "invalid check count", false,
		"checkcount option is deprecated and slated for removal.  please see 'failurecount'"),
	"failurecount": count(func(c *common) *ival { return &c.failureCount },
		"invalid failure count value", "invalid failure count", false, ""),
	"successcount": count(func(c *common) *ival { return &c.successCount },
		"invalid success count value", "invalid success count", false, ""),

	// At both levels, read differently.
	"fallback":        {global: globalFallback(false), virtual: virtualFallback},
	"fallback6":       {global: globalFallback(true), virtual: virtualFallback},
	"fallbackcommand": {global: globalFallbackCommand, virtual: virtualFallbackCommand},

	// Global only.
	"autoreload": globalOnly(func(p *parser, d *dline) (string, bool) {
		return yesNo(d.val, &p.cfg.AutoReload, "autoreload must be 'yes' or 'no'"), true
	}),
	"fork": globalOnly(func(p *parser, d *dline) (string, bool) {
		return yesNo(d.val, &p.cfg.Fork, "fork must be 'yes' or 'no'"), true
	}),
	"readdquiescent": globalOnly(func(p *parser, d *dline) (string, bool) {
		return yesNo(d.val, &p.cfg.ReaddQuiescent, "readdquiescent must be 'yes' or 'no'"), true
	}),
	"callback": globalOnly(func(p *parser, d *dline) (string, bool) {
		v, _, ok := quoted(d.line, d.name)
		if ok {
			p.cfg.Callback = v
		}
		return "", ok
	}),
	"logfile": globalOnly(func(p *parser, d *dline) (string, bool) {
		v, _, ok := quoted(d.line, d.name)
		if ok {
			p.cfg.LogFile = v
			p.st.logfileLn = d.ln
		}
		return "", ok
	}),
	"execute": globalOnly(func(p *parser, d *dline) (string, bool) {
		if !slices.Contains(p.cfg.Execute, d.val) {
			p.cfg.Execute = append(p.cfg.Execute, d.val)
			p.st.executeLns = append(p.st.executeLns, d.ln)
		}
		return "", true
	}),
	"emailalertfrom": globalOnly(func(p *parser, d *dline) (string, bool) {
		if d.val == "" {
			return "no email from address specified", true
		}
		p.cfg.EmailAlertFrom = d.val
		return "", true
	}),
	"maintenancedir": globalOnly(func(p *parser, d *dline) (string, bool) {
		if d.val == "" {
			return "maintenance directory not specified", true
		}
		p.cfg.MaintenanceDir = d.val
		p.st.maintdirLn = d.ln
		return "", true
	}),
	"metrics": globalOnly(func(p *parser, d *dline) (string, bool) {
		addr, msg := metricsAddr(d.val)
		if msg == "" {
			p.cfg.Metrics = addr
		}
		return msg, true
	}),
	"timeout": globalOnly(func(p *parser, d *dline) (string, bool) {
		return "timeout directive deprecated in favour of checktimeout and negotiatetimeout", true
	}),
	// supervised is read by globalSupervised (a bare `supervised` has no '=').

	// Per virtual only.
	"real":         virtualOnly(realLine),
	"real6":        virtualOnly(realLine),
	"request":      virtualOnly(request),
	"receive":      virtualOnly(receive),
	"checktype":    virtualOnly(checkType),
	"checkcommand": virtualOnly(checkCommand),
	"checkport":    virtualOnly(checkPort),
	"login":        virtualOnly(quotedString(func(v *Virtual) *string { return &v.Login }, "invalid login string")),
	"passwd":       virtualOnly(quotedString(func(v *Virtual) *string { return &v.Passwd }, "invalid password")),
	"database":     virtualOnly(quotedString(func(v *Virtual) *string { return &v.Database }, "invalid database")),
	"secret":       virtualOnly(quotedString(func(v *Virtual) *string { return &v.Secret }, "invalid secret")),
	"load":         virtualOnly(load),
	"scheduler":    virtualOnly(scheduler),
	"persistent":   virtualOnly(persistent),
	"schedflags":   virtualOnly(schedFlags),
	"netmask":      virtualOnly(netmask),
	"protocol":     virtualOnly(protocol),
	"ops":          virtualOnly(ops),
	"service":      virtualOnly(service),
	"httpmethod":   virtualOnly(httpMethod),
	"virtualhost":  virtualOnly(virtualHost),
	"monitorfile":  virtualOnly(monitorFile),
	"servicename":  virtualOnly(func(p *parser, d *dline) (string, bool) { d.vs.v.ServiceName = d.val; return "", true }),
	"comment":      virtualOnly(func(p *parser, d *dline) (string, bool) { d.vs.v.Comment = d.val; return "", true }),
}

// directiveName is what a directive line starts with, up to the first blank or '='.
func directiveName(line string) string {
	if i := strings.IndexAny(line, "\t\n\v\f\r ="); i >= 0 {
		return line[:i]
	}
	return line
}

// apply applies one directive line at the level vs says (nil: global) through the table.
func (p *parser) apply(ln int, line string, c *common, vs *vspec) string {
	d := &dline{ln: ln, line: line, name: directiveName(line), c: c, vs: vs}
	if vs == nil && strings.HasPrefix(line, "supervised") {
		return p.supervised(d)
	}
	spec := directives[d.name]
	h := spec.global
	if vs != nil {
		h = spec.virtual
	}
	if h != nil {
		if val, ok := directive(line, d.name); ok {
			d.val = val
			if msg, ok := h(p, d); ok {
				return msg
			}
		}
	}
	return fmt.Sprintf("Unknown command %q", Excerpt(p.lines[ln-1]))
}

// count reads a number of the common settings: gmsg and vmsg are the errors at each level; positive
// makes "00" an error at the global level; warn, when set, is a warning for every use.
func count(field func(*common) *ival, gmsg, vmsg string, positive bool, warn string) directiveSpec {
	read := func(msg string, pos bool) handler {
		return func(p *parser, d *dline) (string, bool) {
			f := p.num
			if pos {
				f = p.positive
			}
			if m := f(d.ln, d.name, d.val, field(d.c), msg); m != "" {
				return m, true
			}
			if warn != "" {
				p.warnf(d.ln, "%s", warn)
			}
			return "", true
		}
	}
	return directiveSpec{global: read(gmsg, positive), virtual: read(vmsg, false)}
}

// supervised is yes or no; a bare `supervised` means yes, with a warning; any other line starting with
// "supervised" is an error (as in ldirectord).
func (p *parser) supervised(d *dline) string {
	if v, ok := directive(d.line, "supervised"); ok && (v == "yes" || v == "no") {
		p.cfg.Supervised = v == "yes"
		return ""
	}
	if trimRight(d.line) == "supervised" {
		p.cfg.Supervised = true
		p.warnf(d.ln, "please update your config not to use a bare supervised directive")
		return ""
	}
	return "supervised must be 'yes' or 'no'"
}

func globalFallback(ipv6 bool) handler {
	return func(p *parser, d *dline) (string, bool) {
		f, msg := p.parseFallback(d.ln, d.val, ipv6)
		if msg == "" {
			if ipv6 {
				p.st.fallback6 = f
			} else {
				p.st.fallback = f
			}
		}
		return msg, true
	}
}

func virtualFallback(p *parser, d *dline) (string, bool) {
	vs := d.vs
	m := reFallDir.FindStringSubmatch(d.line)
	if m == nil {
		return "", false
	}
	if vs.ipv6 != (m[2] == "6") {
		want := "fallback"
		if vs.ipv6 {
			want = "fallback6"
		}
		return fmt.Sprintf(`cannot specify "%s" here.  please use "%s" instead`, m[1], want), true
	}
	f, msg := p.parseFallback(d.ln, m[3], vs.ipv6)
	if msg != "" {
		return msg, true
	}
	if f.portText == "" {
		f.portText = vs.portText
		if vs.fwm {
			f.portText = "0"
		}
	}
	vs.fallback = f
	return "", true
}

// globalFallbackCommand keeps quotes (they reach the command); per virtual one pair is removed.
func globalFallbackCommand(p *parser, d *dline) (string, bool) {
	if d.val == "" {
		return "invalid fallback command", true
	}
	d.c.fallbackCommand = sval{v: d.val, set: true, line: d.ln}
	return "", true
}

func virtualFallbackCommand(p *parser, d *dline) (string, bool) {
	s, _ := quotedOrNot(d.line, d.name)
	if s == "" {
		return "invalid fallback command", true
	}
	d.c.fallbackCommand = sval{v: s, set: true, line: d.ln}
	return "", true
}

func realLine(p *parser, d *dline) (string, bool) {
	vs := d.vs
	name, val, ok := p.realDirective(d.line)
	if !ok {
		return "", false
	}
	if vs.ipv6 != (name == "real6") {
		want := "real"
		if vs.ipv6 {
			want = "real6"
		}
		return fmt.Sprintf(`cannot specify "%s" here.  please use "%s" instead`, name, want), true
	}
	rs, msg := p.parseReal(d.ln, val)
	if msg != "" {
		return msg, true
	}
	vs.reals = append(vs.reals, rs)
	return "", true
}

func request(p *parser, d *dline) (string, bool) {
	s, ok := p.quotedDir(d.ln, d.line, d.name)
	if !ok {
		return "", false
	}
	if s == "" {
		return "no request string specified", true
	}
	if !strings.HasPrefix(s, "/") {
		s = "/" + s
	}
	d.vs.v.Request, d.vs.requestLn = s, d.ln
	return "", true
}

func receive(p *parser, d *dline) (string, bool) {
	s, ok := p.quotedDir(d.ln, d.line, d.name)
	if !ok {
		return "", false
	}
	if s == "" {
		return "invalid receive string", true
	}
	d.vs.v.Receive, d.vs.receiveLn = s, d.ln
	return "", true
}

const checkTypeMsg = `checktype must be "connect", "negotiate", "on", "off", "ping", "external", "external-perl" or a positive number`

var checkTypes = map[string]CheckType{"connect": CheckConnect, "negotiate": CheckNegotiate, "ping": CheckPing,
	"off": CheckOff, "on": CheckOn, "external": CheckExternal, "external-perl": CheckExternalPerl}

func checkType(p *parser, d *dline) (string, bool) {
	v, s := &d.vs.v, d.val
	if digits := reDigits.FindString(s); digits != "" {
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || n > maxNum {
			return checkTypeMsg, true
		}
		if s != digits {
			p.warnf(d.ln, "checktype=%s contains digits, so it is read as checktype=%d (a negotiate check"+
				" after every %d connect checks), as ldirectord 4.12 did", s, n, n)
		}
		v.CheckType, v.CombinedN = CheckCombined, int(n)
		return "", true
	}
	w := reWordDash.FindString(s)
	ct, ok := checkTypes[w]
	if !ok {
		return checkTypeMsg, true
	}
	p.wordWarn(d.ln, "checktype", s, w)
	v.CheckType, v.CombinedN = ct, 0
	return "", true
}

func checkCommand(p *parser, d *dline) (string, bool) {
	s, _ := quotedOrNot(d.line, d.name)
	if s == "" {
		return "invalid check command", true
	}
	d.vs.v.CheckCommand = s
	return "", true
}

func checkPort(p *parser, d *dline) (string, bool) {
	digits := reDigits.FindString(d.val)
	if digits == "" {
		return "invalid port", true
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n < 1 || n > 65535 {
		return "checkport must be in range 1..65535", true
	}
	p.wordWarn(d.ln, "checkport", d.val, digits)
	d.vs.v.CheckPort = uint16(n)
	return "", true
}

// quotedString reads a value that must be quoted and not empty.
func quotedString(field func(*Virtual) *string, msg string) handler {
	return func(p *parser, d *dline) (string, bool) {
		s, ok := p.quotedDir(d.ln, d.line, d.name)
		if !ok {
			return "", false
		}
		if s == "" {
			return msg, true
		}
		*field(&d.vs.v) = s
		return "", true
	}
}

func load(p *parser, d *dline) (string, bool) {
	s, ok := p.quotedDir(d.ln, d.line, d.name)
	if !ok {
		return "", false
	}
	w := reWord.FindString(s)
	if w == "" {
		return "invalid string for load testing", true
	}
	d.vs.v.Load = w
	return "", true
}

func scheduler(p *parser, d *dline) (string, bool) {
	w := reLower.FindString(d.val)
	if w == "" {
		return "invalid scheduler, should be only lowercase letters (a-z)", true
	}
	p.wordWarn(d.ln, "scheduler", d.val, w)
	d.vs.v.Scheduler, d.vs.schedLn = w, d.ln
	return "", true
}

func persistent(p *parser, d *dline) (string, bool) {
	digits := reDigits.FindString(d.val)
	n, err := strconv.ParseUint(digits, 10, 32)
	if digits == "" || err != nil {
		return "invalid persistent timeout", true
	}
	p.wordWarn(d.ln, "persistent", d.val, digits)
	d.vs.v.Persistent, d.vs.v.IsPersistent = uint32(n), true
	return "", true
}

func schedFlags(p *parser, d *dline) (string, bool) {
	w := reNonSpace.FindString(d.val)
	if w == "" {
		return "invalid sched-flags", true
	}
	d.vs.v.SchedFlags = w
	return "", true
}

func netmask(p *parser, d *dline) (string, bool) {
	v, s := &d.vs.v, d.val
	if d.vs.ipv6 {
		n, err := strconv.ParseUint(s, 10, 64)
		if !isDigits(s) || err != nil || n < 1 || n > 128 {
			return "invalid netmask: a prefix length between 1 and 128 is required", true
		}
		v.Netmask = uint32(n)
		return "", true
	}
	if !reQuad.MatchString(s) {
		return "invalid netmask: dotted quad notation is required", true
	}
	var m uint32
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.ParseUint(part, 10, 64)
		if err != nil || n > 255 {
			return "invalid netmask: dotted quad notation is required (each part 0..255)", true
		}
		m = m<<8 | uint32(n)
	}
	v.Netmask = m
	return "", true
}

func protocol(p *parser, d *dline) (string, bool) {
	v := &d.vs.v
	w := reWord.FindString(d.val)
	if w == "" {
		return "invalid protocol", true
	}
	if d.vs.fwm {
		if w != "fwm" {
			return "protocol must be fwm if the virtual service is a fwmark (a number)", true
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
			return "protocol must be tcp, udp or sctp if the virtual service is an address and port", true
		}
	}
	p.wordWarn(d.ln, "protocol", d.val, w)
	return "", true
}

func ops(p *parser, d *dline) (string, bool) {
	return yesNo(d.val, &d.vs.v.OPS, "ops must be 'yes' or 'no'"), true
}

func service(p *parser, d *dline) (string, bool) {
	v := &d.vs.v
	w := reWord.FindString(d.val)
	if !slices.Contains(Services, w) {
		return "service must be " + strings.Join(Services[:len(Services)-1], ", ") + " or " + Services[len(Services)-1], true
	}
	p.wordWarn(d.ln, "service", d.val, w)
	v.Service = w
	d.vs.service = true
	switch {
	case w == "ftp" && v.Login == "":
		v.Login = "anonymous"
	case w == "sip" && v.Login == "":
		v.Login = "ldirectord@" + hostname()
	}
	if w == "ftp" && v.Passwd == "" {
		v.Passwd = "ldirectord@" + hostname()
	}
	return "", true
}

func httpMethod(p *parser, d *dline) (string, bool) {
	w := strings.ToUpper(reWord.FindString(d.val))
	if w != "GET" && w != "HEAD" {
		return "httpmethod must be GET or HEAD", true
	}
	if !strings.EqualFold(d.val, w) {
		p.warnf(d.ln, "httpmethod=%s is read as %q", d.val, w)
	}
	d.vs.v.HTTPMethod = w
	return "", true
}

func virtualHost(p *parser, d *dline) (string, bool) {
	// /\"?([^\"]*)\"?/
	s := strings.TrimPrefix(d.val, `"`)
	if i := strings.IndexByte(s, '"'); i >= 0 {
		s = s[:i]
	}
	d.vs.v.VirtualHost, d.vs.vhostLn = s, d.ln
	return "", true
}

func monitorFile(p *parser, d *dline) (string, bool) {
	s, _ := quotedOrNot(d.line, d.name)
	if s == "" {
		return "unable to open monitorfile : No such file or directory", true
	}
	d.vs.v.MonitorFile = s
	d.vs.monitorLn = d.ln
	return "", true
}

// seconds is n seconds as a time.Duration.
func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }
