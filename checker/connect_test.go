package checker

import (
	"net"
	"testing"
	"time"
)

func TestConnect(t *testing.T) { paths(t, testConnect) }

func testConnect(t *testing.T, run func(Checker) Checker) {
	noLeak(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		l := listen(t, network)
		serve(t, l, func(c net.Conn) {})
		wantErr(t, run(Connect).Check(timeout(t, time.Second), target(t, l.Addr())), "")

		refused := closedPort(t, network)
		wantErr(t, run(Connect).Check(timeout(t, time.Second), refused), "connect "+hostPort(refused.Addr, refused.Port)+": connection refused")
	}
	wantErr(t, run(Connect).Check(timeout(t, time.Second), &Target{}), "no address to check")
	tg := closedPort(t, "tcp4")
	tg.Port = 0
	wantErr(t, run(Connect).Check(timeout(t, time.Second), tg), "127.0.0.1: no port to check (set checkport or the real's port)")
}

func TestConnectTimesOutAtTheDeadline(t *testing.T) {
	noLeak(t)
	ns := newNetns(t)
	var err error
	var d time.Duration
	ns.do(t, func() {
		// 198.51.100.2 is on the namespace's dummy interface: the SYN goes nowhere.
		d = elapsed(func() {
			err = Connect.Check(timeout(t, 200*time.Millisecond), &Target{Addr: mustAddr("198.51.100.2"), Port: 80})
		})
	})
	wantErr(t, err, "connect 198.51.100.2:80: timed out")
	withinDeadline(t, d, 200*time.Millisecond)
}

func TestConnectUDP(t *testing.T) {
	noLeak(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := target(t, pc.LocalAddr())
	tg.UDP = true
	// Silence until the deadline: nothing says the port is closed.
	wantErr(t, Connect.Check(timeout(t, 100*time.Millisecond), tg), "")
	// A closed port answers with ICMP port unreachable.
	pc.Close()
	wantErr(t, Connect.Check(timeout(t, time.Second), tg), "connect udp "+hostPort(tg.Addr, tg.Port)+": port unreachable")
}
