package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/uml"
)

// The two-director test: three user-mode Linux kernels on one uml_switch (no host interface).
//
//	kernel A (director) eth0 10.0.0.11   keepalived priority 250, ldirectord
//	kernel B (director) eth0 10.0.0.12   keepalived priority 200, ldirectord (same ldirectord.cf)
//	kernel C            eth0 -> netns rs1 10.0.0.21, VIP on lo (arp_ignore=1, arp_announce=2)
//	                    eth1 -> netns rs2 10.0.0.22, VIP on lo
//	                    eth2 -> netns cl  10.0.0.2   the client
//
// The client is a network namespace of C with its own interface and MAC on the switch: its packets to the
// VIP go through the switch to whichever director holds the VIP, and the real servers' direct-routing
// answers come back through the switch; nothing it does goes through C's other namespaces.
const (
	haVIP = "10.0.0.100"
	haDir = "/tmp/ha"
)

const haLdirectordCf = `logfile="/tmp/ha/ldirectord.log"
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
	scheduler=rr
virtual=10.0.0.100:8080
	real=10.0.0.21:8080 gate
	real=10.0.0.22:8080 gate
	service=http
	request="/"
	receive="rs"
	scheduler=rr
`

// vrrp says how a director runs keepalived.
type vrrp struct {
	priority int
	// downTimerAdverts is how many adverts (1 s each) the backup misses before it takes over: 2 to meet the
	// 3 s target, 3 is the RFC's (keepalived's default), see docs/ha.md.
	downTimerAdverts int
	// ipvsadmSync: keepalived has no lvs_sync_daemon; the director runs both sync daemons, started with
	// ipvsadm (as with Pacemaker, see docs/ha.md).
	ipvsadmSync bool
}

// keepalivedConf is the VRRP-only keepalived.conf of a director (no virtual_server blocks: ldirectord
// owns the table). lvs_sync_daemon makes keepalived run the kernel's connection sync daemon as master
// where the instance is MASTER and as backup elsewhere.
func (v vrrp) keepalivedConf(name string) string {
	c := fmt.Sprintf(`global_defs {
	router_id %s
	lvs_sync_daemon eth0 VI_1 id 51
}
vrrp_instance VI_1 {
	state BACKUP
	interface eth0
	virtual_router_id 51
	priority %d
	advert_int 1
	down_timer_adverts %d
	virtual_ipaddress {
		10.0.0.100/32 dev eth0
	}
}
`, name, v.priority, v.downTimerAdverts)
	if v.ipvsadmSync {
		c = strings.Replace(c, "\tlvs_sync_daemon eth0 VI_1 id 51\n", "", 1)
	}
	return c
}

var (
	vrrpA = vrrp{priority: 250, downTimerAdverts: 2}
	vrrpB = vrrp{priority: 200, downTimerAdverts: 2}
)

// The sync daemons keepalived runs, as `ipvsadm -L --daemon` shows them.
const (
	syncMaster = "master sync daemon (mcast=eth0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
	syncBackup = "backup sync daemon (mcast=eth0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
	syncBoth   = syncMaster + syncBackup
)

// waitSyncDaemon waits until m runs exactly the sync daemon want.
func (h *haNet) waitSyncDaemon(m *uml.Machine, want string) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := h.exec(m, "ipvsadm -L --daemon")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s's sync daemon after 15s: %q, want %q", m.Name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// haFull is each director's table with every real healthy.
var haFull = []string{
	"TCP 10.0.0.100:80 rr",
	"-> 10.0.0.21:80 Route 1",
	"-> 10.0.0.22:80 Route 1",
	"TCP 10.0.0.100:8080 rr",
	"-> 10.0.0.21:8080 Route 1",
	"-> 10.0.0.22:8080 Route 1",
}

// without is haFull without the given real's line.
func without(real string) []string {
	return slices.DeleteFunc(slices.Clone(haFull), func(l string) bool { return strings.HasPrefix(l, "-> "+real+" ") })
}

// haNet is the running pattern.
type haNet struct {
	t       *testing.T
	net     *uml.Net
	a, b, c *uml.Machine
}

// startHANet boots directors A and B (IPVS with the scheduler module sched, and this daemon's binary) and
// kernel C (3 interfaces, the modules cModules) on one switch, and sets up the real servers and the client
// in C. When the test fails, failLog's output on each director is logged.
func startHANet(t *testing.T, sched string, cModules []string, failLog string) *haNet {
	dirOpts := uml.Options{Mem: "256M", Modules: []string{"ip_vs", sched}, Timeout: 5 * time.Minute,
		Env: []string{binEnv + "=" + buildBinary(t)}}
	cOpts := uml.Options{Mem: "256M", Modules: cModules, Timeout: 5 * time.Minute}
	n := uml.StartNet(t,
		uml.Node{Name: "A", ID: 1, Options: dirOpts},
		uml.Node{Name: "B", ID: 2, Options: dirOpts},
		uml.Node{Name: "C", ID: 3, NICs: 3, Options: cOpts})
	h := &haNet{t: t, net: n, a: n.Machines[0], b: n.Machines[1], c: n.Machines[2]}
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range []*uml.Machine{h.a, h.b} {
				out, _, _ := m.Exec(context.Background(), failLog)
				t.Logf("%s:\n%s", m.Name, out)
			}
		}
	})
	h.setupRealServers()
	return h
}

func (h *haNet) exec(m *uml.Machine, script string) string {
	h.t.Helper()
	return uml.MustExec(h.t, m, time.Minute, "set -e\n"+script)
}

// TestKernelHA runs the active/standby pair and measures failover and failback, with and without
// connection sync (see docs/ha.md for the numbers).
func TestKernelHA(t *testing.T) {
	if uml.InGuest() {
		t.Fatal("runs on the host")
	}
	h := startHANet(t, "ip_vs_rr", nil, "tail -n 40 /tmp/ha/ldirectord.log /tmp/ha/keepalived.log")
	h.startDirector(h.a, "10.0.0.11")
	h.startDirector(h.b, "10.0.0.12")
	h.waitTable(h.a, 15*time.Second, haFull...)
	h.waitTable(h.b, 15*time.Second, haFull...)
	// A first: B then starts as the backup it is. (Started together, both can time out and become master
	// for a moment; once in 13 such starts B's keepalived then hung in its master -> backup transition,
	// and both kept the VIP: see docs/ha.md.)
	h.startKeepalived(h.a, vrrpA)
	h.waitVIP(h.a, 15*time.Second)
	h.startKeepalived(h.b, vrrpB)
	h.waitVIP(h.a, 15*time.Second)
	h.waitSyncDaemon(h.b, syncBackup)
	h.waitSyncDaemon(h.a, syncMaster)

	// One director's speed: a real fails with both directors up; how long until it is out of B's table.
	baseline := h.failReal(h.b, "rs1", "8080", "10.0.0.21:8080", func() {})
	t.Logf("a failed real is out of B's table after %v (both directors up)", baseline.Round(time.Millisecond))
	h.restoreReal("rs1", "8080")

	// Failover with sync: kill A while the client runs; rs2:8080 fails at the same moment.
	res := h.failover(true, baseline)
	t.Logf("failover with sync (down_timer_adverts 2): %s", res)

	// Failback: A returns; B's table must not change, A must not remove a real.
	h.failback(vrrpA)

	// Failover without sync: the backup sync daemon on B is stopped, so B does not know the connection.
	h.exec(h.b, "ipvsadm --stop-daemon backup; test -z \"$(ipvsadm -L --daemon)\"")
	res = h.failover(false, baseline)
	t.Logf("failover without sync (down_timer_adverts 2): %s", res)

	// The RFC's timers (3 adverts missed, plus the skew): A returns with them, B's keepalived restarts
	// with them (it is the backup: nothing moves). And the sync daemons as without keepalived: both on
	// both directors, started with ipvsadm.
	rfcA, rfcB := vrrpA, vrrpB
	rfcA.downTimerAdverts, rfcB.downTimerAdverts = 3, 3
	rfcA.ipvsadmSync, rfcB.ipvsadmSync = true, true
	h.failback(rfcA)
	h.restartKeepalived(h.b, rfcB)
	res = h.failover(true, baseline)
	t.Logf("failover with sync (RFC timers: down_timer_adverts 3; both sync daemons on both directors, by ipvsadm): %s", res)

	// B removed exactly the reals that failed, each once.
	want := []string{
		"Deleted real server: 10.0.0.21:8080 (10.0.0.100:8080)",
		"Deleted real server: 10.0.0.22:8080 (10.0.0.100:8080)",
		"Deleted real server: 10.0.0.22:8080 (10.0.0.100:8080)",
		"Deleted real server: 10.0.0.22:8080 (10.0.0.100:8080)",
	}
	if got := h.deleted(h.b); !slices.Equal(got, want) {
		t.Errorf("B's removals: %q\nwant %q", got, want)
	}
}

// setupRealServers builds C's namespaces and starts a server in each real-server namespace.
func (h *haNet) setupRealServers() {
	h.exec(h.c, `mkdir -p /run/netns `+haDir+`
for i in 1 2; do
	ns=rs$i; dev=eth$((i-1))
	ip netns add $ns
	ip link set $dev netns $ns
	ip -n $ns addr add 10.0.0.2$i/24 dev $dev
	ip -n $ns link set $dev up
	ip -n $ns link set lo up
	ip -n $ns addr add `+haVIP+`/32 dev lo
	ip netns exec $ns sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
	E2E_HA_SERVE=$ns,$LDIRECTORD_UML_OUT setsid ip netns exec $ns "$LDIRECTORD_UML_SELF" >`+haDir+`/$ns.log 2>&1 </dev/null &
done
ip netns add cl
ip link set eth2 netns cl
ip -n cl addr add 10.0.0.2/24 dev eth2
ip -n cl link set eth2 up
ip -n cl link set lo up
for i in 1 2; do
	n=0; until ip netns exec cl curl -sf -m 1 http://10.0.0.2$i:8080/ >/dev/null; do
		n=$((n+1)); [ $n -lt 100 ] || { echo "rs$i does not answer"; cat `+haDir+`/rs$i.log; exit 1; }; sleep 0.1
	done
done`)
}

// startDirector configures a director's interface and starts ldirectord on it. keepalived is started once
// its table is converged (waitTable, then startKeepalived), so that a director takes the VIP with a
// converged table.
func (h *haNet) startDirector(m *uml.Machine, ip string) {
	h.t.Helper()
	h.exec(m, fmt.Sprintf(`mkdir -p %[1]s
ip addr add %[2]s/24 dev eth0
ip link set eth0 up
cat > %[1]s/ldirectord.cf <<'EOF'
%[3]sEOF
"$E2E_LDIRECTORD" %[1]s/ldirectord.cf start`, haDir, ip, haLdirectordCf))
}

// startKeepalived writes keepalived.conf and starts keepalived, VRRP only (-P), in the foreground of its
// own session.
func (h *haNet) startKeepalived(m *uml.Machine, v vrrp) {
	h.t.Helper()
	h.exec(m, fmt.Sprintf(`cat > %[1]s/keepalived.conf <<'EOF'
%[2]sEOF
setsid keepalived -n -l -D -P -f %[1]s/keepalived.conf -p %[1]s/keepalived.pid -r %[1]s/vrrp.pid >>%[1]s/keepalived.log 2>&1 </dev/null &`,
		haDir, v.keepalivedConf(m.Name)))
}

// restartKeepalived stops keepalived on a backup director and starts it with v, and the sync daemons.
func (h *haNet) restartKeepalived(m *uml.Machine, v vrrp) {
	h.t.Helper()
	h.exec(m, `pid=$(cat `+haDir+`/keepalived.pid); kill $pid
n=0; while kill -0 $pid 2>/dev/null; do n=$((n+1)); [ $n -lt 100 ] || { echo "keepalived $pid does not exit"; exit 1; }; sleep 0.1; done`)
	h.startKeepalived(m, v)
	h.startSyncDaemons(m, v)
}

// startSyncDaemons starts the sync daemons when keepalived does not (ipvsadmSync), and waits until they
// run; keepalived's runs as master on A, as backup on B.
func (h *haNet) startSyncDaemons(m *uml.Machine, v vrrp) {
	h.t.Helper()
	if !v.ipvsadmSync {
		want := syncBackup
		if m.Name == "A" {
			want = syncMaster
		}
		h.waitSyncDaemon(m, want)
		return
	}
	// keepalived's daemon is gone with the keepalived that ran it.
	h.waitSyncDaemon(m, "")
	h.exec(m, `ipvsadm --start-daemon master --mcast-interface eth0 --syncid 51
ipvsadm --start-daemon backup --mcast-interface eth0 --syncid 51`)
	h.waitSyncDaemon(m, syncBoth)
}

// table is a director's `ipvsadm -Ln` as ipvsTable gives it.
func (h *haNet) table(m *uml.Machine) string {
	h.t.Helper()
	return h.exec(m, `ipvsadm -Ln | tail -n +4 | awk '$1 == "->" {print $1, $2, $3, $4; next} {print $1, $2, $3}'`)
}

func (h *haNet) waitTable(m *uml.Machine, within time.Duration, want ...string) {
	h.t.Helper()
	w := strings.Join(want, "\n") + "\n"
	deadline := time.Now().Add(within)
	for {
		got := h.table(m)
		if got == w {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s's table after %v:\n%swant:\n%s", m.Name, within, got, w)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitVIP waits until m, and only m of the directors, holds the VIP.
func (h *haNet) waitVIP(m *uml.Machine, within time.Duration) time.Duration {
	h.t.Helper()
	start := time.Now()
	for {
		var holders []string
		for _, d := range []*uml.Machine{h.a, h.b} {
			out, _, err := d.Exec(context.Background(), "ip -o addr show dev eth0 | grep -c ' "+haVIP+"/32 '")
			if err == nil && out == "1\n" {
				holders = append(holders, d.Name)
			}
		}
		if slices.Equal(holders, []string{m.Name}) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			diag := ""
			for _, d := range []*uml.Machine{h.a, h.b} {
				out, _, _ := d.Exec(context.Background(), `p=$(cat `+haDir+`/vrrp.pid); echo "VRRP process $p: $(cat /proc/$p/wchan)"; cat /proc/$p/stack; ipvsadm -L --daemon`)
				diag += d.Name + ": " + out
			}
			h.t.Fatalf("the VIP is on %v after %v, want it on %s alone\n%s", holders, within, m.Name, diag)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// failReal makes a real server's port refuse connections, runs act at the same time, and returns how long
// it took until the real was out of m's table (act, e.g. killing a kernel, may take longer: it does not
// count).
func (h *haNet) failReal(m *uml.Machine, rs, port, real string, act func()) time.Duration {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.c.OutDir(), rs+"-"+port+".down"), nil, 0o644); err != nil {
		h.t.Fatal(err)
	}
	start := time.Now()
	acted := make(chan struct{})
	go func() { defer close(acted); act() }()
	defer func() { <-acted }()
	for {
		if !strings.Contains(h.table(m), "-> "+real+" ") {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			h.t.Fatalf("the failed real %s is still in %s's table after 30s", real, m.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restoreReal makes the port answer again and waits until both running directors have the full table.
func (h *haNet) restoreReal(rs, port string) {
	h.t.Helper()
	if err := os.Remove(filepath.Join(h.c.OutDir(), rs+"-"+port+".down")); err != nil {
		h.t.Fatal(err)
	}
	for _, m := range []*uml.Machine{h.a, h.b} {
		select {
		case <-m.Done():
		default:
			h.waitTable(m, 15*time.Second, haFull...)
		}
	}
}

// watch records every change of m's table until the returned stop is called; stop returns the
// sequence of distinct tables seen.
func (h *haNet) watch(m *uml.Machine) (stop func() []string) {
	h.t.Helper()
	h.exec(m, `rm -f `+haDir+`/watch.log
setsid sh -c 'prev=; while :; do
	cur=$(ipvsadm -Ln | tail -n +4 | awk '"'"'$1 == "->" {print $1, $2, $3, $4; next} {print $1, $2, $3}'"'"')
	[ "$cur" = "$prev" ] || printf "%s\n--\n" "$cur" >> `+haDir+`/watch.log
	prev=$cur; sleep 0.2
done' </dev/null >/dev/null 2>&1 &
echo $! > `+haDir+`/watch.pid`)
	return func() []string {
		out := h.exec(m, `kill $(cat `+haDir+`/watch.pid); cat `+haDir+`/watch.log`)
		return strings.Split(strings.TrimSuffix(out, "\n--\n"), "\n--\n")
	}
}

// haResult is what the client saw during a failover.
type haResult struct {
	outage      time.Duration // the longest gap between two served new connections (by their answer)
	failedNew   int           // new connections that failed
	longOK      int           // requests answered on the long-lived connection
	longErr     string        // how the long-lived connection broke, "" if it did not
	realRemoved time.Duration // the real that failed at the kill: until it was out of B's table
}

func (r haResult) String() string {
	long := fmt.Sprintf("the long-lived connection answered all %d requests", r.longOK)
	if r.longErr != "" {
		long = fmt.Sprintf("the long-lived connection broke after %d requests: %s", r.longOK, r.longErr)
	}
	return fmt.Sprintf("new connections not served for %v (%d attempts failed); %s; the real that failed at the kill was out of B's table after %v",
		r.outage.Round(time.Millisecond), r.failedNew, long, r.realRemoved.Round(time.Millisecond))
}

// failover kills A while the client probes through the VIP, with rs2:8080 failing at the same moment,
// and checks what the client and B saw.
func (h *haNet) failover(sync bool, baseline time.Duration) haResult {
	t := h.t
	t.Helper()
	const probeFor = 14 * time.Second
	stopWatch := h.watch(h.b)
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
	// Let the long-lived connection be established (and synced) through A: at least 3 s, and on a slow
	// host until the client wrote its port and (with sync) B has the connection, at most 8 s in all (the
	// client runs probeFor: the failover must come while it runs).
	time.Sleep(3 * time.Second)
	synced := regexp.MustCompile(`^TCP ESTABLISHED 10\.0\.0\.2:\d+ 10\.0\.0\.100:80$`)
	var port []byte
	var known string
	for wait := time.Now().Add(5 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		var err error
		port, err = os.ReadFile(filepath.Join(h.c.OutDir(), "long.port"))
		if err == nil {
			// "TCP 14:59  ESTABLISHED 10.0.0.2:41234 10.0.0.100:80 10.0.0.21:80". Only an established
			// entry is this connection: the client's port comes again from one scenario to the next (the
			// kernel picks it by the destination), and B keeps the last scenario's closed connection in
			// FIN_WAIT or TIME_WAIT for up to 2 minutes.
			known = h.exec(h.b, "ipvsadm -Lnc | awk '$3 == \"ESTABLISHED\" && $4 == \"10.0.0.2:"+string(port)+"\" {print $1, $3, $4, $5}'")
			if !sync || synced.MatchString(strings.TrimSpace(known)) {
				break
			}
		}
		if time.Now().After(wait) {
			if err != nil {
				t.Fatalf("the client's long-lived connection: %v", err)
			}
			break
		}
	}
	if sync && !synced.MatchString(strings.TrimSpace(known)) {
		t.Errorf("B does not have the client's long-lived connection before the failover: %q\n%s", known, h.exec(h.b, "ipvsadm -Lnc"))
	}
	if !sync && known != "" {
		t.Errorf("B knows the client's long-lived connection without sync: %q", known)
	}
	var res haResult
	res.realRemoved = h.failReal(h.b, "rs2", "8080", "10.0.0.22:8080", h.a.Kill)
	killed := time.Now()
	h.waitVIP(h.b, 30*time.Second)
	<-done
	if probeErr != nil {
		t.Fatalf("client: %v", probeErr)
	}
	t.Logf("A killed %v before the client finished", time.Since(killed).Round(time.Millisecond))

	// What the client saw. The outage is the longest gap between two new connections being served (when
	// their answers came); service must be back for good: a connection started after the last failure was
	// served.
	var okAt []int64
	lastFail := int64(-1)
	servedBy := ""
	for _, l := range strings.Split(strings.TrimSpace(probeOut), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 4 {
			t.Fatalf("client line %q", l)
		}
		ms, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
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
		case f[0] == "new" && f[2] == "ok":
			okAt = append(okAt, ms)
		case f[0] == "new":
			res.failedNew++
			lastFail = max(lastFail, ms)
		}
	}
	slices.Sort(okAt)
	if res.failedNew == 0 || len(okAt) == 0 || okAt[len(okAt)-1] < lastFail {
		t.Fatalf("the client was not served again after A was killed (%d new connections failed, the last started at %d ms):\n%s",
			res.failedNew, lastFail, probeOut)
	}
	for i := 1; i < len(okAt); i++ {
		res.outage = max(res.outage, time.Duration(okAt[i]-okAt[i-1])*time.Millisecond)
	}
	// The target is 3 s (4 s with the RFC's timers); the bound leaves room for a loaded host. A failover
	// that does not happen fails above: the client is not served again before its end.
	if res.outage > 6*time.Second {
		t.Errorf("new connections were not served for %v after A was killed (target 3 s)\n%s", res.outage, probeOut)
	}
	if sync && res.longErr != "" {
		t.Errorf("with sync, the long-lived connection broke: %s", res.longErr)
	}
	if !sync && !strings.Contains(res.longErr, "connection reset by peer") {
		t.Errorf("without sync, the long-lived connection: %q; want it reset by B", res.longErr)
	}
	// The failing real goes as fast as on one director, with slack for a loaded host (3.5 s against a
	// 0.9 s baseline was seen at load 12; a B whose checks stopped never removes it: failReal fails at
	// 30 s). The failover removes nothing else from B, and B's table changed exactly once.
	if res.realRemoved > baseline+5*time.Second {
		t.Errorf("the real that failed during the failover left B's table after %v; with both directors up: %v", res.realRemoved, baseline)
	}
	tables := stopWatch()
	want := []string{strings.Join(haFull, "\n"), strings.Join(without("10.0.0.22:8080"), "\n")}
	if !slices.Equal(tables, want) {
		t.Errorf("B's tables during the failover:\n%s\nwant:\n%s", strings.Join(tables, "\n--\n"), strings.Join(want, "\n--\n"))
	}
	h.restoreReal("rs2", "8080")
	return res
}

// failback boots A again and starts it as it would start at boot; it takes the VIP back (higher
// priority). B's table must not change; A must remove no real.
func (h *haNet) failback(v vrrp) {
	t := h.t
	t.Helper()
	stopWatch := h.watch(h.b)
	start := time.Now()
	h.a = h.net.Reboot(0)
	h.startDirector(h.a, "10.0.0.11")
	h.waitTable(h.a, 15*time.Second, haFull...)
	h.startKeepalived(h.a, v)
	took := h.waitVIP(h.a, 30*time.Second)
	t.Logf("failback: A booted, converged and took the VIP back %v after the reboot began (%v of it VRRP)",
		time.Since(start).Round(time.Millisecond), took.Round(time.Millisecond))
	// Served through A.
	h.exec(h.c, `ip netns exec cl curl -sf -m 3 http://`+haVIP+`/ | grep -q '^rs[12]$'`)
	time.Sleep(2 * time.Second)
	if tables := stopWatch(); !slices.Equal(tables, []string{strings.Join(haFull, "\n")}) {
		t.Errorf("B's table changed during the failback:\n%s", strings.Join(tables, "\n--\n"))
	}
	if got := h.deleted(h.a); len(got) != 0 {
		t.Errorf("A removed reals when it came back: %q", got)
	}
	h.startSyncDaemons(h.a, v)
	h.waitSyncDaemon(h.b, syncBackup)
}

var haLogPrefix = regexp.MustCompile(`^\[[^|]*\|[^|]*\|\d+\] `)

// deleted are m's "Deleted real server" log lines.
func (h *haNet) deleted(m *uml.Machine) []string {
	h.t.Helper()
	var out []string
	for _, l := range strings.Split(h.exec(m, "cat "+haDir+"/ldirectord.log"), "\n") {
		l = haLogPrefix.ReplaceAllString(l, "")
		if strings.HasPrefix(l, "Deleted real server: ") {
			out = append(out, l)
		}
	}
	return out
}
