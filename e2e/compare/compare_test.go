package compare

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/keepalived"
	"github.com/ldirectord-go/ldirectord/internal/uml"
)

const (
	// binEnv is the path of the ldirectord binary to compare. On the host it may name any build (e.g.
	// another branch's); unset, the host builds ./cmd/ldirectord. The guest gets a copy it can see.
	binEnv = "COMPARE_LDIRECTORD"
	// straceEnv, set to a duration (e.g. 5s), makes each daemon's run end with `strace -c -f` of its
	// processes for that long, printed with the checks answered meanwhile: the syscalls per check (issue 8,
	// item 4). Off by default: it slows the daemon down and is not part of the measurement above it.
	straceEnv = "COMPARE_STRACE"
	// limitEnv bounds the wait for convergence (a Go duration, default 60s): a daemon that does not get
	// every healthy real into the table by then fails the test.
	limitEnv = "COMPARE_CONVERGE_LIMIT"
	workDir  = "/tmp/compare"
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
		if v := os.Getenv(straceEnv); v != "" {
			o.Env = append(o.Env, straceEnv+"="+v)
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
	if b, err := exec.Command(goTool, "build", "-o", out, "../../cmd/ldirectord").CombinedOutput(); err != nil {
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
	detect    time.Duration // from the victim hanging to it leaving the table; 0: not within 20 s
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

func secs(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
}

// daemonUnderTest starts a daemon (returning the pid whose process tree is measured) and stops it.
type daemonUnderTest struct {
	name string
	// mustNotRemove: removing a healthy real fails the test (this daemon), else it is reported.
	mustNotRemove bool
	start         func(t *testing.T) int
	stop          func(t *testing.T)
	log           func() string
	// removedLine matches the daemon's log line for a real leaving the table; its groups are the real's
	// last address byte and port.
	removedLine *regexp.Regexp
	// diag, when set, says more about a failure while the daemon still runs.
	diag func() string
}

// ours is this ldirectord, started and stopped through its command line like the Perl one.
func ours(cf string) daemonUnderTest {
	bin := os.Getenv(binEnv)
	logPath := filepath.Join(workDir, "ldirectord.log")
	run := func(t *testing.T, cmd string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, bin, cf, cmd).CombinedOutput(); err != nil {
			t.Errorf("ldirectord %s: %v: %s", cmd, err, out)
		}
	}
	return daemonUnderTest{
		name:          "ldirectord (this)",
		mustNotRemove: true,
		removedLine:   oursRemoved,
		start: func(t *testing.T) int {
			if bin == "" {
				t.Fatalf("%s is not set: the host side passes the binary", binEnv)
			}
			run(t, "start")
			b, err := os.ReadFile("/var/run/ldirectord." + filepath.Base(cf) + ".pid")
			if err != nil {
				t.Fatalf("ldirectord started without a pid file: %v", err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file: %v", err)
			}
			return pid
		},
		stop: func(t *testing.T) { run(t, "stop") },
		log: func() string {
			b, _ := os.ReadFile(logPath)
			return string(b)
		},
		diag: func() string { return failedHealthy(bin, cf) },
	}
}

// failedHealthy is the lines of `ldirectord show` whose real is healthy and whose last check failed (the
// first 20, and how many there are): the reason a daemon removed healthy reals.
func failedHealthy(bin, cf string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, cf, "show").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ldirectord show: %v: %s", err, out)
	}
	var lines []string
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		var a, b, c, ip, port int
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "real" || !strings.Contains(l, "failed: ") {
			continue
		}
		if k, _ := fmt.Sscanf(f[1], "%d.%d.%d.%d:%d", &a, &b, &c, &ip, &port); k != 5 || (real{ip: ip}).hangs() {
			continue
		}
		if n++; n <= 20 {
			lines = append(lines, l)
		}
	}
	return fmt.Sprintf("%d healthy reals whose last check failed (ldirectord show):\n%s", n, strings.Join(lines, "\n"))
}

// keepalivedDaemon is Debian's keepalived, health-checker subsystem only, in the foreground.
func keepalivedDaemon(conf string) daemonUnderTest {
	logPath := filepath.Join(workDir, "keepalived.log")
	var cmd *exec.Cmd
	return daemonUnderTest{
		name:        "keepalived " + keepalivedVersion(),
		removedLine: keepalivedRemoved,
		start: func(t *testing.T) int {
			lf, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer lf.Close()
			cmd = exec.Command("keepalived", "--dont-fork", "--check", "--log-console", "--log-detail", "--no-syslog",
				"--use-file", conf, "--pid", filepath.Join(workDir, "keepalived.pid"),
				"--checkers_pid", filepath.Join(workDir, "keepalived-checkers.pid"))
			cmd.Stdout, cmd.Stderr = lf, lf
			if err := cmd.Start(); err != nil {
				t.Fatalf("keepalived (Debian package keepalived, scripts/deps/compare.txt): %v", err)
			}
			return cmd.Process.Pid
		},
		stop: func(t *testing.T) {
			if cmd == nil || cmd.Process == nil {
				return
			}
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("keepalived did not stop within 20 s of SIGTERM")
				cmd.Process.Kill()
				<-done
			}
		},
		log: func() string {
			b, _ := os.ReadFile(logPath)
			return string(b)
		},
	}
}

func keepalivedVersion() string {
	out, _ := exec.Command("keepalived", "--version").CombinedOutput()
	if f := strings.Fields(string(out)); len(f) >= 2 {
		return f[1]
	}
	return "(version unknown)"
}

// backend is the process serving every real, in netns "rs".
type backend struct {
	cmd   *exec.Cmd
	stdin io.Writer
	lines chan string
}

// answered is the number of requests the backend has answered so far.
func (b *backend) answered(t *testing.T) int64 {
	fmt.Fprintln(b.stdin)
	select {
	case l, ok := <-b.lines:
		n, err := strconv.ParseInt(l, 10, 64)
		if !ok || err != nil {
			t.Fatalf("backend count: %q (%v)", l, err)
		}
		return n
	case <-time.After(30 * time.Second):
		t.Fatal("the backend did not say how many requests it answered within 30 s")
	}
	return 0
}

// hangVictim makes the victim start hanging (true) or answer again (false).
func (b *backend) hangVictim(t *testing.T, hang bool) {
	sig := syscall.SIGUSR2
	if hang {
		sig = syscall.SIGUSR1
	}
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal the backend: %v", err)
	}
}

// startNetwork builds netns "rs" behind a veth pair (the director's side 10.2.255.254/16, the reals'
// addresses 10.2.0.1-100 on the other) and starts the backend process there.
func startNetwork(t *testing.T) *backend {
	t.Helper()
	var batch strings.Builder
	for i := 1; i <= nIPs; i++ {
		fmt.Fprintf(&batch, "addr add 10.2.0.%d/16 dev r0\n", i)
	}
	script := `
set -e
mkdir -p /run/netns
ip netns add rs
ip link add r0 type veth peer name d1
ip link set r0 netns rs
ip addr add 10.2.255.254/16 dev d1
ip link set d1 up
ip -n rs link set r0 up
ip -n rs link set lo up
ip -n rs -batch -
`
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("guest network: %v: %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bc := exec.Command("ip", "netns", "exec", "rs", self)
	bc.Env = append(os.Environ(), backendEnv+"=1")
	bc.Stderr = os.Stderr
	stdout, err := bc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := bc.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Process.Kill(); bc.Wait() })
	lines := make(chan string, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case l := <-lines:
		if want := fmt.Sprintf("ready %d", nVirtuals*nIPs/hangEvery); l != want {
			t.Fatalf("backend: %q, want %q", l, want)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the backend did not listen on every real's address within 60 s")
	}
	return &backend{cmd: bc, stdin: stdin, lines: lines}
}

// runScenario starts d on an empty table and measures it; see TestKernelCompare.
func runScenario(t *testing.T, d daemonUnderTest, bk *backend, limit time.Duration, results *[]result) {
	res := result{name: d.name}
	clearTable(t)
	bk.hangVictim(t, false)
	t0 := time.Now()
	pid := d.start(t)
	m := watch(t0)
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
		}
		if t.Failed() && d.diag != nil {
			t.Log(d.diag())
		}
		d.stop(t)
		clearTable(t)
		res.logRemoved = logRemovals(d.log(), d.removedLine)
		if t.Failed() {
			t.Logf("%s log (tail, before the stop):\n%s", d.name, tail(d.log(), 40))
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
	busy0, total0, err := cpuTicks()
	if err != nil {
		t.Fatal(err)
	}
	const window = 10 * time.Second
	time.Sleep(window)
	busy1, total1, err := cpuTicks()
	if err != nil {
		t.Fatal(err)
	}
	res.guestBusy = float64(busy1-busy0) / float64(max(total1-total0, 1))
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

// straceDaemon counts the syscalls of the daemon's processes for the duration dur (strace -c -f) and
// logs them with the checks the backend answered meanwhile.
func straceDaemon(t *testing.T, name string, pid int, dur string, bk *backend) {
	d, err := time.ParseDuration(dur)
	if err != nil {
		t.Fatalf("%s=%q: %v", straceEnv, dur, err)
	}
	st, err := treeStat(pid)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	args := []string{"-c", "-f"}
	for _, p := range st.list {
		args = append(args, "-p", strconv.Itoa(p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "strace", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	a0 := bk.answered(t)
	if err := cmd.Start(); err != nil {
		t.Fatalf("strace (Debian package strace): %v", err)
	}
	time.Sleep(d)
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	a := bk.answered(t) - a0
	t.Logf("%s: strace -c -f over %v, %d checks answered meanwhile:\n%s", name, d, a, out.String())
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

// monitor polls the kernel table every 100 ms from a daemon's start: when every healthy real is in, when
// the victim leaves after it started hanging, and every healthy real that left or hanging real that
// entered (each a problem: the first lies about a working server, the second about a dead one).
type monitor struct {
	t0      time.Time
	healthy int
	stopc   chan struct{}
	done    chan struct{}

	mu         sync.Mutex
	in         map[dest]bool // the table at the last poll
	seen       map[dest]bool // ever in the table
	nHealthy   int           // healthy reals in the table at the last poll
	convergeAt time.Time
	hangAt     time.Time
	goneAt     time.Time
	errs       []string
	dropped    int
	removed    int      // healthy reals that left the table (the victim only before it hangs)
	removals   []string // the first 50 of those events
}

func watch(t0 time.Time) *monitor {
	m := &monitor{t0: t0, stopc: make(chan struct{}), done: make(chan struct{}), seen: map[dest]bool{}}
	kind := map[dest]real{}
	for _, r := range reals() {
		kind[dest{r.virtual(), r.addr()}] = r
		if !r.hangs() {
			m.healthy++
		}
	}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			m.poll(kind)
			select {
			case <-m.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *monitor) poll(kind map[dest]real) {
	tab, err := readIPVS()
	if err == nil {
		// /proc/net/ip_vs is read in several chunks: a change between two of them can hide entries
		// that did not move. A real missing from one read counts only when a second read confirms it.
		var missing []dest
		for d := range m.in { // m.in is written only by this goroutine
			if !tab[d] {
				missing = append(missing, d)
			}
		}
		if len(missing) > 0 {
			again, err2 := readIPVS()
			err = err2
			for _, d := range missing {
				if again[d] {
					tab[d] = true
				}
			}
		}
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.problem("read the kernel table: %v", err)
		return
	}
	at := now.Sub(m.t0).Round(time.Millisecond)
	n := 0
	for d := range tab {
		r, ok := kind[d]
		switch {
		case !ok:
			m.problem("%v: %s (%s) is in the table but not in the config", at, d.addr, d.virtual)
		case r.hangs() && !m.seen[d]:
			m.problem("%v: hanging real %s (%s) added to the table", at, d.addr, d.virtual)
		case !r.hangs():
			n++
		}
		m.seen[d] = true
	}
	for d := range m.in {
		r := kind[d]
		if !tab[d] && !r.hangs() && !(r == victim && !m.hangAt.IsZero()) {
			m.removed++
			if len(m.removals) < 50 {
				m.removals = append(m.removals, fmt.Sprintf("%v: healthy real %s (%s) removed from the table", at, d.addr, d.virtual))
			}
		}
	}
	m.nHealthy = n
	if m.convergeAt.IsZero() && n == m.healthy {
		m.convergeAt = now
	}
	vd := dest{victim.virtual(), victim.addr()}
	if !m.hangAt.IsZero() && m.goneAt.IsZero() && !tab[vd] {
		m.goneAt = now
	}
	m.in = tab
}

// removedHealthy is how many times a healthy real left the table, and the first of those events.
func (m *monitor) removedHealthy() (int, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removed, append([]string(nil), m.removals...)
}

// problem records one problem; after 50 the rest are counted, not kept. The caller holds m.mu.
func (m *monitor) problem(format string, args ...any) {
	if len(m.errs) < 50 {
		m.errs = append(m.errs, fmt.Sprintf(format, args...))
	} else {
		m.dropped++
	}
}

func (m *monitor) victimHangs(at time.Time) {
	m.mu.Lock()
	m.hangAt = at
	m.mu.Unlock()
}

// waitConverged waits up to limit (from the start) for every healthy real to be in the table, and returns
// how long it took from the start, or 0.
func (m *monitor) waitConverged(limit time.Duration) time.Duration {
	for time.Since(m.t0) < limit {
		m.mu.Lock()
		at := m.convergeAt
		m.mu.Unlock()
		if !at.IsZero() {
			return at.Sub(m.t0)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0
}

// waitIn waits up to limit for d to be in the table.
func (m *monitor) waitIn(d dest, limit time.Duration) bool {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		m.mu.Lock()
		in := m.in[d]
		m.mu.Unlock()
		if in {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// waitVictimGone waits up to limit for the victim to leave the table and returns how long it took from
// victimHangs, or 0.
func (m *monitor) waitVictimGone(limit time.Duration) time.Duration {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		m.mu.Lock()
		gone, hang := m.goneAt, m.hangAt
		m.mu.Unlock()
		if !gone.IsZero() {
			return gone.Sub(hang)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0
}

func (m *monitor) healthyIn() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nHealthy
}

func (m *monitor) problems() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]string(nil), m.errs...)
	if m.dropped > 0 {
		out = append(out, fmt.Sprintf("... and %d more", m.dropped))
	}
	return out
}

func (m *monitor) close() {
	close(m.stopc)
	<-m.done
}
