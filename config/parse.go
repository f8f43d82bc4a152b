package config

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Perl's \s and \S (which, unlike Go's, include the vertical tab).
const (
	ws  = `[\t\n\v\f\r ]`
	nws = `[^\t\n\v\f\r ]`
)

var (
	reVirtual     = regexp.MustCompile(`^virtual(6)?` + ws + `*=` + ws + `*(.*)`)
	reBlank       = regexp.MustCompile(`^` + ws + `*$`)
	reCommentLine = regexp.MustCompile(`^` + ws + `*#`)
	reIndented    = regexp.MustCompile(`^ {4,}(.+)`)
	reDigits      = regexp.MustCompile(`(\d+)`)

	reVirtV4   = regexp.MustCompile(`^(\d+\.\d+\.\d+\.\d+):([0-9A-Za-z_-]+)`)
	reVirtHost = regexp.MustCompile(`^([0-9A-Za-z._+-]+):([0-9A-Za-z_-]+)`)
	reVirtFwm  = regexp.MustCompile(`^(\d+)`)
	reVirtV6   = regexp.MustCompile(`^\[([0-9A-Fa-f:]+)\]:([0-9A-Za-z_-]+)`)
)

// directive matches `^name\s*=\s*(.*)` and returns the value.
func directive(line, name string) (string, bool) {
	if !strings.HasPrefix(line, name) {
		return "", false
	}
	rest := strings.TrimLeft(line[len(name):], "\t\n\v\f\r ")
	if !strings.HasPrefix(rest, "=") {
		return "", false
	}
	return strings.TrimLeft(rest[1:], "\t\n\v\f\r "), true
}

// quoted matches `^name\s*=\s*"(.*)"` (greedy, not anchored at the end, as in ldirectord) and returns the
// text between the first and the last quote, and what follows the last quote.
func quoted(line, name string) (val, rest string, ok bool) {
	v, ok := directive(line, name)
	if !ok || !strings.HasPrefix(v, `"`) {
		return "", "", false
	}
	i := strings.LastIndexByte(v, '"')
	if i == 0 {
		return "", "", false
	}
	return v[1:i], v[i+1:], true
}

// trimRight removes trailing Perl whitespace.
func trimRight(s string) string { return strings.TrimRight(s, "\t\n\v\f\r ") }

// stripCommentNaive is ldirectord's s/#.*//.
func stripCommentNaive(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

// stripCommentQuoted removes a comment that starts with a '#' outside double quotes.
func stripCommentQuoted(s string) string {
	in := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			in = !in
		case '#':
			if !in {
				return s[:i]
			}
		}
	}
	return s
}

// hostname is what ldirectord uses for the ftp/sip login defaults: $HOSTNAME, else the node name.
var hostname = func() string {
	if h := os.Getenv("HOSTNAME"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// ival is an integer directive value with the line that set it; set is false when absent.
type ival struct {
	v    int64
	set  bool
	line int
}

// sval is a string directive value.
type sval struct {
	v    string
	set  bool
	line int
}

// bval is a yes/no directive value.
type bval struct {
	v   bool
	set bool
}

// fallbackSpec is a fallback= line before resolution.
type fallbackSpec struct {
	line     int
	host     string // as written, brackets kept
	portText string // "" when none
	fwd      Forward
	ipv6     bool
}

// common are the directives that exist both globally and per virtual.
type common struct {
	checkTimeout, negotiateTimeout, checkInterval, checkCount, failureCount, successCount ival
	quiescent, cleanStop                                                                  bval
	fallbackCommand, emailAlert, smtp                                                     sval
	emailAlertFreq                                                                        ival
	emailAlertStatus                                                                      struct {
		v   AlertStatus
		set bool
	}
}

// realSpec is one real= line, parsed but not resolved.
type realSpec struct {
	line               int
	host, host2        string // host2 is the end of a range, "" when none
	portText           string // "" when none
	fwd                Forward
	weight             int
	request, receive   string
	own                bool
	lower, upper       uint32
	receiveFromVirtual bool // lenient path: request given but receive inherited
}

// vspec is one virtual section before resolution.
type vspec struct {
	line      int
	ipv6      bool
	host      string // as written (no brackets), or the fwmark digits
	portText  string // "" for a fwmark
	fwm       bool
	c         common
	v         Virtual // directive values without global inheritance
	fallback  *fallbackSpec
	reals     []realSpec
	service   bool // service= given
	monitorLn int
	// lines of request=, receive=, virtualhost= and scheduler= (0: not given), for errors about their values
	requestLn, receiveLn, vhostLn, schedLn int
}

// parseState is everything Parse read, kept so that Resolve can finish the job.
type parseState struct {
	g          common
	fallback   *fallbackSpec
	fallback6  *fallbackSpec
	virtuals   []*vspec
	logfileLn  int
	maintdirLn int
	executeLns []int    // the line of each Config.Execute entry
	parseWarns []*Error // warnings of the text itself (build adds its own each time it runs)
	// literal is set when Parse's build needed no Resolver (every host and port is a literal): Resolve
	// would build the same Virtuals again, so it does nothing.
	literal bool
	warns   []*Error // Parse's warnings, for Resolve when literal
	slow    bool     // parsed with parser.slow
}

type parser struct {
	file  string
	errs  ErrorList
	warns []*Error
	st    *parseState
	cfg   *Config
	lines []string
	pos   int
	// altVariant is set while a line is read in a form ldirectord 4.12 never saw (a '#' kept inside
	// quotes): comparisons with 4.12's reading of it make no sense then.
	altVariant bool
	nreals     int // real servers from ranges so far (see maxReals)
	// slow disables the fast paths of fast.go (tests compare both ways).
	slow bool
	// needResolver is set by build when a host or port is a name, which only a Resolver can look up.
	needResolver bool
}

func (p *parser) errorf(line int, format string, a ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, capArgs(a)...)})
}

func (p *parser) warnf(line int, format string, a ...any) {
	p.warns = append(p.warns, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, capArgs(a)...)})
}

// MaxLine is the longest config line accepted, in bytes. A longer line is an error of its own.
const MaxLine = 64 << 10

// maxQuote bounds how much of the input an error or warning quotes; maxArg is the bound for any
// string an error or warning is made of (a message already built, or a value quoted inside one).
const (
	maxQuote = 200
	maxArg   = 1000
)

// Excerpt is s, cut to its first 200 bytes (at a character boundary) followed by "..." when longer: what
// a message quotes of the input, so that an absurd value never floods the terminal or the log.
func Excerpt(s string) string { return cut(s, maxQuote) }

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// capArgs bounds the string arguments of an error or warning.
func capArgs(a []any) []any {
	for i, x := range a {
		if s, ok := x.(string); ok && len(s) > maxArg {
			a[i] = cut(s, maxArg)
		}
	}
	return a
}

// Parse parses one config file's text. It is pure: no DNS and no file access. On errors it returns a nil
// *Config and an ErrorList with every error, in line order. Warnings go to cfg.Warnings. Literal IPs and
// numeric ports are filled in; hostnames and service names are left for Resolve.
func Parse(file string, src []byte) (*Config, error) {
	return parse(file, src, false)
}

// parse is Parse, with the fast paths of fast.go disabled when slow is set.
func parse(file string, src []byte, slow bool) (*Config, error) {
	text := string(src)
	lines := strings.Split(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	p := &parser{file: file, lines: lines, st: &parseState{slow: slow}, cfg: &Config{File: file}, slow: slow}
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if len(l) > MaxLine {
			// Refused before any directive sees it: no regexp, no copy, no echo of megabytes of input.
			p.errorf(i+1, "line too long (%d bytes; at most %d)", len(l), MaxLine)
			l = "#" // read on as a comment line, which neither ends nor starts a section
		}
		lines[i] = l
	}
	c := p.cfg
	c.CheckInterval = seconds(defaults.checkInterval)
	c.LogFile = defaults.logFile
	p.st.g.cleanStop = bval{v: defaults.cleanStop}
	p.st.g.emailAlertStatus.v = defaults.emailAlertStatus

	for p.pos < len(p.lines) {
		p.globalLine()
	}
	p.st.parseWarns = append([]*Error(nil), p.warns...)
	p.build(nil)
	p.st.literal = !p.needResolver
	sortErrors(p.errs)
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	sortErrors(p.warns)
	c.Warnings = p.warns
	p.st.warns = append([]*Error(nil), p.warns...) // not c.Warnings' array: CheckFiles appends to that
	c.state = p.st
	return c, nil
}

// sortErrors orders errors by line, keeping the order of errors on one line.
func sortErrors(l []*Error) {
	slices.SortStableFunc(l, func(a, b *Error) int { return a.Line - b.Line })
}

// globalLine handles the line at p.pos (column-0 level) and advances.
func (p *parser) globalLine() {
	ln := p.pos + 1
	raw := p.lines[p.pos]
	p.pos++
	if m := reVirtual.FindStringSubmatch(raw); m != nil {
		p.virtualSection(ln, m[1] == "6", m[2])
		return
	}
	if reBlank.MatchString(raw) || reCommentLine.MatchString(raw) {
		return
	}
	// Variant 1 is the line as ldirectord 4.12 sees it; variant 2 drops a trailing comment (4.12 gave
	// comments on global lines no special meaning, so "quiescent=yes # c" was an error).
	v1 := trimRight(raw)
	v2 := trimRight(stripCommentNaive(raw))
	var firstErr string
	for i, v := range []string{v1, v2} {
		if i == 1 && v == v1 {
			break
		}
		g := p.st.g
		cfg := *p.cfg
		st := *p.st
		nw := len(p.warns)
		msg := p.global(ln, v)
		if msg == "" {
			return
		}
		// roll back
		p.warns = p.warns[:nw]
		*p.cfg = cfg
		*p.st = st
		p.st.g = g
		if i == 0 {
			firstErr = msg
		}
	}
	if strings.HasPrefix(raw, " ") || strings.HasPrefix(raw, "\t") {
		firstErr += " (an indented line outside a virtual section: a blank line or a line indented by" +
			" fewer than 4 spaces ends a virtual section)"
	}
	p.errorf(ln, "%s", firstErr)
}

// global applies one global directive (through the table of directives.go); it returns an error message
// or "".
func (p *parser) global(ln int, line string) string { return p.apply(ln, line, &p.st.g, nil) }

func yesNo(v string, dst *bool, msg string) string {
	switch v {
	case "yes":
		*dst = true
	case "no":
		*dst = false
	default:
		return msg
	}
	return ""
}

func yesNoVal(v string, dst *bval, msg string) string {
	var b bool
	if m := yesNo(v, &b, msg); m != "" {
		return m
	}
	*dst = bval{v: b, set: true}
	return ""
}

// maxNum is the largest number accepted for counts and times (seconds); larger values cannot be
// represented by the kernel or by a timer and are rejected with the directive's own error.
const maxNum = math.MaxInt32

// maxSeconds bounds every time in seconds that the daemon turns into a timer, and maxCheckCount the ping
// attempts: checktimeout × checkcount, the longest product the daemon computes, stays far below the
// 292 years a time.Duration holds (ldirectord 4.12 took any number; 2147483647 × 5 overflowed here).
const (
	maxSeconds    = 24 * 60 * 60
	maxCheckCount = 1000
)

// numLimits are the bounds of the directives num reads that are times or attempts (failurecount and
// successcount are plain counts: maxNum).
var numLimits = map[string]struct {
	max  int64
	unit string
}{
	"checktimeout":     {maxSeconds, " seconds (one day)"},
	"negotiatetimeout": {maxSeconds, " seconds (one day)"},
	"checkinterval":    {maxSeconds, " seconds (one day)"},
	"checkcount":       {maxCheckCount, ""},
}

// num reads a count or time the way ldirectord does: the first run of digits anywhere in the value, which
// must not be 0. A value that is more than a plain number is accepted as 4.12 did, with a warning.
func (p *parser) num(ln int, name, v string, dst *ival, msg string) string {
	m := reDigits.FindString(v)
	if m == "" || m == "0" {
		return msg
	}
	n, err := strconv.ParseInt(m, 10, 64)
	if err != nil || n > maxNum {
		return msg
	}
	if n == 0 {
		// "00" passed ldirectord's test (the string is true in Perl) and then meant 0.
		p.warnf(ln, "%s=%s is 0, which is not valid; the directive is ignored", name, v)
		return ""
	}
	if lim, ok := numLimits[name]; ok && n > lim.max {
		return fmt.Sprintf("%s: %d is more than %d%s", msg, n, lim.max, lim.unit)
	}
	if clean := trimRight(stripCommentNaive(v)); clean != m {
		p.warnf(ln, "%s=%s is read as %d", name, v, n)
	}
	*dst = ival{v: n, set: true, line: ln}
	return ""
}

// positive is num for the global timeouts, where ldirectord also tested the value numerically (> 0), so
// "00" is an error.
func (p *parser) positive(ln int, name, v string, dst *ival, msg string) string {
	if m := reDigits.FindString(v); m != "" && strings.Trim(m, "0") == "" {
		return msg
	}
	return p.num(ln, name, v, dst, msg)
}

func (p *parser) emailFreq(ln int, v string, dst *ival) string {
	// ^emailalertfreq\s*=\s*(\d*) then /(\d+)/
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return "invalid email alert frequency"
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil || n > maxNum {
		return "invalid email alert frequency"
	}
	if rest := trimRight(stripCommentNaive(v[i:])); rest != "" {
		p.warnf(ln, "emailalertfreq=%s is read as %d", v, n)
	}
	*dst = ival{v: n, set: true, line: ln}
	return ""
}

var reSMTP = regexp.MustCompile(`^[0-9A-Za-z._+-]+`)
var reSMTPPort = regexp.MustCompile(`^[0-9A-Za-z._+-]+:[0-9]+`)

func (p *parser) smtp(ln int, v string, dst *sval) string {
	m := reSMTP.FindString(v)
	if m == "" {
		return "invalid SMTP server address"
	}
	if mp := reSMTPPort.FindString(v); mp != "" {
		p.warnf(ln, "smtp=%s: the port is now used (ldirectord 4.12 dropped it and always used port 25)", v)
		m = mp
	}
	if rest := trimRight(stripCommentNaive(v[len(m):])); rest != "" {
		p.warnf(ln, "smtp=%s: %q is ignored", v, rest)
	}
	*dst = sval{v: m, set: true, line: ln}
	return ""
}

// readEmailAlert strips one pair of enclosing quotes; the address must not be empty.
func readEmailAlert(v string) (string, string) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !strings.Contains(v[1:len(v)-1], `"`) {
		v = v[1 : len(v)-1]
	}
	if v == "" {
		return "", "no email address specified"
	}
	return v, ""
}

var reCommaSplit = regexp.MustCompile(ws + `*,` + ws + `*`)

// parseEmailAlertStatus is ldirectord's parse_emailalertstatus.
func parseEmailAlertStatus(v string) (AlertStatus, string) {
	items := reCommaSplit.Split(v, -1)
	for len(items) > 0 && items[len(items)-1] == "" { // Perl's split drops trailing empty fields
		items = items[:len(items)-1]
	}
	none := false
	for _, i := range items {
		if i == "none" {
			none = true
		}
	}
	var s AlertStatus
	for _, i := range items {
		switch i {
		case "none":
			continue
		case "all":
			s = StatusAll
		case "starting":
			s |= StatusStarting
		case "stopping":
			s |= StatusStopping
		case "running":
			s |= StatusRunning
		case "reloading":
			s |= StatusReloading
		default:
			return 0, fmt.Sprintf("invalid email alert status at: %q", Excerpt(i))
		}
		if none {
			return 0, fmt.Sprintf("invalid email alert status: %q specified with \"none\"", Excerpt(i))
		}
	}
	return s, ""
}
