package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/uml"
)

// The processes of the two-director test (ha_test.go) that run inside its kernels: this test binary,
// started with one of these variables, becomes that process before TestMain runs.
const (
	// haServeEnv: "<name>,<down dir>": a real server that answers HTTP on :80 and :8080 with "<name>\n";
	// while <down dir>/<name>-<port>.down exists, that port refuses connections.
	haServeEnv = "E2E_HA_SERVE"
	// haProbeEnv: "<url>,<duration>": the client (see probe).
	haProbeEnv = "E2E_HA_PROBE"
)

func init() {
	if v := os.Getenv(haServeEnv); v != "" {
		name, downDir, _ := strings.Cut(v, ",")
		for _, port := range []string{"80", "8080"} {
			go haServe(name, port, filepath.Join(downDir, name+"-"+port+".down"))
		}
		select {}
	}
	if v := os.Getenv(haProbeEnv); v != "" {
		url, d, _ := strings.Cut(v, ",")
		dur, err := time.ParseDuration(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		probe(os.Stdout, url, dur)
		os.Exit(0)
	}
}

// haServe serves one port, on every address (direct routing delivers packets addressed to the VIP).
func haServe(name, port, downFile string) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, name) })
	down := func() bool { _, err := os.Stat(downFile); return err == nil }
	for {
		for down() {
			time.Sleep(50 * time.Millisecond)
		}
		ln, err := net.Listen("tcp", ":"+port)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		for !down() {
			time.Sleep(50 * time.Millisecond)
		}
		srv.Close()
	}
}

// probe is the client. For dur it opens a new connection to host:port every 100 ms (each attempt in its
// own goroutine, so a lost SYN does not delay the next one), and keeps one long-lived HTTP/1.1 connection
// that sends a request every 200 ms (each to be answered within 15 s) and never reconnects. A new
// connection gets 900 ms, less than TCP's first SYN retransmission (1 s): one that is served had its
// first SYN answered, so a failover is not hidden by a retransmission that happens to win. It prints one
// line per event, times in milliseconds since the start:
//
//	new <ms> ok <body>         a new connection was served (ms: when its answer was read)
//	new <ms> fail <error>      (ms: when it was started)
//	long <ms> ok <body>        a request on the long-lived connection was answered
//	long <ms> fail <error>     the long-lived connection broke (the last long line)
func probe(w io.Writer, hostPort string, dur time.Duration) {
	start := time.Now()
	ms := func(t time.Time) int64 { return t.Sub(start).Milliseconds() }
	var mu sync.Mutex
	var lines []string
	emit := func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		longConn(ctx, hostPort, func(t time.Time, body string, err error) {
			if err != nil {
				emit("long %d fail %v", ms(t), err)
			} else {
				emit("long %d ok %s", ms(t), body)
			}
		})
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		at := time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := oneRequest(hostPort, 900*time.Millisecond)
			if err != nil {
				emit("new %d fail %v", ms(at), err)
			} else {
				emit("new %d ok %s", ms(time.Now()), body)
			}
		}()
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	wg.Wait()
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// oneRequest makes one HTTP request on a new connection, all of it within timeout.
func oneRequest(hostPort string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", hostPort, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	return roundTrip(c, bufio.NewReader(c), "close")
}

// longConn sends a request every 200 ms on one connection until ctx ends or the connection breaks.
func longConn(ctx context.Context, hostPort string, report func(time.Time, string, error)) {
	c, err := net.DialTimeout("tcp", hostPort, 2*time.Second)
	if err != nil {
		report(time.Now(), "", err)
		return
	}
	defer c.Close()
	// The host looks the connection up in the directors' tables by its client port.
	if dir := os.Getenv(uml.OutEnv); dir != "" {
		_, port, _ := net.SplitHostPort(c.LocalAddr().String())
		os.WriteFile(filepath.Join(dir, "long.port"), []byte(port), 0o644)
	}
	r := bufio.NewReader(c)
	for ctx.Err() == nil {
		at := time.Now()
		// Generous: after a failover of 3.4 s the request is retransmitted about 6 s after it was sent.
		c.SetDeadline(at.Add(15 * time.Second))
		body, err := roundTrip(c, r, "keep-alive")
		report(at, body, err)
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func roundTrip(c net.Conn, r *bufio.Reader, connection string) (string, error) {
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: vip\r\nConnection: %s\r\n\r\n", connection); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(b)), nil
}
