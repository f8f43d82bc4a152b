// Package config reads ldirectord.cf files with the meaning ldirectord 4.12 gives them.
package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Protocol is a virtual service's protocol.
type Protocol int

// Protocols a virtual service can have. FWM is a firewall-mark service; SCTP is an extension.
const (
	TCP Protocol = iota
	UDP
	FWM
	SCTP
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case FWM:
		return "fwm"
	case SCTP:
		return "sctp"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// Forward is a real server's packet-forwarding method.
type Forward int

// Forwarding methods, with ldirectord's names gate, masq and ipip.
const (
	ForwardGate Forward = iota
	ForwardMasq
	ForwardIPIP
)

func (f Forward) String() string {
	switch f {
	case ForwardGate:
		return "gate"
	case ForwardMasq:
		return "masq"
	case ForwardIPIP:
		return "ipip"
	}
	return fmt.Sprintf("Forward(%d)", int(f))
}

// CheckType is a virtual service's checktype.
type CheckType int

// Check types. CheckCombined is `checktype=N`: N connect checks between negotiate checks.
const (
	CheckNegotiate CheckType = iota
	CheckConnect
	CheckPing
	CheckExternal
	CheckExternalPerl
	CheckOn
	CheckOff
	CheckCombined
)

func (c CheckType) String() string {
	switch c {
	case CheckNegotiate:
		return "negotiate"
	case CheckConnect:
		return "connect"
	case CheckPing:
		return "ping"
	case CheckExternal:
		return "external"
	case CheckExternalPerl:
		return "external-perl"
	case CheckOn:
		return "on"
	case CheckOff:
		return "off"
	case CheckCombined:
		return "combined"
	}
	return fmt.Sprintf("CheckType(%d)", int(c))
}

// AlertStatus is the emailalertstatus bit mask: the daemon phases in which alerts are sent.
type AlertStatus int

// Daemon phases, with ldirectord's bit values.
const (
	StatusStarting  AlertStatus = 1
	StatusRunning   AlertStatus = 2
	StatusStopping  AlertStatus = 4
	StatusReloading AlertStatus = 8
	StatusAll                   = StatusStarting | StatusRunning | StatusStopping | StatusReloading
	StatusNone      AlertStatus = 0
)

// String is the emailalertstatus spelling: "all", "none", or the phases ("starting", "running", "stopping",
// "reloading") joined by commas. A single phase is the daemon status of an e-mail or of `show`.
func (s AlertStatus) String() string {
	if s == StatusAll {
		return "all"
	}
	if s == StatusNone {
		return "none"
	}
	var l []string
	for _, x := range []struct {
		b AlertStatus
		n string
	}{{StatusStarting, "starting"}, {StatusRunning, "running"}, {StatusStopping, "stopping"}, {StatusReloading, "reloading"}} {
		if s&x.b != 0 {
			l = append(l, x.n)
		}
	}
	return strings.Join(l, ",")
}

// Config is a parsed ldirectord.cf: the global settings and every virtual service, with every default and
// inherited value already resolved into each Virtual.
type Config struct {
	// File is the config file's path as it was given to Parse.
	File string

	CheckInterval  time.Duration // global checkinterval (default 10s)
	AutoReload     bool
	Callback       string   // callback="..." (unquoted path)
	LogFile        string   // "/path" for a file, otherwise a syslog facility; default /var/log/ldirectord.log
	Execute        []string // execute= lines, in order
	Fork           bool
	Supervised     bool
	ReaddQuiescent bool
	EmailAlertFrom string
	MaintenanceDir string
	// Metrics is the address metrics= serves Prometheus metrics on, as net.Listen takes it
	// ("127.0.0.1:9523", "[::1]:9523", ":9523" for every address); "" when off (the default).
	Metrics string

	// Virtuals in config order.
	Virtuals []*Virtual

	// Warnings are the non-fatal findings of Parse and Resolve, in line order.
	Warnings []*Error

	// state is what Parse read, kept for Resolve.
	state *parseState
}

// Virtual is one virtual service with all its settings resolved (per-virtual value, else global, else
// default).
type Virtual struct {
	Line int // line of the virtual=/virtual6= directive

	// Host is the address as written (an IP, a hostname, or a fwmark number); Addr is its resolved address.
	// For a firewall-mark service Addr is the zero Addr and FWMark is set; IPv6 tells a virtual6 fwmark
	// from a virtual one.
	Host     string
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
	IPv6     bool
	Protocol Protocol

	Scheduler  string
	Persistent uint32 // persistence timeout in seconds; valid only when IsPersistent
	// IsPersistent tells `persistent=0` from no persistent directive.
	IsPersistent bool
	// Netmask is the persistence netmask: for IPv4 the mask as a big-endian integer (255.255.255.0 is
	// 0xffffff00), for IPv6 the prefix length; 0 when unset. Only meaningful with IsPersistent.
	Netmask    uint32
	SchedFlags string // schedflags, as written (e.g. "sh-fallback,sh-port")
	OPS        bool   // one-packet scheduling (only honoured for UDP, as in ldirectord)

	CheckType    CheckType
	CombinedN    int    // N of checktype=N
	Service      string // ldirectord service name (http, https, none, ...)
	CheckCommand string // external / external-perl command (default /bin/true)
	CheckPort    uint16 // 0 when unset
	Request      string // with its leading '/'
	Receive      string
	HTTPMethod   string // GET or HEAD
	VirtualHost  string
	Login        string
	Passwd       string
	Database     string
	Secret       string
	Load         string

	CheckTimeout     time.Duration // resolved with the fallback chain of reference §3.9
	NegotiateTimeout time.Duration
	CheckInterval    time.Duration
	CheckCount       int
	FailureCount     int
	SuccessCount     int // extension: consecutive successes before a down real comes up (default 1)

	Quiescent       bool
	CleanStop       bool
	Fallback        *Fallback // per-virtual, else the global one for this family; nil when none
	FallbackCommand string

	EmailAlert       string
	EmailAlertFreq   time.Duration
	EmailAlertStatus AlertStatus
	SMTP             string
	MonitorFile      string
	ServiceName      string
	Comment          string

	Reals []*Real // in config order, ranges expanded
}

// Real is one real server of a virtual service.
type Real struct {
	Line int
	Host string // as written
	Addr netip.Addr
	// Port is the configured port; 0 when omitted (the kernel then uses the virtual's port).
	Port    uint16
	Forward Forward
	Weight  int
	// Request and Receive are the per-real overrides, already merged: a real without its own pair carries
	// the virtual's values. HasOwnCheck tells which.
	Request     string
	Receive     string
	HasOwnCheck bool
	Lower       uint32 // l:N connection threshold (0 = none)
	Upper       uint32 // u:N connection threshold (0 = none)
}

// Fallback is a fallback server: always weight 1 and no thresholds.
type Fallback struct {
	Line    int
	Host    string
	Addr    netip.Addr
	Port    uint16
	Forward Forward
}

// Error is a config error or warning with its position. Line is 0 for findings about the whole file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// String is ldirectord's get_virtual form: `IP:PORT`, `[IP6]:PORT`, or the fwmark number. It appears in
// log lines such as `Added virtual server: <virtual>` and `... (<virtual>)`.
func (v *Virtual) String() string {
	if v.Protocol == FWM {
		return fmt.Sprint(v.FWMark)
	}
	return netip.AddrPortFrom(v.Addr, v.Port).String()
}

// ID is ldirectord's virtual id: `tcp:IP:PORT`, `udp:IP:PORT`, `fwm:N` or `fwm6:N`. It appears in
// soft-failure lines.
func (v *Virtual) ID() string {
	if v.Protocol == FWM {
		if v.IPv6 {
			return fmt.Sprintf("fwm6:%d", v.FWMark)
		}
		return fmt.Sprintf("fwm:%d", v.FWMark)
	}
	return v.Protocol.String() + ":" + v.String()
}

// AddrPort is the real's address and configured port.
func (r *Real) AddrPort() netip.AddrPort { return netip.AddrPortFrom(r.Addr, r.Port) }

// AddrPort is the fallback's address and port.
func (f *Fallback) AddrPort() netip.AddrPort { return netip.AddrPortFrom(f.Addr, f.Port) }
