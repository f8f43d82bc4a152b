package checker

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"io"
	"regexp"
	"strings"
)

// POP and POPS are the negotiate checks of service=pop and pops (POP3 over TLS, certificate not
// verified): connect, read the +OK greeting; when login is set, log in; then QUIT. Without login the
// greeting alone decides (ldirectord is then always healthy, even when nothing listens).
//
// The login is the one of ldirectord's Mail::POP3Client: APOP when the greeting carries an APOP timestamp
// (`<...@...>`, RFC 1939 section 7); when the server offers no APOP or refuses it, AUTH CRAM-MD5 (RFC
// 2195) when CAPA offers it; when it offers neither or refuses them, USER and PASS. Unlike the Perl module,
// a refused APOP really goes on to the next step (the module sends NOOP, which servers refuse before a
// login, and gives up).
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

// popLogin logs in as Mail::POP3Client does: APOP when the greeting offers it; then, if APOP is not
// offered or is refused, AUTH CRAM-MD5 when CAPA offers it; then, if that is not offered or is refused,
// USER and PASS. The error is that of the last step, or the last refusal when the server then hangs up.
func (s *session) popLogin(greeting, login, passwd string) error {
	var refusal error
	if ts := apopTimestamp.FindString(greeting); ts != "" {
		digest := md5.Sum([]byte(ts + passwd))
		line, err := s.popOK("APOP "+login+" "+hex.EncodeToString(digest[:]), "reply to APOP")
		if err == nil {
			return nil
		}
		if line == "" {
			return err // no answer at all
		}
		refusal = err
	}
	switch line, offered, err := s.popCRAMMD5(login, passwd); {
	case offered && err == nil:
		return nil
	case err != nil && line == "":
		return orRefusal(err, refusal)
	case err != nil:
		refusal = err
	}
	if line, err := s.popOK("USER "+login, "reply to USER"); err != nil {
		if line == "" {
			return orRefusal(err, refusal)
		}
		return err
	}
	_, err := s.popOK("PASS "+passwd, "reply to PASS")
	return err
}

// orRefusal is the server's last refusal, when there was one, instead of err, the failure to get an
// answer after it (a server may hang up after a refused login).
func orRefusal(err, refusal error) error {
	if refusal != nil {
		return refusal
	}
	return err
}

// popCRAMMD5 logs in with AUTH CRAM-MD5 (RFC 2195) when CAPA offers it, as Mail::POP3Client does. offered
// is false when it is not offered (CAPA refused, or no "SASL ... CRAM-MD5" line). line is the server's
// last line, "" when it did not answer.
func (s *session) popCRAMMD5(login, passwd string) (line string, offered bool, err error) {
	line, err = s.popOK("CAPA", "reply to CAPA")
	if err != nil {
		if line == "" {
			return "", false, err
		}
		return line, false, nil // no CAPA: nothing is offered
	}
	for {
		if line, err = s.readLine("reply to CAPA"); err != nil {
			return "", false, err
		}
		if line == "." {
			break
		}
		offered = offered || cramMD5Capa.MatchString(line)
	}
	if !offered {
		return line, false, nil
	}
	if err := s.send("AUTH CRAM-MD5"); err != nil {
		return "", true, err
	}
	if line, err = s.readLine("reply to AUTH CRAM-MD5"); err != nil {
		return "", true, err
	}
	challenge, ok := strings.CutPrefix(line, "+ ")
	if !ok {
		return line, true, errorf("%s: reply to AUTH CRAM-MD5: %s", s.label, quoteLine(line))
	}
	c, err := base64.StdEncoding.DecodeString(strings.TrimSpace(challenge))
	if err != nil {
		// Cancel the exchange (RFC 5034) and read the server's -ERR to it.
		if reply, err := s.popOK("*", "reply to the cancelled AUTH CRAM-MD5"); reply == "" && err != nil {
			return "", true, err
		}
		return line, true, errorf("%s: reply to AUTH CRAM-MD5: bad challenge %s", s.label, quoteLine(line))
	}
	mac := hmac.New(md5.New, []byte(passwd))
	mac.Write(c)
	response := base64.StdEncoding.EncodeToString([]byte(login + " " + hex.EncodeToString(mac.Sum(nil))))
	if _, err := io.WriteString(s.rw, response+"\r\n"); err != nil {
		return "", true, failf(err, "%s: sending the CRAM-MD5 response", s.label)
	}
	line, err = s.popOK("", "reply to the CRAM-MD5 response")
	return line, true, err
}

// cramMD5Capa is Mail::POP3Client's test of a CAPA line for CRAM-MD5.
var cramMD5Capa = regexp.MustCompile(`^SASL.*?\sCRAM-MD5\b`)

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
