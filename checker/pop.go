package checker

import (
	"context"
	"strings"
)

// POP and POPS are the negotiate checks of service=pop and pops (POP3 over TLS, certificate not
// verified): connect, read the +OK greeting; when login is set, USER and PASS must both be accepted; then
// QUIT. Without login the greeting alone decides (ldirectord is then always healthy, even when nothing
// listens). APOP and CRAM-MD5 are not used.
var (
	POP  Checker = Func(func(ctx context.Context, t *Target) error { return pop(ctx, t, false) })
	POPS Checker = Func(func(ctx context.Context, t *Target) error { return pop(ctx, t, true) })
)

func pop(ctx context.Context, t *Target, tlsOn bool) error {
	name := "pop"
	if tlsOn {
		name = "pops"
	}
	s, err := openSession(ctx, t, name, tlsOn)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.popOK("", "banner"); err != nil {
		return err
	}
	if t.Login != "" {
		if err := s.popOK("USER "+t.Login, "reply to USER"); err != nil {
			return err
		}
		if err := s.popOK("PASS "+t.Passwd, "reply to PASS"); err != nil {
			return err
		}
	}
	s.send("QUIT")
	return nil
}

func (s *session) popOK(cmd, what string) error {
	if cmd != "" {
		if err := s.send(cmd); err != nil {
			return err
		}
	}
	line, err := s.readLine(what)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+OK") {
		return errorf("%s: %s: %s", s.label, what, quoteLine(line))
	}
	return nil
}
