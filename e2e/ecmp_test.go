package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/uml"
)

// The active/active test: the same three kernels as TestKernelHA, but both directors hold the VIP (on lo)
// and a router spreads flows over them with ECMP; both schedule with mh, so a flow gets the same real
// server whichever director it crosses.
//
//	kernel A (director) eth0 10.0.0.11   VIP on lo, ldirectord (scheduler=mh, schedflags=mh-port)
//	kernel B (director) eth0 10.0.0.12   the same
//	kernel C            eth0 -> netns rs1 10.0.0.21, eth1 -> netns rs2 10.0.0.22 (VIP on lo, default via rt)
//	                    eth2 -> netns rt  10.0.0.1, router: 10.0.0.100 via 10.0.0.11 and 10.0.0.12 (L4 hash)
//	                    netns cl 10.9.0.2 --veth-- 10.9.0.1 rt
const ecmpLdirectordCf = `logfile="/tmp/ha/ldirectord.log"
checkinterval=1
checktimeout=3
negotiatetimeout=3
quiescent=no
virtual=10.0.0.100:80
	real=10.0.0.21:80 gate
	real=10.0.0.22:80 gate
	service=http
	request="/"
	receive="rs"
	scheduler=mh
	schedflags=mh-port
`

var ecmpTable = []string{
	"TCP 10.0.0.100:80 mh",
	"-> 10.0.0.21:80 Route 1",
	"-> 10.0.0.22:80 Route 1",
}

// TestKernelECMP kills the director that carries a long-lived connection: with sloppy_tcp the other one
// takes the flow over, to the same real server, without any connection sync; without it, the flow is
// reset.
func TestKernelECMP(t *testing.T) {
	if uml.InGuest() {
		t.Fatal("runs on the host")
	}
	h := startHANet(t, "ip_vs_mh", []string{"veth"}, "tail -n 20 /tmp/ha/ldirectord.log; ipvsadm -Lnc")
	h.exec(h.c, `ip netns add rt
ip -n cl addr flush dev eth2
ip -n cl link set eth2 down
ip -n cl link set eth2 netns rt
ip -n rt addr add 10.0.0.1/24 dev eth2
ip -n rt link set eth2 up
ip -n rt link set lo up
ip link add cl0 type veth peer name rt1
ip link set rt1 netns rt
ip -n rt addr add 10.9.0.1/24 dev rt1
ip -n rt link set rt1 up
ip link set cl0 netns cl
ip -n cl addr add 10.9.0.2/24 dev cl0
ip -n cl link set cl0 up
ip -n cl route add default via 10.9.0.1
ip netns exec rt sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
for i in 1 2; do ip -n rs$i route add default via 10.0.0.1; done
`+
		// The router's neighbour entries for the directors are fixed: a neighbour that looks failed (an ARP
		// probe unanswered while the machines are busy) makes the kernel hash flows to the other nexthop,
		// and a flow would cross both directors. Only the route withdrawal moves flows here.
		fmt.Sprintf(`ip -n rt neigh replace 10.0.0.11 lladdr %s dev eth2 nud permanent
ip -n rt neigh replace 10.0.0.12 lladdr %s dev eth2 nud permanent`, uml.MAC(1, 0), uml.MAC(2, 0)))
	h.ecmpRoute("10.0.0.11", "10.0.0.12")
	h.startECMPDirector(h.a, "10.0.0.11", true)
	h.startECMPDirector(h.b, "10.0.0.12", true)
	h.waitTable(h.a, 15*time.Second, ecmpTable...)
	h.waitTable(h.b, 15*time.Second, ecmpTable...)

	// Both directors carry new connections: one curl, 40 URLs, a new connection each (the server closes).
	h.exec(h.c, `ip netns exec cl curl -sf -m 30 -H 'Connection: close' $(for i in $(seq 40); do echo http://`+haVIP+`/; done) >/dev/null`)
	// Counted by the clients' source ports in the directors' connection tables, not by the virtual's
	// connection counters: a flow can cross both directors. The router hashes a flow on the hash the
	// client's socket gave its packets (it is on the same host), and TCP picks a new one when it
	// retransmits, so under load a SYN retransmission goes to the other director (which counts it again).
	ports := map[string]bool{}
	var via [2]int
	for i, m := range []*uml.Machine{h.a, h.b} {
		for _, p := range strings.Fields(h.exec(m, `ipvsadm -Lnc | awk '$4 ~ /^10\.9\.0\.2:/ {print $4}'`)) {
			ports[p] = true
			via[i]++
		}
	}
	crossed := via[0] + via[1] - len(ports)
	t.Logf("40 new connections: %d through A, %d through B (%d of them through both)", via[0], via[1], crossed)
	if len(ports) != 40 || via[0] == 0 || via[1] == 0 {
		t.Errorf("%d new connections in the directors' tables (%d through A, %d through B); want 40, both directors used", len(ports), via[0], via[1])
	}

	res := h.ecmpFailover(true, true)
	t.Logf("with sloppy_tcp: %s", res)
	// The other run: sloppy_tcp off on both directors.
	for _, m := range []*uml.Machine{h.a, h.b} {
		h.exec(m, "sysctl -qw net.ipv4.vs.sloppy_tcp=0")
	}
	res = h.ecmpFailover(false, false)
	t.Logf("without sloppy_tcp: %s", res)
}

// ecmpRoute sets the router's route to the VIP over the given directors.
func (h *haNet) ecmpRoute(via ...string) {
	h.t.Helper()
	route := "ip -n rt route replace " + haVIP + "/32"
	if len(via) == 1 {
		route += " via " + via[0]
	}
	if len(via) > 1 {
		for _, v := range via {
			route += " nexthop via " + v
		}
	}
	h.exec(h.c, route)
}

// startECMPDirector configures a director for ECMP and starts ldirectord on it (waitTable: converged).
func (h *haNet) startECMPDirector(m *uml.Machine, ip string, sloppy bool) {
	h.t.Helper()
	s := 0
	if sloppy {
		s = 1
	}
	h.exec(m, fmt.Sprintf(`mkdir -p %[1]s
ip addr add %[2]s/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.0.1
ip addr add %[3]s/32 dev lo
sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.vs.sloppy_tcp=%[5]d
cat > %[1]s/ldirectord.cf <<'EOF'
%[4]sEOF
"$E2E_LDIRECTORD" %[1]s/ldirectord.cf start`, haDir, ip, haVIP, ecmpLdirectordCf, s))
}

// conns is the director's total connection count of the virtual (ipvsadm --stats).
func (h *haNet) conns(m *uml.Machine) int {
	h.t.Helper()
	out := h.exec(m, `ipvsadm -Ln --stats -t `+haVIP+`:80 | awk '$1 == "TCP" {print $3}'`)
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		h.t.Fatalf("%s: connections %q", m.Name, out)
	}
	return n
}

// ecmpResult is what the client saw when a director died.
type ecmpResult struct {
	killed    string // the director that died
	failedNew int    // new connections that failed (hashed to the dead director before the withdrawal)
	longOK    int    // requests answered on the long-lived connection
	longErr   string // how the long-lived connection broke, "" if it did not
}

func (r ecmpResult) String() string {
	long := fmt.Sprintf("the long-lived connection through %s answered all %d requests", r.killed, r.longOK)
	if r.longErr != "" {
		long = fmt.Sprintf("the long-lived connection through %s broke after %d requests: %s", r.killed, r.longOK, r.longErr)
	}
	return fmt.Sprintf("%s; %d new connections failed (hashed to %s in the second before the router dropped it)", long, r.failedNew, r.killed)
}

// ecmpFailover kills the director that carries the client's long-lived connection and withdraws it from
// the router one second later (as BGP with BFD would); with restore, boots it again afterwards.
func (h *haNet) ecmpFailover(sloppy, restore bool) ecmpResult {
	t := h.t
	t.Helper()
	const probeFor = 10 * time.Second
	portFile := filepath.Join(h.c.OutDir(), "long.port")
	os.Remove(portFile)
	var probeOut string
	var probeErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), probeFor+time.Minute)
		defer cancel()
		var code int
		probeOut, code, probeErr = h.c.Exec(ctx, `E2E_HA_PROBE=`+haVIP+`:80,`+probeFor.String()+` ip netns exec cl "$LDIRECTORD_UML_SELF"`)
		if probeErr == nil && code != 0 {
			probeErr = fmt.Errorf("the client exited with status %d: %s", code, probeOut)
		}
	}()
	// Let the long-lived connection carry a few requests first: at least 3 s, and on a busy host until the
	// client wrote its port (its 10 s count from its own start).
	time.Sleep(3 * time.Second)
	port, err := os.ReadFile(portFile)
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		port, err = os.ReadFile(portFile)
	}
	if err != nil {
		t.Fatalf("the client's long-lived connection: %v", err)
	}
	// Which director carries it, and where does it go?
	idx, other := -1, -1
	var real string
	for i, m := range []*uml.Machine{h.a, h.b} {
		out := h.exec(m, "ipvsadm -Lnc | awk '$4 == \"10.9.0.2:"+string(port)+"\" {print $6}'")
		if out != "" {
			idx, other, real = i, 1-i, strings.TrimSpace(out)
		}
	}
	if idx < 0 {
		t.Fatalf("no director has the client's long-lived connection (port %s)", port)
	}
	dead := h.net.Machines[idx]
	surv := h.net.Machines[other]
	ips := []string{"10.0.0.11", "10.0.0.12"}
	t.Logf("the long-lived connection crosses %s to %s; killing %s", dead.Name, real, dead.Name)
	dead.Kill()
	time.Sleep(time.Second)
	h.ecmpRoute(ips[other])
	<-done
	if probeErr != nil {
		t.Fatalf("client: %v", probeErr)
	}
	res := ecmpResult{killed: dead.Name}
	servedBy := ""
	for _, l := range strings.Split(strings.TrimSpace(probeOut), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 4 {
			t.Fatalf("client line %q", l)
		}
		switch {
		case f[0] == "long" && f[2] == "ok":
			res.longOK++
			if servedBy == "" {
				servedBy = f[3]
			} else if servedBy != f[3] {
				t.Errorf("the long-lived connection was answered by %s, then by %s", servedBy, f[3])
			}
		case f[0] == "long":
			res.longErr = f[3]
		case f[0] == "new" && f[2] == "fail":
			res.failedNew++
		}
	}
	if sloppy && res.longErr != "" {
		t.Errorf("with sloppy_tcp, the long-lived connection broke when %s died: %s", dead.Name, res.longErr)
	}
	if !sloppy && !strings.Contains(res.longErr, "connection reset by peer") {
		t.Errorf("without sloppy_tcp, the long-lived connection: %q; want it reset by %s", res.longErr, surv.Name)
	}
	if sloppy {
		// The survivor scheduled the flow itself, to the same real.
		got := h.exec(surv, "ipvsadm -Lnc | awk '$4 == \"10.9.0.2:"+string(port)+"\" {print $6}'")
		if got != real+"\n" {
			t.Errorf("%s's entry of the moved connection goes to %q, want %s", surv.Name, got, real)
		}
	}
	if !restore {
		return res
	}
	// Bring the dead director back, and the route over both.
	m := h.net.Reboot(idx)
	if idx == 0 {
		h.a = m
	} else {
		h.b = m
	}
	h.startECMPDirector(m, ips[idx], sloppy)
	h.waitTable(m, 15*time.Second, ecmpTable...)
	h.ecmpRoute("10.0.0.11", "10.0.0.12")
	return res
}
