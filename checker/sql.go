package checker

import (
	"strings"
)

// sqlQuery returns the query of a SQL check (request without its leading '/'), or ldirectord's own error
// line when login or request is empty. Perl tests both for truth, so "0" counts as empty too.
func sqlQuery(t *Target) (string, error) {
	q := strings.TrimPrefix(t.Request, "/")
	if perlFalse(t.Login) || perlFalse(q) {
		return "", errorf("Error: Must specify a login and request string for MySQL, Oracle and PostgreSQL "+
			"checks. Not adding %s.", t.RIP)
	}
	return q, nil
}

// perlFalse is Perl's idea of a false string.
func perlFalse(s string) bool { return s == "" || s == "0" }

// minScrubLen is the shortest password hideSecret hides: shorter ones would turn words of the message into
// stars, and no driver is known to put the password into an error in the first place.
const minScrubLen = 4

// hideSecret replaces every occurrence of secret in msg by stars, so that a driver that quotes its
// connection settings cannot put a password into a log line, the monitorfile or `show`.
func hideSecret(msg, secret string) string {
	if len(secret) < minScrubLen {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "********")
}

// oneLine turns the line breaks some driver errors have into spaces.
var oneLine = strings.NewReplacer("\r\n", " ", "\n\t", " ", "\n", " ", "\r", " ", "\t", " ")

// sqlError is the error of a failed SQL check: label, what failed and why, on one line, with the password
// hidden.
func sqlError(t *Target, err error, format string, args ...any) error {
	e := failf(err, format, args...).(*checkError)
	e.msg = oneLine.Replace(hideSecret(e.msg, t.Passwd))
	return e
}

// Misconfigured returns the error every check of t fails with before anything is sent, whatever the
// server does: for mysql and pgsql without a login or a request, ldirectord's own error line. It is nil
// for every other target. The daemon reports it when it loads the config.
func Misconfigured(t *Target) error {
	switch t.Service {
	case "mysql", "pgsql":
		_, err := sqlQuery(t)
		return err
	}
	return nil
}
