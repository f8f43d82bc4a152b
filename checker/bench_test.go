package checker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the out-of-process HTTP backend of the benchmarks: with LDGO_CHECKER_BACKEND=http or
// https the test binary serves on loopback, prints its address and exits when stdin closes. A backend in
// the benchmark's own process would bill its CPU to the checker.
func TestMain(m *testing.M) {
	if kind := os.Getenv("LDGO_CHECKER_BACKEND"); kind != "" {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>Test Page: ok</body></html>\n")
		})
		s := httptest.NewUnstartedServer(h)
		if kind == "https" {
			s.StartTLS()
		} else {
			s.Start()
		}
		fmt.Println(s.Listener.Addr())
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// backend starts the test binary as an HTTP(S) server in its own process.
func backend(b *testing.B, kind string) *Target {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LDGO_CHECKER_BACKEND="+kind)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	tg := targetFor(strings.TrimSpace(line))
	tg.Request, tg.Receive = "/index.html", "Test Page"
	return tg
}

func targetFor(addr string) *Target {
	a, _ := net.ResolveTCPAddr("tcp", addr)
	tg := &Target{Port: uint16(a.Port)}
	tg.Addr = mustAddr(a.IP.String())
	return tg
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCores reports the CPU the checker process used, as cores needed for 1000 checks per second.
func reportCores(b *testing.B, cpu time.Duration, checks int) {
	perCheck := cpu / time.Duration(checks)
	b.ReportMetric(float64(perCheck.Microseconds()), "cpu-µs/check")
	b.ReportMetric(float64(perCheck*1000)/float64(time.Second), "cores@1000/s")
}

func benchmarkHTTP(b *testing.B, kind string, c Checker) {
	tg := backend(b, kind)
	if err := checkWithin(c, 5*time.Second, tg); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8) // 16 checks in flight on 2 cores: many backends checked at once
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := checkWithin(c, 5*time.Second, tg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportCores(b, cpuTime()-start, b.N)
}

// BenchmarkHTTPCheck: one GET with a receive match per iteration against a backend in another process.
func BenchmarkHTTPCheck(b *testing.B) { benchmarkHTTP(b, "http", HTTP) }

// BenchmarkHTTPSCheck: the same over TLS (sessions resumed through the shared session cache).
func BenchmarkHTTPSCheck(b *testing.B) { benchmarkHTTP(b, "https", HTTPS) }

// BenchmarkHTTPCheckNetHTTP is the same check written with a plain net/http client (no keep-alive), for
// comparison with our hand-rolled exchange.
func BenchmarkHTTPCheckNetHTTP(b *testing.B) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	c := Func(func(ctx contextT, t *Target) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+hostPort(t.Addr, t.Port)+t.Request, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
		re, _ := CompileReceive(t.Receive)
		if !re.Match(body) {
			return errorf("mismatch")
		}
		return nil
	})
	benchmarkHTTP(b, "http", c)
}

// benchmarkPingRounds checks n loopback targets concurrently per iteration (one "second" of a daemon that
// pings n targets every second) and reports the CPU one round costs.
func benchmarkPingRounds(b *testing.B, n int, pingerFor func(i int) *Pinger) (failedPerRound int64) {
	var failed atomic.Int64
	targets := make([]*Target, n)
	for i := range targets {
		targets[i] = &Target{Addr: mustAddr(fmt.Sprintf("127.1.%d.%d", i/250, 1+i%250)), CheckCount: 1}
	}
	round := func() {
		var wg sync.WaitGroup
		for i, tg := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := checkWithin(pingerFor(i), 2*time.Second, tg); err != nil {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	round() // open the sockets
	failed.Store(0)
	start := cpuTime()
	b.ResetTimer()
	for range b.N {
		round()
	}
	b.StopTimer()
	cpu := (cpuTime() - start) / time.Duration(b.N)
	b.ReportMetric(float64(cpu)/float64(time.Second), "cores@1round/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/ping")
	b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/round")
	return failed.Load() / int64(b.N)
}

// BenchmarkPing1000Targets: 1000 targets through one shared Pinger (one socket per family).
func BenchmarkPing1000Targets(b *testing.B) {
	p, err := NewPinger()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if f := benchmarkPingRounds(b, 1000, func(int) *Pinger { return p }); f > 0 {
		b.Errorf("%d of 1000 loopback pings failed per round", f)
	}
}

// BenchmarkPing1000TargetsSocketEach: the same load with one Pinger, so one socket and one reader, per
// target. With raw sockets every socket receives every reply, so the cost grows with targets squared.
func BenchmarkPing1000TargetsSocketEach(b *testing.B) {
	ps := make([]*Pinger, 1000)
	for i := range ps {
		ps[i], _ = NewPinger()
		defer ps[i].Close()
	}
	benchmarkPingRounds(b, 1000, func(i int) *Pinger { return ps[i] })
}

// BenchmarkIdleTargetMemory reports the heap one configured, idle check target keeps: its Target, its
// combined-check state and its share of the cached receive pattern, after one check.
func BenchmarkIdleTargetMemory(b *testing.B) {
	tg := backend(b, "http")
	const n = 10000
	var keep []Checker
	var targets []*Target
	for range b.N {
		keep, targets = nil, nil
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		keep, targets = make([]Checker, 0, n), make([]*Target, 0, n)
		for i := range n {
			t := &Target{Addr: tg.Addr, Port: tg.Port, Service: "http", Request: "/index.html",
				Receive: "Test Page", HTTPMethod: "GET", VirtualHost: "www.example.org",
				VIP: "192.0.2.1", VPort: 80, RIP: tg.Addr.String(), RPort: tg.Port, CheckCount: 1}
			c := NewCombined(3, Connect, time.Second, HTTP, time.Second)
			if i < 100 { // a check per target would take long; the first 100 prove nothing is kept per check
				if err := checkWithin(c, 5*time.Second, t); err != nil {
					b.Fatal(err)
				}
			}
			targets = append(targets, t)
			keep = append(keep, c)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/target")
	}
	runtime.KeepAlive(keep)
	runtime.KeepAlive(targets)
}
