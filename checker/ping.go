package checker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Pinger is checktype=ping (and connect on a UDP virtual): ICMP echo over IPv4 and IPv6. All checks of a
// Pinger share one ICMP socket per address family, opened on first use; one goroutine per socket reads the
// replies and hands each to the check waiting for its sequence number.
//
// It prefers an unprivileged ICMP datagram socket (Linux allows it to the groups in the sysctl
// net.ipv4.ping_group_range; the kernel then filters the replies for us) and falls back to a raw socket,
// which needs root or CAP_NET_RAW. When neither can be opened, Check says so and why.
//
// Timing: Check makes up to t.CheckCount attempts (at least one) within ctx's deadline; each attempt waits
// for its reply for an equal share of the time left (remaining / attempts left), so the attempts are
// spread over the whole deadline, and the first reply, to any attempt, means healthy. ldirectord makes
// checkcount attempts of checktimeout each: to match it, give ctx a deadline of checkcount × checktimeout.
// Without a deadline a single attempt waits until ctx is cancelled.
type Pinger struct {
	// listen opens an ICMP socket; tests replace it to open sockets inside a network namespace.
	listen func(v6, raw bool) (net.PacketConn, error)
	id     uint16  // echo identifier on raw sockets
	token  [8]byte // payload prefix: tells our replies from other raw-socket pingers' with the same id
	mu     sync.Mutex
	fam    [2]*pingSocket
	closed bool
	wg     sync.WaitGroup
}

type pingSocket struct {
	conn net.PacketConn
	raw  bool
	v6   bool

	mu      sync.Mutex
	seq     uint16
	pending map[uint16]*pingWait
}

type pingWait struct {
	addr netip.Addr
	ch   chan struct{}
}

// pingReadBuffer is the socket receive buffer: room for a burst of about 2,000 replies when every target
// is checked at once.
const pingReadBuffer = 2 << 20

// NewPinger returns a Pinger. Its sockets are opened on first use; Close closes them.
func NewPinger() (*Pinger, error) {
	p := &Pinger{listen: listenICMP}
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("ping: %w", err)
	}
	p.id = binary.BigEndian.Uint16(b[:2])
	copy(p.token[:], b[2:])
	return p, nil
}

// Close closes the sockets and waits for their readers; checks still waiting fail.
func (p *Pinger) Close() error {
	p.mu.Lock()
	p.closed = true
	fams := p.fam
	p.mu.Unlock()
	for _, f := range fams {
		if f != nil {
			f.conn.Close()
		}
	}
	p.wg.Wait()
	return nil
}

// Check pings t.Addr; see Pinger for the timing.
func (p *Pinger) Check(ctx context.Context, t *Target) error {
	if !t.Addr.IsValid() {
		return errorf("ping: no address")
	}
	addr := t.Addr.Unmap()
	s, err := p.socket(addr.Is6())
	if err != nil {
		return err
	}
	n := max(1, t.CheckCount)
	w := &pingWait{addr: addr, ch: make(chan struct{}, 1)}
	var timer *time.Timer
	var sendErr error
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return failf(err, "ping %s", addr)
		}
		seq, err := s.register(w)
		if err != nil {
			return err
		}
		err = p.send(s, addr, seq)
		if err != nil {
			s.unregister(seq)
			sendErr = err
			// A send that fails at once (no route, filtered) still spends this attempt's share of time, so
			// a later attempt does not retry at once.
		}
		var expired <-chan time.Time
		if d, ok := ctx.Deadline(); ok {
			wait := time.Until(d) / time.Duration(n-i)
			if timer == nil {
				timer = time.NewTimer(wait)
				defer timer.Stop()
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		var got bool
		if err == nil {
			select {
			case <-w.ch:
				got = true
			case <-expired:
			case <-ctx.Done():
			}
			s.unregister(seq)
		} else {
			select {
			case <-expired:
			case <-ctx.Done():
			}
		}
		if got {
			return nil
		}
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return errorf("ping %s: pinger closed", addr)
		}
	}
	if sendErr != nil {
		return failf(sendErr, "ping %s: sending echo request", addr)
	}
	if n == 1 {
		return errorf("ping %s: no echo reply", addr)
	}
	return errorf("ping %s: no echo reply to %d requests", addr, n)
}

func (p *Pinger) send(s *pingSocket, addr netip.Addr, seq uint16) error {
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if s.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(p.id), Seq: int(seq), Data: p.token[:]}}
	b, err := m.Marshal(nil) // ICMPv6 checksums are the kernel's job
	if err != nil {
		return err
	}
	var dst net.Addr = &net.IPAddr{IP: addr.AsSlice()}
	if !s.raw {
		dst = &net.UDPAddr{IP: addr.AsSlice()}
	}
	_, err = s.conn.WriteTo(b, dst)
	return err
}

// register allocates a sequence number no other check of this socket is waiting on.
func (s *pingSocket) register(w *pingWait) (uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range 1 << 16 {
		s.seq++
		if _, busy := s.pending[s.seq]; !busy {
			s.pending[s.seq] = w
			return s.seq, nil
		}
	}
	return 0, errorf("ping: 65536 echo requests in flight")
}

func (s *pingSocket) unregister(seq uint16) {
	s.mu.Lock()
	delete(s.pending, seq)
	s.mu.Unlock()
}

// socket returns the family's shared socket, opening it and starting its reader on first use.
func (p *Pinger) socket(v6 bool) (*pingSocket, error) {
	i := 0
	if v6 {
		i = 1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errorf("ping: pinger closed")
	}
	if s := p.fam[i]; s != nil {
		return s, nil
	}
	s, err := p.open(v6)
	if err != nil {
		return nil, err
	}
	p.fam[i] = s
	p.wg.Add(1)
	go p.read(s)
	return s, nil
}

func (p *Pinger) open(v6 bool) (*pingSocket, error) {
	c, dgramErr := p.listen(v6, false)
	raw := false
	if dgramErr != nil {
		var rawErr error
		c, rawErr = p.listen(v6, true)
		if rawErr != nil {
			fam := "ICMP"
			if v6 {
				fam = "ICMPv6"
			}
			return nil, errorf("ping: cannot open an %s socket: a raw socket needs root or CAP_NET_RAW (%s), "+
				"and unprivileged ICMP sockets are not allowed to group %d (sysctl net.ipv4.ping_group_range = %s: %s)",
				fam, describe(rawErr), os.Getegid(), pingGroupRange(), describe(dgramErr))
		}
		raw = true
	}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, pingReadBuffer) != nil {
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, pingReadBuffer)
				}
				if raw && !v6 {
					// ICMP_FILTER (SOL_RAW): the types NOT to deliver. Keep only echo replies, so the reader
					// does not see every ICMP packet of the host.
					syscall.SetsockoptInt(int(fd), syscall.SOL_RAW, 1, ^(1 << 0))
				}
			})
		}
	}
	if raw && v6 {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		ipv6.NewPacketConn(c).SetICMPFilter(&f)
	}
	return &pingSocket{conn: c, raw: raw, v6: v6, pending: make(map[uint16]*pingWait)}, nil
}

// read delivers the socket's echo replies to the checks waiting for them, until the socket is closed.
func (p *Pinger) read(s *pingSocket) {
	defer p.wg.Done()
	proto := 1 // ICMP
	want := icmp.Type(ipv4.ICMPTypeEchoReply)
	if s.v6 {
		proto, want = 58, ipv6.ICMPTypeEchoReply
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != want {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || len(echo.Data) < len(p.token) || string(echo.Data[:len(p.token)]) != string(p.token[:]) {
			continue
		}
		// A datagram socket's id is the kernel's (its local port) and the kernel already matched it.
		if s.raw && echo.ID != int(p.id) {
			continue
		}
		src := addrOf(from)
		s.mu.Lock()
		if w := s.pending[uint16(echo.Seq)]; w != nil && w.addr == src {
			select {
			case w.ch <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
	}
}

func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// listenICMP opens an ICMP socket: raw (ip4:icmp, ip6:ipv6-icmp) or an unprivileged datagram socket.
func listenICMP(v6, raw bool) (net.PacketConn, error) {
	if raw {
		if v6 {
			return net.ListenPacket("ip6:ipv6-icmp", "::")
		}
		return net.ListenPacket("ip4:icmp", "0.0.0.0")
	}
	family, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{}
	if v6 {
		family, proto, sa = syscall.AF_INET6, syscall.IPPROTO_ICMPV6, &syscall.SockaddrInet6{}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close()
	return net.FilePacketConn(f)
}

func pingGroupRange() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b)), " ")
}
