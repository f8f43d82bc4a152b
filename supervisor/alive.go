package supervisor

import (
	"context"
	"fmt"
	"time"
)

// Alive says whether the supervisor still works, for a watchdog (systemd's WatchdogSec=): its owner
// goroutine takes a message before ctx ends, and the check scheduler has woken within stuckAfter. A stuck
// owner or scheduler would leave the kernel table as it was while the reals come and go, and log nothing.
// It returns ErrStopped once Run has returned.
func (s *Supervisor) Alive(ctx context.Context) error {
	start := time.Now()
	select {
	case s.pings <- struct{}{}:
	case <-s.done:
		return ErrStopped
	case <-ctx.Done():
		return fmt.Errorf("the supervisor took no message for %v", time.Since(start).Round(time.Millisecond))
	}
	if d := s.eng.stuck(time.Now()); d > 0 {
		return fmt.Errorf("the check scheduler has not run for %v", d.Round(time.Second))
	}
	return nil
}
