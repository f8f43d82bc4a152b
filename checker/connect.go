package checker

import (
	"context"
	"errors"
	"os"
	"syscall"
)

// Connect is checktype=connect: a TCP connect to the target, closed at once.
//
// On a UDP target (the connect step of checktype=N on a UDP virtual; plain checktype=connect on UDP is a
// ping, which the daemon maps) it sends one empty datagram and waits until ctx's deadline: an ICMP port
// unreachable (connection refused) or a routing error is a failure, any answer or silence is healthy. That
// is the only evidence UDP gives; ldirectord's UDP connect never fails at all.
var Connect Checker = connectChecker{}

type connectChecker struct{}

func (connectChecker) Check(ctx context.Context, t *Target) error { return connect(ctx, t) }

func connect(ctx context.Context, t *Target) error {
	ap, err := addrPort(t)
	if err != nil {
		return err
	}
	if t.UDP {
		return connectUDP(ctx, t)
	}
	c, err := dial(ctx, "tcp", ap)
	if err != nil {
		return failf(err, "connect %s", ap)
	}
	c.Close()
	return nil
}

func connectUDP(ctx context.Context, t *Target) error {
	ap, _ := addrPort(t)
	c, err := dial(ctx, "udp", ap)
	if err != nil {
		return failf(err, "connect udp %s", ap)
	}
	defer c.Close()
	if _, err := c.Write(nil); err != nil {
		return failf(err, "connect udp %s", ap)
	}
	var b [1]byte
	for {
		_, err := c.Read(b[:])
		switch {
		case err == nil:
			return nil // the service answered an empty datagram
		case errors.Is(err, syscall.ECONNREFUSED):
			return errorf("connect udp %s: port unreachable", ap)
		case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != context.Canceled:
			return nil // silence until the deadline: nothing said the port is closed
		default:
			if ctx.Err() != nil {
				return failf(ctx.Err(), "connect udp %s", ap)
			}
			return failf(err, "connect udp %s", ap)
		}
	}
}
