package ipvsctl

import (
	"context"
	"errors"
	"fmt"
)

// ReadTable reads every service and its destinations (with stats) from c. A service deleted between the
// two reads is left out.
func ReadTable(ctx context.Context, c Client) (Table, error) {
	svcs, err := c.Services(ctx)
	if err != nil {
		return nil, err
	}
	t := make(Table, len(svcs))
	for _, s := range svcs {
		dsts, err := c.Destinations(ctx, s.ServiceID)
		if errors.Is(err, ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		vs := &VirtualService{Service: s, Destinations: make(map[DestinationID]Destination, len(dsts))}
		for _, d := range dsts {
			vs.Destinations[d.DestinationID] = d
		}
		t[s.ServiceID] = vs
	}
	return t, nil
}

// Apply runs ops in order and returns every failure joined (nil when every op succeeded). It carries on
// past failures, so one bad service does not hold back the others.
//
// "Already exists" on an add and "does not exist" on a delete count as done. Because the table can change
// between the read that Diff worked from and Apply (someone ran ipvsadm), an add that finds the entry
// already there is turned into an update, and an update that finds it gone into an add, so the entry
// ends up with the wanted settings either way. The destinations of a service whose add failed are not
// attempted: the service's error says it all.
//
// When ctx ends, Apply stops and reports how many operations it did not run.
func Apply(ctx context.Context, c Client, ops []Op) error {
	var errs []error
	failed := map[ServiceID]bool{}
	for i, op := range ops {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("apply: %d of %d operations not run: %w", len(ops)-i, len(ops), err))
			break
		}
		id := op.Service.ServiceID
		if failed[id] && (op.Kind == OpAddDestination || op.Kind == OpUpdateDestination || op.Kind == OpDeleteDestination) {
			continue
		}
		if err := applyOne(ctx, c, op); err != nil {
			if op.Kind == OpAddService || op.Kind == OpUpdateService {
				failed[id] = true
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func applyOne(ctx context.Context, c Client, op Op) error {
	id := op.Service.ServiceID
	switch op.Kind {
	case OpAddService:
		err := c.AddService(ctx, op.Service)
		if errors.Is(err, ErrExist) {
			return c.UpdateService(ctx, op.Service)
		}
		return err
	case OpUpdateService:
		err := c.UpdateService(ctx, op.Service)
		if errors.Is(err, ErrNotExist) {
			return c.AddService(ctx, op.Service)
		}
		return err
	case OpDeleteService:
		return ignore(c.DeleteService(ctx, id), ErrNotExist)
	case OpAddDestination:
		err := c.AddDestination(ctx, id, op.Destination)
		if errors.Is(err, ErrExist) {
			return c.UpdateDestination(ctx, id, op.Destination)
		}
		return err
	case OpUpdateDestination:
		err := c.UpdateDestination(ctx, id, op.Destination)
		if errors.Is(err, ErrNotExist) {
			return c.AddDestination(ctx, id, op.Destination)
		}
		return err
	case OpDeleteDestination:
		return ignore(c.DeleteDestination(ctx, id, op.Destination.DestinationID), ErrNotExist)
	}
	return fmt.Errorf("%s: unknown operation", op)
}

func ignore(err, target error) error {
	if errors.Is(err, target) {
		return nil
	}
	return err
}
