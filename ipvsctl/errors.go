package ipvsctl

import (
	"errors"
	"fmt"
	"net/netip"
)

// Errors a Client's changes wrap, so callers can test for them with errors.Is whatever the Client.
var (
	// ErrExist: the service or destination to add is already in the table.
	ErrExist = errors.New("already exists")
	// ErrNotExist: the service or destination to change or delete is not in the table.
	ErrNotExist = errors.New("does not exist")
	// ErrInvalid: the service or destination cannot be expressed in the kernel table (e.g. an IPv6
	// destination in an IPv4 service); it was not sent.
	ErrInvalid = errors.New("invalid")
	// ErrScheduler: the kernel has no scheduler of that name (no ip_vs_<name> module).
	ErrScheduler = errors.New("scheduler not available")
	// ErrNotAvailable: the kernel has no IPVS (the ip_vs module is not loaded and could not be loaded).
	ErrNotAvailable = errors.New("kernel IPVS is not available: load the ip_vs module")
)

// schedulerError is the error for an unknown scheduler, the same text from the fake and the kernel client.
func schedulerError(k OpKind, svc Service) error {
	return fmt.Errorf("%s: %w: scheduler %q (the kernel has no module ip_vs_%s)", describe(k, svc.ServiceID, DestinationID{}), ErrScheduler, svc.Scheduler, svc.Scheduler)
}

func invalid(k OpKind, svc ServiceID, dst DestinationID, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", describe(k, svc, dst), ErrInvalid, fmt.Sprintf(format, args...))
}

func addrFamily(a netip.Addr) (Family, bool) {
	switch {
	case a.Is4():
		return IPv4, true
	case a.Is6() && !a.Is4In6() && a.Zone() == "":
		return IPv6, true
	}
	return 0, false
}

// checkServiceID reports why id cannot be a kernel service identity, or nil.
func checkServiceID(k OpKind, id ServiceID) error {
	none := DestinationID{}
	if id.Family != IPv4 && id.Family != IPv6 {
		return invalid(k, id, none, "address family %d is neither IPv4 nor IPv6", id.Family)
	}
	if id.FWMark != 0 {
		if id.Protocol != 0 || id.Addr.IsValid() || id.Port != 0 {
			return invalid(k, id, none, "a firewall-mark service has no protocol, address or port")
		}
		return nil
	}
	switch id.Protocol {
	case TCP, UDP, SCTP:
	default:
		return invalid(k, id, none, "protocol %s is not one of TCP, UDP, SCTP", id.Protocol)
	}
	f, ok := addrFamily(id.Addr)
	if !ok {
		return invalid(k, id, none, "address %q is not a plain IPv4 or IPv6 address", id.Addr)
	}
	if f != id.Family {
		return invalid(k, id, none, "address %s is not in family IPv%d", id.Addr, id.Family)
	}
	return nil
}

// checkService reports why svc cannot be added to the kernel table, or nil.
func checkService(k OpKind, svc Service) error {
	if err := checkServiceID(k, svc.ServiceID); err != nil {
		return err
	}
	if svc.Scheduler == "" {
		return invalid(k, svc.ServiceID, DestinationID{}, "no scheduler")
	}
	if svc.Family == IPv6 && svc.Netmask > 128 {
		return invalid(k, svc.ServiceID, DestinationID{}, "IPv6 persistence prefix length %d is above 128", svc.Netmask)
	}
	return nil
}

// maxWeight is the highest weight ipvsadm accepts; the kernel client reads weights back as 16 bits.
const maxWeight = 65535

// checkDestination reports why dst cannot be a destination of svc in the kernel table, or nil.
func checkDestination(k OpKind, svc ServiceID, dst Destination) error {
	if err := checkServiceID(k, svc); err != nil {
		return err
	}
	id := dst.DestinationID
	f, ok := addrFamily(id.Addr)
	if !ok {
		return invalid(k, svc, id, "address %q is not a plain IPv4 or IPv6 address", id.Addr)
	}
	if f != svc.Family {
		// The kernel accepts mixed families only for tunnels and only when told the destination's family,
		// which moby/ipvs does not send: it would read the first 4 bytes of an IPv6 address as IPv4.
		return invalid(k, svc, id, "an IPv%d destination in an IPv%d service is not allowed", f, svc.Family)
	}
	if k == OpDeleteDestination {
		return nil
	}
	if dst.Forward > Route {
		return invalid(k, svc, id, "unknown forwarding method %d", uint32(dst.Forward))
	}
	if dst.Weight < 0 || dst.Weight > maxWeight {
		return invalid(k, svc, id, "weight %d is outside 0..%d", dst.Weight, maxWeight)
	}
	if dst.Lower > dst.Upper { // the kernel's own rule (ERANGE), even with no upper threshold
		return invalid(k, svc, id, "lower threshold %d is above upper threshold %d", dst.Lower, dst.Upper)
	}
	return nil
}
