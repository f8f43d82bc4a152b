package e2e

import (
	"strings"
	"testing"
	"time"
)

// unitCaps is the capability bounding set of the systemd unit examples/ldirectord.service
// (CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE), in setpriv's words.
const unitCaps = "-all,+net_admin,+net_raw,+net_bind_service"

// testSandbox and testSandboxNoNetAdmin (run by TestKernelPacemaker's boot) run the daemon with only the
// capabilities the systemd unit leaves it and with no_new_privs (NoNewPrivileges=yes), as setpriv sets them
// up: it must program the table, check with HTTP and with ICMP ping (a raw socket: the guest allows no
// unprivileged ICMP), and clean up on stop. Without CAP_NET_ADMIN the kernel refuses it the IPVS table,
// which shows the restriction is real, and start fails at once saying so.

func sandboxed(t testing.TB, caps string) []string {
	return append([]string{"setpriv", "--bounding-set=" + caps, "--inh-caps=-all", "--no-new-privs"}, oursImpl.bin(t)...)
}

func testSandbox(t *testing.T) {
	setupNet(t)
	d := newDaemon(t, sandboxed(t, unitCaps), "sandbox.cf", cfg("", "real=10.1.0.2:8080 masq")+`
virtual=10.9.9.10:80
	real=10.1.0.3:8080 masq
	checktype=ping
	scheduler=rr
`)
	d.mustRun("start")
	waitTable(t, 15*time.Second,
		"TCP 10.9.9.9:80 wrr", "-> 10.1.0.2:8080 Masq 1",
		"TCP 10.9.9.10:80 rr", "-> 10.1.0.3:8080 Masq 1")
	if code, out := d.run("status"); code != 0 {
		t.Errorf("status: exit %d %q", code, out)
	}
	d.mustRun("stop")
	waitTable(t, 5*time.Second)
	waitLog(t, time.Second, "Linux Director Daemon terminated on signal: TERM")
}

func testSandboxNoNetAdmin(t *testing.T) {
	setupNet(t)
	d := newDaemon(t, sandboxed(t, "-all,+net_raw,+net_bind_service"), "nocap.cf", cfg("", "real=10.1.0.2:8080 masq"))
	// The kernel refuses it the table: start fails at once with the reason, as without IPVS.
	const want = "the kernel refuses access to the IPVS table (operation not permitted): ldirectord needs CAP_NET_ADMIN; run it as root"
	if code, out := d.run("start"); code != 1 || !strings.Contains(out, want) {
		t.Errorf("start without CAP_NET_ADMIN: exit %d, output %q; want exit 1 and %q", code, out, want)
	}
	waitLog(t, 10*time.Second, want)
	if code, out := d.run("status"); code != 3 {
		t.Errorf("status after the failed start: exit %d %q; want 3 (stopped)", code, out)
	}
	holdTable(t, 2*time.Second)
}
