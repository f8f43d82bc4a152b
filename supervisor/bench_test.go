package supervisor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// The benchmarks' HTTP backends run in a child process (this test binary, re-executed), so that their CPU
// is not counted as the supervisor's.
const backendEnv = "SUPERVISOR_TEST_BACKENDS"

func TestMain(m *testing.M) {
	if spec := os.Getenv(backendEnv); spec != "" {
		serveBackends(spec)
		return
	}
	os.Exit(m.Run())
}

var okResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

// serveBackends listens on n loopback ports ("n,hanging": the last ones accept and never answer), prints
// the ports, and serves until stdin closes. For each line "count" on stdin it prints the number of
// requests answered so far.
func serveBackends(spec string) {
	parts := strings.Split(spec, ",")
	n, _ := strconv.Atoi(parts[0])
	hanging := 0
	if len(parts) > 1 {
		hanging, _ = strconv.Atoi(parts[1])
	}
	w := bufio.NewWriter(os.Stdout)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintln(w, ln.Addr().(*net.TCPAddr).Port)
		hang := i >= n-hanging
		var held []net.Conn
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if hang {
					held = append(held, c) // held open (and referenced), never answered
					continue
				}
				go func() {
					serveOK(c)
					served.Add(1)
				}()
			}
		}()
	}
	w.Flush()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "count" {
			fmt.Println(served.Load())
		}
	}
}

// served counts the requests the backends answered (in the child).
var served atomic.Int64

func serveOK(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	c.Write(okResponse)
}

// startBackends starts the child process and returns its ports.
func startBackends(tb testing.TB, n, hanging int) []uint16 {
	ports, _ := startCountingBackends(tb, n, hanging)
	return ports
}

// startCountingBackends is startBackends that also returns a function that asks the child how many
// requests its backends answered.
func startCountingBackends(tb testing.TB, n, hanging int) (ports []uint16, served func() int64) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d", backendEnv, n, hanging))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for len(ports) < n && sc.Scan() {
		p, _ := strconv.Atoi(sc.Text())
		ports = append(ports, uint16(p))
	}
	if len(ports) != n {
		tb.Fatalf("backends: got %d ports, want %d", len(ports), n)
	}
	var mu sync.Mutex
	served = func() int64 {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(stdin, "count\n")
		if !sc.Scan() {
			tb.Fatal("backends: no count")
		}
		c, _ := strconv.ParseInt(sc.Text(), 10, 64)
		return c
	}
	return ports, served
}

// httpConfig spreads reals at the given loopback ports over nv virtuals.
func httpConfig(ports []uint16, nv int, interval, timeout time.Duration) *config.Config {
	var vsList []*config.Virtual
	for i := range nv {
		v := vs(fmt.Sprintf("10.9.9.%d:80", i+1))
		v.CheckInterval, v.NegotiateTimeout, v.CheckTimeout = interval, timeout, timeout
		vsList = append(vsList, v)
	}
	for i, p := range ports {
		v := vsList[i%nv]
		v.Reals = append(v.Reals, rs(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p).String(), masq, 1))
	}
	c := cfgOf(vsList...)
	c.CheckInterval = interval
	return c
}

func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// inTable counts the reals with a weight above 0 in the table.
func inTable(f *ipvsctl.Fake) int {
	n := 0
	for _, v := range f.Table() {
		for _, d := range v.Destinations {
			if d.Weight > 0 {
				n++
			}
		}
	}
	return n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func peakRSSMB() float64 { return statusMB("VmHWM:") }

// rssMB is the resident set size now.
func rssMB() float64 { return statusMB("VmRSS:") }

// statusMB is a field of /proc/self/status in MB.
func statusMB(field string) float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkStart200 is 200 reals over 4 virtuals, a quarter of them hanging, checkinterval 1,
// negotiatetimeout 2: the time until every healthy real is in the table, and the time to detect a real
// that starts hanging. Run with -benchtime=1x.
func BenchmarkStart200(b *testing.B) { benchmarkStart(b, 200, 4, 50) }

// BenchmarkStart1000 is the user-mode Linux scenario on the host: 1,000 reals over 10 virtuals, a
// quarter of them hanging, checkinterval 1, negotiatetimeout 2. Run with -benchtime=1x or more.
func BenchmarkStart1000(b *testing.B) { benchmarkStart(b, 1000, 10, 250) }

// benchmarkStart is n reals over nv virtuals, hanging of them hanging, checkinterval 1, negotiatetimeout 2:
// the time until every healthy real is in the table, and the time to detect a real that starts hanging.
func benchmarkStart(b *testing.B, n, nv, hanging int) {
	ports := startBackends(b, n-1, hanging)
	// One more healthy backend in this process, which the benchmark makes hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var hang atomic.Bool
	var held []net.Conn // hung connections stay referenced, so no finalizer closes them
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !hang.Load() {
				go serveOK(c)
			} else {
				held = append(held, c)
			}
		}
	}()
	victim := uint16(ln.Addr().(*net.TCPAddr).Port)
	ports = append([]uint16{victim}, ports...)
	healthy := n - hanging
	var worstStart, worstDetect time.Duration
	var steady float64 // cores, worst run
	for b.Loop() {
		hang.Store(false)
		fake := ipvsctl.NewFake()
		cfg := httpConfig(ports, nv, time.Second, 2*time.Second)
		s, err := New(cfg, Options{Client: fake, Log: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		t0 := time.Now()
		go func() { s.Run(ctx); close(done) }()
		for inTable(fake) < healthy {
			time.Sleep(5 * time.Millisecond)
		}
		worstStart = max(worstStart, time.Since(t0))
		c0 := cpuTime()
		time.Sleep(1500 * time.Millisecond)
		steady = max(steady, (cpuTime()-c0).Seconds()/1.5)
		hang.Store(true)
		t1 := time.Now()
		for inTable(fake) > healthy-1 {
			time.Sleep(5 * time.Millisecond)
		}
		worstDetect = max(worstDetect, time.Since(t1))
		cancel()
		<-done
	}
	b.ReportMetric(worstStart.Seconds(), "s-all-healthy")
	b.ReportMetric(worstDetect.Seconds(), "s-detect-hang")
	b.ReportMetric(steady, "cores-steady")
	b.ReportMetric(peakRSSMB(), "MB-peak-rss")
}

// Benchmark10kHTTP is 10,000 reals over HTTP at checkinterval 10 (1,000 checks/s), backends in another
// process: the lateness of checks, the CPU and memory of the supervisor, and the CPU of a bare
// connect+request+read client next to it. Run with -benchtime=1x.
func Benchmark10kHTTP(b *testing.B) {
	const n = 10000
	ports, served := startCountingBackends(b, n, 0)
	for b.Loop() {
		fake := ipvsctl.NewFake()
		cfg := httpConfig(ports, 4, 10*time.Second, 5*time.Second)
		var checks atomic.Int64
		s, err := New(cfg, Options{Client: fake, Log: quietLogger(), ResyncInterval: 30 * time.Second,
			NewChecker: countingCheckers(&checks)})
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		var late []time.Duration
		measuring := atomic.Bool{}
		s.lateness = func(d time.Duration) {
			if measuring.Load() {
				mu.Lock()
				late = append(late, d)
				mu.Unlock()
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		t0 := time.Now()
		go func() { s.Run(ctx); close(done) }()
		for inTable(fake) < n {
			time.Sleep(50 * time.Millisecond)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s-all-in-table")
		time.Sleep(12*time.Second - time.Since(t0)) // past the first round and the first full interval
		const window = 20 * time.Second
		c0, k0, r0 := cpuTime(), checks.Load(), served()
		measuring.Store(true)
		time.Sleep(window)
		measuring.Store(false)
		cpu, k, r := cpuTime()-c0, checks.Load()-k0, served()-r0
		b.ReportMetric(float64(k)/window.Seconds(), "checks/s")
		b.ReportMetric(float64(r)/window.Seconds(), "backend-req/s")
		b.ReportMetric(cpu.Seconds()/window.Seconds(), "cores")
		b.ReportMetric(float64(cpu.Microseconds())/float64(k), "µs-cpu/check")
		mu.Lock()
		slices.Sort(late)
		pct := func(p float64) float64 { return float64(late[int(p*float64(len(late)-1))].Microseconds()) / 1000 }
		b.ReportMetric(pct(0.5), "ms-late-p50")
		b.ReportMetric(pct(0.99), "ms-late-p99")
		b.ReportMetric(pct(1), "ms-late-max")
		mu.Unlock()
		b.ReportMetric(peakRSSMB(), "MB-peak-rss")
		b.ReportMetric(rssMB(), "MB-rss")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MB-heap")
		b.ReportMetric(float64(ms.StackInuse)/(1<<20), "MB-stacks")
		if f := os.Getenv("BENCH_HEAP_PROFILE"); f != "" { // the heap while the checks run
			if w, err := os.Create(f); err == nil {
				pprof.WriteHeapProfile(w)
				w.Close()
			}
		}
		cancel()
		<-done

		// The floor: a bare client doing a fresh TCP connection, the same request, and reading the reply.
		req := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
		const m = 5000
		c1 := cpuTime()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				buf := make([]byte, 512)
				for i := w; i < m; i += 4 {
					c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[i%n]))
					if err != nil {
						continue
					}
					c.Write(req)
					for {
						if _, err := c.Read(buf); err != nil {
							break
						}
					}
					c.Close()
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64((cpuTime()-c1).Microseconds())/m, "µs-cpu/bare-check")
	}
}

// reload10kConfig is the text of a config of 10,000 reals (literal IPs, numeric ports) over nv virtuals,
// as httpConfig lays them out; real 1234 of the last virtual has the given weight, every other weight 1.
func reload10kConfig(nv, weight int) []byte {
	const n = 10000
	var b strings.Builder
	b.WriteString("# BenchmarkReload10k\nlogfile=\"local0\"\ncheckinterval=10\nchecktimeout=5\nnegotiatetimeout=5\n")
	for v := range nv {
		fmt.Fprintf(&b, "\nvirtual=10.9.9.%d:80\n\tservice=http\n\trequest=\"/\"\n\treceive=\"ok\"\n\tscheduler=wrr\n", v+1)
		for i := v; i < n; i += nv {
			w := 1
			if v == nv-1 && i/nv == 1234 {
				w = weight
			}
			fmt.Fprintf(&b, "\treal=127.0.0.1:%d masq %d\n", 20000+i, w)
		}
	}
	return []byte(b.String())
}

// BenchmarkReload10k reloads a 10,000-real config file (4 virtuals of 2,500 reals, or 1 of 10,000) in
// which one real changed weight, with the 10,000 check loops running: the time from Reload (which reads,
// parses and resolves the file with config.Load) to the update reaching the table, and to Reload
// returning; the CPU of the whole process meanwhile; and the operations issued, which must be exactly one.
// ms-after-load is the part after config.Load returned (the supervisor's own), ms-load-mean config.Load
// alone on the same file. Run with -benchtime=20x or more.
func BenchmarkReload10k(b *testing.B) {
	for _, nv := range []int{4, 1} {
		b.Run(fmt.Sprintf("virtuals=%d", nv), func(b *testing.B) { benchmarkReload10k(b, nv) })
	}
}

func benchmarkReload10k(b *testing.B, nv int) {
	const n = 10000
	path := filepath.Join(b.TempDir(), "ldirectord.cf")
	if err := os.WriteFile(path, reload10kConfig(nv, 1), 0o644); err != nil {
		b.Fatal(err)
	}
	var loaded atomic.Int64 // when the last Load returned, in ns since the Unix epoch
	load := func() (*config.Config, error) {
		defer func() { loaded.Store(time.Now().UnixNano()) }()
		return config.Load(path)
	}
	cfg, err := load()
	if err != nil {
		b.Fatal(err)
	}
	if got := len(cfg.Virtuals) * len(cfg.Virtuals[0].Reals); got != n || len(cfg.Virtuals) != nv {
		b.Fatalf("config has %d reals, want %d", got, n)
	}
	// Every real is already serving in the kernel: adopted as up, so no check needs to run.
	fake := ipvsctl.NewFake()
	have := ipvsctl.Table{}
	for _, v := range cfg.Virtuals {
		vs := desired(v, false, func(*config.Real) Health { return Up }, nil)
		have[vs.ServiceID] = vs
	}
	fake.Load(have)
	var opAt atomic.Int64 // when the last change reached the table, in ns since the Unix epoch
	fake.SetHook(func(ipvsctl.Op) error { opAt.Store(time.Now().UnixNano()); return nil })
	chk := newChecks()
	s, err := New(cfg, Options{Client: fake, Log: quietLogger(), NewChecker: chk.newChecker, Load: load})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	for s.Snapshot().Phase == config.StatusStarting {
		time.Sleep(10 * time.Millisecond)
	}
	weight := 1
	var toTable, toReturn, afterLoad []time.Duration
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		weight++
		if err := os.WriteFile(path, reload10kConfig(nv, weight), 0o644); err != nil {
			b.Fatal(err)
		}
		fake.ResetOps()
		b.StartTimer()
		c0, t0 := cpuTime(), time.Now()
		if err := s.Reload(); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		cpu += cpuTime() - c0
		toReturn = append(toReturn, d)
		toTable = append(toTable, time.Unix(0, opAt.Load()).Sub(t0))
		afterLoad = append(afterLoad, time.Unix(0, opAt.Load()).Sub(time.Unix(0, loaded.Load())))
		if ops := fake.Ops(); len(ops) != 1 || ops[0].Kind != ipvsctl.OpUpdateDestination || ops[0].Destination.Weight != weight {
			b.Fatalf("reload issued %v, want one update to weight %d", ops, weight)
		}
	}
	b.StopTimer()
	cancel()
	<-done
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(ds []time.Duration, p float64) float64 {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ms(ds[int(p*float64(len(ds)-1)+0.5)])
	}
	var sum time.Duration
	for _, d := range toTable {
		sum += d
	}
	runs := len(toTable)
	b.ReportMetric(ms(sum)/float64(runs), "ms-table-mean")
	b.ReportMetric(pct(toTable, 0.5), "ms-table-p50")
	b.ReportMetric(pct(toTable, 0.99), "ms-table-p99")
	b.ReportMetric(pct(toTable, 1), "ms-table-worst")
	b.ReportMetric(pct(toReturn, 1), "ms-return-worst")
	b.ReportMetric(ms(cpu)/float64(runs), "ms-cpu/reload")
	b.ReportMetric(pct(afterLoad, 0.5), "ms-after-load-p50")
	b.ReportMetric(pct(afterLoad, 1), "ms-after-load-worst")
	var loadTime time.Duration
	for range 5 {
		t0 := time.Now()
		if _, err := load(); err != nil {
			b.Fatal(err)
		}
		loadTime += time.Since(t0)
	}
	b.ReportMetric(ms(loadTime)/5, "ms-load-mean")
}

// countingCheckers builds the production checkers (NewChecker), counting every check they run in n.
func countingCheckers(n *atomic.Int64) func(v *config.Virtual, r *config.Real) (checker.Checker, error) {
	return func(v *config.Virtual, r *config.Real) (checker.Checker, error) {
		c, err := NewChecker(v, r)
		return checker.Func(func(ctx context.Context, t *checker.Target) error {
			n.Add(1)
			return c.Check(ctx, t)
		}), err
	}
}
