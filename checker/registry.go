package checker

import (
	"context"
	"errors"
)

// service describes one ldirectord service= name: its negotiate check and how the daemon treats it.
type service struct {
	check Checker
	// implemented is false when the protocol is not spoken and the check is a plain TCP connect.
	implemented bool
	// checkTimeout: the whole check is bounded by checktimeout instead of negotiatetimeout (ldap, radius).
	checkTimeout bool
	// receive: the check matches the receive= regular expression.
	receive bool
}

// services is the registry, keyed by ldirectord's service= names (reference §3.8).
var services = map[string]service{
	"none":       {check: None, implemented: true},
	"http":       {check: HTTP, implemented: true, receive: true},
	"https":      {check: HTTPS, implemented: true, receive: true},
	"http_proxy": {check: HTTPProxy, implemented: true, receive: true},
	"simpletcp":  {check: SimpleTCP, implemented: true, receive: true},
	"nntp":       {check: NNTP, implemented: true},
	"smtp":       {check: SMTP, implemented: true},
	"submission": {check: SMTP, implemented: true},
	"pop":        {check: POP, implemented: true},
	"pops":       {check: POPS, implemented: true},
	"imap":       {check: IMAP, implemented: true},
	"imaps":      {check: IMAPS, implemented: true},
	"ftp":        {check: FTP, implemented: true, receive: true},
	"dns":        {check: DNS, implemented: true, receive: true},
	"sip":        {check: SIP, implemented: true},
	"radius":     {check: RADIUS, implemented: true, checkTimeout: true},
	"ldap":       {check: LDAP, implemented: true, checkTimeout: true, receive: true},
	"ldaps":      {check: LDAPS, implemented: true, checkTimeout: true, receive: true},
	"mysql":      {check: MySQL, implemented: true},
	"pgsql":      {check: PgSQL, implemented: true},
	"oracle":     {check: Connect},
}

// serviceOrder is ldirectord's own order of the names (its "service must be ..." message), which is also
// config.Services.
var serviceOrder = []string{"dns", "ftp", "http", "https", "http_proxy", "imap", "imaps", "ldap", "ldaps",
	"mysql", "nntp", "none", "oracle", "pop", "pops", "radius", "pgsql", "simpletcp", "sip", "smtp", "submission"}

// Negotiate returns the negotiate checker registered for an ldirectord service name (http, https,
// http_proxy, simpletcp, none, smtp, ...). ok is false for an unknown name.
func Negotiate(name string) (c Checker, ok bool) {
	s, ok := services[name]
	return s.check, ok
}

// Services lists every registered service name, in ldirectord's order (equal to config.Services).
func Services() []string { return append([]string(nil), serviceOrder...) }

// Implemented reports whether the service's negotiate check speaks its protocol. It is false for the
// services whose check falls back to a plain TCP connect (oracle); the daemon warns once
// for those.
func Implemented(name string) bool { return services[name].implemented }

// UsesReceive reports whether the service's negotiate check matches receive= (see CompileReceive).
func UsesReceive(name string) bool { return services[name].receive }

// UsesCheckTimeout reports whether the service's negotiate check is bounded by checktimeout (ldap, ldaps,
// radius, as in ldirectord) instead of negotiatetimeout.
func UsesCheckTimeout(name string) bool { return services[name].checkTimeout }

// None is the check of service=none: always healthy, nothing is sent.
var None Checker = Func(func(ctx context.Context, t *Target) error { return nil })

// On is checktype=on: always healthy.
var On Checker = Func(func(ctx context.Context, t *Target) error { return nil })

// ErrOff is what Off returns.
var ErrOff = errors.New("checktype off")

// Off is checktype=off. The daemon never runs it (the reals of such a virtual are never added); it is
// total anyway and always returns ErrOff.
var Off Checker = Func(func(ctx context.Context, t *Target) error { return ErrOff })

// Message is the text the monitorfile gets for a check result: "-" for a healthy result (ldirectord writes
// "-" for most checks), otherwise the error text. For HTTP it is what ldirectord writes: the status line
// ("404 Not Found"), or the body when a 2xx body did not match receive (quoted, at most 256 bytes).
func Message(err error) string {
	if err == nil {
		return "-"
	}
	var m interface{ monitorMessage() string }
	if errors.As(err, &m) {
		return m.monitorMessage()
	}
	return err.Error()
}
