package ipvsctl

import (
	"context"
	"errors"
	"syscall"
	"testing"
)

func TestFakeKernelSemantics(t *testing.T) {
	ctx := t.Context()
	f := NewFake()
	web := svcID(TCP, "10.0.0.1:80")
	d1 := dst("10.0.1.1:80", Route, 1)

	check := func(name string, err error, want string, is error) {
		t.Helper()
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %q", name, err, want)
		}
		if is != nil && !errors.Is(err, is) {
			t.Errorf("%s: %v is not %v", name, err, is)
		}
	}
	if err := f.AddService(ctx, svc(web, "wrr")); err != nil {
		t.Fatal(err)
	}
	check("duplicate service", f.AddService(ctx, svc(web, "rr")),
		"add service TCP 10.0.0.1:80: already exists", ErrExist)
	check("unknown scheduler", f.AddService(ctx, svc(svcID(TCP, "10.0.0.2:80"), "nosuch")),
		`add service TCP 10.0.0.2:80: scheduler not available: scheduler "nosuch" (the kernel has no module ip_vs_nosuch)`, ErrScheduler)
	check("update missing service", f.UpdateService(ctx, svc(svcID(TCP, "10.0.0.2:80"), "rr")),
		"update service TCP 10.0.0.2:80: does not exist", ErrNotExist)
	check("delete missing service", f.DeleteService(ctx, svcID(UDP, "10.0.0.1:80")),
		"delete service UDP 10.0.0.1:80: does not exist", ErrNotExist)
	check("destination of missing service", f.AddDestination(ctx, svcID(UDP, "10.0.0.1:80"), d1),
		"add destination 10.0.1.1:80 to UDP 10.0.0.1:80: does not exist", ErrNotExist)
	if err := f.AddDestination(ctx, web, d1); err != nil {
		t.Fatal(err)
	}
	check("duplicate destination", f.AddDestination(ctx, web, d1),
		"add destination 10.0.1.1:80 to TCP 10.0.0.1:80: already exists", ErrExist)
	check("update missing destination", f.UpdateDestination(ctx, web, dst("10.0.1.2:80", Route, 1)),
		"update destination 10.0.1.2:80 of TCP 10.0.0.1:80: does not exist", ErrNotExist)
	check("delete missing destination", f.DeleteDestination(ctx, web, dst("10.0.1.2:80", Route, 1).DestinationID),
		"delete destination 10.0.1.2:80 of TCP 10.0.0.1:80: does not exist", ErrNotExist)
	check("ipv6 destination in ipv4 service", f.AddDestination(ctx, web, dst("[2001:db8::2]:80", Route, 1)),
		"add destination [2001:db8::2]:80 to TCP 10.0.0.1:80: invalid: an IPv6 destination in an IPv4 service is not allowed", ErrInvalid)
	check("negative weight", f.AddDestination(ctx, web, dst("10.0.1.3:80", Route, -1)),
		"add destination 10.0.1.3:80 to TCP 10.0.0.1:80: invalid: weight -1 is outside 0..65535", ErrInvalid)
	low := dst("10.0.1.3:80", Route, 1)
	low.Lower = 5
	check("lower above upper", f.AddDestination(ctx, web, low),
		"add destination 10.0.1.3:80 to TCP 10.0.0.1:80: invalid: lower threshold 5 is above upper threshold 0", ErrInvalid)
	check("fwmark with address", f.AddService(ctx, Service{ServiceID: ServiceID{Family: IPv4, FWMark: 3, Port: 80}, Scheduler: "rr"}),
		"add service FWM 3: invalid: a firewall-mark service has no protocol, address or port", ErrInvalid)
	check("family mismatch", f.AddService(ctx, Service{ServiceID: ServiceID{Family: IPv6, Protocol: TCP, Addr: web.Addr, Port: 80}, Scheduler: "rr"}),
		"add service TCP 10.0.0.1:80: invalid: address 10.0.0.1 is not in family IPv6", ErrInvalid)

	if !f.SetStats(web, d1.DestinationID, Stats{ActiveConns: 3}) {
		t.Fatal("SetStats found no destination")
	}
	upd := d1
	upd.Weight = 9
	if err := f.UpdateDestination(ctx, web, upd); err != nil {
		t.Fatal(err)
	}
	got, err := f.Destinations(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Weight != 9 || got[0].Stats.ActiveConns != 3 {
		t.Errorf("after update, destinations %+v, want weight 9 and the counters kept", got)
	}
	if err := f.DeleteService(ctx, web); err != nil {
		t.Fatal(err)
	}
	if err := f.AddService(ctx, svc(web, "wrr")); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Destinations(ctx, web); len(got) != 0 {
		t.Errorf("destinations of a deleted service came back: %+v", got)
	}
}

func TestApplyIgnoresAlreadyDoneAndUpserts(t *testing.T) {
	ctx := t.Context()
	web := svcID(TCP, "10.0.0.1:80")
	f := NewFake()
	f.Load(table(svc(web, "rr"), dst("10.0.1.1:80", Route, 5)))
	ops := []Op{
		{Kind: OpAddService, Service: svc(web, "wrr")},                                                   // exists: updated instead
		{Kind: OpAddDestination, Service: svc(web, "wrr"), Destination: dst("10.0.1.1:80", Route, 1)},    // exists: updated
		{Kind: OpUpdateDestination, Service: svc(web, "wrr"), Destination: dst("10.0.1.2:80", Masq, 2)},  // gone: added
		{Kind: OpDeleteDestination, Service: svc(web, "wrr"), Destination: dst("10.0.1.9:80", Route, 1)}, // gone: done
		{Kind: OpDeleteService, Service: svc(svcID(UDP, "10.0.0.1:53"), "rr")},                           // gone: done
	}
	if err := Apply(ctx, f, ops); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := table(svc(web, "wrr"), dst("10.0.1.1:80", Route, 1), dst("10.0.1.2:80", Masq, 2))
	if got := f.Table().String(); got != want.String() {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestApplyJoinsEveryFailureAndCarriesOn(t *testing.T) {
	ctx := t.Context()
	f := NewFake()
	web := svcID(TCP, "10.0.0.1:80")
	bad := svcID(TCP, "10.0.0.2:80")
	dns := svcID(UDP, "10.0.0.1:53")
	want := table(
		svc(web, "wrr"), dst("10.0.1.1:80", Route, 1), dst("10.0.1.2:80", Route, 1),
		svc(bad, "nosuch"), dst("10.0.2.1:80", Route, 1), dst("10.0.2.2:80", Route, 1),
		svc(dns, "rr"), dst("10.0.3.1:53", Route, 1),
	)
	f.FailNext(OpAddDestination, &kernelErr{"add destination 10.0.1.1:80 to TCP 10.0.0.1:80", syscall.ENOMEM})
	err := Apply(ctx, f, Diff(nil, want, nil))
	wantErr := `add service TCP 10.0.0.2:80: scheduler not available: scheduler "nosuch" (the kernel has no module ip_vs_nosuch)
add destination 10.0.1.1:80 to TCP 10.0.0.1:80: cannot allocate memory`
	if err == nil || err.Error() != wantErr {
		t.Errorf("Apply error:\n%v\nwant:\n%s", err, wantErr)
	}
	if !errors.Is(err, ErrScheduler) || !errors.Is(err, syscall.ENOMEM) {
		t.Errorf("joined error %v does not wrap both causes", err)
	}
	got := f.Table().String()
	exp := table(svc(web, "wrr"), dst("10.0.1.2:80", Route, 1), svc(dns, "rr"), dst("10.0.3.1:53", Route, 1)).String()
	if got != exp {
		t.Errorf("table:\n%s\nwant (everything but the failures):\n%s", got, exp)
	}
	// The failed service's destinations were not even tried.
	for _, op := range f.Ops() {
		if op.Service.ServiceID == bad && op.Kind != OpAddService {
			t.Errorf("Apply tried %s after its service failed", op)
		}
	}
	// The next round converges.
	f.SetSchedulers(append(KernelSchedulers, "nosuch")...)
	have, err := ReadTable(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, f, Diff(have, want, nil)); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if got := f.Table().String(); got != want.String() {
		t.Errorf("after the second Apply:\n%s\nwant:\n%s", got, want)
	}
}

type kernelErr struct {
	op  string
	err error
}

func (e *kernelErr) Error() string { return e.op + ": " + e.err.Error() }
func (e *kernelErr) Unwrap() error { return e.err }

func TestApplyStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	f := NewFake()
	want := table(svc(svcID(TCP, "10.0.0.1:80"), "rr"), dst("10.0.1.1:80", Route, 1), dst("10.0.1.2:80", Route, 1))
	n := 0
	f.SetHook(func(Op) error {
		n++
		if n == 2 {
			cancel()
		}
		return nil
	})
	err := Apply(ctx, f, Diff(nil, want, nil))
	if err == nil || err.Error() != "apply: 1 of 3 operations not run: context canceled" {
		t.Errorf("Apply error %v", err)
	}
	if len(f.Ops()) != 2 {
		t.Errorf("ran %d ops after cancel, want 2", len(f.Ops()))
	}
}

func TestApplyTouchesNothingElse(t *testing.T) {
	ctx := t.Context()
	foreign := svcID(TCP, "192.0.2.1:25")
	web := svcID(TCP, "10.0.0.1:80")
	f := NewFake()
	f.Load(table(svc(foreign, "rr"), dst("10.9.9.9:25", Masq, 1), svc(web, "wrr"), dst("10.0.1.1:80", Route, 1)))
	have, err := ReadTable(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	want := table(svc(web, "wrr"), dst("10.0.1.1:80", Route, 0))
	if err := Apply(ctx, f, Diff(have, want, func(id ServiceID) bool { return id == web })); err != nil {
		t.Fatal(err)
	}
	ops := f.Ops()
	if len(ops) != 1 || ops[0].String() != "update destination 10.0.1.1:80 of TCP 10.0.0.1:80" || ops[0].Destination.Weight != 0 {
		t.Errorf("ops %v, want exactly one weight-0 update", ops)
	}
	if f.Reads() != 3 {
		t.Errorf("ReadTable made %d reads, want 3 (services + 2 destination lists)", f.Reads())
	}
}

func TestReadTable(t *testing.T) {
	ctx := t.Context()
	f := NewFake()
	web := svcID(TCP, "10.0.0.1:80")
	f.Load(table(svc(web, "wrr"), dst("10.0.1.1:80", Route, 1)))
	f.SetStats(web, dst("10.0.1.1:80", Route, 1).DestinationID, Stats{ActiveConns: 2, InactiveConns: 3, Conns: 9})
	tb, err := ReadTable(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	d := tb[web].Destinations[dst("10.0.1.1:80", Route, 1).DestinationID]
	if d.Stats != (Stats{ActiveConns: 2, InactiveConns: 3, Conns: 9}) {
		t.Errorf("stats %+v", d.Stats)
	}
	f.FailNextRead(syscall.EIO)
	if _, err := ReadTable(ctx, f); !errors.Is(err, syscall.EIO) {
		t.Errorf("ReadTable error %v, want EIO", err)
	}
}
