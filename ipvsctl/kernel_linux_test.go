package ipvsctl

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/uml"
)

// TestKernel proves the Netlink client against a real kernel: `go test` boots user-mode Linux and runs
// these subtests in it (see internal/uml). It fails, never skips, when the kernel cannot boot.
func TestKernel(t *testing.T) {
	o := uml.DefaultTestOptions()
	o.Modules = []string{"ip_vs", "ip_vs_wrr", "ip_vs_rr", "sctp"} // other schedulers load on demand
	uml.RunTestsWith(t, o, map[string]func(t *testing.T){
		"operations":             testKernelOperations,
		"errors":                 testKernelErrors,
		"schedulers":             testKernelSchedulers,
		"drift is corrected":     testKernelDrift,
		"random tables converge": testKernelConverge,
		"counters":               testKernelCounters,
	})
}

// TestKernelNoIPVS boots a kernel without ip_vs and without module autoloading.
func TestKernelNoIPVS(t *testing.T) {
	o := uml.Options{NoAutoload: true, Timeout: 3 * time.Minute}
	uml.RunTestsWith(t, o, map[string]func(t *testing.T){
		"missing modules": testKernelMissingModules,
	})
}

// kernelClient returns a Netlink client on an empty kernel table.
func kernelClient(t *testing.T) *Netlink {
	t.Helper()
	ipvsadm(t, "-C") // tests only: start from an empty table
	c, err := NewNetlink(t.Context(), NetlinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectKernel checks the kernel table twice: read back through c, and through ipvsadm.
func expectKernel(t *testing.T, c Client, want Table) {
	t.Helper()
	got, err := ReadTable(t.Context(), c)
	if err != nil {
		t.Fatalf("ReadTable: %v", err)
	}
	if got.String() != want.String() {
		t.Errorf("kernel table read by the client:\n%s\nwant:\n%s", got, want)
	}
	if o := oracle(t); o.String() != want.String() {
		t.Errorf("kernel table read by ipvsadm:\n%s\nwant:\n%s", o, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testKernelOperations(t *testing.T) {
	ctx := t.Context()
	c := kernelClient(t)

	web := svc(svcID(TCP, "10.0.0.1:80"), "wrr")
	web.Flags, web.Timeout, web.Netmask = FlagPersistent, 300, 0xffffff00 // persistence with a /24 netmask
	gate := dst("10.0.1.1:80", Route, 1)
	masq := dst("10.0.1.2:8080", Masq, 0) // weight 0 (quiescent)
	ipip := dst("10.0.1.3:80", Tunnel, 65535)
	ipip.Upper, ipip.Lower = 100, 10
	dns := svc(svcID(UDP, "10.0.0.1:53"), "sh")
	dns.Flags = FlagOnePacket | FlagSchedFlag1 | FlagSchedFlag2 // ops, sh-fallback, sh-port
	sctp := svc(svcID(SCTP, "10.0.0.1:9"), "rr")
	mark := svc(fwmID(7, IPv4), "rr")
	markDst := dst("10.0.1.1:0", Route, 2)
	mark6 := svc(fwmID(8, IPv6), "wrr")
	mark6.Flags, mark6.Timeout, mark6.Netmask = FlagPersistent, 60, 64
	mark6Dst := dst("[2001:db8::5]:0", Route, 1)
	v6 := svc(svcID(TCP, "[2001:db8::1]:443"), "wrr")
	v6Dst := dst("[2001:db8::2]:443", Masq, 5)

	for _, s := range []Service{web, dns, sctp, mark, mark6, v6} {
		must(t, c.AddService(ctx, s))
	}
	for _, a := range []struct {
		s ServiceID
		d Destination
	}{{web.ServiceID, gate}, {web.ServiceID, masq}, {web.ServiceID, ipip}, {mark.ServiceID, markDst}, {mark6.ServiceID, mark6Dst}, {v6.ServiceID, v6Dst}} {
		must(t, c.AddDestination(ctx, a.s, a.d))
	}
	want := table(web, gate, masq, ipip, dns, sctp, mark, markDst, mark6, mark6Dst, v6, v6Dst)
	expectKernel(t, c, want)
	if t.Failed() {
		return
	}
	// ipvsadm's own words for the settings, as the Perl ldirectord reads them.
	list := ipvsadm(t, "-Ln")
	for _, line := range []string{
		"TCP  10.0.0.1:80 wrr persistent 300 mask 255.255.255.0\n",
		"UDP  10.0.0.1:53 sh (sh-fallback,sh-port) ops\n",
		"SCTP 10.0.0.1:9 rr\n",
		"FWM  7 rr\n",
		"FWM  8 IPv6 wrr persistent 60 mask 64\n",
		"  -> 10.0.1.3:80                  Tunnel  65535  0          0         \n",
	} {
		if !strings.Contains(list, line) {
			t.Errorf("ipvsadm -Ln lacks %q:\n%s", line, list)
		}
	}

	// Update every setting of a service, then of a destination.
	web.Scheduler, web.Flags, web.Timeout, web.Netmask = "rr", 0, 0, 0
	must(t, c.UpdateService(ctx, web))
	mark6.Netmask = 48
	must(t, c.UpdateService(ctx, mark6))
	gate.Forward, gate.Weight, gate.Upper, gate.Lower = Masq, 0, 50, 5
	must(t, c.UpdateDestination(ctx, web.ServiceID, gate))
	ipip.Weight, ipip.Upper, ipip.Lower = 3, 0, 0
	must(t, c.UpdateDestination(ctx, web.ServiceID, ipip))
	want = table(web, gate, masq, ipip, dns, sctp, mark, markDst, mark6, mark6Dst, v6, v6Dst)
	expectKernel(t, c, want)

	// Delete a destination, then services (their destinations go with them).
	must(t, c.DeleteDestination(ctx, web.ServiceID, masq.DestinationID))
	must(t, c.DeleteService(ctx, mark6.ServiceID))
	must(t, c.DeleteService(ctx, sctp.ServiceID))
	want = table(web, gate, ipip, dns, mark, markDst, v6, v6Dst)
	expectKernel(t, c, want)
}

func testKernelErrors(t *testing.T) {
	ctx := t.Context()
	c := kernelClient(t)
	web := svc(svcID(TCP, "10.0.0.1:80"), "wrr")
	gate := dst("10.0.1.1:80", Route, 1)
	must(t, c.AddService(ctx, web))
	must(t, c.AddDestination(ctx, web.ServiceID, gate))
	for _, tc := range []struct {
		name string
		err  error
		want string
		is   error
	}{
		{"duplicate service", c.AddService(ctx, web), "add service TCP 10.0.0.1:80: already exists", ErrExist},
		{"duplicate destination", c.AddDestination(ctx, web.ServiceID, gate), "add destination 10.0.1.1:80 to TCP 10.0.0.1:80: already exists", ErrExist},
		{"update missing service", c.UpdateService(ctx, svc(svcID(TCP, "10.0.0.2:80"), "rr")), "update service TCP 10.0.0.2:80: does not exist", ErrNotExist},
		{"delete missing service", c.DeleteService(ctx, svcID(UDP, "10.0.0.1:80")), "delete service UDP 10.0.0.1:80: does not exist", ErrNotExist},
		{"destination of missing service", c.AddDestination(ctx, svcID(UDP, "10.0.0.1:80"), gate), "add destination 10.0.1.1:80 to UDP 10.0.0.1:80: does not exist", ErrNotExist},
		{"update missing destination", c.UpdateDestination(ctx, web.ServiceID, dst("10.0.1.9:80", Route, 1)), "update destination 10.0.1.9:80 of TCP 10.0.0.1:80: does not exist", ErrNotExist},
		{"delete missing destination", c.DeleteDestination(ctx, web.ServiceID, dst("10.0.1.9:80", Route, 1).DestinationID), "delete destination 10.0.1.9:80 of TCP 10.0.0.1:80: does not exist", ErrNotExist},
		{"unknown scheduler", c.AddService(ctx, svc(svcID(TCP, "10.0.0.3:80"), "nosuch")), `add service TCP 10.0.0.3:80: scheduler not available: scheduler "nosuch" (the kernel has no module ip_vs_nosuch)`, ErrScheduler},
		{"unknown scheduler on update", c.UpdateService(ctx, svc(web.ServiceID, "nosuch")), `update service TCP 10.0.0.1:80: scheduler not available: scheduler "nosuch" (the kernel has no module ip_vs_nosuch)`, ErrScheduler},
		{"ipv6 destination in ipv4 service", c.AddDestination(ctx, web.ServiceID, dst("[2001:db8::2]:80", Route, 1)), "add destination [2001:db8::2]:80 to TCP 10.0.0.1:80: invalid: an IPv6 destination in an IPv4 service is not allowed", ErrInvalid},
	} {
		if tc.err == nil || tc.err.Error() != tc.want || !errors.Is(tc.err, tc.is) {
			t.Errorf("%s: error %v, want %q", tc.name, tc.err, tc.want)
		}
	}
	// Our lower-above-upper rule is the kernel's: ipvsadm, which does not check it, gets ERANGE.
	low := dst("10.0.1.2:80", Route, 1)
	low.Lower = 5
	if err := c.AddDestination(ctx, web.ServiceID, low); !errors.Is(err, ErrInvalid) {
		t.Errorf("lower threshold above upper: %v", err)
	}
	out, err := exec.Command("ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "10.0.1.2:80", "-g", "-w", "1", "-x", "0", "-y", "5").CombinedOutput()
	if err == nil || string(out) != "Numerical result out of range\n" {
		t.Errorf("the kernel accepted lower > upper: %v %s", err, out)
	}
	expectKernel(t, c, table(web, gate))

	// One bad service among good ones: a clear error, and the rest applied.
	want := table(web, gate, svc(svcID(TCP, "10.0.0.3:80"), "nosuch"), dst("10.0.3.1:80", Route, 1),
		svc(svcID(TCP, "10.0.0.4:80"), "rr"), dst("10.0.4.1:80", Route, 1))
	have, err := ReadTable(ctx, c)
	must(t, err)
	err = Apply(ctx, c, Diff(have, want, nil))
	if err == nil || err.Error() != `add service TCP 10.0.0.3:80: scheduler not available: scheduler "nosuch" (the kernel has no module ip_vs_nosuch)` {
		t.Errorf("Apply error %v", err)
	}
	expectKernel(t, c, table(web, gate, svc(svcID(TCP, "10.0.0.4:80"), "rr"), dst("10.0.4.1:80", Route, 1)))
}

func testKernelSchedulers(t *testing.T) {
	ctx := t.Context()
	c := kernelClient(t)
	want := Table{}
	for i, name := range KernelSchedulers {
		s := svc(svcID(TCP, fmt.Sprintf("10.0.0.%d:80", i+1)), name)
		if name == "sh" || name == "mh" {
			s.Flags = FlagSchedFlag1 | FlagSchedFlag2
		}
		want[s.ServiceID] = &VirtualService{Service: s, Destinations: map[DestinationID]Destination{
			dst("10.0.1.1:80", Route, 1).DestinationID: dst("10.0.1.1:80", Route, 1),
			dst("10.0.1.2:80", Route, 2).DestinationID: dst("10.0.1.2:80", Route, 2),
		}}
	}
	must(t, Apply(ctx, c, Diff(nil, want, nil)))
	expectKernel(t, c, want)
	// Every scheduler the kernel has a module for is covered.
	mods, err := os.ReadDir(os.Getenv(uml.ModRootEnv) + "/lib/modules/6.1.176/kernel/net/netfilter/ipvs")
	must(t, err)
	for _, m := range mods {
		name := strings.TrimSuffix(strings.TrimPrefix(m.Name(), "ip_vs_"), ".ko")
		if name == "ip_vs" || name == "ftp" || name == "pe_sip" {
			continue
		}
		if !strings.Contains(strings.Join(KernelSchedulers, " ")+" ", name+" ") {
			t.Errorf("kernel module %s is not in KernelSchedulers", m.Name())
		}
	}
}

func testKernelDrift(t *testing.T) {
	ctx := t.Context()
	c := kernelClient(t)
	web := svc(svcID(TCP, "10.0.0.1:80"), "wrr")
	dns := svc(svcID(UDP, "10.0.0.1:53"), "rr")
	want := table(web, dst("10.0.1.1:80", Route, 1), dst("10.0.1.2:80", Route, 2),
		dns, dst("10.0.2.1:53", Masq, 1))
	managed := func(id ServiceID) bool { return id == web.ServiceID || id == dns.ServiceID }
	must(t, Apply(ctx, c, Diff(nil, want, managed)))

	// Behind our back: weight changed, one of ours deleted, a stranger added to our service, our service's
	// scheduler changed, a foreign service added.
	ipvsadm(t, "-e", "-t", "10.0.0.1:80", "-r", "10.0.1.1:80", "-g", "-w", "9")
	ipvsadm(t, "-d", "-t", "10.0.0.1:80", "-r", "10.0.1.2:80")
	ipvsadm(t, "-a", "-t", "10.0.0.1:80", "-r", "10.0.1.99:80", "-m", "-w", "1")
	ipvsadm(t, "-E", "-u", "10.0.0.1:53", "-s", "lc")
	ipvsadm(t, "-A", "-t", "192.0.2.1:25", "-s", "rr")
	ipvsadm(t, "-a", "-t", "192.0.2.1:25", "-r", "192.0.2.2:25", "-m", "-w", "1")

	have, err := ReadTable(ctx, c)
	must(t, err)
	ops := Diff(have, want, managed)
	must(t, Apply(ctx, c, ops))
	wantAll := want.Clone()
	foreign := table(svc(svcID(TCP, "192.0.2.1:25"), "rr"), dst("192.0.2.2:25", Masq, 1))
	for id, vs := range foreign {
		wantAll[id] = vs
	}
	expectKernel(t, c, wantAll)
	if len(ops) != 4 {
		t.Errorf("%d ops to correct 4 changes:\n%s", len(ops), opLines(ops))
	}
	// Removing our services leaves the foreign one alone.
	have, err = ReadTable(ctx, c)
	must(t, err)
	must(t, Apply(ctx, c, Diff(have, Table{}, managed)))
	expectKernel(t, c, foreign)
}

// testKernelConverge applies random tables, with the operations in random orders, and checks the kernel
// ends up with exactly the wanted table.
func testKernelConverge(t *testing.T) {
	ctx := t.Context()
	c := kernelClient(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	all := func(ServiceID) bool { return true }
	for round := range 12 {
		want := randomTable(r)
		have, err := ReadTable(ctx, c)
		must(t, err)
		ops := Diff(have, want, all)
		if round%2 == 1 {
			// Shuffled: some ops fail (a destination before its service); the next pass finishes.
			r.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
			_ = Apply(ctx, c, ops)
			have, err = ReadTable(ctx, c)
			must(t, err)
			ops = Diff(have, want, all)
		}
		if err := Apply(ctx, c, ops); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		expectKernel(t, c, want)
		have, err = ReadTable(ctx, c)
		must(t, err)
		if again := Diff(have, want, all); len(again) != 0 {
			t.Errorf("round %d: converged table still differs:\n%s", round, opLines(again))
		}
		if t.Failed() {
			return
		}
	}
}

func randomTable(r *rand.Rand) Table {
	t := Table{}
	scheds := []string{"rr", "wrr", "lc", "wlc", "sh", "sed"}
	for range r.IntN(8) {
		var s Service
		switch r.IntN(4) {
		case 0:
			s.ServiceID = fwmID(uint32(1+r.IntN(5)), IPv4)
		case 1:
			s.ServiceID = svcID(TCP, fmt.Sprintf("[2001:db8::%x]:%d", 1+r.IntN(3), 80+r.IntN(2)))
		default:
			s.ServiceID = svcID([]Protocol{TCP, UDP, SCTP}[r.IntN(3)], fmt.Sprintf("10.0.0.%d:%d", 1+r.IntN(3), 80+r.IntN(2)))
		}
		s.Scheduler = scheds[r.IntN(len(scheds))]
		if r.IntN(3) == 0 {
			s.Flags, s.Timeout = FlagPersistent, uint32(60+r.IntN(600))
			if s.Family == IPv4 {
				s.Netmask = []uint32{0, 0xffffff00, 0xffff0000}[r.IntN(3)]
			} else {
				s.Netmask = []uint32{0, 64, 48}[r.IntN(3)]
			}
		}
		vs := &VirtualService{Service: s, Destinations: map[DestinationID]Destination{}}
		for range r.IntN(6) {
			var d Destination
			if s.Family == IPv6 {
				d = dst(fmt.Sprintf("[2001:db8:1::%x]:%d", 1+r.IntN(8), s.Port), Masq, r.IntN(5))
			} else {
				d = dst(fmt.Sprintf("10.0.1.%d:%d", 1+r.IntN(8), s.Port), Masq, r.IntN(5))
			}
			d.Forward = []Forward{Masq, Tunnel, Route}[r.IntN(3)]
			if r.IntN(4) == 0 {
				d.Upper = uint32(10 + r.IntN(100))
				d.Lower = uint32(r.IntN(10))
			}
			vs.Destinations[d.DestinationID] = d
		}
		t[s.ServiceID] = vs
	}
	return t
}

// testKernelCounters sends real connections through IPVS and reads the counters back.
func testKernelCounters(t *testing.T) {
	ctx := t.Context()
	c := kernelClient(t)
	out, err := exec.Command("ip", "addr", "add", "10.0.0.1/32", "dev", "lo").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "File exists") {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(conn, conn); conn.Close() }()
		}
	}()
	rs := netip.MustParseAddrPort(ln.Addr().String())
	web := svc(svcID(TCP, "10.0.0.1:80"), "rr")
	real := Destination{DestinationID: DestinationID{Addr: rs.Addr(), Port: rs.Port()}, Forward: Masq, Weight: 1}
	want := table(web, real)
	must(t, Apply(ctx, c, Diff(nil, want, nil)))

	var conns []net.Conn
	for range 3 {
		conn, err := net.DialTimeout("tcp", "10.0.0.1:80", 5*time.Second)
		must(t, err)
		_, err = conn.Write([]byte("ping\n"))
		must(t, err)
		buf := make([]byte, 5)
		_, err = io.ReadFull(conn, buf)
		must(t, err)
		conns = append(conns, conn)
	}
	conns[0].Close()

	// The kernel sums its per-CPU counters every 2 seconds (estimation timer), so poll: a real kernel, no
	// fake clock.
	var s Stats
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		dsts, err := c.Destinations(ctx, web.ServiceID)
		must(t, err)
		if len(dsts) != 1 {
			t.Fatalf("destinations %+v", dsts)
		}
		if s = dsts[0].Stats; s.Conns == 3 && s.InactiveConns == 1 {
			break
		}
	}
	if s.ActiveConns != 2 || s.InactiveConns != 1 || s.Conns != 3 || s.InPkts < 9 || s.OutPkts < 6 || s.InBytes == 0 || s.OutBytes == 0 {
		t.Errorf("counters %+v, want 2 active, 1 inactive, 3 connections, packets and bytes both ways", s)
	}
	// The same through ipvsadm.
	stats := ipvsadm(t, "-Ln", "--stats", "--exact")
	line := fmt.Sprintf("  -> %-29s %7d", rs, 3)
	if !strings.Contains(stats, line) {
		t.Errorf("ipvsadm --stats lacks %q:\n%s", line, stats)
	}
	list := ipvsadm(t, "-Ln")
	if line := fmt.Sprintf("  -> %-28s Masq    1      2          1", rs); !strings.Contains(list, line) {
		t.Errorf("ipvsadm -Ln lacks %q:\n%s", line, list)
	}
	have, err := ReadTable(ctx, c)
	must(t, err)
	if ops := Diff(have, want, nil); len(ops) != 0 {
		t.Errorf("Diff wants changes after traffic:\n%s", opLines(ops))
	}
	for _, conn := range conns[1:] {
		conn.Close()
	}
}

func testKernelMissingModules(t *testing.T) {
	ctx := t.Context()
	_, err := NewNetlink(ctx, NetlinkOptions{})
	const want = "kernel IPVS is not available: load the ip_vs module (modprobe ip_vs: modprobe: FATAL: Module ip_vs not found in directory /lib/modules/6.1.176)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("NewNetlink without ip_vs: %v\nwant %q", err, want)
	}
	// Once the module is there, the same process can use IPVS (moby/ipvs did not cache a bad family).
	must(t, uml.LoadModule("ip_vs"))
	must(t, uml.LoadModule("ip_vs_rr"))
	c, err := NewNetlink(ctx, NetlinkOptions{})
	must(t, err)
	defer c.Close()
	// A scheduler whose module is not loaded (and cannot be autoloaded) fails clearly; the rest is applied.
	want2 := table(svc(svcID(TCP, "10.0.0.1:80"), "lblcr"), dst("10.0.1.1:80", Route, 1),
		svc(svcID(TCP, "10.0.0.2:80"), "rr"), dst("10.0.2.1:80", Route, 1))
	err = Apply(ctx, c, Diff(nil, want2, nil))
	if err == nil || err.Error() != `add service TCP 10.0.0.1:80: scheduler not available: scheduler "lblcr" (the kernel has no module ip_vs_lblcr)` {
		t.Errorf("Apply with lblcr missing: %v", err)
	}
	expectKernel(t, c, table(svc(svcID(TCP, "10.0.0.2:80"), "rr"), dst("10.0.2.1:80", Route, 1)))
	// Load it and the next round converges.
	must(t, uml.LoadModule("ip_vs_lblcr"))
	have, err := ReadTable(ctx, c)
	must(t, err)
	must(t, Apply(ctx, c, Diff(have, want2, nil)))
	expectKernel(t, c, want2)
}
