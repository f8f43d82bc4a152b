package checker

import (
	"context"
	"strings"
)

// IMAP and IMAPS are the negotiate checks of service=imap and imaps (IMAP over TLS, certificate not
// verified): connect to the check port (ldirectord's module always uses 143 or 993), read the "* OK" (or
// "* PREAUTH") greeting; when login is set, `LOGIN` must be answered OK; then LOGOUT.
var (
	IMAP  Checker = Func(func(ctx context.Context, t *Target) error { return imap(ctx, t, false) })
	IMAPS Checker = Func(func(ctx context.Context, t *Target) error { return imap(ctx, t, true) })
)

func imap(ctx context.Context, t *Target, tlsOn bool) error {
	name := "imap"
	if tlsOn {
		name = "imaps"
	}
	s, err := openSession(ctx, t, name, tlsOn)
	if err != nil {
		return err
	}
	defer s.Close()
	line, err := s.readLine("greeting")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "* OK") && !strings.HasPrefix(line, "* PREAUTH") {
		return errorf("%s: greeting %s", s.label, quoteLine(line))
	}
	if t.Login != "" && !strings.HasPrefix(line, "* PREAUTH") {
		if err := s.send("a1 LOGIN " + imapQuote(t.Login) + " " + imapQuote(t.Passwd)); err != nil {
			return err
		}
		for {
			line, err := s.readLine("reply to LOGIN")
			if err != nil {
				return err
			}
			if strings.HasPrefix(line, "* ") || strings.HasPrefix(line, "+") {
				continue
			}
			if strings.HasPrefix(line, "a1 OK") {
				break
			}
			return errorf("%s: reply to LOGIN: %s", s.label, quoteLine(line))
		}
	}
	s.send("a2 LOGOUT")
	return nil
}

// imapQuote makes an IMAP quoted string.
func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
