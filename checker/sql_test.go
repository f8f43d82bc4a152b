package checker

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// TestSQLNeedsLoginAndRequest: as in ldirectord, an empty (or "0", false to Perl) login or request fails
// with its error line before anything is sent.
func TestSQLNeedsLoginAndRequest(t *testing.T) {
	const msg = "Error: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding 10.0.0.2."
	for _, tc := range []struct{ login, request, want string }{
		{"mon", "/SELECT 1", ""},
		{"", "/SELECT 1", msg},
		{"0", "/SELECT 1", msg},
		{"mon", "/", msg},
		{"mon", "", msg},
		{"mon", "/0", msg},
		{"mon", "SELECT 1", ""},
	} {
		q, err := sqlQuery(&Target{RIP: "10.0.0.2", Login: tc.login, Request: tc.request})
		wantErr(t, err, tc.want)
		if err == nil && q != "SELECT 1" {
			t.Errorf("login %q request %q: query %q, want SELECT 1", tc.login, tc.request, q)
		}
	}
	// The checks themselves: no connection is tried (the port is closed anyway).
	for _, c := range []Checker{MySQL, PgSQL} {
		tg := closedPort(t, "tcp4")
		tg.RIP = "10.0.0.2"
		wantErr(t, c.Check(context.Background(), tg), msg)
	}
}

func TestHideSecret(t *testing.T) {
	for _, tc := range []struct{ msg, secret, want string }{
		{`failed for "Pw-1234" at 10.0.0.2`, "Pw-1234", `failed for "********" at 10.0.0.2`},
		{"abc abc", "abc", "abc abc"}, // too short to hide without mangling the words
		{"no secret here", "Pw-1234", "no secret here"},
		{"x", "", "x"},
	} {
		if got := hideSecret(tc.msg, tc.secret); got != tc.want {
			t.Errorf("hideSecret(%q, %q) = %q, want %q", tc.msg, tc.secret, got, tc.want)
		}
	}
}

// TestSQLNotADatabase: a peer that is no database server, or closes at once, is a failed check with one
// line that says so; no panic, no goroutine left.
func TestSQLNotADatabase(t *testing.T) {
	noLeak(t)
	for _, tc := range []struct {
		name   string
		check  Checker
		answer string
		want   string
	}{
		{"mysql", MySQL, "HTTP/1.1 400 Bad Request\r\n\r\n", "login failed: connection closed by peer"},
		{"mysql", MySQL, "", "login failed: connection closed by peer"},
		{"pgsql", PgSQL, "HTTP/1.1 400 Bad Request\r\n\r\n",
			"login failed: failed to receive message: invalid body length: expected at most 1073741822, but got 1414811691"},
		{"pgsql", PgSQL, "", "login failed: connection closed by peer"},
	} {
		l := listen(t, "tcp4")
		serve(t, l, func(c net.Conn) {
			c.Write([]byte(tc.answer))
			// Read what the client says until it gives up or 200 ms pass, so that the close is a FIN:
			// closing with unread data would be a reset, and the error would depend on timing.
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			io.Copy(io.Discard, c)
		})
		tg := target(t, l.Addr())
		tg.Login, tg.Request = "ld", "/SELECT 1"
		wantErr(t, tc.check.Check(timeout(t, 10*time.Second), tg), tc.name+" "+l.Addr().String()+": "+tc.want)
	}
}
