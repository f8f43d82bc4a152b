package config

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// ErrorList is every error of one file, in line order; Error() joins them with "\n".
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Resolver looks up hostnames and service (port) names.
type Resolver interface {
	// LookupAddr returns the first address of host in the family asked for.
	LookupAddr(host string, ipv6 bool) (netip.Addr, error)
	// LookupPort returns the port of a service name for proto ("tcp", "udp", or "" for either).
	LookupPort(proto, service string) (uint16, error)
}

// lookupTimeout bounds one host lookup of DefaultResolver (4.12 had none: a dead DNS server hung it).
const lookupTimeout = 10 * time.Second

// DefaultResolver uses the system resolver (net, /etc/hosts, DNS, /etc/services).
var DefaultResolver Resolver = systemResolver{}

type systemResolver struct{}

func (systemResolver) LookupAddr(host string, ipv6 bool) (netip.Addr, error) {
	network := "ip4"
	if ipv6 {
		network = "ip6"
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("no address for %s", host)
	}
	return ips[0].Unmap(), nil
}

func (systemResolver) LookupPort(proto, service string) (uint16, error) {
	network := proto
	if network == "" {
		network = "tcp"
	}
	p, err := net.LookupPort(network, service)
	if err != nil && proto == "" {
		p, err = net.LookupPort("udp", service)
	}
	if err != nil {
		return 0, err
	}
	return uint16(p), nil
}

// Find returns the path of the config as ldirectord finds it: /etc/ha.d/NAME, /etc/ha.d/conf/NAME, NAME
// (the first existing regular file); name "" means "ldirectord.cf".
func Find(name string) (string, error) {
	if name == "" {
		name = "ldirectord.cf"
	}
	for _, p := range []string{"/etc/ha.d/" + name, "/etc/ha.d/conf/" + name, name} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("Config file %s not found", name)
}

// Load is Find, read, Parse, Resolve with DefaultResolver, and CheckFiles. The returned error is an ErrorList, or a
// plain error for I/O problems.
func Load(name string) (*Config, error) { return LoadWith(name, LoadOptions{}) }

// LoadOptions say how the loaded config will be used.
type LoadOptions struct {
	// NoLogFile: the log goes elsewhere (ldirectord -d logs to stderr), so logfile= is not opened, as
	// ldirectord 4.12 skips that check with -d (supervised=yes skips it in any case).
	NoLogFile bool
	// NoCreate: only check the config (ldirectord -t), which must have no side effects and must not need
	// root: no file is opened or created; a log file or monitorfile that this user could not open for
	// writing is a warning instead of an error.
	NoCreate bool
}

// LoadWith is Load with options.
func LoadWith(name string, o LoadOptions) (*Config, error) {
	path, err := Find(name)
	if err != nil {
		return nil, err
	}
	src, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(path, src)
	if err != nil {
		return nil, err
	}
	if err := c.Resolve(DefaultResolver); err != nil {
		return nil, err
	}
	if err := c.checkFiles(!o.NoLogFile, o.NoCreate); err != nil {
		return nil, err
	}
	return c, nil
}

// Services lists the valid service= names (reference §3.8).
var Services = []string{"dns", "ftp", "http", "https", "http_proxy", "imap", "imaps", "ldap", "ldaps",
	"mysql", "nntp", "none", "oracle", "pop", "pops", "radius", "pgsql", "simpletcp", "sip", "smtp", "submission"}

var portService = map[uint16]string{21: "ftp", 25: "smtp", 53: "dns", 80: "http", 110: "pop", 119: "nntp",
	143: "imap", 389: "ldap", 443: "https", 587: "submission", 636: "ldaps", 993: "imaps", 995: "pops",
	1521: "oracle", 1812: "radius", 3128: "http_proxy", 3306: "mysql", 5060: "sip", 5432: "pgsql"}

var servicePort = func() map[string]uint16 {
	m := make(map[string]uint16, len(portService))
	for p, s := range portService {
		m[s] = p
	}
	return m
}()

// DefaultService is the service a virtual gets from its port when service= is not given: "none" for
// ports without a known service (reference §3.8).
func DefaultService(port uint16) string {
	if s, ok := portService[port]; ok {
		return s
	}
	return "none"
}

// DefaultPort is the port checks use for a service when neither checkport nor the real's port is set;
// 0 for "none" and unknown names.
func DefaultPort(service string) uint16 { return servicePort[service] }

// DirectiveLine is the line of directive name (request, receive, virtualhost or scheduler) in the section of v, one
// of c's virtuals, so that an error about the value names its own line; v.Line when the directive is not
// given (or c was not parsed from text).
func (c *Config) DirectiveLine(v *Virtual, name string) int {
	if c.state != nil {
		for i, x := range c.Virtuals {
			if x != v || i >= len(c.state.virtuals) {
				continue
			}
			vs := c.state.virtuals[i]
			ln := map[string]int{"request": vs.requestLn, "receive": vs.receiveLn, "virtualhost": vs.vhostLn,
				"scheduler": vs.schedLn}[name]
			if ln > 0 {
				return ln
			}
		}
	}
	return v.Line
}

// MaxFile is the largest config file read, in bytes (a config of 10,000 real servers is about 400 KB).
const MaxFile = 16 << 20

// readConfig reads a config file, refusing one larger than MaxFile before reading it all.
func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("can not open file %s", path)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	if err != nil {
		return nil, fmt.Errorf("can not open file %s", path)
	}
	if len(src) > MaxFile {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("file too large (more than %d bytes)", MaxFile)}}
	}
	return src, nil
}

// ExecuteLine is the line of the execute= directive that set c.Execute[i] (0 when unknown).
func (c *Config) ExecuteLine(i int) int {
	if c.state == nil || i < 0 || i >= len(c.state.executeLns) {
		return 0
	}
	return c.state.executeLns[i]
}
