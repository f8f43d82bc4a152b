package checker

import (
	"context"
	"strings"
)

// NNTP is the negotiate check of service=nntp: connect, read the server's greeting (one read of up to 64
// bytes, as ldirectord), healthy when it starts with "2" (200/201). Nothing is sent. Unlike ldirectord the
// connect is bounded by the deadline too.
var NNTP Checker = Func(func(ctx context.Context, t *Target) error {
	s, err := openSession(ctx, t, "nntp", false)
	if err != nil {
		return err
	}
	defer s.Close()
	var b [64]byte
	n, err := s.rw.Read(b[:])
	if n == 0 && err != nil {
		return failf(err, "%s: reading banner", s.label)
	}
	line := strings.TrimRight(strings.SplitN(string(b[:n]), "\n", 2)[0], "\r")
	if !strings.HasPrefix(line, "2") {
		return errorf("%s: banner %s", s.label, quoteLine(line))
	}
	return nil
})
