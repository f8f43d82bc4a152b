package ipvsctl

import (
	"strings"
	"testing"
)

func opLines(ops []Op) string {
	var b strings.Builder
	for _, op := range ops {
		b.WriteString(op.String())
		switch op.Kind {
		case OpAddService, OpUpdateService:
			s := op.Service
			b.WriteString(" sched=" + s.Scheduler)
			if s.Flags != 0 || s.Timeout != 0 || s.Netmask != 0 {
				b.WriteString(" persist")
			}
		case OpAddDestination, OpUpdateDestination:
			d := op.Destination
			b.WriteString(" " + d.Forward.String())
			b.WriteString(" w=" + itoa(d.Weight))
			if d.Upper != 0 || d.Lower != 0 {
				b.WriteString(" x=" + itoa(int(d.Upper)) + " y=" + itoa(int(d.Lower)))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func itoa(i int) string {
	if i < 0 {
		return "-" + itoa(-i)
	}
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestDiff(t *testing.T) {
	web := svcID(TCP, "10.0.0.1:80")
	dns := svcID(UDP, "10.0.0.1:53")
	v6 := svcID(TCP, "[2001:db8::1]:443")
	mark := fwmID(7, IPv4)
	foreign := svcID(TCP, "192.0.2.1:25")
	all := func(ServiceID) bool { return true }
	ours := func(id ServiceID) bool { return id != foreign }

	persistent := svc(web, "wrr")
	persistent.Flags = FlagPersistent
	persistent.Timeout = 300
	persistent.Netmask = 0xffffff00

	stats := dst("10.0.1.1:80", Route, 1)
	stats.Stats = Stats{ActiveConns: 5, Conns: 100}

	thresholds := dst("10.0.1.1:80", Route, 1)
	thresholds.Upper, thresholds.Lower = 100, 10

	fullmask := svc(web, "wrr")
	fullmask.Netmask = 0xffffffff

	tests := []struct {
		name       string
		have, want Table
		managed    func(ServiceID) bool
		ops        string
	}{
		{name: "both empty", have: table(), want: table(), managed: all, ops: ""},
		{
			name: "from empty, sorted",
			have: table(),
			want: table(svc(web, "wrr"), dst("10.0.1.2:80", Route, 1), dst("10.0.1.1:80", Masq, 0),
				svc(v6, "rr"), dst("[2001:db8::10]:443", Tunnel, 3),
				svc(mark, "sh")),
			managed: all,
			ops: `add service TCP 10.0.0.1:80 sched=wrr
add service FWM 7 sched=sh
add service TCP [2001:db8::1]:443 sched=rr
add destination 10.0.1.1:80 to TCP 10.0.0.1:80 Masq w=0
add destination 10.0.1.2:80 to TCP 10.0.0.1:80 Route w=1
add destination [2001:db8::10]:443 to TCP [2001:db8::1]:443 Tunnel w=3
`,
		},
		{
			name:    "no change, stats ignored",
			have:    table(svc(web, "wrr"), stats),
			want:    table(svc(web, "wrr"), dst("10.0.1.1:80", Route, 1)),
			managed: all,
			ops:     "",
		},
		{
			name:    "zero netmask is the full mask",
			have:    table(fullmask),
			want:    table(svc(web, "wrr")),
			managed: all,
			ops:     "",
		},
		{
			name: "weight, forward and thresholds changes are updates",
			have: table(svc(web, "wrr"), dst("10.0.1.1:80", Route, 1), dst("10.0.1.2:80", Route, 1), dst("10.0.1.3:80", Route, 1)),
			want: table(svc(web, "wrr"), thresholds, dst("10.0.1.2:80", Route, 0), dst("10.0.1.3:80", Tunnel, 1)),
			ops: `update destination 10.0.1.1:80 of TCP 10.0.0.1:80 Route w=1 x=100 y=10
update destination 10.0.1.2:80 of TCP 10.0.0.1:80 Route w=0
update destination 10.0.1.3:80 of TCP 10.0.0.1:80 Tunnel w=1
`,
		},
		{
			name: "service settings change is one update, destinations untouched",
			have: table(svc(web, "wrr"), dst("10.0.1.1:80", Route, 1)),
			want: table(persistent, dst("10.0.1.1:80", Route, 1)),
			ops:  "update service TCP 10.0.0.1:80 sched=wrr persist\n",
		},
		{
			name: "order: services, then destinations deleted, updated, added, then services deleted",
			have: table(svc(web, "wrr"), dst("10.0.1.1:80", Route, 1), dst("10.0.1.2:80", Route, 1),
				svc(dns, "rr"), dst("10.0.2.1:53", Route, 1)),
			want: table(svc(web, "wlc"), dst("10.0.1.2:80", Route, 5), dst("10.0.1.3:80", Route, 1),
				svc(v6, "rr")),
			managed: all,
			ops: `update service TCP 10.0.0.1:80 sched=wlc
add service TCP [2001:db8::1]:443 sched=rr
delete destination 10.0.1.1:80 of TCP 10.0.0.1:80
update destination 10.0.1.2:80 of TCP 10.0.0.1:80 Route w=5
add destination 10.0.1.3:80 to TCP 10.0.0.1:80 Route w=1
delete service UDP 10.0.0.1:53
`,
		},
		{
			name:    "services not managed are left alone",
			have:    table(svc(foreign, "rr"), dst("10.9.9.9:25", Masq, 1), svc(dns, "rr")),
			want:    table(),
			managed: ours,
			ops:     "delete service UDP 10.0.0.1:53\n",
		},
		{
			name:    "nil managed deletes nothing",
			have:    table(svc(foreign, "rr"), svc(dns, "rr")),
			want:    table(svc(web, "rr")),
			managed: nil,
			ops:     "add service TCP 10.0.0.1:80 sched=rr\n",
		},
		{
			name:    "a wanted service is ours even if managed says no: extra destinations go",
			have:    table(svc(foreign, "rr"), dst("10.9.9.9:25", Masq, 1), dst("10.9.9.8:25", Masq, 1)),
			want:    table(svc(foreign, "rr"), dst("10.9.9.9:25", Masq, 1)),
			managed: ours,
			ops:     "delete destination 10.9.9.8:25 of TCP 192.0.2.1:25\n",
		},
		{
			name:    "deleted service gets no destination ops",
			have:    table(svc(web, "wrr"), dst("10.0.1.1:80", Route, 1), dst("10.0.1.2:80", Route, 1)),
			want:    table(),
			managed: all,
			ops:     "delete service TCP 10.0.0.1:80\n",
		},
		{
			name:    "ipv6 fwmark is not the ipv4 one",
			have:    table(svc(fwmID(7, IPv6), "rr")),
			want:    table(svc(mark, "rr")),
			managed: all,
			ops:     "add service FWM 7 sched=rr\ndelete service FWM 7 IPv6\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			haveBefore := tt.have.String()
			wantBefore := tt.want.String()
			ops := Diff(tt.have, tt.want, tt.managed)
			if got := opLines(ops); got != tt.ops {
				t.Errorf("Diff ops:\n%s\nwant:\n%s", got, tt.ops)
			}
			if tt.have.String() != haveBefore || tt.want.String() != wantBefore {
				t.Errorf("Diff changed its inputs")
			}
			// Applying the ops to have must give want (for the managed services).
			f := NewFake()
			f.Load(tt.have)
			if err := Apply(t.Context(), f, ops); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if again := Diff(f.Table(), tt.want, tt.managed); len(again) != 0 {
				t.Errorf("after Apply, Diff still wants:\n%s", opLines(again))
			}
		})
	}
}

func TestDiffOpsCarryFullSettings(t *testing.T) {
	id := svcID(TCP, "10.0.0.1:80")
	s := svc(id, "wrr")
	s.Flags, s.Timeout, s.Netmask = FlagPersistent|FlagOnePacket, 600, 0xffffff00
	d := dst("10.0.1.1:80", Tunnel, 7)
	d.Upper, d.Lower = 50, 5
	ops := Diff(nil, table(s, d), nil)
	if len(ops) != 2 {
		t.Fatalf("got %d ops, want 2", len(ops))
	}
	if ops[0].Service != s {
		t.Errorf("add service carries %+v, want %+v", ops[0].Service, s)
	}
	if ops[1].Service != s || ops[1].Destination != d {
		t.Errorf("add destination carries %+v / %+v, want %+v / %+v", ops[1].Service, ops[1].Destination, s, d)
	}
}
