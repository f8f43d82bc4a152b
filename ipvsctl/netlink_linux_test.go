package ipvsctl

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/moby/ipvs"
)

// stuckHandle never answers NewService until it is closed, like moby/ipvs waiting for a lost reply.
type stuckHandle struct {
	handle // nil: other methods are not called
	id     int
	closed chan struct{}
	once   sync.Once
	calls  *[]string
}

func (h *stuckHandle) NewService(s *ipvs.Service) error {
	*h.calls = append(*h.calls, "NewService on handle "+itoa(h.id))
	if h.id == 1 {
		<-h.closed
		return errors.New("Socket got closed on receive")
	}
	return nil
}

func (h *stuckHandle) Close() { h.once.Do(func() { close(h.closed) }) }

func TestNetlinkCallDeadlineReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls []string
		var handles []*stuckHandle
		open := func() (handle, error) {
			h := &stuckHandle{id: len(handles) + 1, closed: make(chan struct{}), calls: &calls}
			handles = append(handles, h)
			return h, nil
		}
		c, err := newNetlink(open, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s := svc(svcID(TCP, "10.0.0.1:80"), "wrr")
		start := time.Now()
		err = c.AddService(t.Context(), s)
		const want = "add service TCP 10.0.0.1:80: no reply from the kernel within 5s; netlink socket reopened"
		if err == nil || err.Error() != want {
			t.Fatalf("AddService error %v, want %q", err, want)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("gave up after %v, want 5s", d)
		}
		synctest.Wait() // the abandoned call ends once its handle is closed
		if len(handles) != 2 {
			t.Fatalf("%d handles opened, want 2", len(handles))
		}
		select {
		case <-handles[0].closed:
		default:
			t.Error("the stuck handle was not closed")
		}
		if err := c.AddService(t.Context(), s); err != nil {
			t.Fatalf("AddService on the new handle: %v", err)
		}
		if got := strings.Join(calls, ", "); got != "NewService on handle 1, NewService on handle 2" {
			t.Errorf("calls: %s", got)
		}
		// A shorter context deadline wins over the call timeout, and says so.
		handles[1].id = 1 // make the current handle stick too
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err = c.AddService(ctx, s)
		if err == nil || err.Error() != "add service TCP 10.0.0.1:80: no reply from the kernel within 1s; netlink socket reopened" {
			t.Errorf("with a 1s context: %v", err)
		}
		c.Close()
		synctest.Wait()
	})
}

// errnoHandle answers every change with one errno.
type errnoHandle struct {
	handle
	errno syscall.Errno
	got   []*ipvs.Service
}

func (h *errnoHandle) NewService(s *ipvs.Service) error    { h.got = append(h.got, s); return h.errno }
func (h *errnoHandle) UpdateService(s *ipvs.Service) error { return h.errno }
func (h *errnoHandle) DelService(s *ipvs.Service) error    { return h.errno }
func (h *errnoHandle) NewDestination(*ipvs.Service, *ipvs.Destination) error {
	return h.errno
}
func (h *errnoHandle) UpdateDestination(*ipvs.Service, *ipvs.Destination) error {
	return h.errno
}
func (h *errnoHandle) DelDestination(*ipvs.Service, *ipvs.Destination) error {
	return h.errno
}
func (h *errnoHandle) Close() {}

func TestNetlinkErrnoMapping(t *testing.T) {
	ctx := t.Context()
	id := svcID(TCP, "10.0.0.1:80")
	d := dst("10.0.1.1:80", Route, 1)
	for _, tc := range []struct {
		errno syscall.Errno
		op    func(c *Netlink) error
		want  string
		is    error
	}{
		{syscall.EEXIST, func(c *Netlink) error { return c.AddService(ctx, svc(id, "rr")) }, "add service TCP 10.0.0.1:80: already exists", ErrExist},
		{syscall.ESRCH, func(c *Netlink) error { return c.DeleteService(ctx, id) }, "delete service TCP 10.0.0.1:80: does not exist", ErrNotExist},
		{syscall.ENOENT, func(c *Netlink) error { return c.UpdateService(ctx, svc(id, "foo")) }, `update service TCP 10.0.0.1:80: scheduler not available: scheduler "foo" (the kernel has no module ip_vs_foo)`, ErrScheduler},
		{syscall.ENOENT, func(c *Netlink) error { return c.DeleteDestination(ctx, id, d.DestinationID) }, "delete destination 10.0.1.1:80 of TCP 10.0.0.1:80: does not exist", ErrNotExist},
		{syscall.ESRCH, func(c *Netlink) error { return c.AddDestination(ctx, id, d) }, "add destination 10.0.1.1:80 to TCP 10.0.0.1:80: does not exist", ErrNotExist},
		{syscall.EEXIST, func(c *Netlink) error { return c.AddDestination(ctx, id, d) }, "add destination 10.0.1.1:80 to TCP 10.0.0.1:80: already exists", ErrExist},
		{syscall.ERANGE, func(c *Netlink) error { return c.UpdateDestination(ctx, id, d) }, "update destination 10.0.1.1:80 of TCP 10.0.0.1:80: numerical result out of range", syscall.ERANGE},
	} {
		h := &errnoHandle{errno: tc.errno}
		c, _ := newNetlink(func() (handle, error) { return h, nil }, time.Second)
		err := tc.op(c)
		if err == nil || err.Error() != tc.want || !errors.Is(err, tc.is) {
			t.Errorf("%v: got %v, want %q (is %v)", tc.errno, err, tc.want, tc.is)
		}
	}
}

func TestNetlinkWireFormat(t *testing.T) {
	s := svc(svcID(TCP, "10.0.0.1:80"), "wrr")
	s.Flags, s.Timeout, s.Netmask = FlagPersistent, 300, 0xffffff00
	got := toIPVSService(s)
	// The kernel reads the attribute's bytes as a network-order mask: ff ff ff 00.
	var b [4]byte
	nativePut(b[:], got.Netmask)
	if b != [4]byte{255, 255, 255, 0} {
		t.Errorf("IPv4 netmask on the wire %v, want [255 255 255 0]", b)
	}
	if got.AddressFamily != syscall.AF_INET || got.Protocol != 6 || got.Port != 80 || got.Address.String() != "10.0.0.1" || len(got.Address) != 4 {
		t.Errorf("service %+v", got)
	}
	back, err := fromIPVSService(&ipvs.Service{AddressFamily: syscall.AF_INET, Protocol: 6, Address: got.Address, Port: 80,
		SchedName: "wrr", Flags: uint32(FlagPersistent) | svcFlagHashed, Timeout: 300, Netmask: got.Netmask})
	if err != nil || back != s {
		t.Errorf("read back %+v (%v), want %+v", back, err, s)
	}

	v6 := svc(svcID(UDP, "[2001:db8::1]:53"), "rr")
	v6.Netmask = 64
	got = toIPVSService(v6)
	if got.Netmask != 64 || got.AddressFamily != syscall.AF_INET6 || len(got.Address) != 16 {
		t.Errorf("IPv6 service %+v, want prefix length 64 as is", got)
	}
	none := toIPVSService(svc(svcID(TCP, "10.0.0.1:80"), "rr"))
	if none.Netmask != 0xffffffff {
		t.Errorf("no netmask sent as %#x, want the full mask", none.Netmask)
	}
	if m := toIPVSService(svc(fwmID(3, IPv6), "rr")); m.FWMark != 3 || m.AddressFamily != syscall.AF_INET6 || m.Address != nil || m.Netmask != 128 {
		t.Errorf("fwmark service %+v", m)
	}
	d := toIPVSDestination(Destination{DestinationID: DestinationID{Addr: netip.MustParseAddr("2001:db8::5"), Port: 80}, Forward: Tunnel, Weight: 0, Upper: 7, Lower: 2})
	if d.AddressFamily != syscall.AF_INET6 || d.ConnectionFlags != 2 || d.UpperThreshold != 7 || d.LowerThreshold != 2 {
		t.Errorf("destination %+v", d)
	}
}

func nativePut(b []byte, v uint32) { binaryNative.PutUint32(b, v) }

var binaryNative = binary.NativeEndian
