package checker

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

func newPinger(t *testing.T) *Pinger {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("ping tests need root (raw ICMP sockets, network namespaces); CI runs as root")
	}
	p, err := NewPinger()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPingLoopback(t *testing.T) {
	noLeak(t)
	p := newPinger(t)
	for _, a := range []string{"127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"} {
		wantErr(t, p.Check(timeout(t, time.Second), &Target{Addr: mustAddr(a), CheckCount: 1}), "")
	}
	if p.fam[0] == nil || p.fam[1] == nil {
		t.Fatal("sockets not open")
	}
}

func TestPingNoReply(t *testing.T) {
	noLeak(t)
	ns := newNetns(t)
	p := newPinger(t)
	for _, tc := range []struct {
		addr  string
		count int
		want  string
	}{
		{"198.51.100.2", 1, "ping 198.51.100.2: no echo reply"},
		{"198.51.100.2", 3, "ping 198.51.100.2: no echo reply to 3 requests"},
		{"2001:db8:1::2", 2, "ping 2001:db8:1::2: no echo reply to 2 requests"},
	} {
		var err error
		var d time.Duration
		ns.do(t, func() {
			d = elapsed(func() {
				err = p.Check(timeout(t, 300*time.Millisecond), &Target{Addr: mustAddr(tc.addr), CheckCount: tc.count})
			})
		})
		wantErr(t, err, tc.want)
		withinDeadline(t, d, 300*time.Millisecond)
	}
	// The namespace's own addresses answer through the same sockets.
	wantErr(t, p.Check(timeout(t, time.Second), &Target{Addr: mustAddr("198.51.100.1")}), "")
	wantErr(t, p.Check(timeout(t, time.Second), &Target{Addr: mustAddr("2001:db8:1::1")}), "")
	// No route at all (the sockets belong to the namespace, which has no default route): the send fails at
	// once.
	var err error
	err = p.Check(timeout(t, 100*time.Millisecond), &Target{Addr: mustAddr("203.0.113.9"), CheckCount: 2})
	wantErr(t, err, "ping 203.0.113.9: sending echo request: network is unreachable")
}

func TestPingUnprivilegedSocket(t *testing.T) {
	noLeak(t)
	ns := newNetns(t)
	ns.sysctl(t, "net.ipv4.ping_group_range=0 0")
	p := newPinger(t)
	ns.do(t, func() {
		wantErr(t, p.Check(timeout(t, time.Second), &Target{Addr: mustAddr("127.0.0.1")}), "")
		wantErr(t, p.Check(timeout(t, time.Second), &Target{Addr: mustAddr("::1")}), "")
	})
	if p.fam[0].raw || p.fam[1].raw {
		t.Errorf("raw sockets used although unprivileged ICMP sockets are allowed")
	}
	err := p.Check(timeout(t, 100*time.Millisecond), &Target{Addr: mustAddr("198.51.100.2")})
	wantErr(t, err, "ping 198.51.100.2: no echo reply")
}

func TestPingNoSocketSaysWhy(t *testing.T) {
	noLeak(t)
	p := newPinger(t)
	p.listen = func(v6, raw bool) (net.PacketConn, error) {
		if raw {
			return nil, &net.OpError{Op: "listen", Net: "ip4:icmp", Err: os.NewSyscallError("socket", syscall.EPERM)}
		}
		return nil, os.NewSyscallError("socket", syscall.EACCES)
	}
	err := p.Check(timeout(t, time.Second), &Target{Addr: mustAddr("127.0.0.1")})
	wantErr(t, err, fmt.Sprintf("ping: cannot open an ICMP socket: a raw socket needs root or CAP_NET_RAW (operation not permitted), "+
		"and unprivileged ICMP sockets are not allowed to group %d (sysctl net.ipv4.ping_group_range = %s: permission denied)",
		os.Getegid(), pingGroupRange()))
}

func TestPingSharesOneSocketPerFamily(t *testing.T) {
	noLeak(t)
	p := newPinger(t)
	var mu sync.Mutex
	opened := 0
	p.listen = func(v6, raw bool) (net.PacketConn, error) {
		c, err := listenICMP(v6, raw)
		if err == nil {
			mu.Lock()
			opened++
			mu.Unlock()
		}
		return c, err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := mustAddr(fmt.Sprintf("127.0.%d.%d", i/250, 1+i%250))
			if i%2 == 1 {
				a = mustAddr("::1")
			}
			errs <- p.Check(timeout(t, 2*time.Second), &Target{Addr: a})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if opened != 2 {
		t.Errorf("%d sockets opened for 500 checks, want 2 (one per family)", opened)
	}
}

func TestPingClose(t *testing.T) {
	noLeak(t)
	p := newPinger(t)
	wantErr(t, p.Check(timeout(t, time.Second), &Target{Addr: mustAddr("127.0.0.1")}), "")
	p.Close()
	wantErr(t, p.Check(timeout(t, time.Second), &Target{Addr: mustAddr("127.0.0.1")}), "ping: pinger closed")
}
