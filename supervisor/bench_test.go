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
// the ports, and serves until stdin closes.
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
				go serveOK(c)
			}
		}()
	}
	w.Flush()
	io.Copy(io.Discard, os.Stdin)
}

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
	var ports []uint16
	for len(ports) < n && sc.Scan() {
		p, _ := strconv.Atoi(sc.Text())
		ports = append(ports, uint16(p))
	}
	if len(ports) != n {
		tb.Fatalf("backends: got %d ports, want %d", len(ports), n)
	}
	return ports
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

func peakRSSMB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkStart200 is 200 reals over 4 virtuals, a quarter of them hanging, checkinterval 1,
// negotiatetimeout 2: the time until every healthy real is in the table, and the time to detect a real
// that starts hanging. Run with -benchtime=1x.
func BenchmarkStart200(b *testing.B) {
	ports := startBackends(b, 199, 50)
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
	healthy := 150
	var worstStart, worstDetect time.Duration
	for b.Loop() {
		hang.Store(false)
		fake := ipvsctl.NewFake()
		cfg := httpConfig(ports, 4, time.Second, 2*time.Second)
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
		time.Sleep(1500 * time.Millisecond)
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
}

// Benchmark10kHTTP is 10,000 reals over HTTP at checkinterval 10 (1,000 checks/s), backends in another
// process: the lateness of checks, the CPU and memory of the supervisor, and the CPU of a bare
// connect+request+read client next to it. Run with -benchtime=1x.
func Benchmark10kHTTP(b *testing.B) {
	const n = 10000
	ports := startBackends(b, n, 0)
	for b.Loop() {
		fake := ipvsctl.NewFake()
		cfg := httpConfig(ports, 4, 10*time.Second, 5*time.Second)
		var checks atomic.Int64
		s, err := New(cfg, Options{Client: fake, Log: quietLogger(), ResyncInterval: 30 * time.Second,
			NewChecker: func(v *config.Virtual, r *config.Real) (checker.Checker, error) {
				c, err := NewChecker(v, r)
				return checker.Func(func(ctx context.Context, t *checker.Target) error {
					checks.Add(1)
					return c.Check(ctx, t)
				}), err
			}})
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
		c0, k0 := cpuTime(), checks.Load()
		measuring.Store(true)
		time.Sleep(window)
		measuring.Store(false)
		cpu, k := cpuTime()-c0, checks.Load()-k0
		b.ReportMetric(float64(k)/window.Seconds(), "checks/s")
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

// BenchmarkReload10k reloads a 10,000-real config in which one real changed weight: the time from Reload
// to the kernel update (parsing excluded: Load returns a config built in advance), and the operations
// issued, which must be exactly one.
func BenchmarkReload10k(b *testing.B) {
	const n = 10000
	ports := make([]uint16, n)
	for i := range ports {
		ports[i] = uint16(20000 + i)
	}
	mk := func() *config.Config { return httpConfig(ports, 4, 10*time.Second, 5*time.Second) }
	// Every real is already serving in the kernel: adopted as up, so no check needs to run.
	fake := ipvsctl.NewFake()
	have := ipvsctl.Table{}
	for _, v := range mk().Virtuals {
		vs := desired(v, false, func(*config.Real) Health { return Up }, nil)
		have[vs.ServiceID] = vs
	}
	fake.Load(have)
	chk := newChecks()
	var next *config.Config
	s, err := New(mk(), Options{Client: fake, Log: quietLogger(), NewChecker: chk.newChecker,
		Load: func() (*config.Config, error) { return next, nil }})
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
	var worst, total time.Duration
	var runs int
	for b.Loop() {
		weight++
		next = mk()
		next.Virtuals[2].Reals[1234].Weight = weight
		fake.ResetOps()
		t0 := time.Now()
		if err := s.Reload(); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		worst, total, runs = max(worst, d), total+d, runs+1
		if ops := fake.Ops(); len(ops) != 1 || ops[0].Kind != ipvsctl.OpUpdateDestination || ops[0].Destination.Weight != weight {
			b.Fatalf("reload issued %v, want one update to weight %d", ops, weight)
		}
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "ms-worst")
	b.ReportMetric(float64(total.Microseconds())/1000/float64(runs), "ms-mean")
	cancel()
	<-done
}
