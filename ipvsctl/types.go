// Package ipvsctl is the only code that talks to the kernel IPVS table.
package ipvsctl

import (
	"context"
	"fmt"
	"net/netip"
)

// Protocol is an IPVS service protocol, by its IP protocol number. Firewall-mark services have none.
type Protocol uint16

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	case 0:
		return "FWM"
	}
	return fmt.Sprintf("proto-%d", uint16(p))
}

// Family is an address family.
type Family uint8

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// ServiceID identifies a virtual service: protocol, address and port, or a firewall mark (with Protocol 0
// and a zero Addr) plus its family. It is comparable and is used as a map key.
type ServiceID struct {
	Family   Family
	Protocol Protocol
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
}

func (id ServiceID) String() string {
	if id.FWMark != 0 {
		if id.Family == IPv6 {
			return fmt.Sprintf("FWM %d IPv6", id.FWMark)
		}
		return fmt.Sprintf("FWM %d", id.FWMark)
	}
	return fmt.Sprintf("%s %s", id.Protocol, netip.AddrPortFrom(id.Addr, id.Port))
}

// Flags are a service's IPVS flags (persistent, one-packet, scheduler flags), as the kernel stores them
// minus the internal "hashed" bit.
type Flags uint32

// Service flag bits, from linux/ip_vs.h.
const (
	FlagPersistent Flags = 0x0001
	FlagOnePacket  Flags = 0x0004
	FlagSchedFlag1 Flags = 0x0008 // sh-fallback, mh-fallback
	FlagSchedFlag2 Flags = 0x0010 // sh-port, mh-port
	FlagSchedFlag3 Flags = 0x0020
)

// Service is a virtual service: its identity and its settings.
type Service struct {
	ServiceID
	Scheduler string
	Flags     Flags
	Timeout   uint32 // persistence timeout in seconds; non-zero iff FlagPersistent
	// Netmask is the persistence netmask: for IPv4 the mask as a big-endian integer (255.255.255.0 is
	// 0xffffff00), for IPv6 the prefix length.
	Netmask uint32
	// Stats are the service's observed counters when read from the kernel (the active and inactive
	// connection counts are per destination and stay zero here). Diff ignores them.
	Stats Stats
}

// Forward is a destination's forwarding method.
type Forward uint32

// Forwarding methods (IP_VS_CONN_F_FWD_MASK values).
const (
	Masq   Forward = 0
	Local  Forward = 1
	Tunnel Forward = 2
	Route  Forward = 3
)

func (f Forward) String() string {
	switch f {
	case Masq:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	}
	return fmt.Sprintf("Forward(%d)", uint32(f))
}

// DestinationID identifies a real server within a service.
type DestinationID struct {
	Addr netip.Addr
	Port uint16
}

func (d DestinationID) String() string { return netip.AddrPortFrom(d.Addr, d.Port).String() }

// Destination is a real server of a service: identity, settings, and (when read from the kernel) its
// observed counters, which Diff ignores.
type Destination struct {
	DestinationID
	Forward Forward
	Weight  int
	Upper   uint32 // upper connection threshold, 0 = none
	Lower   uint32 // lower connection threshold, 0 = none
	Stats   Stats
}

// Stats are a destination's or a service's observed counters.
type Stats struct {
	ActiveConns   uint32
	InactiveConns uint32
	PersistConns  uint32
	Conns         uint64 // total connections scheduled
	InPkts        uint64
	OutPkts       uint64
	InBytes       uint64
	OutBytes      uint64
}

// Client reads and changes the kernel IPVS table. Implementations are safe for concurrent use.
type Client interface {
	Services(ctx context.Context) ([]Service, error)
	Destinations(ctx context.Context, svc ServiceID) ([]Destination, error)
	AddService(ctx context.Context, svc Service) error
	UpdateService(ctx context.Context, svc Service) error
	DeleteService(ctx context.Context, svc ServiceID) error
	AddDestination(ctx context.Context, svc ServiceID, dst Destination) error
	UpdateDestination(ctx context.Context, svc ServiceID, dst Destination) error
	DeleteDestination(ctx context.Context, svc ServiceID, dst DestinationID) error
	Close() error
}
