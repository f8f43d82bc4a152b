package ipvsctl

import (
	"fmt"
	"strings"
)

// VirtualService is a service with its destinations, keyed by identity.
type VirtualService struct {
	Service
	Destinations map[DestinationID]Destination
}

// Table is a set of virtual services, as read from the kernel or as wanted.
type Table map[ServiceID]*VirtualService

// Clone returns a deep copy of t.
func (t Table) Clone() Table {
	if t == nil {
		return nil
	}
	c := make(Table, len(t))
	for id, vs := range t {
		n := &VirtualService{Service: vs.Service, Destinations: make(map[DestinationID]Destination, len(vs.Destinations))}
		for did, d := range vs.Destinations {
			n.Destinations[did] = d
		}
		c[id] = n
	}
	return c
}

// String renders t one line per service and destination, sorted, in a form close to `ipvsadm -Ln`
// (settings only, no counters). Tests compare tables through it so a difference reads like a table.
func (t Table) String() string {
	var b strings.Builder
	for _, id := range sortedServiceIDs(t) {
		vs := t[id]
		fmt.Fprintf(&b, "%s %s flags=%#x timeout=%d netmask=%#x\n", id, vs.Scheduler, uint32(vs.Flags), vs.Timeout, vs.Netmask)
		for _, did := range sortedDestinationIDs(vs.Destinations) {
			d := vs.Destinations[did]
			fmt.Fprintf(&b, "  -> %s %s weight=%d upper=%d lower=%d\n", did, d.Forward, d.Weight, d.Upper, d.Lower)
		}
	}
	return b.String()
}

// OpKind is the kind of one table change.
type OpKind int

// Table changes.
const (
	OpAddService OpKind = iota
	OpUpdateService
	OpDeleteService
	OpAddDestination
	OpUpdateDestination
	OpDeleteDestination
)

func (k OpKind) String() string {
	switch k {
	case OpAddService:
		return "add service"
	case OpUpdateService:
		return "update service"
	case OpDeleteService:
		return "delete service"
	case OpAddDestination:
		return "add destination"
	case OpUpdateDestination:
		return "update destination"
	case OpDeleteDestination:
		return "delete destination"
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// Op is one change to the kernel table. Destination is zero for service operations.
type Op struct {
	Kind        OpKind
	Service     Service
	Destination Destination
}

// String describes the change the way errors and logs name it, e.g.
// "add destination 10.0.0.2:80 to TCP 10.0.0.1:80".
func (op Op) String() string {
	return describe(op.Kind, op.Service.ServiceID, op.Destination.DestinationID)
}

func describe(k OpKind, svc ServiceID, dst DestinationID) string {
	switch k {
	case OpAddService, OpUpdateService, OpDeleteService:
		return fmt.Sprintf("%s %s", k, svc)
	case OpAddDestination:
		return fmt.Sprintf("%s %s to %s", k, dst, svc)
	case OpUpdateDestination, OpDeleteDestination:
		return fmt.Sprintf("%s %s of %s", k, dst, svc)
	}
	return fmt.Sprintf("%s %s %s", k, svc, dst)
}
