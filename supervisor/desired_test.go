package supervisor

import (
	"testing"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

func TestDesired(t *testing.T) {
	type H = map[string]Health // health by real "ip:port"
	const (
		m = config.ForwardMasq
		g = config.ForwardGate
	)
	mk := func(quiescent bool, withFB bool, reals ...*config.Real) *config.Virtual {
		v := vs("10.9.9.9:80", reals...)
		v.Quiescent = quiescent
		if withFB {
			v.Fallback = fb("127.0.0.1:80")
		}
		return v
	}
	A := func() *config.Real { return rs("10.0.0.1:80", m, 3) }
	B := func() *config.Real { return rs("10.0.0.2:8080", g, 1) } // gate on another port: stored as :80
	cases := []struct {
		name   string
		v      *config.Virtual
		readd  bool
		health H
		have   []ipvsctl.Destination
		want   []ipvsctl.Destination
	}{
		{name: "up reals with their weight; gate port mapped to the virtual's",
			v: mk(false, true, A(), B()), health: H{"10.0.0.1:80": Up, "10.0.0.2:8080": Up},
			want: []ipvsctl.Destination{dest("10.0.0.1:80", ipvsctl.Masq, 3), dest("10.0.0.2:80", ipvsctl.Route, 1)}},
		{name: "down real removed; fallback when none is up",
			v: mk(false, true, A()), health: H{"10.0.0.1:80": Down},
			have: []ipvsctl.Destination{dest("10.0.0.1:80", ipvsctl.Masq, 3)},
			want: []ipvsctl.Destination{dest("127.0.0.1:80", ipvsctl.Route, 1)}},
		{name: "quiescent: down real at weight 0, fallback added",
			v: mk(true, true, A()), health: H{"10.0.0.1:80": Down},
			have: []ipvsctl.Destination{dest("10.0.0.1:80", ipvsctl.Masq, 3)},
			want: []ipvsctl.Destination{dest("10.0.0.1:80", ipvsctl.Masq, 0), dest("127.0.0.1:80", ipvsctl.Route, 1)}},
		{name: "quiescent without readdquiescent: a missing down real stays out",
			v: mk(true, false, A()), health: H{"10.0.0.1:80": Down}},
		{name: "quiescent with readdquiescent: a missing down real comes back at weight 0",
			v: mk(true, false, A()), readd: true, health: H{"10.0.0.1:80": Down},
			want: []ipvsctl.Destination{dest("10.0.0.1:80", ipvsctl.Masq, 0)}},
		{name: "unknown real kept as the kernel has it, absent stays absent; fallback left as is",
			v: mk(false, true, A(), B()), health: H{"10.0.0.1:80": Unknown, "10.0.0.2:8080": Down},
			have: []ipvsctl.Destination{dest("10.0.0.1:80", ipvsctl.Masq, 0), dest("10.9.0.9:80", ipvsctl.Masq, 1)},
			want: []ipvsctl.Destination{dest("10.0.0.1:80", ipvsctl.Masq, 0)}},
		{name: "unknown real and fallback present: fallback kept",
			v: mk(false, true, A()), health: H{"10.0.0.1:80": Unknown},
			have: []ipvsctl.Destination{dest("127.0.0.1:80", ipvsctl.Route, 1)},
			want: []ipvsctl.Destination{dest("127.0.0.1:80", ipvsctl.Route, 1)}},
		{name: "one up real: no fallback even with another unknown",
			v: mk(false, true, A(), B()), health: H{"10.0.0.1:80": Up, "10.0.0.2:8080": Unknown},
			have: []ipvsctl.Destination{dest("127.0.0.1:80", ipvsctl.Route, 1)},
			want: []ipvsctl.Destination{dest("10.0.0.1:80", ipvsctl.Masq, 3)}},
		{name: "weight 0 real that is up counts as up: no fallback",
			v: mk(false, true, rs("10.0.0.1:80", m, 0)), health: H{"10.0.0.1:80": Up},
			want: []ipvsctl.Destination{dest("10.0.0.1:80", ipvsctl.Masq, 0)}},
		{name: "checktype off style: all down, fallback",
			v: mk(false, true, A(), B()), health: H{"10.0.0.1:80": Down, "10.0.0.2:8080": Down},
			want: []ipvsctl.Destination{dest("127.0.0.1:80", ipvsctl.Route, 1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, r := range c.v.Reals {
				r.Upper, r.Lower = 0, 0
			}
			healthOf := func(r *config.Real) Health { return c.health[r.AddrPort().String()] }
			have := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": c.have})
			got := ipvsctl.Table{serviceID(c.v): desired(c.v, c.readd, healthOf, have[serviceID(c.v)])}
			want := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": c.want})
			if got.String() != want.String() {
				t.Errorf("got\n%swant\n%s", got, want)
			}
		})
	}
}

func TestRealID(t *testing.T) {
	v := vs("10.9.9.9:80")
	r := rs("127.0.0.2:8080", config.ForwardMasq, 1)
	r.Request, r.Receive = "/index.html", "Test Page"
	if got, want := realID(v, r), "negotiate http tcp 127.0.0.2 8080 1 masq /index.html Test Page"; got != want {
		t.Errorf("realID = %q, want %q", got, want)
	}
	v.CheckType, v.CheckCommand, v.CheckPort = config.CheckExternal, `/usr/bin/ch\eck`, 81
	if got, want := realID(v, r), "external /usr/bin/check tcp 127.0.0.2 8080 81 1 masq /index.html Test Page"; got != want {
		t.Errorf("realID = %q, want %q", got, want)
	}
}

func TestKernelDest(t *testing.T) {
	v := vs("10.9.9.9:80")
	for _, c := range []struct {
		real string
		fwd  config.Forward
		want string
	}{
		{"10.0.0.1:8080", config.ForwardMasq, "10.0.0.1:8080"},
		{"10.0.0.1:8080", config.ForwardGate, "10.0.0.1:80"},
		{"10.0.0.1:8080", config.ForwardIPIP, "10.0.0.1:80"},
		{"10.0.0.1:0", config.ForwardMasq, "10.0.0.1:80"},
	} {
		r := rs(c.real, c.fwd, 1)
		if got := realDest(v, r).String(); got != c.want {
			t.Errorf("%s %s: kernel dest %s, want %s", c.real, c.fwd, got, c.want)
		}
	}
	fw := &config.Virtual{Protocol: config.FWM, FWMark: 7}
	if got := kernelDest(fw, rs("10.0.0.1:0", config.ForwardGate, 1).Addr, 0, config.ForwardGate).String(); got != "10.0.0.1:0" {
		t.Errorf("fwmark dest = %s, want 10.0.0.1:0", got)
	}
}
