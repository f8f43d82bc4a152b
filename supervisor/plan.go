package supervisor

import (
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// unitKey identifies one check. Every real of every virtual with the same key is checked once, and the
// result applies to all of them at once. It holds everything that changes what the check does or how its
// result is counted, and nothing else (not the weight, not the forwarding method), so a reload that only
// reweights a real keeps its check loop and its health.
type unitKey struct {
	Target       checker.Target
	Type         config.CheckType
	CombinedN    int
	CheckTimeout time.Duration
	NegTimeout   time.Duration
	Interval     time.Duration
	FailureCount int
	SuccessCount int
}

// member is one (virtual, real) pair a check applies to; ri is r's index in v.Reals.
type member struct {
	v  *config.Virtual
	r  *config.Real
	ri int
}

// check is one distinct check of a config, with its members in config order.
type check struct {
	key     unitKey
	hash    uint64
	members []member
}

// checkFor returns the check of key k (hash h) from byHash, adding a new one to byHash and to *list when
// there is none yet.
func checkFor(byHash map[uint64][]*check, list *[]*check, k unitKey, h uint64) *check {
	for _, x := range byHash[h] {
		if x.key == k {
			return x
		}
	}
	c := &check{key: k, hash: h}
	byHash[h] = append(byHash[h], c)
	*list = append(*list, c)
	return c
}

var keySeed = maphash.MakeSeed()

// hash is k's hash, computed once per real so that the maps below never hash the large key again.
func (k *unitKey) hash() uint64 { return maphash.Comparable(keySeed, *k) }

// checkResolved says whether cfg carries the settings config.Parse resolves, its defaults applied: the
// supervisor sets none of its own, and a config built without them (a zero checkinterval) would stop a
// check loop or the watcher.
func checkResolved(cfg *config.Config) error {
	if cfg.File != "" && cfg.CheckInterval <= 0 {
		return fmt.Errorf("supervisor: config %s: checkinterval is not set", cfg.File)
	}
	for _, v := range cfg.Virtuals {
		if v.CheckInterval <= 0 || v.CheckTimeout <= 0 || v.NegotiateTimeout <= 0 || v.CheckCount < 1 ||
			v.FailureCount < 1 || v.SuccessCount < 1 || v.Scheduler == "" {
			return fmt.Errorf("supervisor: virtual %s (line %d): checks and scheduler are not resolved", v, v.Line)
		}
	}
	return nil
}

// keyOf is the check of r in v. The settings are the virtual's as config resolved them (its defaults
// included: the supervisor sets none of its own).
func keyOf(v *config.Virtual, r *config.Real) unitKey {
	k := unitKey{
		Target:       targetOf(v, r),
		Type:         v.CheckType,
		CheckTimeout: v.CheckTimeout,
		NegTimeout:   v.NegotiateTimeout,
		Interval:     v.CheckInterval,
		FailureCount: v.FailureCount,
		SuccessCount: v.SuccessCount,
	}
	if v.CheckType == config.CheckCombined {
		k.CombinedN = v.CombinedN
	}
	if v.CheckType != config.CheckExternal && v.CheckType != config.CheckExternalPerl {
		// Only external checks are told the virtual: without it the same real in two virtuals is one check.
		k.Target.VIP, k.Target.VPort = "", 0
	}
	return k
}

// timeout is how long one check of k may take (reference §4.3): checktimeout for connect, ping (per
// attempt), external and external-perl, and the services whose overall alarm is checktimeout (ldap,
// radius); negotiatetimeout for every other negotiate check; the longer of the two for combined, whose
// steps apply their own. Checks that ldirectord runs with no timeout at all (SQL, the nntp connect) get
// negotiatetimeout.
func (k unitKey) timeout() time.Duration {
	ct, nt := k.CheckTimeout, k.NegTimeout
	switch k.Type {
	case config.CheckPing:
		return ct * time.Duration(k.Target.CheckCount)
	case config.CheckConnect:
		if k.Target.UDP { // connect on UDP is a ping
			return ct * time.Duration(k.Target.CheckCount)
		}
		return ct
	case config.CheckExternal, config.CheckExternalPerl, config.CheckOn, config.CheckOff:
		return ct
	case config.CheckCombined:
		return max(ct, nt)
	}
	if usesCheckTimeout(k.Target.Service) {
		return ct
	}
	return nt
}

// stagger is the unit's stable place in its interval, in [0, 1): a hash of what it checks, so checks do
// not fire in lock-step and a restart keeps the same spread.
func (k unitKey) stagger() float64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%v|%d|%s|%d|%s|%s", k.Target.Addr, k.Target.Port, k.Target.VIP, k.Target.VPort, k.Target.Service, k.Type)
	return float64(h.Sum64()>>11) / float64(1<<53)
}

// targetOf is what the check of r in v connects to and sends.
func targetOf(v *config.Virtual, r *config.Real) checker.Target {
	port := v.CheckPort
	if port == 0 {
		port = r.Port
	}
	if port == 0 {
		port = config.DefaultPort(v.Service)
	}
	vip := ""
	switch {
	case v.Protocol == config.FWM:
		vip = strconv.FormatUint(uint64(v.FWMark), 10)
	default:
		vip = addrText(v.Addr)
	}
	return checker.Target{
		Addr:        r.Addr,
		Port:        port,
		UDP:         v.Protocol == config.UDP,
		VIP:         vip,
		VPort:       v.Port,
		RIP:         addrText(r.Addr),
		RPort:       r.Port,
		Service:     v.Service,
		Request:     r.Request,
		Receive:     r.Receive,
		HTTPMethod:  v.HTTPMethod,
		VirtualHost: v.VirtualHost,
		Login:       v.Login,
		Passwd:      v.Passwd,
		Database:    v.Database,
		Secret:      v.Secret,
		Command:     v.CheckCommand,
		CheckCount:  v.CheckCount,
	}
}

// addrText is an address as ldirectord writes it: IPv6 in brackets.
func addrText(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		return "[" + a.String() + "]"
	}
	return a.Unmap().String()
}

// realText is `RIP:RPORT` with the configured port (0 when omitted), as in ldirectord's log lines.
func realText(r *config.Real) string { return netip.AddrPortFrom(r.Addr, r.Port).String() }

// realID is ldirectord's real id (reference §3.10) munged for the monitorfile: runs of ':' become one
// space and backslashes go (§5.11), e.g. `negotiate http tcp 127.0.0.2 8080 1 masq /index.html Test Page`.
func realID(v *config.Virtual, r *config.Real) string {
	check := v.CheckType.String()
	switch v.CheckType {
	case config.CheckNegotiate, config.CheckCombined:
		check += ":" + v.Service
	case config.CheckExternal, config.CheckExternalPerl:
		check += ":" + v.CheckCommand
	}
	checkport := ""
	if v.CheckPort != 0 {
		checkport = strconv.Itoa(int(v.CheckPort))
	}
	id := strings.Join([]string{check, v.Protocol.String(), addrText(r.Addr), strconv.Itoa(int(r.Port)),
		v.VirtualHost, checkport, strconv.Itoa(r.Weight), r.Forward.String(), r.Request, r.Receive}, ":")
	var b strings.Builder
	colon := false
	for _, c := range id {
		switch c {
		case ':':
			colon = true
			continue
		case '\\':
			continue
		}
		if colon {
			b.WriteByte(' ')
			colon = false
		}
		b.WriteRune(c)
	}
	if colon {
		b.WriteByte(' ')
	}
	return b.String()
}

// serviceID is the kernel identity of v.
func serviceID(v *config.Virtual) ipvsctl.ServiceID {
	if v.Protocol == config.FWM {
		f := ipvsctl.IPv4
		if v.IPv6 {
			f = ipvsctl.IPv6
		}
		return ipvsctl.ServiceID{Family: f, FWMark: v.FWMark}
	}
	id := ipvsctl.ServiceID{Family: ipvsctl.IPv4, Addr: v.Addr.Unmap(), Port: v.Port}
	if id.Addr.Is6() {
		id.Family = ipvsctl.IPv6
	}
	switch v.Protocol {
	case config.TCP:
		id.Protocol = ipvsctl.TCP
	case config.UDP:
		id.Protocol = ipvsctl.UDP
	case config.SCTP:
		id.Protocol = ipvsctl.SCTP
	}
	return id
}

// serviceOf is the kernel service v asks for.
func serviceOf(v *config.Virtual) ipvsctl.Service {
	s := ipvsctl.Service{ServiceID: serviceID(v), Scheduler: v.Scheduler}
	if v.IsPersistent && v.Persistent > 0 {
		s.Flags |= ipvsctl.FlagPersistent
		s.Timeout = v.Persistent
		s.Netmask = v.Netmask
	}
	if v.OPS && v.Protocol == config.UDP {
		s.Flags |= ipvsctl.FlagOnePacket
	}
	for _, f := range strings.Split(v.SchedFlags, ",") {
		switch strings.TrimSpace(f) {
		case "flag-1", "sh-fallback", "mh-fallback":
			s.Flags |= ipvsctl.FlagSchedFlag1
		case "flag-2", "sh-port", "mh-port":
			s.Flags |= ipvsctl.FlagSchedFlag2
		case "flag-3":
			s.Flags |= ipvsctl.FlagSchedFlag3
		}
	}
	return s
}

func forwardOf(f config.Forward) ipvsctl.Forward {
	switch f {
	case config.ForwardMasq:
		return ipvsctl.Masq
	case config.ForwardIPIP:
		return ipvsctl.Tunnel
	}
	return ipvsctl.Route
}

// kernelDest is the identity the kernel stores for a destination of v at addr:port with forwarding f.
// ipvsadm stores a gate or ipip real of an address virtual under the virtual's port, and a real with no
// port under the virtual's port too (reference W6); computing it here keeps Diff from churning on them.
func kernelDest(v *config.Virtual, addr netip.Addr, port uint16, f config.Forward) ipvsctl.DestinationID {
	if v.Protocol != config.FWM && (port == 0 || f != config.ForwardMasq) {
		port = v.Port
	}
	return ipvsctl.DestinationID{Addr: addr.Unmap(), Port: port}
}

func realDest(v *config.Virtual, r *config.Real) ipvsctl.DestinationID {
	return kernelDest(v, r.Addr, r.Port, r.Forward)
}

func fallbackDest(v *config.Virtual) ipvsctl.DestinationID {
	f := v.Fallback
	return kernelDest(v, f.Addr, f.Port, f.Forward)
}
