// Package checker answers "is this real server healthy?" for every ldirectord check type and service.
package checker

import (
	"context"
	"net/netip"
)

// Checker checks one real server. Check returns nil when the server is healthy; otherwise the error says
// why, in words fit for a log line. Check obeys ctx's deadline and never picks a timeout of its own.
type Checker interface {
	Check(ctx context.Context, t *Target) error
}

// Func adapts a function to Checker.
type Func func(ctx context.Context, t *Target) error

// Check calls f.
func (f Func) Check(ctx context.Context, t *Target) error { return f(ctx, t) }

// Target is everything a check needs to know about one real server of one virtual service.
type Target struct {
	// Addr and Port are where the check connects: the real's address and its check port (checkport, else
	// the real's port, else the service's default port).
	Addr netip.Addr
	Port uint16
	// UDP is true when the virtual service is UDP (connect then means ping; dns, sip, simpletcp use UDP).
	UDP bool

	// VIP is the virtual's address as ldirectord passes it to external checks: the IP (IPv6 in brackets)
	// or the firewall-mark number; VPort is 0 for fwmark services. RIP/RPort are the configured real
	// address and port (not the check port).
	VIP   string
	VPort uint16
	RIP   string
	RPort uint16

	Service     string // ldirectord service name: http, https, http_proxy, simpletcp, none, ...
	Request     string // with its leading '/'
	Receive     string // a regular expression in Perl syntax; "" = anything
	HTTPMethod  string // GET or HEAD
	VirtualHost string // Host header (and TLS server name) for http/https; "" = the real's address
	Login       string
	Passwd      string
	Database    string
	Secret      string
	Command     string // checkcommand for external / external-perl
	CheckCount  int    // ping attempts
}
