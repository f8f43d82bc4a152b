package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/ldirectord-go/ldirectord/internal/uml"
)

// TestKernelNoIPVS boots a kernel that has no ip_vs loaded and cannot load it: `start` must fail at once
// with a clear message and exit 1 (ldirectord's initialisation error), and leave no daemon behind.
func TestKernelNoIPVS(t *testing.T) {
	o := guestOptions(t)
	o.Modules = nil
	o.NoAutoload = true
	uml.RunTestsWith(t, o, map[string]func(t *testing.T){
		"StartFails": func(t *testing.T) {
			// No backend network: the daemon must fail before it checks anything.
			os.MkdirAll(workDir, 0o755)
			d := newDaemon(t, oursImpl.bin(t), "noipvs.cf", cfg("", "real=10.1.0.2:8080 masq"))
			code, out := d.run("start")
			const want = "kernel IPVS is not available: load the ip_vs module"
			if code != 1 || !strings.Contains(out, want) {
				t.Fatalf("start without IPVS: exit %d, output %q; want exit 1 and %q", code, out, want)
			}
			if _, err := os.Stat("/var/run/ldirectord.noipvs.cf.pid"); !os.IsNotExist(err) {
				t.Errorf("a pid file is left behind: %v", err)
			}
			if code, out := d.run("status"); code != 3 {
				t.Errorf("status after the failed start: exit %d %q; want 3 (stopped)", code, out)
			}
			waitLog(t, 0, "Exiting with exit_status 1: Initialisation Error")
			if !strings.Contains(daemonLog(t), "] "+want+" (modprobe ip_vs: ") {
				t.Errorf("the log does not say why (with modprobe's answer):\n%s", daemonLog(t))
			}
		},
	})
}
