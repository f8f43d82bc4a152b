package ipvsctl

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"fmt"
)

func TestDryRunCommands(t *testing.T) {
	var buf strings.Builder
	logf := func(format string, args ...any) { fmt.Fprintf(&buf, format+"\n", args...) }
	fake := NewFake()
	c := NewDryRun(fake, logf)
	ctx := context.Background()

	web := Service{ServiceID: ServiceID{Family: IPv4, Protocol: TCP,
		Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}, Scheduler: "wrr"}
	dns := Service{ServiceID: ServiceID{Family: IPv6, Protocol: UDP,
		Addr: netip.MustParseAddr("2001:db8::1"), Port: 53}, Scheduler: "sh",
		Flags:   FlagOnePacket | FlagPersistent | FlagSchedFlag1 | FlagSchedFlag2,
		Timeout: 300, Netmask: 64}
	fwm := Service{ServiceID: ServiceID{Family: IPv4, FWMark: 7}, Scheduler: "rr",
		Flags: FlagPersistent, Timeout: 600, Netmask: 0xffffff00}
	real := Destination{DestinationID: DestinationID{Addr: netip.MustParseAddr("127.0.0.2"), Port: 80},
		Forward: Masq, Weight: 1}
	for _, err := range []error{
		c.AddService(ctx, web),
		c.AddService(ctx, dns),
		c.AddService(ctx, fwm),
		c.AddDestination(ctx, web.ServiceID, real),
		c.UpdateDestination(ctx, web.ServiceID, Destination{DestinationID: real.DestinationID,
			Forward: Route, Weight: 0}),
		c.AddDestination(ctx, fwm.ServiceID, Destination{DestinationID: DestinationID{
			Addr: netip.MustParseAddr("10.1.1.2")}, Forward: Tunnel, Weight: 5, Upper: 100, Lower: 10}),
		c.UpdateService(ctx, web),
		c.DeleteDestination(ctx, web.ServiceID, real.DestinationID),
		c.DeleteService(ctx, dns.ServiceID),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	err := c.DeleteService(ctx, dns.ServiceID)
	if err == nil {
		t.Errorf("deleting a missing service: no error")
	}
	want := `dry-run: ipvsadm -A -t 10.0.0.1:80 -s wrr
dry-run: ipvsadm -A -u [2001:db8::1]:53 -o -s sh -p 300 -M 64 -b flag-1,flag-2
dry-run: ipvsadm -A -f 7 -s rr -p 600 -M 255.255.255.0
dry-run: ipvsadm -a -t 10.0.0.1:80 -r 127.0.0.2:80 -m -w 1
dry-run: ipvsadm -e -t 10.0.0.1:80 -r 127.0.0.2:80 -g -w 0
dry-run: ipvsadm -a -f 7 -r 10.1.1.2:0 -i -w 5 -x 100 -y 10
dry-run: ipvsadm -E -t 10.0.0.1:80 -s wrr
dry-run: ipvsadm -d -t 10.0.0.1:80 -r 127.0.0.2:80
dry-run: ipvsadm -D -u [2001:db8::1]:53
dry-run: ipvsadm -D -u [2001:db8::1]:53 (refused: ` + err.Error() + `)
`
	if buf.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
	// The in-memory table holds what the commands describe.
	tab := fake.Table()
	if len(tab) != 2 || len(tab[web.ServiceID].Destinations) != 0 || len(tab[fwm.ServiceID].Destinations) != 1 {
		t.Errorf("table after the dry run: %+v", tab)
	}
}

// TestDryRunTableKeepsNoRecord: the table of a --dry-run daemon keeps its entries but no record of the
// changes, which would grow for as long as the daemon runs.
func TestDryRunTableKeepsNoRecord(t *testing.T) {
	ctx := context.Background()
	web := Service{ServiceID: ServiceID{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}, Scheduler: "wrr"}
	real := Destination{DestinationID: DestinationID{Addr: netip.MustParseAddr("127.0.0.2"), Port: 80}, Forward: Masq, Weight: 1}
	for _, f := range []*Fake{NewFake(), NewDryRunTable()} {
		c := NewDryRun(f, func(string, ...any) {})
		if err := c.AddService(ctx, web); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if err := c.AddDestination(ctx, web.ServiceID, real); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteDestination(ctx, web.ServiceID, real.DestinationID); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.AddDestination(ctx, web.ServiceID, real); err != nil {
			t.Fatal(err)
		}
		tab, err := ReadTable(ctx, c)
		if err != nil || len(tab[web.ServiceID].Destinations) != 1 {
			t.Errorf("table: %v, %v", tab, err)
		}
		want := 202
		if f.unrecorded {
			want = 0
		}
		if n := len(f.Ops()); n != want {
			t.Errorf("unrecorded=%v: %d operations recorded, want %d", f.unrecorded, n, want)
		}
	}
}
