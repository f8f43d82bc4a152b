package checker

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// The requests the check sends, byte for byte (RFC 4511, BER definite lengths).
const (
	anonymousBind = "\x30\x0c\x02\x01\x01" + "\x60\x07\x02\x01\x03\x04\x00\x80\x00"
	adminBind     = "\x30\x2c\x02\x01\x01" + "\x60\x27\x02\x01\x03" +
		"\x04\x1acn=admin,dc=example,dc=org" + "\x80\x06secret"
	// base "", scope baseObject, derefFindingBaseObj, sizeLimit 2, timeLimit 0, typesOnly false,
	// (objectClass=*), attributes "1.1".
	rootDSESearch = "\x30\x2a\x02\x01\x02" + "\x63\x25\x04\x00\x0a\x01\x00\x0a\x01\x02\x02\x01\x02\x02\x01\x00" +
		"\x01\x01\x00\x87\x0bobjectClass\x30\x05\x04\x031.1"
	exampleSearch = "\x30\x3b\x02\x01\x02" + "\x63\x36\x04\x11dc=example,dc=org\x0a\x01\x00\x0a\x01\x02" +
		"\x02\x01\x02\x02\x01\x00\x01\x01\x00\x87\x0bobjectClass\x30\x05\x04\x031.1"
	unbind = "\x30\x05\x02\x01\x03\x42\x00"
	closed = "<connection closed>"
)

// tlvT encodes one BER element (the test's own encoder, independent of the checker's).
func tlvT(tag byte, parts ...string) string {
	v := strings.Join(parts, "")
	switch n := len(v); {
	case n < 0x80:
		return string([]byte{tag, byte(n)}) + v
	case n < 0x100:
		return string([]byte{tag, 0x81, byte(n)}) + v
	default:
		return string([]byte{tag, 0x82, byte(n >> 8), byte(n)}) + v
	}
}

// splitT splits the first element off s (short or 0x81/0x82 lengths, as the check sends them).
func splitT(s string) (tag byte, val, rest string) {
	if len(s) < 2 {
		return 0, "", ""
	}
	n, h := int(s[1]), 2
	switch s[1] {
	case 0x81:
		n, h = int(s[2]), 3
	case 0x82:
		n, h = int(s[2])<<8|int(s[3]), 4
	}
	if h+n > len(s) {
		return 0, "", ""
	}
	return s[0], s[h : h+n], s[h+n:]
}

// readMsgT reads one whole LDAPMessage off the wire.
func readMsgT(br *bufio.Reader) (string, error) {
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return "", err
	}
	n := int(hdr[1])
	if n&0x80 != 0 {
		lb := make([]byte, n&0x7f)
		if _, err := io.ReadFull(br, lb); err != nil {
			return "", err
		}
		hdr = append(hdr, lb...)
		n = 0
		for _, b := range lb {
			n = n<<8 | int(b)
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return "", err
	}
	return string(hdr) + string(body), nil
}

func resultT(code byte, diag string) string {
	return tlvT(0x0a, string([]byte{code})) + tlvT(0x04) + tlvT(0x04, diag)
}

// ldapTestServer is an LDAPv3 server: a simple bind succeeds when anonymous or as user with password
// (else invalidCredentials); a search answers one searchResEntry per DN in entries, then a searchResDone
// with code and diag (unless silentSearch); an unbind ends the connection. Every message received, and
// the end of each connection, is reported on got.
type ldapTestServer struct {
	user, password string
	entries        []string
	code           byte
	diag           string
	silentSearch   bool
	got            chan string
}

func (s *ldapTestServer) start(t *testing.T, network string, tlsConf *tls.Config) *Target {
	t.Helper()
	l := listen(t, network)
	tg := target(t, l.Addr())
	if tlsConf != nil {
		l = tls.NewListener(l, tlsConf)
	}
	s.got = make(chan string, 64)
	serve(t, l, s.handle)
	return tg
}

func (s *ldapTestServer) handle(c net.Conn) {
	defer func() { s.got <- closed }()
	br := bufio.NewReader(c)
	for {
		msg, err := readMsgT(br)
		if err != nil {
			return
		}
		s.got <- msg
		_, body, _ := splitT(msg)
		_, id, rest := splitT(body)
		op, opv, _ := splitT(rest)
		reply := func(op byte, content string) {
			io.WriteString(c, tlvT(0x30, tlvT(0x02, id), tlvT(op, content)))
		}
		switch op {
		case 0x60:
			_, _, r := splitT(opv) // version
			_, name, r := splitT(r)
			_, pw, _ := splitT(r)
			if name == "" && pw == "" || name == s.user && pw == s.password {
				reply(0x61, resultT(0, ""))
			} else {
				reply(0x61, resultT(49, "Invalid credentials"))
			}
		case 0x63:
			if s.silentSearch {
				continue
			}
			for _, dn := range s.entries {
				reply(0x64, tlvT(0x04, dn)+tlvT(0x30, tlvT(0x30, tlvT(0x04, "objectClass"), tlvT(0x31, tlvT(0x04, "top")))))
			}
			reply(0x65, resultT(s.code, s.diag))
		case 0x42:
			return
		}
	}
}

// wantSeen fails unless the server received exactly these messages (closed: the client hung up).
func (s *ldapTestServer) wantSeen(t *testing.T, want ...string) {
	t.Helper()
	for i, w := range want {
		select {
		case got := <-s.got:
			if got != w {
				t.Errorf("message %d the server got:\n%q\nwant:\n%q", i+1, got, w)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("message %d: the server got nothing, want %q", i+1, w)
			return
		}
	}
	select {
	case got := <-s.got:
		t.Errorf("the server got one more message: %q", got)
	default:
	}
}

func TestLDAP(t *testing.T) {
	noLeak(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			// Anonymous bind, the root DSE.
			s := &ldapTestServer{user: "cn=admin,dc=example,dc=org", password: "secret", entries: []string{""}}
			tg := s.start(t, network, nil)
			label := "ldap " + hostPort(tg.Addr, tg.Port)
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg), "")
			s.wantSeen(t, anonymousBind, rootDSESearch, unbind, closed)
			tg.Request = "/" // the config's default request
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg), "")
			s.wantSeen(t, anonymousBind, rootDSESearch, unbind, closed)

			// A login without a password binds anonymously, as ldirectord does.
			tg.Login = "cn=admin,dc=example,dc=org"
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg), "")
			s.wantSeen(t, anonymousBind, rootDSESearch, unbind, closed)

			// Credentials, a base DN, receive matched against the entry's DN.
			s.entries = []string{"dc=example,dc=org"}
			tg.Passwd, tg.Request, tg.Receive = "secret", "/dc=example,dc=org", "^dc=example"
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg), "")
			s.wantSeen(t, adminBind, exampleSearch, unbind, closed)
			tg.Receive = "^ou="
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg),
				label+`: response mismatch: dn "dc=example,dc=org" does not match "^ou="`)
			s.wantSeen(t, adminBind, exampleSearch, unbind, closed)

			// A wrong password is one failure: no search follows.
			tg.Passwd, tg.Receive = "Secret", ""
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg), label+": bind failed: invalidCredentials (49): Invalid credentials")
			s.wantSeen(t, strings.Replace(adminBind, "\x80\x06secret", "\x80\x06Secret", 1), closed)

			tg.Login, tg.Passwd = "", ""
			s.entries = nil
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg), label+": response mismatch: 0 entries")
			s.wantSeen(t, anonymousBind, exampleSearch, unbind, closed)
			s.entries = []string{"dc=example,dc=org", "ou=people,dc=example,dc=org"}
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg), label+": response mismatch: 2 entries")
			s.code = 4 // sizeLimitExceeded: more than the 2 asked for
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg), label+": response mismatch: 2 entries")
			s.entries, s.code, s.diag = nil, 32, "no such entry"
			wantErr(t, LDAP.Check(timeout(t, time.Second), tg), label+": search failed: noSuchObject (32): no such entry")
		})
	}
}

func TestLDAPTimeouts(t *testing.T) {
	noLeak(t)
	// A server that accepts and never answers.
	l := listen(t, "tcp4")
	serve(t, l, func(c net.Conn) { io.Copy(io.Discard, c) })
	tg := target(t, l.Addr())
	var err error
	d := elapsed(func() { err = LDAP.Check(timeout(t, 200*time.Millisecond), tg) })
	wantErr(t, err, "ldap "+l.Addr().String()+": bind failed: timed out")
	withinDeadline(t, d, 200*time.Millisecond)

	// One that binds, then never answers the search.
	s := &ldapTestServer{silentSearch: true}
	tg = s.start(t, "tcp6", nil)
	d = elapsed(func() { err = LDAP.Check(timeout(t, 200*time.Millisecond), tg) })
	wantErr(t, err, "ldap "+hostPort(tg.Addr, tg.Port)+": no answer received: timed out")
	withinDeadline(t, d, 200*time.Millisecond)

	// LDAPS against a server that never starts the handshake.
	d = elapsed(func() { err = LDAPS.Check(timeout(t, 200*time.Millisecond), target(t, l.Addr())) })
	wantErr(t, err, "ldaps "+l.Addr().String()+": connection failed: tls handshake: timed out")
	withinDeadline(t, d, 200*time.Millisecond)

	refused := closedPort(t, "tcp4")
	wantErr(t, LDAP.Check(timeout(t, time.Second), refused), "ldap "+hostPort(refused.Addr, refused.Port)+": connection failed: connection refused")
}

// rawLDAP serves one fixed answer to whatever the client sends first, then reads until the client hangs up.
func rawLDAP(t *testing.T, answer string) *Target {
	l := listen(t, "tcp4")
	serve(t, l, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readMsgT(br); err != nil {
			return
		}
		// An answer ending in "\x00close" is sent without that mark, then the server's side is shut
		// (FIN) and what the client still sends is drained: a close with the client's next request
		// unread would be a reset, racing the client's read of the answer.
		if a, ok := strings.CutSuffix(answer, "\x00close"); ok {
			io.WriteString(c, a)
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, br)
			return
		}
		io.WriteString(c, answer)
		io.Copy(io.Discard, br)
	})
	return target(t, l.Addr())
}

func TestLDAPBadAnswers(t *testing.T) {
	noLeak(t)
	bindOK := tlvT(0x30, tlvT(0x02, "\x01"), tlvT(0x61, resultT(0, "")))
	for _, tc := range []struct{ answer, want string }{
		{"HTTP/1.0 400 Bad Request\r\n\r\n", "bind failed: bad answer: not an LDAP message (first byte 0x48)"},
		{"\x30\x84\x7f\xff\xff\xff", "bind failed: bad answer: message of 2147483647 bytes, more than 1 MiB"},
		{"\x30\x80\x02\x01\x01", "bind failed: bad answer: length byte 0x80"},
		{"\x30\x05\x02\x01\x01\x00close", "bind failed: connection closed by peer"},
		{"\x30\x03\x04\x01\x01", "bind failed: bad answer: message id has tag 0x04"},
		{"\x30\x05\x02\x01\x01\x61\x05", "bind failed: bad answer: truncated BER element"},
		{"\x30\x0b\x02\x01\x01\x61\x06\x0a\x00\x04\x00\x04\x00", "bind failed: bad answer: integer of 0 bytes"},
		{tlvT(0x30, tlvT(0x02, "\x01"), tlvT(0x65, resultT(0, ""))), "bind failed: bad answer: searchResDone with message id 1"},
		{tlvT(0x30, tlvT(0x02, "\x07"), tlvT(0x61, resultT(0, ""))), "bind failed: bad answer: bindResponse with message id 7"},
		// A notice of disconnection (RFC 4511 4.4.1).
		{tlvT(0x30, tlvT(0x02, "\x00"), tlvT(0x78, resultT(52, "server shutting down"), tlvT(0x8a, "1.3.6.1.4.1.1466.20036"))),
			"bind failed: server notice: unavailable (52): server shutting down"},
		{tlvT(0x30, tlvT(0x02, "\x01"), tlvT(0x61, resultT(53, "bad\x00diag"))), `bind failed: unwillingToPerform (53): "bad\x00diag"`},
		{bindOK + "\x30\x05\x02\x01\x02\x65\x00", "search failed: bad answer: truncated BER element"},
		{bindOK + tlvT(0x30, tlvT(0x02, "\x02"), tlvT(0x64, tlvT(0x30))), "search failed: bad answer: objectName has tag 0x30"},
		{bindOK + tlvT(0x30, tlvT(0x02, "\x02"), tlvT(0x65, resultT(0, ""))) + "\x00close", "response mismatch: 0 entries"},
		{bindOK + "\x30\x05\x02\x01\x02\x00close", "no answer received: connection closed by peer"},
	} {
		tg := rawLDAP(t, tc.answer)
		wantErr(t, LDAP.Check(timeout(t, time.Second), tg), "ldap "+hostPort(tg.Addr, tg.Port)+": "+tc.want)
	}

	// Endless answers: at most 1 MiB is read.
	l := listen(t, "tcp6")
	serve(t, l, func(c net.Conn) {
		br := bufio.NewReader(c)
		readMsgT(br)
		io.WriteString(c, bindOK)
		readMsgT(br)
		ref := tlvT(0x30, tlvT(0x02, "\x02"), tlvT(0x73, tlvT(0x04, "ldap://elsewhere/"+strings.Repeat("x", 900))))
		for {
			if _, err := io.WriteString(c, ref); err != nil {
				return
			}
		}
	})
	tg := target(t, l.Addr())
	wantErr(t, LDAP.Check(timeout(t, 5*time.Second), tg), "ldap "+l.Addr().String()+": search failed: more than 1 MiB of answers")
}

// selfSigned is a self-signed certificate for 127.0.0.1 and ::1.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ldap.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestLDAPS(t *testing.T) {
	noLeak(t)
	conf := selfSigned(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		// The certificate is self-signed: ldirectord's Net::LDAP does not verify (verify => 'none'), nor do we.
		s := &ldapTestServer{user: "cn=admin,dc=example,dc=org", password: "secret", entries: []string{"dc=example,dc=org"}}
		tg := s.start(t, network, conf)
		tg.Login, tg.Passwd, tg.Request, tg.Receive = "cn=admin,dc=example,dc=org", "secret", "/dc=example,dc=org", "example"
		wantErr(t, LDAPS.Check(timeout(t, time.Second), tg), "")
		s.wantSeen(t, adminBind, exampleSearch, unbind, closed)
		tg.Passwd = "wrong"
		wantErr(t, LDAPS.Check(timeout(t, time.Second), tg),
			"ldaps "+hostPort(tg.Addr, tg.Port)+": bind failed: invalidCredentials (49): Invalid credentials")
	}
	// A plain server on an ldaps check.
	l := listen(t, "tcp4")
	serve(t, l, func(c net.Conn) { io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\n") })
	wantErr(t, LDAPS.Check(timeout(t, time.Second), target(t, l.Addr())),
		"ldaps "+l.Addr().String()+": connection failed: tls handshake: peer does not speak TLS")
}

// FuzzLDAPAnswer: whatever a server sends, reading it never panics, never reads past one message, and
// what it reports comes from the bytes.
func FuzzLDAPAnswer(f *testing.F) {
	for _, s := range []string{
		"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00",
		"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x31\x04\x00\x04\x00",
		tlvT(0x30, tlvT(0x02, "\x02"), tlvT(0x64, tlvT(0x04, "dc=example,dc=org"), tlvT(0x30))),
		tlvT(0x30, tlvT(0x02, "\x00"), tlvT(0x78, resultT(52, "bye"))),
		"\x30\x84\x00\x00\x00\x05\x02\x01\x01\x42\x00",
		"\x30\x82\x00\x05\x02\x89\x01\x01\x01\x42\x00",
		"HTTP/1.0 400 Bad Request\r\n",
		"\x30\x80",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseLDAPMessage(b)
		r := bufio.NewReader(bytes.NewReader(b))
		m, err := readLDAP(r)
		if err != nil {
			return
		}
		if m.dn != "" && !bytes.Contains(b, []byte(m.dn)) {
			t.Errorf("dn %q is not in the answer", m.dn)
		}
		if m.diag != "" && !bytes.Contains(b, []byte(m.diag)) {
			t.Errorf("diagnosticMessage %q is not in the answer", m.diag)
		}
	})
}

// TestLDAPEncoding: long values get long-form lengths.
func TestLDAPEncoding(t *testing.T) {
	long := strings.Repeat("p", 300)
	got := string(ldapBind(1, "cn=x", long))
	want := tlvT(0x30, tlvT(0x02, "\x01"), tlvT(0x60, tlvT(0x02, "\x03"), tlvT(0x04, "cn=x"), tlvT(0x80, long)))
	if got != want {
		t.Errorf("bind with a 300-byte password:\n%q\nwant\n%q", got, want)
	}
	if got := string(berAppendInt(nil, berInteger, 200)); got != "\x02\x02\x00\xc8" {
		t.Errorf("INTEGER 200 = %q, want 02 02 00 c8", got)
	}
	if got := string(berAppendInt(nil, berInteger, 0x10000)); got != "\x02\x03\x01\x00\x00" {
		t.Errorf("INTEGER 65536 = %q", got)
	}
}
