package ipvsctl

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/uml"
)

// benchTable is 100 TCP services with 100 destinations each.
func benchTable() Table {
	t := Table{}
	for i := range 100 {
		s := svc(svcID(TCP, fmt.Sprintf("10.1.0.%d:80", i+1)), "wrr")
		vs := &VirtualService{Service: s, Destinations: map[DestinationID]Destination{}}
		for j := range 100 {
			d := dst(fmt.Sprintf("10.2.%d.%d:80", i, j+1), Route, 1)
			vs.Destinations[d.DestinationID] = d
		}
		t[s.ServiceID] = vs
	}
	return t
}

// changeOnePercent sets a new weight on 1 destination in 100 (one per service).
func changeOnePercent(t Table, w int) (changed []Op) {
	for _, vs := range t {
		for did, d := range vs.Destinations {
			if did.Addr.As4()[3] == 50 {
				d.Weight = w
				vs.Destinations[did] = d
				changed = append(changed, Op{Kind: OpUpdateDestination, Service: vs.Service, Destination: d})
			}
		}
	}
	return changed
}

// BenchmarkKernelApply measures, inside the kernel, creating 10,000 destinations over 100 services from an
// empty table (ReadTable+Diff+Apply), changing 1% of their weights as the daemon does on a state change
// (Diff against what it last applied + Apply) and as a resync does (ReadTable+Diff+Apply), and a no-change
// round; then the same creation and change done by running ipvsadm once per change, as the Perl
// ldirectord does.
func BenchmarkKernelApply(b *testing.B) {
	o := uml.Options{Modules: []string{"ip_vs", "ip_vs_wrr"}, Timeout: 30 * time.Minute}
	uml.RunBenchmark(b, o, benchKernelApply)
}

func benchKernelApply(b *testing.B) {
	ctx := context.Background()
	run := func(args ...string) {
		if out, err := exec.Command("ipvsadm", args...).CombinedOutput(); err != nil {
			b.Fatalf("ipvsadm %v: %v: %s", args, err, out)
		}
	}
	c, err := NewNetlink(ctx, NetlinkOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	reconcile := func(want Table) (ops int) {
		have, err := ReadTable(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		o := Diff(have, want, func(ServiceID) bool { return true })
		if err := Apply(ctx, c, o); err != nil {
			b.Fatal(err)
		}
		return len(o)
	}
	all := func(ServiceID) bool { return true }
	var create, change, changeRead, noop, noopDiff time.Duration
	b.ResetTimer()
	for i := range b.N {
		run("-C")
		want := benchTable()
		t0 := time.Now()
		if n := reconcile(want); n != 10100 {
			b.Fatalf("create: %d ops", n)
		}
		create += time.Since(t0)

		// A state change in the daemon: it knows what it last put in the kernel (its model), so the
		// change is Diff against that model plus Apply, with no read.
		model := want.Clone()
		changeOnePercent(want, 2+i)
		t1 := time.Now()
		ops := Diff(model, want, all)
		if err := Apply(ctx, c, ops); err != nil || len(ops) != 100 {
			b.Fatalf("change: %d ops, %v", len(ops), err)
		}
		change += time.Since(t1)

		// The same size of change in a resync: read the table back first.
		changeOnePercent(want, 1000+i)
		t2 := time.Now()
		if n := reconcile(want); n != 100 {
			b.Fatalf("change after read: %d ops", n)
		}
		changeRead += time.Since(t2)

		t3 := time.Now()
		if n := reconcile(want); n != 0 {
			b.Fatalf("no change: %d ops", n)
		}
		noop += time.Since(t3)
		have, _ := ReadTable(ctx, c)
		t4 := time.Now()
		ops = Diff(have, want, all)
		if err := Apply(ctx, c, ops); err != nil || len(ops) != 0 {
			b.Fatal("no-change diff", err)
		}
		noopDiff += time.Since(t4)
	}
	b.StopTimer()

	// The ipvsadm way: one process per change. Creating is timed on 10 of the 100 services (1,010 runs)
	// and scaled by 10: each run costs the same whatever the table holds. The rest of the table is then
	// filled through the client, and the 1% change is timed in full (100 runs).
	run("-C")
	want := benchTable()
	sample := 0
	t0 := time.Now()
	for _, id := range sortedServiceIDs(want)[:10] {
		vs := want[id]
		run("-A", "-t", netip.AddrPortFrom(id.Addr, id.Port).String(), "-s", "wrr")
		for did := range vs.Destinations {
			run("-a", "-t", netip.AddrPortFrom(id.Addr, id.Port).String(), "-r", did.String(), "-g", "-w", "1")
		}
		sample += 1 + len(vs.Destinations)
	}
	ipvsadmCreate := time.Since(t0) * time.Duration(10100) / time.Duration(sample)
	if n := reconcile(want); n != 10100-sample {
		b.Fatalf("filling the rest: %d ops", n)
	}
	t1 := time.Now()
	for _, op := range changeOnePercent(want, 7) {
		id := op.Service.ServiceID
		run("-e", "-t", netip.AddrPortFrom(id.Addr, id.Port).String(), "-r", op.Destination.DestinationID.String(), "-g", "-w", "7")
	}
	ipvsadmChange := time.Since(t1)
	// What the Perl ldirectord really does before each real server change: read the whole table, twice.
	// Timed on 10 of the 100 changes and scaled by 10.
	t2 := time.Now()
	for _, op := range changeOnePercent(want, 8)[:10] {
		id := op.Service.ServiceID
		run("-L", "-n")
		run("-L", "-n", "--thresholds")
		run("-e", "-t", netip.AddrPortFrom(id.Addr, id.Port).String(), "-r", op.Destination.DestinationID.String(), "-g", "-w", "8")
	}
	perl := time.Since(t2) * 10
	if o := oracle(b); len(o) != 100 {
		b.Fatalf("ipvsadm table has %d services", len(o))
	}

	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(create)/n, "create-ms")
	b.ReportMetric(ms(change)/n, "change1%-ms")
	b.ReportMetric(ms(changeRead)/n, "change1%-read+diff+apply-ms")
	b.ReportMetric(ms(noop)/n, "noop-read+diff+apply-ms")
	b.ReportMetric(ms(noopDiff)/n, "noop-diff+apply-ms")
	b.ReportMetric(ms(ipvsadmCreate), "ipvsadm-create-ms")
	b.ReportMetric(ms(ipvsadmChange), "ipvsadm-change1%-ms")
	b.ReportMetric(ms(perl), "perl-change1%-ms")
	b.ReportMetric(float64(ipvsadmCreate)/(float64(create)/n), "create-speedup")
	b.ReportMetric(float64(ipvsadmChange)/(float64(change)/n), "change-speedup")
	b.ReportMetric(float64(ipvsadmChange)/(float64(changeRead)/n), "change-with-read-speedup")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDiffNoChange10k is Diff alone over 10,000 unchanged destinations (no kernel).
func BenchmarkDiffNoChange10k(b *testing.B) {
	have, want := benchTable(), benchTable()
	all := func(ServiceID) bool { return true }
	for b.Loop() {
		if len(Diff(have, want, all)) != 0 {
			b.Fatal("diff")
		}
	}
}
