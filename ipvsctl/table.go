package ipvsctl

import "context"

// VirtualService is a service with its destinations, keyed by identity.
type VirtualService struct {
	Service
	Destinations map[DestinationID]Destination
}

// Table is a set of virtual services, as read from the kernel or as wanted.
type Table map[ServiceID]*VirtualService

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

// Op is one change to the kernel table. Destination is zero for service operations.
type Op struct {
	Kind        OpKind
	Service     Service
	Destination Destination
}

// The contract of Diff, ReadTable and Apply (implemented in diff.go and apply.go):
//
//	// Diff returns the fewest operations that turn have into want. Services in want are added or
//	// updated and their destinations made to match exactly (Stats are ignored). A service in have but not
//	// in want is deleted only if managed(id) is true; every other service of have is left alone.
//	// Order: services added/updated first, then destinations deleted, updated, added, then services deleted.
//	func Diff(have, want Table, managed func(ServiceID) bool) []Op
//
//	// ReadTable reads every service and its destinations (with stats) from c.
//	func ReadTable(ctx context.Context, c Client) (Table, error)
//
//	// Apply runs ops in order. "Already exists" on an add and "does not exist" on a delete count as done.
//	// It carries on past failures and returns them all joined (nil when every op succeeded).
//	func Apply(ctx context.Context, c Client, ops []Op) error
var _ = context.Background
