package supervisor

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
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
