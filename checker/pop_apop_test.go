package checker

import (
	"net"
	"testing"
	"time"
)

// TestPOPAPOP: APOP when the greeting carries a timestamp, with the digest of RFC 1939's own example, and
// USER/PASS when the server refuses it, as ldirectord's Mail::POP3Client.
func TestPOPAPOP(t *testing.T) {
	noLeak(t)
	const greeting = "S: +OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"
	l, errs := scripted(t, "tcp4", greeting, "C: APOP mrose c4c9334bac560ecc979e58001b3e22fb", "S: +OK maildrop has 1 message (369 octets)", "C: QUIT")
	tg := target(t, l.Addr())
	tg.Login, tg.Passwd = "mrose", "tanstaaf"
	wantErr(t, POP.Check(timeout(t, 5*time.Second), tg), "")
	noServerErrors(t, errs)

	l, errs = scripted(t, "tcp4", greeting, "C: APOP mrose *", "S: -ERR APOP not allowed for this user",
		"C: USER mrose", "S: +OK", "C: PASS tanstaaf", "S: +OK logged in", "C: QUIT")
	tg = target(t, l.Addr())
	tg.Login, tg.Passwd = "mrose", "tanstaaf"
	wantErr(t, POP.Check(timeout(t, 5*time.Second), tg), "")
	noServerErrors(t, errs)

	l, _ = scripted(t, "tcp4", greeting, "C: APOP mrose *", "S: -ERR authentication failed", "C: USER mrose", "S: +OK",
		"C: PASS tanstaaf", "S: -ERR authentication failed")
	tg = target(t, l.Addr())
	tg.Login, tg.Passwd = "mrose", "tanstaaf"
	wantErr(t, POP.Check(timeout(t, 5*time.Second), tg), "pop "+l.Addr().String()+": reply to PASS: -ERR authentication failed")

	// A server that hangs up after refusing APOP: its refusal is the reason.
	l, _ = scripted(t, "tcp4", greeting, "C: APOP mrose *", "S: -ERR go away")
	tg = target(t, l.Addr())
	tg.Login, tg.Passwd = "mrose", "tanstaaf"
	wantErr(t, POP.Check(timeout(t, 5*time.Second), tg), "pop "+l.Addr().String()+": reply to APOP: -ERR go away")

	// A greeting without a timestamp, or with something that is not one: USER/PASS.
	for _, g := range []string{"S: +OK ready", "S: +OK ready <no-at-sign>"} {
		var l net.Listener
		l, errs = scripted(t, "tcp4", g, "C: USER mrose", "S: +OK", "C: PASS tanstaaf", "S: +OK", "C: QUIT")
		tg = target(t, l.Addr())
		tg.Login, tg.Passwd = "mrose", "tanstaaf"
		wantErr(t, POP.Check(timeout(t, 5*time.Second), tg), "")
		noServerErrors(t, errs)
	}
}
