package checker

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// paths runs test twice: with the checkers as they are, and with every check they can run in a Loop run
// there (loopChecker), so that each case asserts the same result, to the word, from both.
func paths(t *testing.T, test func(t *testing.T, run func(Checker) Checker)) {
	t.Run("goroutine", func(t *testing.T) { test(t, func(c Checker) Checker { return c }) })
	t.Run("loop", func(t *testing.T) {
		l, err := NewLoop()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		test(t, func(c Checker) Checker { return loopChecker{l, c} })
	})
}

// loopChecker runs its checks in a Loop, as the daemon does: to ctx's deadline, cancelled when ctx is,
// and with the Checker itself when the loop does not take the check.
type loopChecker struct {
	l *Loop
	c Checker
}

func (lc loopChecker) Check(ctx context.Context, t *Target) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Hour)
	}
	ch := make(chan error, 1)
	r, ok := lc.l.Start(lc.c, t, deadline, func(err error, end time.Time) { ch <- err })
	if !ok {
		return lc.c.Check(ctx, t)
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			lc.l.Cancel(r)
		}
		return <-ch
	}
}

func TestLoopTakes(t *testing.T) {
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tg := &Target{Addr: mustAddr("127.0.0.1"), Port: 9}
	udp := *tg
	udp.UDP = true
	zoned := *tg
	zoned.Addr = mustAddr("fe80::1%lo")
	post := *tg
	post.HTTPMethod = "POST"
	badReceive := *tg
	badReceive.Receive = "(?{ code })"
	https := *tg
	https.Request = "/https://127.0.0.1/"
	deadline := time.Now().Add(time.Millisecond) // the ones taken time out (or are refused) at once
	for _, tc := range []struct {
		name string
		c    Checker
		t    *Target
		want bool
	}{
		{"connect", Connect, tg, true},
		{"http", HTTP, tg, true},
		{"http_proxy", HTTPProxy, &Target{Addr: tg.Addr, Port: 9, Request: "/http://www.example.org/"}, true},
		{"connect on udp", Connect, &udp, false},
		{"https", HTTPS, tg, false},
		{"http to an https URL", HTTP, &https, false},
		{"a zone", HTTP, &zoned, false},
		{"POST", HTTP, &post, false},
		{"a bad receive", HTTP, &badReceive, false},
		{"no port", Connect, &Target{Addr: tg.Addr}, false},
		{"smtp", SMTP, tg, false},
	} {
		done := make(chan struct{})
		_, ok := l.Start(tc.c, tc.t, deadline, func(error, time.Time) { close(done) })
		if ok != tc.want {
			t.Errorf("%s: taken %v, want %v", tc.name, ok, tc.want)
		}
		if ok {
			<-done
		}
	}
}

// fullBacklog returns a loopback TCP port whose listen queue is full: a connection to it is never
// established (the kernel drops the SYNs), so a connect times out without leaving loopback.
func fullBacklog(t *testing.T) *Target {
	t.Helper()
	lc := net.ListenConfig{Control: nil}
	l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// Never accepted: the queue (of the default backlog) fills, then SYNs are dropped.
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	tg := target(t, l.Addr())
	for range 8192 {
		c, err := net.DialTimeout("tcp4", l.Addr().String(), 50*time.Millisecond)
		if err != nil {
			if !strings.Contains(err.Error(), "timeout") {
				t.Fatal(err)
			}
			return tg
		}
		conns = append(conns, c)
	}
	t.Fatal("the listen queue never filled")
	return nil
}

func TestConnectTimesOutAtTheDeadlineOnLoopback(t *testing.T) {
	paths(t, testConnectTimesOutOnLoopback)
}

func testConnectTimesOutOnLoopback(t *testing.T, run func(Checker) Checker) {
	tg := fullBacklog(t)
	noLeak(t)
	for _, c := range []Checker{Connect, HTTP} {
		var err error
		d := elapsed(func() { err = run(c).Check(timeout(t, 200*time.Millisecond), tg) })
		want := "connect " + hostPort(tg.Addr, tg.Port) + ": timed out"
		if c == HTTP {
			want = "GET http://" + hostPort(tg.Addr, tg.Port) + "/: timed out"
		}
		wantErr(t, err, want)
		withinDeadline(t, d, 200*time.Millisecond)
	}
}

// TestLoopCancelWakes: a check canceled while the loop waits (its deadline far away, nothing else to do)
// ends at once, every time: the cancel must wake the loop.
func TestLoopCancelWakes(t *testing.T) {
	ln := listen(t, "tcp4")
	serve(t, ln, func(c net.Conn) { io.Copy(io.Discard, c) }) // held open, unanswered, until the check closes it
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tg := target(t, ln.Addr())
	for i := range 100 {
		ch := make(chan error, 1)
		r, ok := l.Start(HTTP, tg, time.Now().Add(time.Minute), func(err error, end time.Time) { ch <- err })
		if !ok {
			t.Fatal("the loop did not take the check")
		}
		time.Sleep(time.Duration(i%10) * time.Millisecond)
		l.Cancel(r)
		select {
		case err := <-ch:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("check %d: %v, want canceled", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("check %d: not ended 5 s after its cancel", i)
		}
	}
}
