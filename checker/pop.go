package checker

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"regexp"
	"strings"
)

// POP and POPS are the negotiate checks of service=pop and pops (POP3 over TLS, certificate not
// verified): connect, read the +OK greeting; when login is set, log in; then QUIT. Without login the
// greeting alone decides (ldirectord is then always healthy, even when nothing listens).
//
// The login is the one of ldirectord's Mail::POP3Client: APOP when the greeting carries an APOP timestamp
// (`<...@...>`, RFC 1939 section 7), and when the server refuses APOP (or offers none) USER and PASS. The
// CRAM-MD5 step Mail::POP3Client tries in between is not made.
var (
	POP  Checker = Func(func(ctx context.Context, t *Target) error { return pop(ctx, t, false) })
	POPS Checker = Func(func(ctx context.Context, t *Target) error { return pop(ctx, t, true) })
)

// apopTimestamp finds the APOP timestamp of a greeting, with Mail::POP3Client's pattern.
var apopTimestamp = regexp.MustCompile("<[-_\\w!#$%&'*+/=?^`{|}~]+(?:\\.[-_\\w!#$%&'*+/=?^`{|}~]+)*@[-_\\w!#$%&'*+/=?^`{|}~]+(?:\\.[-_\\w!#$%&'*+/=?^`{|}~]+)*>")

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
	greeting, err := s.popOK("", "banner")
	if err != nil {
		return err
	}
	if t.Login != "" {
		if err := s.popLogin(greeting, t.Login, t.Passwd); err != nil {
			return err
		}
	}
	s.send("QUIT")
	return nil
}

// popLogin logs in with APOP when the greeting offers it, else (or when APOP is refused) USER and PASS.
func (s *session) popLogin(greeting, login, passwd string) error {
	var apopErr error
	if ts := apopTimestamp.FindString(greeting); ts != "" {
		digest := md5.Sum([]byte(ts + passwd))
		line, err := s.popOK("APOP "+login+" "+hex.EncodeToString(digest[:]), "reply to APOP")
		if err == nil {
			return nil
		}
		if line == "" {
			return err // no answer at all
		}
		apopErr = err
	}
	if line, err := s.popOK("USER "+login, "reply to USER"); err != nil {
		if line == "" && apopErr != nil {
			return apopErr // the server hung up after refusing APOP
		}
		return err
	}
	_, err := s.popOK("PASS "+passwd, "reply to PASS")
	return err
}

// popOK sends cmd (unless empty) and reads the reply, which must be +OK. line is the reply, "" when none
// came.
func (s *session) popOK(cmd, what string) (line string, err error) {
	if cmd != "" {
		if err := s.send(cmd); err != nil {
			return "", err
		}
	}
	line, err = s.readLine(what)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, "+OK") {
		return line, errorf("%s: %s: %s", s.label, what, quoteLine(line))
	}
	return line, nil
}
