package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The CPUs: the daemon (and the bare client) on one, the backend on the other.
const (
	daemonCPU  = "0"
	backendCPU = "1"
	// nofile is the daemon's fd limit, as in the measurements.
	nofile = 16384
)

// bareEnv, when set to "B1,B2,N,M,RATE", makes this test binary the bare client: M checks (fresh
// connection, GET, read to the end, close) spread over the N reals of block 127.B1.B2, by 4 goroutines as
// fast as they go (RATE 0), or paced at RATE per second with a timer and a goroutine per check. It prints
// its own CPU time in microseconds and the number of checks that failed.
const bareEnv = "LDGO_BENCH_BARE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(backendEnv); spec != "" {
		serveBackends(spec)
		return
	}
	if spec := os.Getenv(bareEnv); spec != "" {
		bareClient(spec)
		return
	}
	code := m.Run()
	if binOnce.path != "" {
		os.RemoveAll(filepath.Dir(binOnce.path))
	}
	os.Exit(code)
}

// backend is the backend processes, pinned to backendCPU, serving n reals on block 127.b1.b2.
type backend struct {
	procs  []*backendProc
	b1, b2 byte
	n      int
}

type backendProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startBackend starts the backend on a random block of 127.0.0.0/8 (another one if an address is taken).
func startBackend(tb testing.TB, n int) *backend {
	tb.Helper()
	if runtime.NumCPU() < 2 {
		tb.Fatalf("the benchmarks pin the daemon and the backend to different CPUs: this machine has %d", runtime.NumCPU())
	}
	for try := 0; ; try++ {
		b := &backend{b1: byte(100 + rand.IntN(150)), b2: byte(rand.IntN(256)), n: n}
		err := b.start(tb)
		if err == nil {
			tb.Cleanup(b.stop)
			return b
		}
		b.stop()
		if try == 4 {
			tb.Fatalf("backend: %v", err)
		}
	}
}

func (b *backend) start(tb testing.TB) error {
	for from := 0; from < b.n; from += perProcess {
		to := min(from+perProcess, b.n)
		cmd := exec.Command("taskset", "-c", backendCPU, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d,%d,%d", backendEnv, b.b1, b.b2, from, to))
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start the backend (taskset, util-linux): %v", err)
		}
		p := &backendProc{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
		b.procs = append(b.procs, p)
		if !p.out.Scan() {
			return fmt.Errorf("a backend process did not start (see its error above)")
		}
		if l := p.out.Text(); l != "ready" {
			return fmt.Errorf("reals %d-%d: %s", from, to-1, l)
		}
	}
	return nil
}

func (b *backend) stop() {
	for _, p := range b.procs {
		p.stdin.Close()
		p.cmd.Wait()
	}
	b.procs = nil
}

// answered is the number of requests the backend has answered so far.
func (b *backend) answered(tb testing.TB) int64 {
	tb.Helper()
	var sum int64
	for _, p := range b.procs {
		fmt.Fprintln(p.stdin)
		if !p.out.Scan() {
			tb.Fatalf("a backend process died")
		}
		n, err := parseCount(p.out.Text())
		if err != nil {
			tb.Fatalf("backend count %q: %v", p.out.Text(), err)
		}
		sum += n
	}
	return sum
}

var binOnce struct {
	sync.Once
	path string
	err  error
}

// ldirectordBinary is $LDIRECTORD, or this tree's cmd/ldirectord built once per test process.
func ldirectordBinary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("LDIRECTORD"); p != "" {
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ldgo-bench-")
		if err != nil {
			binOnce.err = err
			return
		}
		binOnce.path = filepath.Join(dir, "ldirectord")
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		// Built as scripts/build-deb.sh builds the package operators install: static (no cgo, so no libc
		// mapped: 1 MB of resident memory), without symbol tables.
		cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-s -w", "-o", binOnce.path, "../cmd/ldirectord")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binOnce.err = fmt.Errorf("build ldirectord: %v: %s", err, out)
		}
	})
	if binOnce.err != nil {
		tb.Fatal(binOnce.err)
	}
	return binOnce.path
}

// daemonConfig spreads the backend's n reals over nv HTTP virtuals; timeout 0 keeps the default timeouts.
func daemonConfig(b *backend, nv int, interval, timeout time.Duration, logfile string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "logfile=%q\ncheckinterval=%d\n", logfile, int(interval.Seconds()))
	if timeout > 0 {
		fmt.Fprintf(&s, "negotiatetimeout=%d\n", int(timeout.Seconds()))
	}
	addrs := realAddrs(b.b1, b.b2, b.n)
	for v := range nv {
		fmt.Fprintf(&s, "\nvirtual=10.9.9.%d:80\n\tservice=http\n\trequest=\"/\"\n\treceive=\"ok\"\n\tscheduler=wrr\n", v+1)
		for i := v; i < len(addrs); i += nv {
			fmt.Fprintf(&s, "\treal=%s masq\n", addrs[i])
		}
	}
	return s.String()
}

// daemon is `ldirectord --dry-run -d CONFIG start`, pinned to daemonCPU with the fd limit nofile; its
// log (stderr) is read as it comes.
type daemon struct {
	cmd              *exec.Cmd
	added, deleted   atomic.Int64
	mu               sync.Mutex
	other            []string // the first non-debug lines that are not additions or removals
	last             []string // the last lines of any kind, for a failure's report
	logDone, stopped chan struct{}
}

func startDaemon(tb testing.TB, cfgText string) *daemon {
	tb.Helper()
	dir := tb.TempDir()
	cf := filepath.Join(dir, "bench.cf")
	if err := os.WriteFile(cf, []byte(cfgText), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("taskset", "-c", daemonCPU, "prlimit", fmt.Sprintf("--nofile=%d:%d", nofile, nofile),
		ldirectordBinary(tb), "--dry-run", "-d", cf, "start")
	cmd.Env = append(os.Environ(), "LDIRECTORD_PIDDIR="+dir)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start ldirectord (taskset, prlimit: util-linux): %v", err)
	}
	d := &daemon{cmd: cmd, logDone: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(d.logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l := sc.Text()
			d.mu.Lock()
			if len(d.last) == 40 {
				d.last = append(d.last[:0], d.last[1:]...)
			}
			d.last = append(d.last, l)
			d.mu.Unlock()
			switch {
			case strings.HasPrefix(l, "Added real server: "):
				d.added.Add(1)
			case strings.HasPrefix(l, "Deleted real server: "):
				d.deleted.Add(1)
			case strings.HasPrefix(l, "DEBUG"), strings.HasPrefix(l, "dry-run: "):
			default:
				d.mu.Lock()
				if len(d.other) < 200 {
					d.other = append(d.other, l)
				}
				d.mu.Unlock()
			}
		}
	}()
	tb.Cleanup(func() { d.stop(tb) })
	return d
}

// otherLines are the first log lines that were neither debug output nor additions and removals.
func (d *daemon) otherLines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.other...)
}

// lastLines are the last lines the daemon wrote, debug output included.
func (d *daemon) lastLines() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.last, "\n")
}

// stat is the daemon's CPU time so far, its resident memory and its peak resident memory.
func (d *daemon) stat(tb testing.TB) (cpu time.Duration, rssMB, hwmMB float64) {
	tb.Helper()
	pid := d.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatalf("the daemon is gone: %v", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+st) * (time.Second / 100) // USER_HZ
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rssMB = kb / 1024
		case "VmHWM:":
			hwmMB = kb / 1024
		}
	}
	return cpu, rssMB, hwmMB
}

func (d *daemon) stop(tb testing.TB) {
	select {
	case <-d.stopped:
		return
	default:
	}
	defer close(d.stopped)
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		tb.Errorf("ldirectord did not stop within 30 s of SIGTERM")
		d.cmd.Process.Kill()
		<-done
	}
	<-d.logDone
}

// measurement is what one daemon run gave.
type measurement struct {
	allIn         time.Duration // until every real was added; 0: not within the limit
	checksPerSec  float64       // answered by the backend during the window
	cores         float64
	usPerCheck    float64
	rssMB, hwmMB  float64
	added, delete int64
}

// measure starts the daemon on the backend's reals and measures it over window, starting at warmup after
// the start or when every real is in the table, whichever is later (waiting for that at most allInLimit;
// 0: do not wait).
func measure(tb testing.TB, bk *backend, nv int, interval, timeout, warmup, window, allInLimit time.Duration) measurement {
	tb.Helper()
	var m measurement
	ldirectordBinary(tb) // built before the clock starts: a cold build cache takes longer than allInLimit
	t0 := time.Now()
	d := startDaemon(tb, daemonConfig(bk, nv, interval, timeout, filepath.Join(tb.TempDir(), "ld.log")))
	if allInLimit > 0 {
		for d.added.Load() < int64(bk.n) && time.Since(t0) < allInLimit {
			time.Sleep(20 * time.Millisecond)
		}
		if d.added.Load() >= int64(bk.n) {
			m.allIn = time.Since(t0)
		} else {
			tb.Errorf("%d of %d reals added after %v; log: %q\nlast lines:\n%s", d.added.Load(), bk.n, allInLimit, d.otherLines(), d.lastLines())
		}
	}
	time.Sleep(warmup - time.Since(t0))
	c0, a0 := cpuOf(tb, d), bk.answered(tb)
	time.Sleep(window)
	c1, a1 := cpuOf(tb, d), bk.answered(tb)
	_, m.rssMB, m.hwmMB = d.stat(tb)
	m.checksPerSec = float64(a1-a0) / window.Seconds()
	m.cores = (c1 - c0).Seconds() / window.Seconds()
	if a1 > a0 {
		m.usPerCheck = float64((c1 - c0).Microseconds()) / float64(a1-a0)
	}
	d.stop(tb)
	m.added, m.delete = d.added.Load(), d.deleted.Load()
	return m
}

func cpuOf(tb testing.TB, d *daemon) time.Duration {
	c, _, _ := d.stat(tb)
	return c
}

// bareClient is the bare client process (see bareEnv).
func bareClient(spec string) {
	var b1, b2, n, m, rate int
	if _, err := fmt.Sscanf(spec, "%d,%d,%d,%d,%d", &b1, &b2, &n, &m, &rate); err != nil {
		fmt.Fprintf(os.Stderr, "bare client: %s=%q: %v\n", bareEnv, spec, err)
		os.Exit(1)
	}
	addrs := realAddrs(byte(b1), byte(b2), n)
	var failed atomic.Int64
	c0 := selfCPU()
	var wg sync.WaitGroup
	if rate == 0 {
		for w := range 4 {
			wg.Go(func() {
				buf := make([]byte, 512)
				for i := w; i < m; i += 4 {
					if !bareCheck(addrs[i%n].String(), buf) {
						failed.Add(1)
					}
				}
			})
		}
	} else {
		// Paced: check i starts at i/rate s, from its own timer, in its own goroutine.
		wg.Add(m)
		for i := range m {
			time.AfterFunc(time.Duration(i)*time.Second/time.Duration(rate), func() {
				defer wg.Done()
				if !bareCheck(addrs[i%n].String(), make([]byte, 512)) {
					failed.Add(1)
				}
			})
		}
	}
	wg.Wait()
	fmt.Println((selfCPU() - c0).Microseconds(), failed.Load())
}

var bareRequest = []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")

// bareCheck is one check of the bare client: a fresh connection, the request, read to the end, close.
func bareCheck(addr string, buf []byte) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(bareRequest)
	got := 0
	for {
		k, err := c.Read(buf)
		got += k
		if err != nil {
			return got > 0
		}
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runBare runs m bare checks on daemonCPU against the backend, unpaced (rate 0) or rate per second, and
// returns the CPU per check; the backend must have answered exactly m more requests.
func runBare(tb testing.TB, bk *backend, m, rate int) float64 {
	tb.Helper()
	a0 := bk.answered(tb)
	cmd := exec.Command("taskset", "-c", daemonCPU, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d,%d,%d,%d", bareEnv, bk.b1, bk.b2, bk.n, m, rate))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("bare client: %v", err)
	}
	var us, failed int64
	if _, err := fmt.Sscanf(string(out), "%d %d", &us, &failed); err != nil {
		tb.Fatalf("bare client: %q: %v", out, err)
	}
	if a := bk.answered(tb) - a0; failed != 0 || a != int64(m) {
		tb.Fatalf("bare client: %d of %d checks failed, the backend answered %d", failed, m, a)
	}
	return float64(us) / float64(m)
}

// TestBareClientCounted: the bare client's checks all reach the backend and are counted there, one each,
// so the benchmarks' per-check figures divide by what really ran.
func TestBareClientCounted(t *testing.T) {
	bk := startBackend(t, 50)
	if us := runBare(t, bk, 400, 0); us <= 0 {
		t.Errorf("bare client: %v µs of CPU per check", us)
	}
	if us := runBare(t, bk, 200, 1000); us <= 0 {
		t.Errorf("paced bare client: %v µs of CPU per check", us)
	}
}

// TestDaemonChecksCounted runs the daemon on 20 reals at checkinterval 1 for a few seconds: every real is
// added, none removed, and the backend answers about one check per real per second (between 10 and 30 per
// second, for a loaded machine), which is what the benchmarks divide the daemon's CPU by.
func TestDaemonChecksCounted(t *testing.T) {
	bk := startBackend(t, 20)
	m := measure(t, bk, 2, time.Second, 2*time.Second, 3*time.Second, 4*time.Second, 30*time.Second)
	if m.added != 20 || m.delete != 0 {
		t.Errorf("added %d, deleted %d; want 20 and 0", m.added, m.delete)
	}
	if m.checksPerSec < 10 || m.checksPerSec > 30 {
		t.Errorf("the backend answered %.1f checks/s; want about 20", m.checksPerSec)
	}
}
