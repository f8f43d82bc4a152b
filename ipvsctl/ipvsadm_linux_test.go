package ipvsctl

import (
	"bufio"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// ipvsadm runs ipvsadm in the guest and fails t if it fails.
func ipvsadm(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ipvsadm", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// oracle reads the kernel table through `ipvsadm -Ln` and `ipvsadm -Ln --thresholds`, an implementation
// independent of ours, into a Table (without counters).
func oracle(t testing.TB) Table {
	t.Helper()
	tb, err := parseIpvsadm(ipvsadm(t, "-Ln"), ipvsadm(t, "-Ln", "--thresholds"))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// parseIpvsadm parses `ipvsadm -Ln` (services and destinations) and `ipvsadm -Ln --thresholds` (the
// thresholds of the same destinations, in the same order).
func parseIpvsadm(list, thresholds string) (Table, error) {
	t := Table{}
	var order []*Destination
	var cur *VirtualService
	sc := bufio.NewScanner(strings.NewReader(list))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n <= 3 {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "->" {
			if cur == nil || len(f) < 4 {
				return nil, fmt.Errorf("ipvsadm line %d: %q", n, line)
			}
			ap, err := netip.ParseAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("ipvsadm line %d: %v", n, err)
			}
			d := Destination{DestinationID: DestinationID{Addr: ap.Addr(), Port: ap.Port()}}
			switch f[2] {
			case "Route":
				d.Forward = Route
			case "Masq":
				d.Forward = Masq
			case "Tunnel":
				d.Forward = Tunnel
			case "Local":
				d.Forward = Local
			default:
				return nil, fmt.Errorf("ipvsadm line %d: forward %q", n, f[2])
			}
			if d.Weight, err = strconv.Atoi(f[3]); err != nil {
				return nil, fmt.Errorf("ipvsadm line %d: %v", n, err)
			}
			cur.Destinations[d.DestinationID] = d
			order = append(order, &d)
			continue
		}
		s, err := parseIpvsadmService(f)
		if err != nil {
			return nil, fmt.Errorf("ipvsadm line %d: %q: %v", n, line, err)
		}
		cur = &VirtualService{Service: s, Destinations: map[DestinationID]Destination{}}
		t[s.ServiceID] = cur
	}
	// Thresholds: same destinations in the same order, "-> ADDR:PORT UPPER LOWER ACTIVE INACTIVE".
	i := 0
	var svc ServiceID
	sc = bufio.NewScanner(strings.NewReader(thresholds))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if n <= 3 || len(f) == 0 {
			continue
		}
		if f[0] != "->" {
			s, err := parseIpvsadmService(f)
			if err != nil {
				return nil, err
			}
			svc = s.ServiceID
			continue
		}
		ap, err := netip.ParseAddrPort(f[1])
		if err != nil || i >= len(order) || len(f) < 4 {
			return nil, fmt.Errorf("thresholds line %d: %q", n, sc.Text())
		}
		id := DestinationID{Addr: ap.Addr(), Port: ap.Port()}
		d := t[svc].Destinations[id]
		u, err1 := strconv.ParseUint(f[2], 10, 32)
		l, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("thresholds line %d: %q", n, sc.Text())
		}
		d.Upper, d.Lower = uint32(u), uint32(l)
		t[svc].Destinations[id] = d
		i++
	}
	if i != len(order) {
		return nil, fmt.Errorf("--thresholds listed %d destinations, -Ln %d", i, len(order))
	}
	return t, nil
}

// parseIpvsadmService parses "TCP  10.0.0.1:80 wrr (sh-port) ops persistent 300 mask 255.255.255.0",
// "FWM  8 IPv6 rr ...", or the same without the settings (--thresholds lines have them too).
func parseIpvsadmService(f []string) (Service, error) {
	var s Service
	if len(f) < 3 {
		return s, fmt.Errorf("short service line")
	}
	rest := f[2:]
	switch f[0] {
	case "FWM":
		m, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			return s, err
		}
		s.FWMark, s.Family = uint32(m), IPv4
		if rest[0] == "IPv6" {
			s.Family, rest = IPv6, rest[1:]
		}
	case "TCP", "UDP", "SCTP":
		s.Protocol = map[string]Protocol{"TCP": TCP, "UDP": UDP, "SCTP": SCTP}[f[0]]
		ap, err := netip.ParseAddrPort(f[1])
		if err != nil {
			return s, err
		}
		s.Addr, s.Port, s.Family = ap.Addr(), ap.Port(), IPv4
		if ap.Addr().Is6() {
			s.Family = IPv6
		}
	default:
		return s, fmt.Errorf("protocol %q", f[0])
	}
	if len(rest) == 0 {
		return s, fmt.Errorf("no scheduler")
	}
	s.Scheduler, rest = rest[0], rest[1:]
	for len(rest) > 0 {
		w := rest[0]
		rest = rest[1:]
		switch {
		case strings.HasPrefix(w, "("):
			for _, fl := range strings.Split(strings.Trim(w, "()"), ",") {
				switch fl {
				case "sh-fallback", "mh-fallback", "flag-1":
					s.Flags |= FlagSchedFlag1
				case "sh-port", "mh-port", "flag-2":
					s.Flags |= FlagSchedFlag2
				case "flag-3":
					s.Flags |= FlagSchedFlag3
				default:
					return s, fmt.Errorf("sched flag %q", fl)
				}
			}
		case w == "ops":
			s.Flags |= FlagOnePacket
		case w == "persistent" && len(rest) > 0:
			v, err := strconv.ParseUint(rest[0], 10, 32)
			if err != nil {
				return s, err
			}
			s.Flags |= FlagPersistent
			s.Timeout, rest = uint32(v), rest[1:]
		case w == "mask" && len(rest) > 0:
			if s.Family == IPv6 {
				v, err := strconv.ParseUint(rest[0], 10, 32)
				if err != nil {
					return s, err
				}
				s.Netmask = uint32(v)
			} else {
				a, err := netip.ParseAddr(rest[0])
				if err != nil {
					return s, err
				}
				b := a.As4()
				s.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			}
			rest = rest[1:]
		default:
			return s, fmt.Errorf("unexpected %q", w)
		}
	}
	return canonical(s), nil
}

func TestParseIpvsadm(t *testing.T) {
	// Captured from ipvsadm v1.31 on the UML kernel 6.1.
	list := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:80 wrr persistent 300 mask 255.255.255.0
  -> 10.0.1.1:80                  Route   0      0          0         
  -> 10.0.1.2:8080                Masq    65535  0          0         
UDP  10.0.0.1:53 sh (sh-fallback,sh-port) ops
TCP  [2001:db8::1]:443 lc persistent 100 mask 48
  -> [2001:db8::2]:443            Masq    5      0          0         
FWM  8 IPv6 rr persistent 60 mask 64
  -> [2001:db8::5]:0              Route   1      0          0         
`
	thr := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  10.0.0.1:80 wrr persistent 300 mask 255.255.255.0
  -> 10.0.1.1:80                  100        10         0          0         
  -> 10.0.1.2:8080                0          0          0          0         
UDP  10.0.0.1:53 sh (sh-fallback,sh-port) ops
TCP  [2001:db8::1]:443 lc persistent 100 mask 48
  -> [2001:db8::2]:443            0          0          0          0         
FWM  8 IPv6 rr persistent 60 mask 64
  -> [2001:db8::5]:0              0          0          0          0         
`
	got, err := parseIpvsadm(list, thr)
	if err != nil {
		t.Fatal(err)
	}
	want := `TCP 10.0.0.1:80 wrr flags=0x1 timeout=300 netmask=0xffffff00
  -> 10.0.1.1:80 Route weight=0 upper=100 lower=10
  -> 10.0.1.2:8080 Masq weight=65535 upper=0 lower=0
UDP 10.0.0.1:53 sh flags=0x1c timeout=0 netmask=0x0
TCP [2001:db8::1]:443 lc flags=0x1 timeout=100 netmask=0x30
  -> [2001:db8::2]:443 Masq weight=5 upper=0 lower=0
FWM 8 IPv6 rr flags=0x1 timeout=60 netmask=0x40
  -> [2001:db8::5]:0 Route weight=1 upper=0 lower=0
`
	if got.String() != want {
		t.Errorf("parsed:\n%s\nwant:\n%s", got, want)
	}
}
