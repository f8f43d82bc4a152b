package ipvsctl

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// dryRun is the --dry-run IPVS client: a decorator of a Client (a Fake, which keeps the kernel's
// semantics) that logs every change as the ipvsadm command that would make it, for example
// `dry-run: ipvsadm -a -t 10.0.0.1:80 -r 127.0.0.2:80 -m -w 1`. A change the kernel would refuse is
// logged with the error.
type dryRun struct {
	Client
	logf func(format string, args ...any)
}

// NewDryRun returns c with every change logged through logf (one line each, e.g. a logger's Infof) as the
// ipvsadm command that would make it. Reads are c's own.
func NewDryRun(c Client, logf func(format string, args ...any)) Client {
	return &dryRun{Client: c, logf: logf}
}

func (d *dryRun) logged(cmd string, err error) error {
	if err != nil {
		d.logf("dry-run: ipvsadm %s (refused: %v)", cmd, err)
	} else {
		d.logf("dry-run: ipvsadm %s", cmd)
	}
	return err
}

func (d *dryRun) AddService(ctx context.Context, s Service) error {
	return d.logged("-A "+serviceOpts(s), d.Client.AddService(ctx, s))
}

func (d *dryRun) UpdateService(ctx context.Context, s Service) error {
	return d.logged("-E "+serviceOpts(s), d.Client.UpdateService(ctx, s))
}

func (d *dryRun) DeleteService(ctx context.Context, id ServiceID) error {
	return d.logged("-D "+serviceArg(id), d.Client.DeleteService(ctx, id))
}

func (d *dryRun) AddDestination(ctx context.Context, id ServiceID, dst Destination) error {
	return d.logged("-a "+destOpts(id, dst), d.Client.AddDestination(ctx, id, dst))
}

func (d *dryRun) UpdateDestination(ctx context.Context, id ServiceID, dst Destination) error {
	return d.logged("-e "+destOpts(id, dst), d.Client.UpdateDestination(ctx, id, dst))
}

func (d *dryRun) DeleteDestination(ctx context.Context, id ServiceID, dst DestinationID) error {
	return d.logged("-d "+serviceArg(id)+" -r "+dst.String(), d.Client.DeleteDestination(ctx, id, dst))
}

// serviceArg is ipvsadm's service address: `-t IP:PORT`, `-u [IP6]:PORT`, `--sctp-service IP:PORT`,
// `-f MARK` or `-f MARK -6`.
func serviceArg(id ServiceID) string {
	if id.FWMark != 0 {
		if id.Family == IPv6 {
			return fmt.Sprintf("-f %d -6", id.FWMark)
		}
		return fmt.Sprintf("-f %d", id.FWMark)
	}
	ap := netip.AddrPortFrom(id.Addr, id.Port).String()
	switch id.Protocol {
	case TCP:
		return "-t " + ap
	case UDP:
		return "-u " + ap
	case SCTP:
		return "--sctp-service " + ap
	}
	return fmt.Sprintf("--protocol-%d %s", id.Protocol, ap)
}

func serviceOpts(s Service) string {
	var b strings.Builder
	b.WriteString(serviceArg(s.ServiceID))
	if s.Flags&FlagOnePacket != 0 {
		b.WriteString(" -o")
	}
	b.WriteString(" -s " + s.Scheduler)
	if s.Flags&FlagPersistent != 0 {
		fmt.Fprintf(&b, " -p %d", s.Timeout)
		if m := netmaskArg(s); m != "" {
			b.WriteString(" -M " + m)
		}
	}
	var sf []string
	for _, f := range []struct {
		bit  Flags
		name string
	}{{FlagSchedFlag1, "flag-1"}, {FlagSchedFlag2, "flag-2"}, {FlagSchedFlag3, "flag-3"}} {
		if s.Flags&f.bit != 0 {
			sf = append(sf, f.name)
		}
	}
	if len(sf) > 0 {
		b.WriteString(" -b " + strings.Join(sf, ","))
	}
	return b.String()
}

// netmaskArg is the -M value, "" for none or the full mask.
func netmaskArg(s Service) string {
	if s.Netmask == 0 {
		return ""
	}
	if s.Family == IPv6 || s.Addr.Is6() {
		if s.Netmask >= 128 {
			return ""
		}
		return fmt.Sprint(s.Netmask)
	}
	if s.Netmask == 0xffffffff {
		return ""
	}
	m := s.Netmask
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

func destOpts(id ServiceID, d Destination) string {
	var b strings.Builder
	b.WriteString(serviceArg(id))
	b.WriteString(" -r " + d.DestinationID.String())
	switch d.Forward {
	case Masq:
		b.WriteString(" -m")
	case Route:
		b.WriteString(" -g")
	case Tunnel:
		b.WriteString(" -i")
	}
	fmt.Fprintf(&b, " -w %d", d.Weight)
	if d.Upper != 0 || d.Lower != 0 {
		fmt.Fprintf(&b, " -x %d -y %d", d.Upper, d.Lower)
	}
	return b.String()
}
