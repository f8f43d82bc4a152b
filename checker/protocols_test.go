package checker

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func TestSimpleTCP(t *testing.T) {
	noLeak(t)
	got := make(chan string, 4)
	l := listen(t, "tcp4")
	serve(t, l, func(c net.Conn) {
		b, _ := io.ReadAll(c) // the check closes its sending side
		got <- string(b)
		io.WriteString(c, "HELLO\nSTATUS OK\n")
	})
	tg := target(t, l.Addr())
	tg.Request = `/PING\nSTATUS`
	tg.Receive = "^STATUS OK$"
	wantErr(t, SimpleTCP.Check(timeout(t, time.Second), tg), "")
	if s := <-got; s != "PING\nSTATUS" {
		t.Errorf("sent %q, want the request without its '/' and with \\n as a line feed", s)
	}
	tg.Receive = "^HELLO OK"
	wantErr(t, SimpleTCP.Check(timeout(t, time.Second), tg),
		`simpletcp tcp `+l.Addr().String()+`: connection closed after 2 lines, none matches "^HELLO OK"`)
	<-got
	tg.Receive = ""
	wantErr(t, SimpleTCP.Check(timeout(t, time.Second), tg), "")
	<-got

	silent := listen(t, "tcp6")
	block := make(chan struct{})
	serve(t, silent, func(c net.Conn) { io.ReadAll(c); <-block })
	t.Cleanup(func() { close(block) })
	st := target(t, silent.Addr())
	st.Receive = "OK"
	var err error
	d := elapsed(func() { err = SimpleTCP.Check(timeout(t, 200*time.Millisecond), st) })
	wantErr(t, err, `simpletcp tcp `+silent.Addr().String()+`: 0 lines read, none matches "OK": timed out`)
	withinDeadline(t, d, 200*time.Millisecond)

	refused := closedPort(t, "tcp4")
	wantErr(t, SimpleTCP.Check(timeout(t, time.Second), refused), "simpletcp tcp "+hostPort(refused.Addr, refused.Port)+": connection refused")
}

func TestSimpleTCPOverUDP(t *testing.T) {
	noLeak(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		b := make([]byte, 100)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			pc.WriteTo([]byte("got "+string(b[:n])+"\nbye\n"), from)
		}
	}()
	tg := target(t, pc.LocalAddr())
	tg.UDP, tg.Request, tg.Receive = true, "/ping", "^got ping$"
	wantErr(t, SimpleTCP.Check(timeout(t, time.Second), tg), "")
}

func TestNNTP(t *testing.T) {
	noLeak(t)
	l, _ := scripted(t, "tcp4", "S: 200 news.example.org ready")
	wantErr(t, NNTP.Check(timeout(t, time.Second), target(t, l.Addr())), "")
	l, _ = scripted(t, "tcp6", "S: 400 service temporarily unavailable")
	wantErr(t, NNTP.Check(timeout(t, time.Second), target(t, l.Addr())),
		"nntp "+l.Addr().String()+": banner 400 service temporarily unavailable")
	l, _ = scripted(t, "tcp4", "C: never")
	var err error
	d := elapsed(func() { err = NNTP.Check(timeout(t, 200*time.Millisecond), target(t, l.Addr())) })
	wantErr(t, err, "nntp "+l.Addr().String()+": reading banner: timed out")
	withinDeadline(t, d, 200*time.Millisecond)
}

func TestSMTP(t *testing.T) {
	noLeak(t)
	l, errs := scripted(t, "tcp4", "S: 220-mail.example.org ESMTP", "S: 220 ready",
		"C: EHLO localhost.localdomain", "S: 250-mail.example.org", "S: 250 PIPELINING", "C: QUIT", "S: 221 bye")
	wantErr(t, SMTP.Check(timeout(t, time.Second), target(t, l.Addr())), "")
	l, errs2 := scripted(t, "tcp6", "S: 220 old", "C: EHLO localhost.localdomain", "S: 502 unknown command",
		"C: HELO localhost.localdomain", "S: 250 hi", "C: QUIT")
	wantErr(t, SMTP.Check(timeout(t, time.Second), target(t, l.Addr())), "")
	l, _ = scripted(t, "tcp4", "S: 554 no service")
	wantErr(t, SMTP.Check(timeout(t, time.Second), target(t, l.Addr())), "smtp "+l.Addr().String()+": banner: 554 no service")
	// The server reads the HELO before it hangs up, so the check reads the close (a HELO sent into a
	// closed socket would make the answer a reset or the close, as the packets race).
	l, _ = scripted(t, "tcp4", "S: 220 ok", "C: EHLO localhost.localdomain", "S: 421 shutting down", "C: HELO localhost.localdomain")
	wantErr(t, SMTP.Check(timeout(t, time.Second), target(t, l.Addr())),
		"smtp "+l.Addr().String()+": reading reply to HELO: connection closed by peer")
	l, _ = scripted(t, "tcp4", "S: garbage")
	wantErr(t, SMTP.Check(timeout(t, time.Second), target(t, l.Addr())), "smtp "+l.Addr().String()+": banner: bad reply garbage")
	noServerErrors(t, errs)
	noServerErrors(t, errs2)
}

func TestPOPAndIMAP(t *testing.T) {
	noLeak(t)
	l, errs := scripted(t, "tcp4", "S: +OK POP3 ready", "C: CAPA", "S: -ERR unknown command", "C: USER joe", "S: +OK", "C: PASS secret", "S: +OK logged in", "C: QUIT")
	tg := target(t, l.Addr())
	tg.Login, tg.Passwd = "joe", "secret"
	wantErr(t, POP.Check(timeout(t, time.Second), tg), "")
	noServerErrors(t, errs)
	l, _ = scripted(t, "tcp4", "S: +OK POP3 ready", "C: CAPA", "S: +OK", "S: USER", "S: .", "C: USER joe", "S: +OK", "C: PASS secret", "S: -ERR invalid password")
	tg = target(t, l.Addr())
	tg.Login, tg.Passwd = "joe", "secret"
	wantErr(t, POP.Check(timeout(t, time.Second), tg), "pop "+l.Addr().String()+": reply to PASS: -ERR invalid password")
	l, _ = scripted(t, "tcp6", "S: +OK ready", "C: QUIT")
	wantErr(t, POP.Check(timeout(t, time.Second), target(t, l.Addr())), "") // no login: the banner decides
	// ldirectord's pop check without login is healthy even when nothing listens; ours is not.
	refused := closedPort(t, "tcp4")
	wantErr(t, POP.Check(timeout(t, time.Second), refused), "pop "+hostPort(refused.Addr, refused.Port)+": connection refused")

	// IMAP on the configured port (ldirectord's module always uses 143).
	l, errs = scripted(t, "tcp4", "S: * OK IMAP4rev1 ready", `C: a1 LOGIN "joe" "se\\cr\"et"`,
		"S: * CAPABILITY IMAP4rev1", "S: a1 OK LOGIN completed", "C: a2 LOGOUT", "S: * BYE")
	tg = target(t, l.Addr())
	tg.Login, tg.Passwd = "joe", `se\cr"et`
	wantErr(t, IMAP.Check(timeout(t, time.Second), tg), "")
	noServerErrors(t, errs)
	l, _ = scripted(t, "tcp4", "S: * OK ready", "C: a1 LOGIN *", "S: a1 NO [AUTHENTICATIONFAILED] invalid")
	tg = target(t, l.Addr())
	tg.Login = "joe"
	wantErr(t, IMAP.Check(timeout(t, time.Second), tg), "imap "+l.Addr().String()+": reply to LOGIN: a1 NO [AUTHENTICATIONFAILED] invalid")
	l, _ = scripted(t, "tcp6", "S: * BYE too many connections")
	wantErr(t, IMAP.Check(timeout(t, time.Second), target(t, l.Addr())), "imap "+l.Addr().String()+": greeting * BYE too many connections")
}

func TestFTP(t *testing.T) {
	noLeak(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		data := listen(t, network)
		dport := data.Addr().(*net.TCPAddr).Port
		serve(t, data, func(c net.Conn) { io.WriteString(c, "Welcome to the archive\n") })
		pasv := fmt.Sprintf("S: 227 Entering Passive Mode (10,9,9,9,%d,%d)", dport>>8, dport&0xff) // its address is ignored
		if network == "tcp6" {
			pasv = fmt.Sprintf("S: 229 Entering Extended Passive Mode (|||%d|)", dport)
		}
		cmd := "C: PASV"
		if network == "tcp6" {
			cmd = "C: EPSV"
		}
		l, errs := scripted(t, network, "S: 220 FTP ready", "C: USER anonymous", "S: 331 password please",
			"C: PASS ldirectord@", "S: 230 logged in", "C: TYPE I", "S: 200 binary", cmd, pasv,
			"C: RETR /welcome.msg", "S: 150 opening", "S: 226 done", "C: QUIT", "S: 221 bye")
		tg := target(t, l.Addr())
		tg.Request, tg.Receive = "/welcome.msg", "Welcome"
		wantErr(t, FTP.Check(timeout(t, time.Second), tg), "")
		noServerErrors(t, errs)
	}
	l, _ := scripted(t, "tcp4", "S: 220 FTP ready", "C: USER joe", "S: 331 password please", "C: PASS x", "S: 530 Login incorrect")
	tg := target(t, l.Addr())
	tg.Login, tg.Passwd = "joe", "x"
	wantErr(t, FTP.Check(timeout(t, time.Second), tg), "ftp "+l.Addr().String()+": reply to PASS: 530 Login incorrect")
	// No file to fetch: a login is the check. ldirectord's empty-receive ftp check is always healthy.
	l, _ = scripted(t, "tcp4", "S: 220 FTP ready", "C: USER anonymous", "S: 230 welcome", "C: QUIT")
	wantErr(t, FTP.Check(timeout(t, time.Second), target(t, l.Addr())), "")
	refused := closedPort(t, "tcp4")
	wantErr(t, FTP.Check(timeout(t, time.Second), refused), "ftp "+hostPort(refused.Addr, refused.Port)+": connection refused")
}

// dnsServer answers A queries for www.example.org. with 192.0.2.10 and PTR queries with host.example.org.
func dnsAnswer(q []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil
	}
	qs, _ := p.AllQuestions()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	b.StartQuestions()
	for _, q := range qs {
		b.Question(q)
	}
	b.StartAnswers()
	for _, q := range qs {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		switch {
		case q.Type == dnsmessage.TypeA && q.Name.String() == "www.example.org.":
			b.AResource(rh, dnsmessage.AResource{A: [4]byte{192, 0, 2, 10}})
		case q.Type == dnsmessage.TypePTR && q.Name.String() == "10.2.0.192.in-addr.arpa.":
			b.PTRResource(rh, dnsmessage.PTRResource{PTR: dnsmessage.MustNewName("host.example.org.")})
		}
	}
	out, _ := b.Finish()
	return out
}

func TestDNS(t *testing.T) {
	noLeak(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		b := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			pc.WriteTo(dnsAnswer(b[:n]), from)
		}
	}()
	l := listen(t, "tcp6")
	serve(t, l, func(c net.Conn) {
		var n [2]byte
		io.ReadFull(c, n[:])
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		io.ReadFull(c, q)
		a := dnsAnswer(q)
		c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...))
	})
	udp := target(t, pc.LocalAddr())
	udp.UDP = true
	tcp := target(t, l.Addr())
	for _, tg := range []*Target{udp, tcp} {
		proto := "tcp "
		if tg.UDP {
			proto = "udp "
		}
		tg.Request, tg.Receive = "/www.example.org", `^192\.0\.2\.10$`
		wantErr(t, DNS.Check(timeout(t, time.Second), tg), "")
		tg.Receive = ""
		wantErr(t, DNS.Check(timeout(t, time.Second), tg), "") // any answer (ldirectord: always down)
		tg.Receive = `^10\.`
		wantErr(t, DNS.Check(timeout(t, time.Second), tg),
			"dns "+proto+hostPort(tg.Addr, tg.Port)+` A www.example.org: answer 192.0.2.10 does not match "^10\\."`)
		tg.Request, tg.Receive = "/192.0.2.10", "^host.example.org$"
		wantErr(t, DNS.Check(timeout(t, time.Second), tg), "")
		tg.Request, tg.Receive = "/missing.example.org", ""
		wantErr(t, DNS.Check(timeout(t, time.Second), tg), "dns "+proto+hostPort(tg.Addr, tg.Port)+" A missing.example.org: no A or PTR answer")
	}
	silent, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer silent.Close()
	st := target(t, silent.LocalAddr())
	st.UDP, st.Request = true, "/www.example.org"
	var d time.Duration
	d = elapsed(func() { err = DNS.Check(timeout(t, 200*time.Millisecond), st) })
	wantErr(t, err, "dns udp "+silent.LocalAddr().String()+" A www.example.org: timed out")
	withinDeadline(t, d, 200*time.Millisecond)
}

func TestSIP(t *testing.T) {
	noLeak(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	reqs := make(chan string, 4)
	status := make(chan string, 4)
	go func() {
		b := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			reqs <- string(b[:n])
			pc.WriteTo([]byte(<-status+"\r\nVia: x\r\n\r\n"), from)
		}
	}()
	tg := target(t, pc.LocalAddr())
	tg.UDP, tg.Login = true, "ldirectord@director"
	status <- "SIP/2.0 200 OK"
	wantErr(t, SIP.Check(timeout(t, time.Second), tg), "")
	req := <-reqs
	if !strings.HasPrefix(req, "OPTIONS sip:ldirectord@director SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:") ||
		!strings.Contains(req, "\r\nCSeq: 63104 OPTIONS\r\n") || !strings.HasSuffix(req, "Content-Length: 0\r\n\r\n") {
		t.Errorf("request %q", req)
	}
	status <- "SIP/2.0 401 Unauthorized"
	wantErr(t, SIP.Check(timeout(t, time.Second), tg), "sip udp "+pc.LocalAddr().String()+": OPTIONS: SIP/2.0 401 Unauthorized")
	<-reqs

	l, errs := scripted(t, "tcp4", "C: OPTIONS sip: SIP/2.0", "C: Via: SIP/2.0/TCP *", "S: SIP/2.0 200 OK", "S: ")
	wantErr(t, SIP.Check(timeout(t, time.Second), target(t, l.Addr())), "")
	noServerErrors(t, errs)
}

func TestRADIUS(t *testing.T) {
	noLeak(t)
	const secret = "s3cret"
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		b := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			req := b[:n]
			attrs := map[byte][]byte{}
			for a := req[20:]; len(a) >= 2 && int(a[1]) <= len(a); a = a[a[1]:] {
				attrs[a[0]] = a[2:a[1]]
			}
			// Unhide the password (RFC 2865 5.2).
			hidden := attrs[2]
			pw := make([]byte, len(hidden))
			prev := req[4:20]
			for i := 0; i < len(hidden); i += 16 {
				sum := md5.Sum(append([]byte(secret), prev...))
				for j := range 16 {
					pw[i+j] = hidden[i+j] ^ sum[j]
				}
				prev = hidden[i : i+16]
			}
			code := byte(radiusAccessReject)
			if string(attrs[1]) == "joe" && strings.TrimRight(string(pw), "\x00") == "pw" && len(attrs[4]) == 4 {
				code = radiusAccessAccept
			}
			resp := []byte{code, req[1], 0, 20}
			h := md5.New()
			h.Write(resp[:4])
			h.Write(req[4:20])
			h.Write([]byte(secret))
			resp = append(resp, h.Sum(nil)...)
			pc.WriteTo(resp, from)
		}
	}()
	tg := target(t, pc.LocalAddr())
	tg.Login, tg.Passwd, tg.Secret = "joe", "pw", secret
	wantErr(t, RADIUS.Check(timeout(t, time.Second), tg), "")
	tg.Passwd = "wrong"
	wantErr(t, RADIUS.Check(timeout(t, time.Second), tg), "radius "+pc.LocalAddr().String()+": Access-Reject")
	tg.Passwd, tg.Secret = "pw", "other"
	wantErr(t, RADIUS.Check(timeout(t, time.Second), tg), "radius "+pc.LocalAddr().String()+": answer has a bad authenticator (wrong secret?)")
	pc.Close()
	wantErr(t, RADIUS.Check(timeout(t, time.Second), tg), "radius "+pc.LocalAddr().String()+": Access-Request: connection refused")
}
