// Command demo shows ldirectord at work without root or kernel IPVS: it starts three local HTTP backends,
// runs `ldirectord --dry-run -d` on a config that balances them, breaks and heals the backends, and prints
// the daemon's log lines as it reacts. It exits non-zero if the daemon does not react as expected, so it is
// also a test.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// backend is a local HTTP server whose health page can be switched between "ok" and an HTTP 500.
type backend struct {
	ln      net.Listener
	healthy atomic.Bool
}

func newBackend() (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{ln: ln}
	b.healthy.Store(true)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !b.healthy.Load() {
			http.Error(w, "maintenance", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	return b, nil
}

func (b *backend) addr() string { return b.ln.Addr().String() }

// logWatch collects the daemon's log lines, echoes them, and lets the demo wait for a given line.
type logWatch struct {
	mu    sync.Mutex
	lines []string
	seen  chan struct{}
}

func (w *logWatch) run(r io.Reader, out io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintf(out, "    | %s\n", line)
		w.mu.Lock()
		w.lines = append(w.lines, line)
		w.mu.Unlock()
		select {
		case w.seen <- struct{}{}:
		default:
		}
	}
}

// waitFor waits until every want line has been logged (each as a substring of some line since from).
func (w *logWatch) waitFor(from int, timeout time.Duration, want ...string) (int, error) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		n := len(w.lines)
		missing := []string{}
		for _, s := range want {
			found := false
			for _, l := range w.lines[from:] {
				if strings.Contains(l, s) {
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, s)
			}
		}
		w.mu.Unlock()
		if len(missing) == 0 {
			return n, nil
		}
		select {
		case <-w.seen:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			return n, fmt.Errorf("the daemon did not log, within %s: %q", timeout, missing)
		}
	}
}

func (w *logWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lines)
}

const configTemplate = `# Demo: three local web servers behind one virtual service, checked every second.
checkinterval=1
negotiatetimeout=1
quiescent=no

virtual=192.0.2.10:80
	real=%s masq
	real=%s masq
	real=%s masq
	fallback=%s masq
	service=http
	request="/health"
	receive="ok"
	scheduler=wrr
`

func main() {
	bin := flag.String("bin", "bin/ldirectord", "the ldirectord binary to run")
	flag.Parse()
	if err := run(*bin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
	fmt.Println("demo finished: every step behaved as expected")
}

// lockedWriter lets the log watcher and the step titles share one output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func run(bin string, output io.Writer) error {
	out := &lockedWriter{w: output}
	var bs [3]*backend
	for i := range bs {
		b, err := newBackend()
		if err != nil {
			return err
		}
		bs[i] = b
	}
	sorry, err := newBackend()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ldirectord-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "demo.cf")
	text := fmt.Sprintf(configTemplate, bs[0].addr(), bs[1].addr(), bs[2].addr(), sorry.addr())
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "== config %s:\n%s\n", cfg, text)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--dry-run", "-d", cfg, "start")
	cmd.Env = append(os.Environ(), "LDIRECTORD_PIDDIR="+dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w (run `make build` first)", bin, err)
	}
	w := &logWatch{seen: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() { w.run(stderr, out); close(done) }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	step := func(title string, act func(), want ...string) error {
		fmt.Fprintf(out, "\n== %s\n", title)
		from := w.count()
		if act != nil {
			act()
		}
		_, err := w.waitFor(from, 15*time.Second, want...)
		return err
	}
	a, b, c := bs[0].addr(), bs[1].addr(), bs[2].addr()
	if err := step("start: every backend passes its check and is added", nil,
		"Added virtual server: 192.0.2.10:80",
		"Added real server: "+a+" (192.0.2.10:80) (Weight set to 1)",
		"Added real server: "+b+" (192.0.2.10:80) (Weight set to 1)",
		"Added real server: "+c+" (192.0.2.10:80) (Weight set to 1)"); err != nil {
		return err
	}
	if err := step("backend 2 starts answering HTTP 500: it is removed", func() { bs[1].healthy.Store(false) },
		"Deleted real server: "+b+" (192.0.2.10:80)"); err != nil {
		return err
	}
	if err := step("backends 1 and 3 fail too: the fallback server takes over", func() {
		bs[0].healthy.Store(false)
		bs[2].healthy.Store(false)
	},
		"Deleted real server: "+a+" (192.0.2.10:80)",
		"Deleted real server: "+c+" (192.0.2.10:80)",
		"Added fallback server: "+sorry.addr()+" (192.0.2.10:80) (Weight set to 1)"); err != nil {
		return err
	}
	if err := step("all backends recover: they come back and the fallback goes", func() {
		for _, b := range bs {
			b.healthy.Store(true)
		}
	},
		"Added real server: "+a+" (192.0.2.10:80) (Weight set to 1)",
		"Added real server: "+b+" (192.0.2.10:80) (Weight set to 1)",
		"Added real server: "+c+" (192.0.2.10:80) (Weight set to 1)",
		"Deleted fallback server: "+sorry.addr()+" (192.0.2.10:80)"); err != nil {
		return err
	}
	if err := step("stop (SIGTERM): cleanstop removes the virtual service", func() {
		cmd.Process.Signal(syscall.SIGTERM)
	},
		"Purged virtual server (stop): 192.0.2.10:80",
		"Linux Director Daemon terminated on signal: TERM"); err != nil {
		return err
	}
	stopped = true
	<-done
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return err
		}
		return fmt.Errorf("ldirectord exited with %v", err)
	}
	return nil
}
