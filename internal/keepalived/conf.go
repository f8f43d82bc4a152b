// Package keepalived writes the keepalived.conf that does what an ldirectord.cf does, so that the two
// daemons can be run side by side on the same virtual services, reals and checks (make compare).
package keepalived

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
)

// Conf returns the keepalived.conf (keepalived 2.2 syntax) equivalent to cfg:
//
//   - one virtual_server per virtual, with its scheduler, forwarding method, protocol, persistence and
//     fallback (sorry_server, which keepalived, like ldirectord, uses only when no real is up);
//   - alpha: a real enters the table only after a check passed, as in ldirectord;
//   - checkinterval -> delay_loop; negotiatetimeout (HTTP) or connecttimeout (connect) -> connect_timeout;
//     failurecount N -> retry N-1 with delay_before_retry = checkinterval (ldirectord retries at the next
//     interval); quiescent=yes -> inhibit_on_failure;
//   - service=http/https with checktype negotiate -> HTTP_GET/SSL_GET of request, 2xx status, receive as
//     a regex; checktype connect -> TCP_CHECK; checktype on -> no checker (always up).
//
// Settings keepalived cannot express (other services and check types, ldirectord's successcount,
// connection thresholds aside) are an error naming the virtual's line, so a comparison never runs on a
// config that means something else.
func Conf(cfg *config.Config) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated from %s by internal/keepalived.Conf: the same virtual services, reals and checks.\n", cfg.File)
	b.WriteString("global_defs {\n\trouter_id ldirectord-compare\n}\n")
	for _, v := range cfg.Virtuals {
		if err := virtual(&b, v); err != nil {
			return "", &config.Error{File: cfg.File, Line: v.Line, Msg: err.Error()}
		}
	}
	return b.String(), nil
}

func virtual(b *strings.Builder, v *config.Virtual) error {
	chk, err := checker(v)
	if err != nil {
		return err
	}
	if err := quotable("virtualhost", v.VirtualHost); err != nil {
		return err
	}
	for _, r := range v.Reals {
		if err := quotable("request", r.Request); err != nil {
			return err
		}
		if err := quotable("receive", r.Receive); err != nil {
			return err
		}
	}
	if v.SuccessCount > 1 {
		return fmt.Errorf("successcount=%d has no keepalived equivalent", v.SuccessCount)
	}
	w := func(depth int, format string, args ...any) {
		b.WriteString(strings.Repeat("\t", depth))
		fmt.Fprintf(b, format, args...)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if v.Protocol == config.FWM {
		w(0, "virtual_server fwmark %d {", v.FWMark)
		if v.IPv6 {
			w(1, "ip_family inet6")
		}
	} else {
		w(0, "virtual_server %s %d {", v.Addr, v.Port)
		w(1, "protocol %s", strings.ToUpper(v.Protocol.String()))
	}
	w(1, "lvs_sched %s", v.Scheduler)
	for _, f := range strings.Split(v.SchedFlags, ",") {
		if f = strings.TrimSpace(f); f != "" {
			w(1, "%s", f)
		}
	}
	if v.OPS && v.Protocol == config.UDP {
		w(1, "ops")
	}
	if v.IsPersistent {
		w(1, "persistence_timeout %d", v.Persistent)
		if v.Netmask != 0 {
			w(1, "persistence_granularity %s", granularity(v))
		}
	}
	w(1, "delay_loop %s", seconds(v.CheckInterval))
	w(1, "alpha")
	if v.Quiescent {
		w(1, "inhibit_on_failure")
	}
	if f := v.Fallback; f != nil {
		w(1, "sorry_server %s %d", f.Addr, port(f.Port, v))
		w(1, "sorry_server_lvs_method %s", method(f.Forward))
	}
	for _, r := range v.Reals {
		w(1, "real_server %s %d {", r.Addr, port(r.Port, v))
		w(2, "weight %d", r.Weight)
		w(2, "lvs_method %s", method(r.Forward))
		if r.Upper > 0 {
			w(2, "uthreshold %d", r.Upper)
		}
		if r.Lower > 0 {
			w(2, "lthreshold %d", r.Lower)
		}
		if chk.kind != "" {
			w(2, "%s {", chk.kind)
			if v.CheckPort != 0 {
				w(3, "connect_port %d", v.CheckPort)
			}
			if chk.http {
				w(3, "url {")
				w(4, "path %s", quote(r.Request))
				if r.Receive != "" {
					w(4, "regex %s", quote(r.Receive))
				}
				w(3, "}")
				if v.VirtualHost != "" {
					w(3, "virtualhost %s", quote(v.VirtualHost))
				}
			}
			w(3, "connect_timeout %s", seconds(chk.timeout))
			w(3, "retry %d", max(v.FailureCount, 1)-1)
			w(3, "delay_before_retry %s", seconds(v.CheckInterval))
			w(2, "}")
		}
		w(1, "}")
	}
	w(0, "}")
	return nil
}

// check is the keepalived checker of a virtual's reals.
type check struct {
	kind    string // HTTP_GET, SSL_GET, TCP_CHECK, or "" for none (always up)
	http    bool
	timeout time.Duration
}

func checker(v *config.Virtual) (check, error) {
	switch v.CheckType {
	case config.CheckOn:
		return check{}, nil
	case config.CheckConnect:
		return check{kind: "TCP_CHECK", timeout: v.CheckTimeout}, nil
	case config.CheckNegotiate:
		if v.HTTPMethod != "" && v.HTTPMethod != "GET" {
			return check{}, fmt.Errorf("httpmethod=%s has no keepalived equivalent (HTTP_GET only)", v.HTTPMethod)
		}
		switch v.Service {
		case "http":
			return check{kind: "HTTP_GET", http: true, timeout: v.NegotiateTimeout}, nil
		case "https":
			return check{kind: "SSL_GET", http: true, timeout: v.NegotiateTimeout}, nil
		}
		return check{}, fmt.Errorf("service=%s has no keepalived equivalent (http, https only)", v.Service)
	}
	return check{}, fmt.Errorf("checktype=%s has no keepalived equivalent (negotiate, connect, on only)", v.CheckType)
}

// port is a real's port: its own, else the virtual's (what the kernel uses for a real without one).
func port(p uint16, v *config.Virtual) uint16 {
	if p != 0 {
		return p
	}
	return v.Port
}

func method(f config.Forward) string {
	switch f {
	case config.ForwardMasq:
		return "NAT"
	case config.ForwardIPIP:
		return "TUN"
	}
	return "DR"
}

// granularity is the persistence netmask as keepalived reads it: a dotted mask for IPv4, a prefix length
// for IPv6.
func granularity(v *config.Virtual) string {
	if v.IPv6 || v.Addr.Is6() {
		return strconv.Itoa(int(v.Netmask))
	}
	m := v.Netmask
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// seconds is a keepalived TIMER: seconds, with a fraction when there is one.
func seconds(d time.Duration) string {
	s := d.Seconds()
	if s == math.Trunc(s) {
		return strconv.Itoa(int(s))
	}
	return strconv.FormatFloat(s, 'f', -1, 64)
}

var plainWord = regexp.MustCompile(`^[A-Za-z0-9_./:-]+$`)

// quote writes s as one keepalived config word: bare when it is plain, else in double quotes, which
// keepalived takes verbatim (it has no escapes: see quotable).
func quote(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return `"` + s + `"`
}

// quotable says why s cannot be one keepalived config word, or nil: keepalived's quoted strings have no
// escape for a double quote, and a line ends the word.
func quotable(what, s string) error {
	if strings.ContainsAny(s, "\"\n") {
		return fmt.Errorf("%s %q cannot be written in keepalived.conf (a double quote or a newline)", what, s)
	}
	return nil
}
