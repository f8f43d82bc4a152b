package uml

import (
	"context"
	"testing"
	"time"
)

// Net is a switch and the kernels on it, for a host-side test.
type Net struct {
	// Switch joins the machines.
	Switch *Switch
	// Machines are the running kernels, in the order of the nodes given to StartNet.
	Machines []*Machine

	t     *testing.T
	ctx   context.Context
	nodes []Node
}

// StartNet is for host-side tests: it starts a switch and boots the nodes on it in parallel, each running
// this test binary (built without -race when needed) as its agent. Every kernel and the switch are killed
// when t ends, and before t's -test.timeout would: a node's Options.Timeout (default 10 minutes) is cut to
// end 10 seconds before it. A kernel or switch that cannot start fails t: it never skips.
func StartNet(t *testing.T, nodes ...Node) *Net {
	t.Helper()
	if InGuest() {
		t.Fatal("uml.StartNet runs on the host")
	}
	bin, err := testBinary(t)
	if err != nil {
		t.Fatal(err)
	}
	// t.Context ends before the cleanups run; the kernels must outlive it until their own cleanup.
	ctx := context.WithoutCancel(t.Context())
	sw, err := StartSwitch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sw.Close(); err != nil {
			t.Error(err)
		}
	})
	nodes = append([]Node(nil), nodes...)
	for i := range nodes {
		n := &nodes[i]
		if n.Agent == "" {
			n.Agent = bin
		}
		if n.Options.Timeout <= 0 {
			n.Options.Timeout = 10 * time.Minute
		}
		if dl, ok := t.Deadline(); ok && time.Until(dl)-10*time.Second < n.Options.Timeout {
			n.Options.Timeout = time.Until(dl) - 10*time.Second
		}
	}
	start := time.Now()
	ms, err := sw.BootAll(ctx, nodes...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kernels booted in %v", len(ms), time.Since(start).Round(time.Millisecond))
	n := &Net{Switch: sw, Machines: ms, t: t, ctx: ctx, nodes: nodes}
	t.Cleanup(func() {
		for _, m := range n.Machines {
			m.Cleanup()
		}
	})
	return n
}

// Reboot kills machine i if it still runs and boots its node again (a fresh kernel: nothing of the old
// one's state survives but what it wrote to its OutDir, which the new one does not see).
func (n *Net) Reboot(i int) *Machine {
	n.t.Helper()
	n.Machines[i].Cleanup()
	m, err := n.Switch.Boot(n.ctx, n.nodes[i])
	if err != nil {
		n.t.Fatal(err)
	}
	n.Machines[i] = m
	return m
}

// MustExec runs script in m (see Machine.Exec) within timeout and returns its output; an error or a
// non-zero exit status fails t with the output.
func MustExec(t testing.TB, m *Machine, timeout time.Duration, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, code, err := m.Exec(ctx, script)
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	if code != 0 {
		t.Fatalf("%s: exit status %d from:\n%s\noutput:\n%s", m.Name, code, script, out)
	}
	return out
}
