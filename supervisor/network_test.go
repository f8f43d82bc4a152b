package supervisor

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// The real check loops against real loopback HTTP servers, with the production checkers: a healthy
// server is added within the first round, a failing one is not, and a hanging one (accepting, never
// answering) delays neither and is reported as down after negotiatetimeout.
func TestLoopbackHTTP(t *testing.T) {
	okSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("alive")) }))
	defer okSrv.Close()
	badSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	defer badSrv.Close()
	hangLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hangLn.Close()
	var held []net.Conn
	go func() {
		for {
			c, err := hangLn.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	addr := func(u string) string { return strings.TrimPrefix(u, "http://") }
	v := vs("10.9.9.9:80",
		rs(addr(okSrv.URL), masq, 1), rs(addr(badSrv.URL), masq, 1), rs(hangLn.Addr().String(), masq, 1))
	v.Receive = "alive"
	for _, r := range v.Reals {
		r.Receive = "alive"
	}
	v.NegotiateTimeout = 2 * time.Second
	h := newHarness(t, cfgOf(v), nil, func(o *Options) { o.NewChecker = NewChecker })
	start := time.Now()
	h.run()
	defer h.stop()
	okID := netip.MustParseAddrPort(addr(okSrv.URL))
	want := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest(okID.String(), ipvsctl.Masq, 1)}})
	eventually(t, "the healthy real in the table", func() bool { return h.fake.Table().String() == want.String() })
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("healthy real added after %v, want within the first round (1s)", d)
	}
	eventually(t, "every real decided", func() bool {
		s := h.s.Snapshot()
		return s.Virtuals[0].Reals[1].Health == Down && s.Virtuals[0].Reals[2].Health == Down
	})
	s := h.s.Snapshot()
	if got := s.Virtuals[0].Reals[1].LastError; !strings.Contains(got, "500") {
		t.Errorf("failing real: last error %q, want the 500 status", got)
	}
	if d := time.Since(start); d > 3500*time.Millisecond {
		t.Errorf("hanging real decided after %v, want about 1s + 2s", d)
	}
	h.expectTable(want)
	_ = config.StatusAll
}

// A check that runs in the engine's check loop ends when its real leaves the config: a reload closes the
// connection of a hanging check at once, not at its negotiatetimeout, and gives no verdict on the removed
// real; stop does the same for the checks still running.
func TestLoopCheckCanceledByReload(t *testing.T) {
	okSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("alive")) }))
	defer okSrv.Close()
	hang := func() (net.Listener, chan struct{}, chan time.Time) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		accepted, closed := make(chan struct{}, 16), make(chan time.Time, 16)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- struct{}{}
				go func() { // holds the request unanswered; reports when the director hangs up
					io.Copy(io.Discard, c)
					closed <- time.Now()
					c.Close()
				}()
			}
		}()
		return ln, accepted, closed
	}
	gone, goneAccepted, goneClosed := hang()
	defer gone.Close()
	kept, keptAccepted, keptClosed := hang()
	defer kept.Close()
	okAddr := strings.TrimPrefix(okSrv.URL, "http://")
	mk := func(reals ...string) *config.Config {
		v := aliveVirtual(reals...)
		v.NegotiateTimeout = 30 * time.Second
		return cfgOf(v)
	}
	var next *config.Config
	h := newHarness(t, mk(okAddr, gone.Addr().String(), kept.Addr().String()), nil, func(o *Options) {
		o.NewChecker = NewChecker
		o.Load = func() (*config.Config, error) { return next, nil }
	})
	h.run()
	want := table(map[string][]ipvsctl.Destination{"10.9.9.9:80": {dest(okAddr, ipvsctl.Masq, 1)}})
	eventually(t, "the healthy real in the table", func() bool { return h.fake.Table().String() == want.String() })
	for _, accepted := range []chan struct{}{goneAccepted, keptAccepted} {
		select {
		case <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatal("a hanging real was not checked within 5 s")
		}
	}
	h.s.eng.mu.Lock()
	inLoop := h.s.eng.loop != nil
	h.s.eng.mu.Unlock()
	if !inLoop {
		t.Fatal("the checks did not run in the engine's check loop")
	}
	h.logs()

	next = mk(okAddr, kept.Addr().String())
	reload := time.Now()
	if err := h.s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	select {
	case at := <-goneClosed:
		if d := at.Sub(reload); d > 2*time.Second {
			t.Errorf("the removed real's check hung up %v after the reload, want at once", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the removed real's check still holds its connection 10 s after the reload")
	}
	select {
	case <-keptClosed:
		t.Error("the kept real's check was ended by the reload")
	case <-time.After(200 * time.Millisecond):
	}
	h.expectTable(want)
	stop := time.Now()
	h.stop()
	if d := time.Since(stop); d > 2*time.Second {
		t.Errorf("stop took %v with a check hanging in the loop", d)
	}
	select {
	case <-keptClosed:
	case <-time.After(5 * time.Second):
		t.Error("the kept real's check still holds its connection 5 s after stop")
	}
	for _, l := range h.logs() {
		if strings.Contains(l, gone.Addr().String()) {
			t.Errorf("log line about the removed real: %q", l)
		}
	}
}

// Timeouts of up reals that come together are the director's trouble more often than each real's: a stall
// shared by 40 loopback servers (every request that arrives during it waits until it ends, longer than
// negotiatetimeout) times several checks out within a few milliseconds of each other, and each of those
// is confirmed by a second check before it counts: no real leaves the table. A real that stops answering
// alone is removed at its first timeout, with no second check.
func TestTimeoutsTogetherAreConfirmed(t *testing.T) {
	var stallUntil atomic.Int64 // unix nanoseconds
	stall := func(w http.ResponseWriter, r *http.Request) {
		if d := time.Until(time.Unix(0, stallUntil.Load())); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Write([]byte("alive"))
	}
	var reals []string
	for range 40 {
		srv := httptest.NewServer(http.HandlerFunc(stall))
		defer srv.Close()
		reals = append(reals, strings.TrimPrefix(srv.URL, "http://"))
	}
	lone := newLoneServer(t)
	v := aliveVirtual(append(reals, lone.addr)...)
	obs := &causeCounter{cause: "timed out together with other real servers"}
	h := newHarness(t, cfgOf(v), nil, func(o *Options) { o.NewChecker, o.Observer = NewChecker, obs })
	h.run()
	defer h.stop()
	eventually(t, "every real in the table", func() bool { return inTable(h.fake) == len(reals)+1 })
	h.fake.ResetOps()

	// The shared stall: 1.3 s, so that the checks that arrive in its first 0.3 s time out (after 1 s),
	// within 0.3 s of each other, and their confirmations find the servers answering again.
	stallUntil.Store(time.Now().Add(1300 * time.Millisecond).UnixNano())
	time.Sleep(3 * time.Second)
	for _, op := range h.fake.Ops() {
		t.Errorf("kernel operation after a stall shared by every real: %s", op)
	}
	for _, r := range h.s.Snapshot().Virtuals[0].Reals {
		if r.Health != Up {
			t.Errorf("real %s is %v after the shared stall", r.Real, r.Health)
		}
	}
	for _, l := range h.logs() {
		if strings.Contains(l, "Deleted real server") {
			t.Errorf("log line after a stall shared by every real: %q", l)
		}
	}
	if confirmed := obs.n.Load(); confirmed < 2 {
		t.Errorf("%d timeouts confirmed as coming together, want at least 2 (the stall timed several checks out)", confirmed)
	}

	// The lone failure.
	lone.hang.Store(true)
	eventually(t, "the real that stopped answering alone removed", func() bool { return inTable(h.fake) == len(reals) })
	if n := lone.hung.Load(); n != 1 {
		t.Errorf("the real that stopped answering alone got %d checks before it was removed, want 1 (no confirmation)", n)
	}
	h.expectLogs("Deleted real server: " + lone.addr + " (10.9.9.9:80)")
}

// loneServer is a loopback HTTP server that answers "alive" until hang is set, and then counts the
// requests in hung and never answers them.
type loneServer struct {
	addr string
	hang atomic.Bool
	hung atomic.Int32
}

func newLoneServer(t *testing.T) *loneServer {
	l := &loneServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.hang.Load() {
			l.hung.Add(1)
			<-r.Context().Done()
			return
		}
		w.Write([]byte("alive"))
	}))
	t.Cleanup(srv.Close)
	l.addr = strings.TrimPrefix(srv.URL, "http://")
	return l
}

// aliveVirtual is 10.9.9.9:80 with the given reals, checked by http for "alive" within 1 s.
func aliveVirtual(addrs ...string) *config.Virtual {
	v := vs("10.9.9.9:80")
	for _, a := range addrs {
		r := rs(a, masq, 1)
		r.Receive = "alive"
		v.Reals = append(v.Reals, r)
	}
	v.Receive = "alive"
	v.NegotiateTimeout = time.Second
	return v
}

// causeCounter is an Observer that counts the checks that failed with a local error of the given cause.
type causeCounter struct {
	cause string
	n     atomic.Int32
}

func (c *causeCounter) Checked(check string, d time.Duration, err error) {
	if cause, ok := LocalCause(err); ok && cause == c.cause {
		c.n.Add(1)
	}
}

func (c *causeCounter) Transition(virtual, protocol, real string, up bool) {}
func (c *causeCounter) KernelOp(kind ipvsctl.OpKind, err error)            {}
func (c *causeCounter) Reloaded(err error)                                 {}

// TestLoopTimeoutConfirmedUnderPressure: while checks wait for their slots (the engine is pressed), a
// timeout of a check that ran in the loop is confirmed by a second check before it counts, even while the
// other reals answer fast; without pressure, the first timeout counts (TestTimeoutsTogetherAreConfirmed).
func TestLoopTimeoutConfirmedUnderPressure(t *testing.T) {
	testLoopTimeoutConfirmed(t, 0, func(h *harness) {
		h.s.eng.mu.Lock()
		h.s.eng.pressedAt = time.Now().Add(time.Hour) // checks wait for their slots all along
		h.s.eng.mu.Unlock()
	})
}

// TestLoopTimeoutConfirmedWhileAnswersSlow: the same while the other reals answer slowly, in more than a
// quarter of the timeout, though no check waits or starts late.
func TestLoopTimeoutConfirmedWhileAnswersSlow(t *testing.T) {
	testLoopTimeoutConfirmed(t, 300*time.Millisecond, func(*harness) {})
}

// testLoopTimeoutConfirmed: of 5 reals that answer in delay and one that stops answering once press has
// run, the one is removed after two checks.
func testLoopTimeoutConfirmed(t *testing.T, delay time.Duration, press func(*harness)) {
	var reals []string
	for range 5 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			w.Write([]byte("alive"))
		}))
		defer srv.Close()
		reals = append(reals, strings.TrimPrefix(srv.URL, "http://"))
	}
	lone := newLoneServer(t)
	v := aliveVirtual(append(reals, lone.addr)...)
	h := newHarness(t, cfgOf(v), nil, func(o *Options) { o.NewChecker = NewChecker })
	h.run()
	defer h.stop()
	eventually(t, "every real in the table", func() bool { return inTable(h.fake) == len(reals)+1 })
	h.logs()
	press(h)

	lone.hang.Store(true)
	eventually(t, "the real that stopped answering removed", func() bool { return inTable(h.fake) == len(reals) })
	if n := lone.hung.Load(); n != 2 {
		t.Errorf("the hanging real got %d checks before it was removed, want 2 (the timeout and its confirmation)", n)
	}
	h.expectLogs("Deleted real server: " + lone.addr + " (10.9.9.9:80)")
}
