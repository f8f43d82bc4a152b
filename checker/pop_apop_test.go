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
		"C: CAPA", "S: +OK", "S: USER", "S: SASL PLAIN", "S: .", "C: USER mrose", "S: +OK", "C: PASS tanstaaf", "S: +OK logged in", "C: QUIT")
	tg = target(t, l.Addr())
	tg.Login, tg.Passwd = "mrose", "tanstaaf"
	wantErr(t, POP.Check(timeout(t, 5*time.Second), tg), "")
	noServerErrors(t, errs)

	l, _ = scripted(t, "tcp4", greeting, "C: APOP mrose *", "S: -ERR authentication failed", "C: CAPA", "S: -ERR no CAPA",
		"C: USER mrose", "S: +OK", "C: PASS tanstaaf", "S: -ERR authentication failed")
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
		l, errs = scripted(t, "tcp4", g, "C: CAPA", "S: -ERR", "C: USER mrose", "S: +OK", "C: PASS tanstaaf", "S: +OK", "C: QUIT")
		tg = target(t, l.Addr())
		tg.Login, tg.Passwd = "mrose", "tanstaaf"
		wantErr(t, POP.Check(timeout(t, 5*time.Second), tg), "")
		noServerErrors(t, errs)
	}
}

// TestPOPCRAMMD5: AUTH CRAM-MD5 when CAPA offers it and APOP is not offered or refused, with the exchange
// of RFC 2195's own example; USER/PASS when CRAM-MD5 is refused; the refusal as the reason when the server
// then hangs up.
func TestPOPCRAMMD5(t *testing.T) {
	noLeak(t)
	const (
		challenge = "S: + PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
		response  = "C: dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
	)
	capa := []string{"C: CAPA", "S: +OK Capability list follows", "S: TOP", "S: SASL PLAIN CRAM-MD5", "S: USER", "S: ."}
	login := func(l net.Listener) *Target {
		tg := target(t, l.Addr())
		tg.Login, tg.Passwd = "tim", "tanstaaftanstaaf"
		return tg
	}
	script := func(s ...string) []string { return s }

	l, errs := scripted(t, "tcp4", append(append(script("S: +OK ready"), capa...), "C: AUTH CRAM-MD5", challenge, response,
		"S: +OK logged in", "C: QUIT")...)
	wantErr(t, POP.Check(timeout(t, 5*time.Second), login(l)), "")
	noServerErrors(t, errs)

	// After a refused APOP too.
	l, errs = scripted(t, "tcp4", append(append(script("S: +OK ready <1.2@x>", "C: APOP tim *", "S: -ERR no"), capa...),
		"C: AUTH CRAM-MD5", challenge, response, "S: +OK", "C: QUIT")...)
	wantErr(t, POP.Check(timeout(t, 5*time.Second), login(l)), "")
	noServerErrors(t, errs)

	// CRAM-MD5 refused: USER/PASS.
	l, errs = scripted(t, "tcp4", append(append(script("S: +OK ready"), capa...), "C: AUTH CRAM-MD5", challenge, response,
		"S: -ERR [AUTH] Authentication failed.", "C: USER tim", "S: +OK", "C: PASS tanstaaftanstaaf", "S: +OK", "C: QUIT")...)
	wantErr(t, POP.Check(timeout(t, 5*time.Second), login(l)), "")
	noServerErrors(t, errs)

	// Refused, then the server hangs up: the refusal is the reason.
	l, _ = scripted(t, "tcp4", append(append(script("S: +OK ready"), capa...), "C: AUTH CRAM-MD5", "S: -ERR mechanism disabled")...)
	wantErr(t, POP.Check(timeout(t, 5*time.Second), login(l)), "pop "+l.Addr().String()+": reply to AUTH CRAM-MD5: -ERR mechanism disabled")

	// A challenge that is not base64: the exchange is cancelled, USER/PASS follows.
	l, errs = scripted(t, "tcp4", append(append(script("S: +OK ready"), capa...), "C: AUTH CRAM-MD5", "S: + !!!", "C: *",
		"S: -ERR cancelled", "C: USER tim", "S: +OK", "C: PASS tanstaaftanstaaf", "S: +OK", "C: QUIT")...)
	wantErr(t, POP.Check(timeout(t, 5*time.Second), login(l)), "")
	noServerErrors(t, errs)
}
