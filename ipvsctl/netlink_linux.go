package ipvsctl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/ipvs"
)

// DefaultCallTimeout bounds one kernel call when the caller's context allows longer.
const DefaultCallTimeout = 10 * time.Second

// NetlinkOptions configure NewNetlink. The zero value is the current network namespace and
// DefaultCallTimeout.
type NetlinkOptions struct {
	// Namespace is the path of a network namespace (e.g. /run/netns/lb); empty means the current one.
	Namespace string
	// CallTimeout bounds each kernel call; default DefaultCallTimeout.
	CallTimeout time.Duration
}

// Netlink is the Client for the kernel's IPVS table, over generic netlink (github.com/moby/ipvs).
//
// moby/ipvs has traps this type handles: its handle is not safe for concurrent use, so every call is
// serialized; a lost reply makes it loop forever, so every call has a deadline, after which the handle is
// closed, a new one opened and an error returned; it caches the netlink family on first use, so IPVS is
// checked to be available before the first handle is opened (with a clear ErrNotAvailable instead of a
// bare ENOENT forever after); and it sends the persistence netmask as a native-endian u32, so an IPv4
// mask is converted from and to the network order the kernel expects.
//
// Kernel errors are wrapped with the operation, e.g. "add service TCP 10.0.0.1:80: already exists", and
// match ErrExist, ErrNotExist or ErrScheduler where they mean that, else the syscall.Errno.
//
// Limits of moby/ipvs v1.1.0: counters are the kernel's 32-bit ones for Conns and packets, PersistConns
// is not reported (always 0), and a destination must have its service's address family.
type Netlink struct {
	mu      sync.Mutex
	h       handle
	open    func() (handle, error)
	timeout time.Duration
	closed  bool
}

var _ Client = (*Netlink)(nil)

// handle is the part of *ipvs.Handle this package uses; tests replace it.
type handle interface {
	GetServices() ([]*ipvs.Service, error)
	GetDestinations(*ipvs.Service) ([]*ipvs.Destination, error)
	NewService(*ipvs.Service) error
	UpdateService(*ipvs.Service) error
	DelService(*ipvs.Service) error
	NewDestination(*ipvs.Service, *ipvs.Destination) error
	UpdateDestination(*ipvs.Service, *ipvs.Destination) error
	DelDestination(*ipvs.Service, *ipvs.Destination) error
	Close()
}

// NewNetlink opens a Client for the kernel's IPVS table. It fails with ErrNotAvailable when the kernel
// has no IPVS and `modprobe ip_vs` cannot load it.
func NewNetlink(ctx context.Context, o NetlinkOptions) (*Netlink, error) {
	if err := checkAvailable(ctx); err != nil {
		return nil, err
	}
	open := func() (handle, error) {
		h, err := ipvs.New(o.Namespace)
		if err != nil {
			return nil, fmt.Errorf("open IPVS netlink socket: %w", err)
		}
		return h, nil
	}
	return newNetlink(open, o.CallTimeout)
}

func newNetlink(open func() (handle, error), timeout time.Duration) (*Netlink, error) {
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	h, err := open()
	if err != nil {
		return nil, err
	}
	return &Netlink{h: h, open: open, timeout: timeout}, nil
}

// ipvsPaths exist when IPVS is in the kernel: the module's sysfs directory (also for a built-in ip_vs,
// which has parameters) or its proc file in this network namespace.
var ipvsPaths = []string{"/sys/module/ip_vs", "/proc/net/ip_vs"}

func ipvsLoaded() bool {
	for _, p := range ipvsPaths {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// checkAvailable makes sure IPVS is in the kernel, loading ip_vs if needed (as ipvsadm does), before
// moby/ipvs looks up and caches its netlink family.
func checkAvailable(ctx context.Context) error {
	if ipvsLoaded() {
		return nil
	}
	if _, err := os.Stat("/proc/self"); err != nil {
		return nil // no /proc or /sys to tell: let the kernel answer
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "modprobe", "ip_vs").CombinedOutput()
	if ipvsLoaded() {
		return nil
	}
	detail := strings.TrimSpace(string(out))
	if detail == "" && err != nil {
		detail = err.Error()
	}
	if detail != "" {
		return fmt.Errorf("%w (modprobe ip_vs: %s)", ErrNotAvailable, detail)
	}
	return ErrNotAvailable
}

// call runs f on the handle, alone and within the deadline. On expiry the handle is closed (which ends
// moby/ipvs's receive loop within its 3 s socket timeout) and replaced.
func (c *Netlink) call(ctx context.Context, what string, f func(h handle) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if c.h == nil {
		h, err := c.open()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		c.h = h
	}
	timeout := c.timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	h := c.h
	done := make(chan error, 1)
	go func() { done <- f(h) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var why error
	select {
	case err := <-done:
		return err
	case <-timer.C:
		why = fmt.Errorf("no reply from the kernel within %v", timeout)
	case <-ctx.Done():
		why = ctx.Err()
	}
	// Open the new socket before closing the old one, so the call still running on the old one cannot
	// find the new one under the old descriptor number.
	nh, err := c.open()
	h.Close()
	c.h = nil
	if err != nil {
		return fmt.Errorf("%s: %w (and reopening failed: %v)", what, why, err)
	}
	c.h = nh
	return fmt.Errorf("%s: %w; netlink socket reopened", what, why)
}

// Close implements Client.
func (c *Netlink) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.h != nil {
		c.h.Close()
		c.h = nil
	}
	return nil
}

// Services implements Client.
func (c *Netlink) Services(ctx context.Context) ([]Service, error) {
	var out []Service
	err := c.call(ctx, "list services", func(h handle) error {
		svcs, err := h.GetServices()
		if err != nil {
			return fmt.Errorf("list services: %w", err)
		}
		out = make([]Service, 0, len(svcs))
		for _, s := range svcs {
			svc, err := fromIPVSService(s)
			if err != nil {
				return fmt.Errorf("list services: %w", err)
			}
			out = append(out, svc)
		}
		return nil
	})
	return out, err
}

// Destinations implements Client.
func (c *Netlink) Destinations(ctx context.Context, id ServiceID) ([]Destination, error) {
	what := "list destinations of " + id.String()
	if err := checkServiceID(OpUpdateService, id); err != nil {
		return nil, fmt.Errorf("%s: %w", what, ErrInvalid)
	}
	var out []Destination
	err := c.call(ctx, what, func(h handle) error {
		dsts, err := h.GetDestinations(toIPVSService(Service{ServiceID: id}))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		out = make([]Destination, 0, len(dsts))
		for _, d := range dsts {
			dst, err := fromIPVSDestination(d)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			out = append(out, dst)
		}
		return nil
	})
	return out, err
}

// AddService implements Client.
func (c *Netlink) AddService(ctx context.Context, svc Service) error {
	return c.serviceOp(ctx, OpAddService, svc)
}

// UpdateService implements Client.
func (c *Netlink) UpdateService(ctx context.Context, svc Service) error {
	return c.serviceOp(ctx, OpUpdateService, svc)
}

// DeleteService implements Client.
func (c *Netlink) DeleteService(ctx context.Context, id ServiceID) error {
	return c.serviceOp(ctx, OpDeleteService, Service{ServiceID: id})
}

func (c *Netlink) serviceOp(ctx context.Context, k OpKind, svc Service) error {
	check := checkService(k, svc)
	if k == OpDeleteService {
		check = checkServiceID(k, svc.ServiceID)
	}
	if check != nil {
		return check
	}
	what := describe(k, svc.ServiceID, DestinationID{})
	return c.call(ctx, what, func(h handle) error {
		s := toIPVSService(svc)
		var err error
		switch k {
		case OpAddService:
			err = h.NewService(s)
		case OpUpdateService:
			err = h.UpdateService(s)
		default:
			err = h.DelService(s)
		}
		return kernelError(k, svc, DestinationID{}, err)
	})
}

// AddDestination implements Client.
func (c *Netlink) AddDestination(ctx context.Context, svc ServiceID, dst Destination) error {
	return c.destinationOp(ctx, OpAddDestination, svc, dst)
}

// UpdateDestination implements Client.
func (c *Netlink) UpdateDestination(ctx context.Context, svc ServiceID, dst Destination) error {
	return c.destinationOp(ctx, OpUpdateDestination, svc, dst)
}

// DeleteDestination implements Client.
func (c *Netlink) DeleteDestination(ctx context.Context, svc ServiceID, dst DestinationID) error {
	return c.destinationOp(ctx, OpDeleteDestination, svc, Destination{DestinationID: dst})
}

func (c *Netlink) destinationOp(ctx context.Context, k OpKind, svc ServiceID, dst Destination) error {
	if err := checkDestination(k, svc, dst); err != nil {
		return err
	}
	what := describe(k, svc, dst.DestinationID)
	return c.call(ctx, what, func(h handle) error {
		s, d := toIPVSService(Service{ServiceID: svc}), toIPVSDestination(dst)
		var err error
		switch k {
		case OpAddDestination:
			err = h.NewDestination(s, d)
		case OpUpdateDestination:
			err = h.UpdateDestination(s, d)
		default:
			err = h.DelDestination(s, d)
		}
		return kernelError(k, Service{ServiceID: svc}, dst.DestinationID, err)
	})
}

// kernelError names the operation and maps the kernel's errno to this package's errors.
func kernelError(k OpKind, svc Service, dst DestinationID, err error) error {
	if err == nil {
		return nil
	}
	what := describe(k, svc.ServiceID, dst)
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch {
		case errno == syscall.EEXIST:
			return fmt.Errorf("%s: %w", what, ErrExist)
		case errno == syscall.ESRCH: // no such service
			return fmt.Errorf("%s: %w", what, ErrNotExist)
		case errno == syscall.ENOENT && (k == OpAddService || k == OpUpdateService):
			return schedulerError(k, svc)
		case errno == syscall.ENOENT: // no such destination
			return fmt.Errorf("%s: %w", what, ErrNotExist)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

const (
	svcFlagHashed = 0x0002 // IP_VS_SVC_F_HASHED: kernel-internal
	fwdMask       = 0x0007 // IP_VS_CONN_F_FWD_MASK
)

func afOf(f Family) uint16 {
	if f == IPv6 {
		return syscall.AF_INET6
	}
	return syscall.AF_INET
}

func ipOf(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return net.IP(a.AsSlice())
}

// toIPVSService converts svc for moby/ipvs. A zero netmask is sent as the full mask, as ipvsadm does.
func toIPVSService(svc Service) *ipvs.Service {
	s := &ipvs.Service{
		AddressFamily: afOf(svc.Family),
		Protocol:      uint16(svc.Protocol),
		Address:       ipOf(svc.Addr),
		Port:          svc.Port,
		FWMark:        svc.FWMark,
		SchedName:     svc.Scheduler,
		Flags:         uint32(svc.Flags),
		Timeout:       svc.Timeout,
		Netmask:       netmaskOf(svc),
	}
	if svc.FWMark != 0 {
		s.Protocol, s.Address, s.Port = 0, nil, 0
	}
	if svc.Family == IPv4 {
		s.Netmask = swapNetworkOrder(s.Netmask)
	}
	return s
}

// swapNetworkOrder converts between an IPv4 mask as an integer (255.255.255.0 is 0xffffff00) and the u32
// that moby/ipvs writes in native byte order, whose bytes the kernel reads as a network-order __be32.
// It is its own inverse.
func swapNetworkOrder(v uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return binary.NativeEndian.Uint32(b[:])
}

func fromIPVSService(s *ipvs.Service) (Service, error) {
	var svc Service
	switch s.AddressFamily {
	case syscall.AF_INET:
		svc.Family = IPv4
	case syscall.AF_INET6:
		svc.Family = IPv6
	default:
		return svc, fmt.Errorf("service with unknown address family %d", s.AddressFamily)
	}
	svc.FWMark = s.FWMark
	if s.FWMark == 0 {
		svc.Protocol = Protocol(s.Protocol)
		svc.Port = s.Port
		a, ok := netip.AddrFromSlice(s.Address)
		if !ok {
			return svc, fmt.Errorf("service with bad address %v", s.Address)
		}
		svc.Addr = a
	}
	svc.Scheduler = s.SchedName
	svc.Flags = Flags(s.Flags &^ svcFlagHashed)
	svc.Timeout = s.Timeout
	svc.Netmask = s.Netmask
	if svc.Family == IPv4 {
		svc.Netmask = swapNetworkOrder(svc.Netmask)
	}
	svc.Stats = Stats{
		Conns:    uint64(s.Stats.Connections),
		InPkts:   uint64(s.Stats.PacketsIn),
		OutPkts:  uint64(s.Stats.PacketsOut),
		InBytes:  s.Stats.BytesIn,
		OutBytes: s.Stats.BytesOut,
	}
	return canonical(svc), nil
}

func toIPVSDestination(d Destination) *ipvs.Destination {
	af := uint16(syscall.AF_INET)
	if d.Addr.Is6() {
		af = syscall.AF_INET6
	}
	return &ipvs.Destination{
		Address:         ipOf(d.Addr),
		Port:            d.Port,
		Weight:          d.Weight,
		ConnectionFlags: uint32(d.Forward) & fwdMask,
		AddressFamily:   af,
		UpperThreshold:  d.Upper,
		LowerThreshold:  d.Lower,
	}
}

func fromIPVSDestination(d *ipvs.Destination) (Destination, error) {
	a, ok := netip.AddrFromSlice(d.Address)
	if !ok {
		return Destination{}, fmt.Errorf("destination with bad address %v", d.Address)
	}
	return Destination{
		DestinationID: DestinationID{Addr: a, Port: d.Port},
		Forward:       Forward(d.ConnectionFlags & fwdMask),
		Weight:        d.Weight,
		Upper:         d.UpperThreshold,
		Lower:         d.LowerThreshold,
		Stats: Stats{
			ActiveConns:   uint32(d.ActiveConnections),
			InactiveConns: uint32(d.InactiveConnections),
			Conns:         uint64(d.Stats.Connections),
			InPkts:        uint64(d.Stats.PacketsIn),
			OutPkts:       uint64(d.Stats.PacketsOut),
			InBytes:       d.Stats.BytesIn,
			OutBytes:      d.Stats.BytesOut,
		},
	}, nil
}
