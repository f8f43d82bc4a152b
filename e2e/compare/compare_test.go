//go:build compare

// The side-by-side scenario is a measurement, run by `make compare` (go test -tags compare): in user-mode
// Linux on a shared 2-core host its outcome depends on the host's load. With the overload work of issue 8
// this daemon removed no healthy real in any run since the start throttle (docs/benchmarks.md), and passed
// three runs in a row once, but with a loaded host its detection of the hanging victim still exceeded the
// 20 s the test allows in some runs: not reliable enough for make test yet. Its assertions stay as they
// are; the package's other tests run in make test.

package compare

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/keepalived"
	"github.com/ldirectord-go/ldirectord/internal/uml"
)

// TestKernelCompare boots user-mode Linux (one CPU) and runs the scenario of backend_test.go against this
// ldirectord and then against keepalived (configured by keepalived.Conf from the same ldirectord.cf), one
// after the other on the same kernel and the same backends. It fails when a daemon does not converge, does
// not detect the new failure or ever adds a hanging real, and when this ldirectord ever removes a healthy
// real (keepalived's removals are counted and printed: it is the reference, not the subject). The times,
// CPU and memory are printed, not asserted: UML on a shared host is too noisy for timed targets.
func TestKernelCompare(t *testing.T) {
	o := uml.DefaultTestOptions()
	o.Modules = append(o.Modules, "veth")
	limit := convergeLimit(t)
	o.Timeout = 2*limit + 3*time.Minute // two daemons, each at most limit + 45 s, and the boot
	if !uml.InGuest() {
		o.Env = append(o.Env, binEnv+"="+hostBinary(t), fmt.Sprintf("%s=%v", limitEnv, limit))
		for _, env := range []string{straceEnv, logEnv, profileEnv, profileForEnv} {
			if v := os.Getenv(env); v != "" {
				o.Env = append(o.Env, env+"="+v)
			}
		}
	}
	if !uml.InGuest() {
		if c0, err := cpuTicks(); err == nil {
			t.Cleanup(func() { // also when the guest's tests failed
				if c1, err := cpuTicks(); err == nil {
					c := c1.sub(c0)
					t.Logf("compare: the host's CPU during the run: %.0f%% busy, %.0f%% stolen by the hypervisor (in a run with much stolen, both daemons and the backend waited for a CPU they had been given: not comparable)",
						100*float64(c.busy)/float64(max(c.total, 1)), 100*float64(c.steal)/float64(max(c.total, 1)))
				}
			})
		}
	}
	uml.RunTestsWith(t, o, map[string]func(t *testing.T){"SideBySide": testSideBySide})
}

// hostBinary returns an ldirectord binary where the guest can see it (the guest has its own /tmp): a copy
// of $COMPARE_LDIRECTORD, or a build of ./cmd/ldirectord.
func hostBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(dir, "ldirectord-compare")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// One file per test process: two runs at the same time must not swap binaries.
	out := filepath.Join(dir, fmt.Sprintf("ldirectord-%d", os.Getpid()))
	t.Cleanup(func() { os.Remove(out) })
	if src := os.Getenv(binEnv); src != "" {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("%s: %v", binEnv, err)
		}
		if err := os.WriteFile(out+".tmp", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(out+".tmp", out); err != nil {
			t.Fatal(err)
		}
		t.Logf("comparing %s", src)
		return out
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	// Built as scripts/build-deb.sh builds the package operators install: static, without symbol tables.
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "../../cmd/ldirectord")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build ldirectord: %v: %s", err, b)
	}
	return out
}

// scenarioConfig is the ldirectord.cf of the scenario; keepalived gets keepalived.Conf of it.
func scenarioConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, "logfile=%q\ncheckinterval=1\nnegotiatetimeout=2\nquiescent=no\n", filepath.Join(workDir, "ldirectord.log"))
	rs := reals()
	for v := range nVirtuals {
		fmt.Fprintf(&b, "\nvirtual=%s\n\tservice=http\n\trequest=\"/\"\n\treceive=\"ok\"\n\tscheduler=wrr\n", real{vip: v}.virtual())
		for _, r := range rs {
			if r.vip == v {
				fmt.Fprintf(&b, "\treal=%s masq\n", r.addr())
			}
		}
	}
	return b.String()
}

// result is what one daemon did in the scenario.
type result struct {
	name      string
	converge  time.Duration // until every healthy real was in the table; 0: not within the limit
	detect    time.Duration // from the victim hanging to it leaving the table; 0: not within 20 s; < 0: not measured
	cores     float64       // CPU of the daemon's processes over 10 s of steady state
	rssMB     float64       // their summed VmRSS at the end of that window
	pssMB     float64       // their summed Pss (shared pages divided among the processes sharing them)
	pids      int
	answered  float64 // checks of healthy reals the backend answered per second in the CPU window
	guestBusy float64 // the fraction of the guest's CPU busy in that window (daemon, backend, kernel, this test)
	removed   int     // times a healthy real left the table
	// logRemoved is the same from the daemon's own log (the victim left out), to cross-check the table
	// polling, which can miss a removal undone within 100 ms.
	logRemoved int
}

// convergeLimit is $COMPARE_CONVERGE_LIMIT, default 60 s.
func convergeLimit(t *testing.T) time.Duration {
	l := os.Getenv(limitEnv)
	if l == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(l)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a duration such as 120s", limitEnv, l)
	}
	return d
}

func testSideBySide(t *testing.T) {
	limit := convergeLimit(t)
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bk := startNetwork(t)
	cfText := scenarioConfig()
	cfPath := filepath.Join(workDir, "compare.cf")
	if err := os.WriteFile(cfPath, []byte(cfText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(cfPath, []byte(cfText))
	if err != nil {
		t.Fatalf("the scenario's ldirectord.cf: %v", err)
	}
	kaText, err := keepalived.Conf(cfg)
	if err != nil {
		t.Fatalf("keepalived.Conf: %v", err)
	}
	kaPath := filepath.Join(workDir, "keepalived.conf")
	if err := os.WriteFile(kaPath, []byte(kaText), 0o644); err != nil {
		t.Fatal(err)
	}

	var results []result
	for _, d := range []daemonUnderTest{ours(cfPath), keepalivedDaemon(kaPath)} {
		t.Run(d.name, func(t *testing.T) {
			runScenario(t, d, bk, limit, &results)
		})
	}
	healthy := 0
	for _, r := range reals() {
		if !r.hangs() {
			healthy++
		}
	}
	t.Logf("compare: %d HTTP reals over %d virtuals, %d hanging, checkinterval 1, negotiatetimeout 2, user-mode Linux (1 CPU)",
		len(reals()), nVirtuals, len(reals())-healthy)
	t.Logf("compare: %-20s %10s %8s %9s %8s %10s %10s %6s %6s %15s %12s", "daemon", "converge s", "detect s", "CPU cores",
		"checks/s", "ms CPU/ok", "guest busy", "RSS MB", "PSS MB", "healthy removed", "(by its log)")
	for _, r := range results {
		perCheck := 0.0
		if r.answered > 0 {
			perCheck = r.cores / r.answered * 1000
		}
		t.Logf("compare: %-20s %10s %8s %9.3f %8.0f %10.2f %9.0f%% %6.1f %6.1f %15d %12d", r.name, secs(r.converge), secs(r.detect),
			r.cores, r.answered, perCheck, r.guestBusy*100, r.rssMB, r.pssMB, r.removed, r.logRemoved)
	}
	t.Logf("compare: checks/s is what the backend answered (%d healthy reals at checkinterval 1 make %d/s); ms CPU/ok is the daemon's CPU per answered check", healthy, healthy)
}

// secs prints a measured time: "never" for 0 (not within its limit), "n/a" for < 0 (not measured).
func secs(d time.Duration) string {
	switch {
	case d == 0:
		return "never"
	case d < 0:
		return "n/a"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
}

// runScenario starts d on an empty table and measures it; see TestKernelCompare.
func runScenario(t *testing.T, d daemonUnderTest, bk *backend, limit time.Duration, results *[]result) {
	res := result{name: d.name}
	clearTable(t)
	bk.hangVictim(t, false)
	t0 := time.Now()
	pid := d.start(t)
	m := watch(t0, d.diag)
	defer func() {
		m.close()
		for _, p := range m.problems() {
			t.Error(p)
		}
		n, events := m.removedHealthy()
		res.removed = n
		if n > 0 {
			// Asserted for this daemon only: keepalived is the reference, and what it does on this
			// (shared, possibly starved) machine is reported, not judged.
			report := t.Logf
			if d.mustNotRemove {
				report = t.Errorf
			}
			report("%s removed a healthy real from the table %d times:\n%s", d.name, n, strings.Join(events, "\n"))
			if a := m.removalAccount(); a != "" {
				t.Logf("%s, when a healthy real first left the table: %s", d.name, a)
			}
		}
		if t.Failed() && d.diag != nil {
			t.Log(d.diag())
		}
		d.stop(t)
		clearTable(t)
		res.logRemoved = logRemovals(d.log(), d.removedLine)
		if res.logRemoved > 0 {
			t.Logf("%s removed a healthy real %d times by its log; the log from 20 lines before the first (additions left out):\n%s",
				d.name, res.logRemoved, removalContext(d.log(), d.removedLine, 20, 80))
		}
		if t.Failed() || os.Getenv(logEnv) != "" {
			t.Logf("%s: reals added to the table, by second: %s", d.name, perSecond(d.log(), realAdded))
			t.Logf("%s log (tail, before the stop):\n%s", d.name, tail(d.log(), 40))
			t.Logf("%s log (its lines by kind, most frequent first):\n%s", d.name, digest(d.log(), 25))
		}
		*results = append(*results, res)
	}()

	res.converge = m.waitConverged(limit)
	if res.converge == 0 {
		t.Errorf("%s: %d of %d healthy reals in the table after %v", d.name, m.healthyIn(), m.healthy, limit)
	}
	// Steady state: past the first round of checks and the first timeouts of the hanging reals.
	time.Sleep(5 * time.Second)
	s0, err := treeStat(pid)
	if err != nil {
		t.Fatalf("%s: %v", d.name, err)
	}
	a0 := bk.answered(t)
	c0, err := cpuTicks()
	if err != nil {
		t.Fatal(err)
	}
	const window = 10 * time.Second
	time.Sleep(window)
	c1, err := cpuTicks()
	if err != nil {
		t.Fatal(err)
	}
	c := c1.sub(c0)
	res.guestBusy = float64(c.busy) / float64(max(c.total, 1))
	s1, err := treeStat(pid)
	if err != nil {
		t.Fatalf("%s: %v", d.name, err)
	}
	res.answered = float64(bk.answered(t)-a0) / window.Seconds()
	res.cores = float64(s1.ticks-s0.ticks) / 100 / window.Seconds()
	res.rssMB = float64(s1.rssKB) / 1024
	res.pssMB = float64(s1.pssKB) / 1024
	res.pids = s1.pids

	// A failure is detected from a real in the table: wait for the victim to be in (it is, after a
	// convergence, unless the daemon removed it meanwhile: that is a problem the monitor reports).
	if !m.waitIn(dest{victim.virtual(), victim.addr()}, 20*time.Second) {
		t.Errorf("%s: the victim %s (%s) is not in the table: no detection measured", d.name, victim.addr(), victim.virtual())
		res.detect = -1
	} else {
		bk.hangVictim(t, true)
		m.victimHangs(time.Now())
		res.detect = m.waitVictimGone(20 * time.Second)
		if res.detect == 0 {
			t.Errorf("%s: the victim %s (%s) hangs and is still in the table after 20 s", d.name, victim.addr(), victim.virtual())
		}
	}
	time.Sleep(3 * time.Second) // anything else removed meanwhile is a problem
	if v := os.Getenv(straceEnv); v != "" {
		straceDaemon(t, d.name, pid, v, bk)
	}
	t.Logf("%s: converged %s s, detected %s s, %.3f cores, %.0f checks/s answered, %.1f MB RSS, %.1f MB PSS (%d processes)",
		d.name, secs(res.converge), secs(res.detect), res.cores, res.answered, res.rssMB, res.pssMB, res.pids)
}

func clearTable(t *testing.T) {
	if out, err := exec.Command("ipvsadm", "-C").CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm -C: %v: %s", err, out)
	}
}

// tail is the last n lines of a daemon's log before it was stopped (the lines from the first of the stop
// on are left out).
func tail(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.Contains(l, "Purged ") || strings.Contains(l, "terminated on signal") || strings.Contains(l, "Shutting down service ") {
			break
		}
		lines = append(lines, l)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
