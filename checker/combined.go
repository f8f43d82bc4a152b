package checker

import (
	"context"
	"sync"
	"time"
)

// NewCombined returns the check of checktype=N: a negotiate check, then n connect checks, then a negotiate
// check again, and so on (reference §3.7). The first check is a negotiate check; a failed connect makes the
// next check a negotiate check; a failed negotiate check is retried on the next round; n=0 negotiates every
// time. Each step gets its own timeout: Check narrows ctx to connectTimeout (checktimeout) or
// negotiateTimeout (negotiatetimeout); a zero timeout leaves ctx as it is.
//
// The returned Checker keeps the step counter, so it belongs to one real server (one check loop); it is
// safe for concurrent use but concurrent calls share the counter.
func NewCombined(n int, connect Checker, connectTimeout time.Duration, negotiate Checker, negotiateTimeout time.Duration) Checker {
	return &combined{n: n, connect: connect, connectTimeout: connectTimeout,
		negotiate: negotiate, negotiateTimeout: negotiateTimeout, needNegotiate: true}
}

type combined struct {
	n                int
	connect          Checker
	connectTimeout   time.Duration
	negotiate        Checker
	negotiateTimeout time.Duration

	mu            sync.Mutex
	needNegotiate bool // first round, or the last step failed
	connects      int  // connect checks since the last successful negotiate
}

func (c *combined) Check(ctx context.Context, t *Target) error {
	c.mu.Lock()
	negotiate := c.needNegotiate || c.connects >= c.n
	c.mu.Unlock()
	if negotiate {
		err := run(ctx, c.negotiate, c.negotiateTimeout, t)
		c.mu.Lock()
		c.needNegotiate = err != nil
		c.connects = 0
		c.mu.Unlock()
		return err
	}
	err := run(ctx, c.connect, c.connectTimeout, t)
	c.mu.Lock()
	c.connects++
	if err != nil {
		c.needNegotiate = true
	}
	c.mu.Unlock()
	return err
}

func run(ctx context.Context, ch Checker, timeout time.Duration, t *Target) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return ch.Check(ctx, t)
}
