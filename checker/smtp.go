package checker

import "context"

// SMTP is the negotiate check of service=smtp and submission: connect, read the 220 greeting, send
// `EHLO localhost.localdomain` (and `HELO localhost.localdomain` if EHLO is refused), then QUIT. Healthy
// when the greeting and EHLO or HELO are accepted (2xx), as with ldirectord's Net::SMTP. No STARTTLS, no
// AUTH.
var SMTP Checker = Func(func(ctx context.Context, t *Target) error {
	s, err := openSession(ctx, t, "smtp", false)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.expect("", 2); err != nil {
		return err
	}
	if line, err := s.expect("EHLO localhost.localdomain", 2); err != nil {
		if line == "" {
			return err // no answer at all
		}
		if _, err := s.expect("HELO localhost.localdomain", 2); err != nil {
			return err
		}
	}
	s.send("QUIT") // courtesy: the verdict is in
	return nil
})
