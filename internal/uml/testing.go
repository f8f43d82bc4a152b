package uml

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// IPVSModules are the IPVS modules of the UML kernel: the core and every scheduler, plus sctp so SCTP
// services work.
var IPVSModules = []string{
	"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr", "ip_vs_dh",
	"ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf", "ip_vs_mh", "sctp",
}

// DefaultTestOptions are the Options RunTests uses: every IPVS module loaded, a 10 minute bound.
func DefaultTestOptions() Options {
	return Options{Modules: IPVSModules, Timeout: 10 * time.Minute}
}

// RunTests is called by a host-side test (e.g. `func TestKernel(t *testing.T)`). On the host it boots the
// kernel running this same test binary with -test.run set to that test's name (and any subtest pattern
// given on the host), streams the guest's output into t's log, and fails t when the guest run fails or
// runs no test. In the guest it runs the given subtests for real, in name order. It never skips: a host
// that cannot boot the kernel fails the test.
func RunTests(t *testing.T, tests map[string]func(t *testing.T)) {
	t.Helper()
	RunTestsWith(t, DefaultTestOptions(), tests)
}

// RunTestsWith is RunTests with the guest's Options (Args and Dir are filled in).
func RunTestsWith(t *testing.T, o Options, tests map[string]func(t *testing.T)) {
	t.Helper()
	if InGuest() {
		names := make([]string, 0, len(tests))
		for name := range tests {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			t.Run(name, tests[name])
		}
		return
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	// Finish (and report) before the host test binary's own -test.timeout kills everything.
	if dl, ok := t.Deadline(); ok && time.Until(dl)-10*time.Second < o.Timeout {
		o.Timeout = time.Until(dl) - 10*time.Second
	}
	bin, err := testBinary(t)
	if err != nil {
		t.Fatal(err)
	}
	o.Args = []string{bin, "-test.run=" + guestPattern(t.Name()), "-test.v", "-test.count=1",
		fmt.Sprintf("-test.timeout=%ds", int((o.Timeout - 30*time.Second).Seconds()))}
	w := &lineLogger{log: t.Log}
	o.Output = w
	res, err := Run(t.Context(), o)
	w.Flush()
	if err != nil {
		t.Fatalf("kernel tests could not run: %v", err)
	}
	out := string(res.Output)
	switch {
	case res.ExitCode != 0:
		t.Fatalf("kernel tests failed in the guest (exit status %d, %v)", res.ExitCode, res.Elapsed.Round(time.Millisecond))
	case strings.Contains(out, "testing: warning: no tests to run") || !strings.Contains(out, "--- PASS: "+t.Name()):
		t.Fatalf("the guest ran no %s test (exit status 0)", t.Name())
	}
	t.Logf("kernel tests passed in the guest (%v, boot included)", res.Elapsed.Round(time.Millisecond))
}

// RunBenchmark runs benchmark b inside the kernel: on the host it boots the kernel once (whatever b.N)
// running this test binary with -test.bench set to b's name, copies the guest's output to stdout and
// reports the guest's metrics as b's own. In the guest it calls fn(b).
func RunBenchmark(b *testing.B, o Options, fn func(b *testing.B)) {
	b.Helper()
	if InGuest() {
		fn(b)
		return
	}
	key := b.Name()
	benchMu.Lock()
	r, ok := benchRuns[key]
	if !ok {
		r = &benchRun{}
		benchRuns[key] = r
	}
	benchMu.Unlock()
	r.once.Do(func() { r.metrics, r.err = bootBenchmark(b, o) })
	if r.err != nil {
		b.Fatal(r.err)
	}
	b.ResetTimer()
	for unit, v := range r.metrics {
		b.ReportMetric(v, unit)
	}
}

type benchRun struct {
	once    sync.Once
	metrics map[string]float64
	err     error
}

var (
	benchMu   sync.Mutex
	benchRuns = map[string]*benchRun{}
)

func bootBenchmark(b *testing.B, o Options) (map[string]float64, error) {
	bin, err := testBinary(b)
	if err != nil {
		return nil, err
	}
	name := b.Name()
	if i := strings.LastIndex(name, "-"); i > 0 && strings.Count(name, "-") > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i] // strip the -GOMAXPROCS suffix
		}
	}
	benchtime := "1x"
	if f := flag.Lookup("test.benchtime"); f != nil && f.Value.String() != "1s" {
		benchtime = f.Value.String()
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Minute
	}
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 && d-10*time.Second < o.Timeout {
			o.Timeout = d - 10*time.Second
		}
	}
	o.Args = []string{bin, "-test.run=^$", "-test.bench=^" + regexp.QuoteMeta(name) + "$", "-test.benchtime=" + benchtime,
		"-test.benchmem", "-test.v", fmt.Sprintf("-test.timeout=%ds", int((o.Timeout - 30*time.Second).Seconds()))}
	o.Output = os.Stdout
	res, err := Run(context.Background(), o)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("benchmark failed in the guest (exit status %d)", res.ExitCode)
	}
	// The result line: "BenchmarkX-1   	       1	 123 ns/op	  4.5 unit ..."
	for _, line := range strings.Split(string(res.Output), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], name) {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			m[f[i+1]] = v
		}
		return m, nil
	}
	return nil, fmt.Errorf("the guest printed no result for %s", name)
}

// guestPattern is the -test.run pattern for the guest: exactly this test, plus the subtest part of the
// host's own -test.run, if any.
func guestPattern(name string) string {
	pat := "^" + regexp.QuoteMeta(name) + "$"
	if f := flag.Lookup("test.run"); f != nil {
		if parts := strings.SplitN(f.Value.String(), "/", 2); len(parts) == 2 {
			pat += "/" + parts[1]
		}
	}
	return pat
}

// testBinary is the test binary to run in the guest: this one, or, when this one has the race detector
// (which cannot map its shadow memory in UML's address space), the same package built without it.
func testBinary(tb testing.TB) (string, error) {
	if !raceEnabled {
		return os.Args[0], nil
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, strings.ReplaceAll(strings.Trim(wd, "/"), "/", "_")+".test")
	tb.Logf("the guest runs a build of this package without -race (ThreadSanitizer cannot run in UML)")
	cmd := exec.Command(goTool, "test", "-c", "-o", out, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the non-race test binary: %v: %s", err, b)
	}
	return out, nil
}

// lineLogger sends whole lines to log.
type lineLogger struct {
	mu  sync.Mutex
	log func(args ...any)
	buf bytes.Buffer
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err == io.EOF {
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.log("guest: " + strings.TrimRight(line, "\n"))
	}
}

// Flush logs a last line that has no newline.
func (l *lineLogger) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(&l.buf)
	for sc.Scan() {
		l.log("guest: " + sc.Text())
	}
}
