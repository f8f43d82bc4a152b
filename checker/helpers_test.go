package checker

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// noLeak fails the test when, after every later cleanup (servers closed), more goroutines run than when it
// was called. Call it first in a test.
func noLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// Goroutines of closed servers and of the runtime take a moment to exit; a checker goroutine that
		// outlives its check does not.
		deadline := time.Now().Add(2 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines before the test, %d after:\n%s", before, n, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// timeout returns a context with the given timeout.
func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// wantErr fails unless err's text is exactly want ("" = nil).
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	got := ""
	if err != nil {
		got = err.Error()
	}
	if got != want {
		t.Errorf("error\n got: %q\nwant: %q", got, want)
	}
}

// listen returns a TCP listener on loopback of the given family ("tcp4"/"tcp6"), closed at cleanup.
func listen(t *testing.T, network string) net.Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// serve accepts connections on l and runs handle for each in its own goroutine until the test ends; every
// connection is closed when handle returns or at cleanup.
func serve(t *testing.T, l net.Listener, handle func(c net.Conn)) {
	t.Helper()
	done := make(chan struct{})
	conns := make(chan net.Conn, 1024)
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
			go func() { handle(c); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
}

// target is a Target for l's address.
func target(t *testing.T, addr net.Addr) *Target {
	ap := netip.MustParseAddrPort(addr.String())
	return &Target{Addr: ap.Addr(), Port: ap.Port(), RIP: ap.Addr().String(), RPort: ap.Port()}
}

// closedPort returns a loopback TCP port nothing listens on.
func closedPort(t *testing.T, network string) *Target {
	l := listen(t, network)
	tg := target(t, l.Addr())
	l.Close()
	return tg
}

// scripted serves a line protocol: "S: x" lines are sent (CR LF added), "C: x" lines must arrive exactly
// (a "C: " line ending in "*" matches by prefix). Mismatches are reported on errs.
func scripted(t *testing.T, network string, script ...string) (net.Listener, chan string) {
	l := listen(t, network)
	errs := make(chan string, 16)
	serve(t, l, func(c net.Conn) {
		br := bufio.NewReader(c)
		for _, s := range script {
			switch {
			case strings.HasPrefix(s, "S: "):
				fmt.Fprintf(c, "%s\r\n", s[3:])
			case strings.HasPrefix(s, "C: "):
				line, err := br.ReadString('\n')
				line = strings.TrimRight(line, "\r\n")
				want := s[3:]
				ok := line == want || strings.HasSuffix(want, "*") && strings.HasPrefix(line, want[:len(want)-1])
				if err != nil || !ok {
					errs <- fmt.Sprintf("server expected %q, got %q (%v)", want, line, err)
					return
				}
			}
		}
	})
	return l, errs
}

func noServerErrors(t *testing.T, errs chan string) {
	t.Helper()
	for {
		select {
		case e := <-errs:
			t.Error(e)
		default:
			return
		}
	}
}

// netns is a network namespace for tests: loopback up, and a veth interface with 198.51.100.1/24 and
// 2001:db8:1::1/64 whose other addresses never answer (packets to them go nowhere).
type netns struct {
	name string
	fd   int
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, ICMP sockets); CI runs as root")
	}
	name := fmt.Sprintf("ldgo-checker-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run("-n", name, "link", "set", "lo", "up")
	// d0's peer d1 has no address: frames for the .2 addresses (permanent neighbour entries, so no ARP or
	// ND delay) reach d1 and are dropped there. (No dummy interfaces: the module is not always there.)
	run("-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	run("-n", name, "addr", "add", "198.51.100.1/24", "dev", "d0")
	run("-n", name, "addr", "add", "2001:db8:1::1/64", "dev", "d0", "nodad")
	run("-n", name, "link", "set", "d1", "up")
	run("-n", name, "link", "set", "d0", "up")
	run("-n", name, "neigh", "add", "198.51.100.2", "lladdr", "02:00:00:00:00:02", "dev", "d0", "nud", "permanent")
	run("-n", name, "neigh", "add", "2001:db8:1::2", "lladdr", "02:00:00:00:00:02", "dev", "d0", "nud", "permanent")
	fd, err := syscall.Open("/run/netns/"+name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return &netns{name: name, fd: fd}
}

// sysctl sets a sysctl inside the namespace.
func (n *netns) sysctl(t *testing.T, kv string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", n.name, "sysctl", "-w", kv).CombinedOutput(); err != nil {
		t.Fatalf("sysctl %s: %v\n%s", kv, err, out)
	}
}

// do runs f on an OS thread that is inside the namespace: sockets f opens belong to it (and keep belonging
// to it after f returns).
func (n *netns) do(t *testing.T, f func()) {
	t.Helper()
	self, err := syscall.Open("/proc/thread-self/ns/net", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(self)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := setns(n.fd); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		f()
		if err := setns(self); err != nil {
			// Leave the thread locked: it is destroyed when this goroutine ends.
			done <- err
			return
		}
		runtime.UnlockOSThread()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func setns(fd int) error {
	return os.NewSyscallError("setns", unix.Setns(fd, unix.CLONE_NEWNET))
}

// elapsed runs f and returns how long it took.
func elapsed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// withinDeadline fails unless d is at least want and ends before a second want could have passed: a check
// that ends at its deadline passes however loaded the machine is (overshoots of 130 ms were seen with the
// whole suite running on 2 cores), one that waits a timeout twice (per attempt, per step) does not.
func withinDeadline(t *testing.T, d, want time.Duration) {
	t.Helper()
	if d < want-time.Millisecond || d > want+want*3/4 {
		t.Errorf("check took %v, want %v (+%v at most)", d, want, want*3/4)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

type contextT = context.Context

// checkWithin runs one check with a timeout (benchmarks have no per-check testing.T to clean up after).
func checkWithin(c Checker, d time.Duration, t *Target) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Check(ctx, t)
}
