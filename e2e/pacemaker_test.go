package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/uml"
)

// The upstream OCF resource agent (Debian resource-agents) and its conformance tool.
const (
	ocfRoot   = "/usr/lib/ocf"
	ocfAgent  = ocfRoot + "/resource.d/heartbeat/ldirectord"
	ocfTester = "/usr/sbin/ocf-tester"
)

const pacemakerConfig = `logfile="` + workDir + `/pacemaker.log"
checkinterval=1
checktimeout=2
virtual=10.9.9.9:80
	real=10.1.0.2:8080 masq
	service=http
	request="/"
	receive="ok"
	scheduler=wrr
`

// TestKernelPacemaker runs Pacemaker's resource agent ocf:heartbeat:ldirectord against this ldirectord in a
// real kernel, pointed at the binary and config with its own parameters (OCF_RESKEY_ldirectord,
// OCF_RESKEY_configfile): each action with the OCF exit code it must give and the kernel table it must
// leave, then the agent's conformance tool ocf-tester. The same boot runs the sandbox tests
// (sandbox_test.go), to boot one kernel less.
func TestKernelPacemaker(t *testing.T) {
	o := uml.DefaultTestOptions()
	o.Modules = append(o.Modules, "veth")
	o.Timeout = 5 * time.Minute
	if !uml.InGuest() {
		for _, p := range []struct{ path, pkg string }{{ocfAgent, "resource-agents"}, {ocfTester, "resource-agents"},
			{"/usr/bin/xmllint", "libxml2-utils"}, {"/usr/bin/setpriv", "util-linux"}} {
			if _, err := os.Stat(p.path); err != nil {
				t.Fatalf("%s is missing (Debian package %s; make deps installs it): %v", p.path, p.pkg, err)
			}
		}
		o.Env = append(o.Env, binEnv+"="+buildBinary(t))
	}
	uml.RunTestsWith(t, o, map[string]func(t *testing.T){
		"Actions":                 testOCFActions,
		"OCFTester":               testOCFTester,
		"SandboxUnitCapabilities": testSandbox,
		"SandboxWithoutNetAdmin":  testSandboxNoNetAdmin,
	})
}

// OCF exit codes (ocf-returncodes).
const (
	ocfSuccess    = 0
	ocfNotRunning = 7
)

type ocf struct {
	t   *testing.T
	env []string
	cfg string
	bin string
}

func newOCF(t *testing.T) *ocf {
	t.Helper()
	setupNet(t)
	bin := oursImpl.bin(t)[0]
	cfg := filepath.Join(workDir, "pacemaker.cf")
	if err := os.WriteFile(cfg, []byte(pacemakerConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	o := &ocf{t: t, cfg: cfg, bin: bin, env: append(os.Environ(),
		"OCF_ROOT="+ocfRoot, "OCF_RESOURCE_INSTANCE=lvs",
		"OCF_RESKEY_ldirectord="+bin, "OCF_RESKEY_configfile="+cfg,
		"OCF_RESKEY_CRM_meta_timeout=20000", "HA_LOGFILE="+workDir+"/ocf.log")}
	t.Cleanup(func() {
		exec.Command(bin, cfg, "stop").Run()
		exec.Command("ipvsadm", "-C").Run()
		if t.Failed() {
			b, _ := os.ReadFile(workDir + "/pacemaker.log")
			t.Logf("daemon log:\n%s", b)
		}
	})
	return o
}

// action runs the agent's action and returns its exit code and output.
func (o *ocf) action(action string) (int, string) {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ocfAgent, action)
	cmd.Env = o.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			o.t.Fatalf("%s %s: %v", ocfAgent, action, err)
		}
		return ee.ExitCode(), string(out)
	}
	return 0, string(out)
}

func (o *ocf) want(action string, code int) {
	o.t.Helper()
	if got, out := o.action(action); got != code {
		o.t.Fatalf("ocf:heartbeat:ldirectord %s: exit %d, want %d; output:\n%s", action, got, code, out)
	}
}

func (o *ocf) pid() int {
	o.t.Helper()
	b, err := os.ReadFile("/var/run/ldirectord.pacemaker.cf.pid")
	if err != nil {
		o.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		o.t.Fatalf("pid file %q", b)
	}
	return pid
}

func testOCFActions(t *testing.T) {
	o := newOCF(t)
	up := []string{"TCP 10.9.9.9:80 wrr", "-> 10.1.0.2:8080 Masq 1"}

	o.want("validate-all", ocfSuccess)
	o.want("monitor", ocfNotRunning)
	o.want("start", ocfSuccess)
	waitTable(t, 20*time.Second, up...)
	o.want("monitor", ocfSuccess)
	pid := o.pid()
	// The agent's stop finds a daemon it cannot stop with `pgrep -f "<ldirectord> <configfile> start"`.
	if out, err := exec.Command("pgrep", "-f", o.bin+" "+o.cfg+" start").Output(); err != nil ||
		strings.TrimSpace(string(out)) != strconv.Itoa(pid) {
		t.Errorf("pgrep -f %q: %q, %v; want the daemon's pid %d", o.bin+" "+o.cfg+" start", out, err, pid)
	}
	o.want("start", ocfSuccess) // already running
	if o.pid() != pid {
		t.Errorf("a second start replaced the daemon")
	}

	// A daemon that died leaves a stale pid file: the agent must see "not running", and start again.
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; syscall.Kill(pid, 0) == nil && i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	o.want("monitor", ocfNotRunning)
	o.want("start", ocfSuccess)
	if o.pid() == pid {
		t.Errorf("start over a stale pid file did not start a daemon")
	}
	o.want("monitor", ocfSuccess)
	holdTable(t, 2*time.Second, up...) // the new daemon adopts the table: no flap

	o.want("stop", ocfSuccess)
	waitTable(t, 5*time.Second) // cleanstop=yes: the service is gone
	o.want("monitor", ocfNotRunning)
	o.want("stop", ocfSuccess) // stopping a stopped resource succeeds
}

func testOCFTester(t *testing.T) {
	o := newOCF(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ocfTester, "-n", "lvs", "-o", "ldirectord="+o.bin, "-o", "configfile="+o.cfg, ocfAgent)
	cmd.Env = append(os.Environ(), "OCF_ROOT="+ocfRoot, "HA_LOGFILE="+workDir+"/ocf.log")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), ocfAgent+" passed all tests") {
		t.Fatalf("ocf-tester: %v\n%s", err, out)
	}
	t.Logf("ocf-tester:\n%s", out)
	if code, _ := o.action("monitor"); code != ocfNotRunning {
		t.Errorf("after ocf-tester the resource is not stopped: monitor exit %d", code)
	}
	waitTable(t, 5*time.Second)
}
