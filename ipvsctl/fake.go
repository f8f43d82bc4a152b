package ipvsctl

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Fake is an in-memory Client with the kernel's semantics, for testing the layers above: adding what
// exists fails with ErrExist, changing or deleting what does not exist fails with ErrNotExist, the
// destinations of a deleted service go with it, an unknown scheduler fails with ErrScheduler, and what the
// kernel client would refuse to send fails with ErrInvalid. It records every change it is asked for and
// can be told to fail. It is safe for concurrent use.
type Fake struct {
	mu         sync.Mutex
	table      Table
	schedulers map[string]bool
	ops        []Op
	reads      int
	failNext   map[OpKind][]error
	failReads  []error
	hook       func(Op) error
	closed     bool
	unrecorded bool // Ops stays empty (NewDryRunTable)
}

// KernelSchedulers are the scheduler names a stock kernel has modules for; the Fake accepts these.
var KernelSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"}

var _ Client = (*Fake)(nil)

// NewFake returns an empty Fake that knows KernelSchedulers.
func NewFake() *Fake {
	f := &Fake{table: Table{}, schedulers: map[string]bool{}, failNext: map[OpKind][]error{}}
	for _, s := range KernelSchedulers {
		f.schedulers[s] = true
	}
	return f
}

// NewDryRunTable returns a Fake that keeps no record of the changes it is asked for (Ops stays empty): the
// table of a `--dry-run` daemon, which runs for days and must not grow with every change it makes.
func NewDryRunTable() *Fake {
	f := NewFake()
	f.unrecorded = true
	return f
}

// SetSchedulers replaces the scheduler names the Fake accepts.
func (f *Fake) SetSchedulers(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.schedulers = map[string]bool{}
	for _, s := range names {
		f.schedulers[s] = true
	}
}

// Load replaces the table with a copy of t, as if someone else had set it up. It is not recorded in Ops.
func (f *Fake) Load(t Table) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table = t.Clone()
	if f.table == nil {
		f.table = Table{}
	}
}

// Table returns a snapshot (a deep copy) of the current table.
func (f *Fake) Table() Table {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.table.Clone()
}

// SetStats sets the counters of a destination, as traffic would. It reports whether the destination exists.
func (f *Fake) SetStats(svc ServiceID, dst DestinationID, s Stats) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs, ok := f.table[svc]
	if !ok {
		return false
	}
	d, ok := vs.Destinations[dst]
	if !ok {
		return false
	}
	d.Stats = s
	vs.Destinations[dst] = d
	return true
}

// Ops returns every change asked of the Fake since it was made or ResetOps was called, in order, including
// those that failed.
func (f *Fake) Ops() []Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// Reads returns how many Services and Destinations calls were made since the last ResetOps.
func (f *Fake) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// ResetOps forgets the recorded changes and reads.
func (f *Fake) ResetOps() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = nil
	f.reads = 0
}

// FailNext makes the next change of kind k fail with err, leaving the table as it was. Calls queue up:
// FailNext twice fails the next two.
func (f *Fake) FailNext(k OpKind, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[k] = append(f.failNext[k], err)
}

// FailNextRead makes the next Services or Destinations call fail with err.
func (f *Fake) FailNextRead(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failReads = append(f.failReads, err)
}

// SetHook makes every later change call h first (with the Fake's lock held: h must not call the Fake); a
// non-nil error fails the change with that error and leaves the table as it was. nil removes the hook.
func (f *Fake) SetHook(h func(Op) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// Services implements Client.
func (f *Fake) Services(ctx context.Context) ([]Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(ctx); err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(f.table))
	for _, id := range sortedServiceIDs(f.table) {
		out = append(out, f.table[id].Service)
	}
	return out, nil
}

// Destinations implements Client.
func (f *Fake) Destinations(ctx context.Context, svc ServiceID) ([]Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(ctx); err != nil {
		return nil, err
	}
	vs, ok := f.table[svc]
	if !ok {
		return nil, fmt.Errorf("list destinations of %s: %w", svc, ErrNotExist)
	}
	out := make([]Destination, 0, len(vs.Destinations))
	for _, id := range sortedDestinationIDs(vs.Destinations) {
		out = append(out, vs.Destinations[id])
	}
	return out, nil
}

func (f *Fake) read(ctx context.Context) error {
	f.reads++
	if f.closed {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(f.failReads) > 0 {
		err := f.failReads[0]
		f.failReads = f.failReads[1:]
		return err
	}
	return nil
}

var errClosed = fmt.Errorf("ipvsctl: client is closed")

// change records op and runs the injected failures; a nil return means the change may go ahead.
func (f *Fake) change(ctx context.Context, op Op) error {
	if !f.unrecorded {
		f.ops = append(f.ops, op)
	}
	if f.closed {
		return fmt.Errorf("%s: %w", op, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if q := f.failNext[op.Kind]; len(q) > 0 {
		f.failNext[op.Kind] = q[1:]
		return q[0]
	}
	if f.hook != nil {
		return f.hook(op)
	}
	return nil
}

func notExist(k OpKind, svc ServiceID, dst DestinationID) error {
	return fmt.Errorf("%s: %w", describe(k, svc, dst), ErrNotExist)
}

func exist(k OpKind, svc ServiceID, dst DestinationID) error {
	return fmt.Errorf("%s: %w", describe(k, svc, dst), ErrExist)
}

// AddService implements Client.
func (f *Fake) AddService(ctx context.Context, svc Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	const k = OpAddService
	if err := f.change(ctx, Op{Kind: k, Service: svc}); err != nil {
		return err
	}
	if err := checkService(k, svc); err != nil {
		return err
	}
	if _, ok := f.table[svc.ServiceID]; ok {
		return exist(k, svc.ServiceID, DestinationID{})
	}
	if !f.schedulers[svc.Scheduler] {
		return schedulerError(k, svc)
	}
	f.table[svc.ServiceID] = &VirtualService{Service: canonical(svc), Destinations: map[DestinationID]Destination{}}
	return nil
}

// UpdateService implements Client.
func (f *Fake) UpdateService(ctx context.Context, svc Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	const k = OpUpdateService
	if err := f.change(ctx, Op{Kind: k, Service: svc}); err != nil {
		return err
	}
	if err := checkService(k, svc); err != nil {
		return err
	}
	vs, ok := f.table[svc.ServiceID]
	if !ok {
		return notExist(k, svc.ServiceID, DestinationID{})
	}
	if !f.schedulers[svc.Scheduler] {
		return schedulerError(k, svc)
	}
	vs.Service = canonical(svc)
	return nil
}

// DeleteService implements Client.
func (f *Fake) DeleteService(ctx context.Context, svc ServiceID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	const k = OpDeleteService
	if err := f.change(ctx, Op{Kind: k, Service: Service{ServiceID: svc}}); err != nil {
		return err
	}
	if err := checkServiceID(k, svc); err != nil {
		return err
	}
	if _, ok := f.table[svc]; !ok {
		return notExist(k, svc, DestinationID{})
	}
	delete(f.table, svc)
	return nil
}

// AddDestination implements Client.
func (f *Fake) AddDestination(ctx context.Context, svc ServiceID, dst Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	const k = OpAddDestination
	if err := f.change(ctx, Op{Kind: k, Service: f.service(svc), Destination: dst}); err != nil {
		return err
	}
	if err := checkDestination(k, svc, dst); err != nil {
		return err
	}
	vs, ok := f.table[svc]
	if !ok {
		return notExist(k, svc, dst.DestinationID)
	}
	if _, ok := vs.Destinations[dst.DestinationID]; ok {
		return exist(k, svc, dst.DestinationID)
	}
	dst.Stats = Stats{}
	vs.Destinations[dst.DestinationID] = dst
	return nil
}

// UpdateDestination implements Client.
func (f *Fake) UpdateDestination(ctx context.Context, svc ServiceID, dst Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	const k = OpUpdateDestination
	if err := f.change(ctx, Op{Kind: k, Service: f.service(svc), Destination: dst}); err != nil {
		return err
	}
	if err := checkDestination(k, svc, dst); err != nil {
		return err
	}
	vs, ok := f.table[svc]
	if !ok {
		return notExist(k, svc, dst.DestinationID)
	}
	old, ok := vs.Destinations[dst.DestinationID]
	if !ok {
		return notExist(k, svc, dst.DestinationID)
	}
	dst.Stats = old.Stats
	vs.Destinations[dst.DestinationID] = dst
	return nil
}

// DeleteDestination implements Client.
func (f *Fake) DeleteDestination(ctx context.Context, svc ServiceID, dst DestinationID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	const k = OpDeleteDestination
	if err := f.change(ctx, Op{Kind: k, Service: f.service(svc), Destination: Destination{DestinationID: dst}}); err != nil {
		return err
	}
	if err := checkDestination(k, svc, Destination{DestinationID: dst}); err != nil {
		return err
	}
	vs, ok := f.table[svc]
	if !ok {
		return notExist(k, svc, dst)
	}
	if _, ok := vs.Destinations[dst]; !ok {
		return notExist(k, svc, dst)
	}
	delete(vs.Destinations, dst)
	return nil
}

// service returns the stored service for the op log, or just its identity when it is not in the table.
func (f *Fake) service(id ServiceID) Service {
	if vs, ok := f.table[id]; ok {
		return vs.Service
	}
	return Service{ServiceID: id}
}

// Close implements Client: later calls fail.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}
