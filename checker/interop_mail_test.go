package checker

import (
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// carolPassword has what IMAP must quote and POP must send whole: a double quote, a backslash, a space.
const carolPassword = `p"a\ss w0rd`

// davePassword is UTF-8, outside the 7-bit text of an RFC 3501 quoted string.
const davePassword = "pässwörd"

// dovecotPorts are the four listeners of the test's dovecot.
type dovecotPorts struct{ pop, pops, imap, imaps uint16 }

// dovecot runs Debian's dovecot (dovecot-pop3d, dovecot-imapd) from a private config on 127.0.0.1 and ::1:
// pop3, pop3s, imap, imaps, TLS with a self-signed certificate, the SASL mechanisms mechs ("plain apop",
// "plain cram-md5"), a passwd-file passdb with alice (password stored in plain text, so APOP and CRAM-MD5
// work), bob, carol and dave (SHA256 hashes: no APOP, no CRAM-MD5), mail for uid nobody in the
// temporary directory. Failed logins are answered at once (no auth_failure_delay, no anvil penalty). The
// login processes serve many connections (service_count = 0, dovecot's "high-performance mode") and one of
// each runs from the start, so they greet even while the auth process is stopped.
// disable_plaintext_auth keeps dovecot's default (yes): plain text logins only over TLS or on a "secured"
// connection, one whose local and remote addresses are equal. A check of 127.0.0.1 comes from 127.0.0.1
// (secured); a check of 127.0.0.2 comes from 127.0.0.1 too, so it is not, as a check from the director
// of a real server on another host.
func dovecot(t *testing.T, mechs string) (d *debianServer, ports dovecotPorts, logFile string) {
	t.Helper()
	needRoot(t, "dovecot's master runs as root and switches its logins to the users dovenull and nobody")
	d = startServer(t, 4, func(p []uint16) serverSpec {
		ports = dovecotPorts{pop: p[0], pops: p[1], imap: p[2], imaps: p[3]}
		spec := dovecotSpec(t, ports, mechs)
		logFile = spec.logs[0]
		return spec
	})
	return d, ports, logFile
}

func dovecotSpec(t *testing.T, ports dovecotPorts, mechs string) serverSpec {
	dir := serverDir(t)
	cert, key := writeCert(t, dir, "server")
	sha := func(pw string) string {
		sum := sha256.Sum256([]byte(pw))
		return "{SHA256}" + base64.StdEncoding.EncodeToString(sum[:])
	}
	users := writeFile(t, dir, "users", "alice:{PLAIN}secret::::::\nbob:"+sha("secret")+"::::::\ncarol:"+sha(carolPassword)+"::::::\ndave:"+sha(davePassword)+"::::::\n")
	if err := os.MkdirAll(dir+"/mail", 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir+"/mail", 0o777); err != nil {
		t.Fatal(err)
	}
	listener := func(name string, port uint16, ssl bool) string {
		s := "  inet_listener " + name + " {\n    port = " + itoa(int(port)) + "\n"
		if ssl {
			s += "    ssl = yes\n"
		}
		return s + "  }\n"
	}
	logFile := dir + "/dovecot.log"
	conf := writeFile(t, dir, "dovecot.conf", `base_dir = `+dir+`/run
state_dir = `+dir+`/state
instance_name = ldgo-test
log_path = `+logFile+`
protocols = pop3 imap
listen = 127.0.0.1, 127.0.0.2, ::1
ssl = yes
ssl_cert = <`+cert+`
ssl_key = <`+key+`
auth_mechanisms = `+mechs+`
auth_failure_delay = 0
mail_location = maildir:`+dir+`/mail/%u
passdb {
  driver = passwd-file
  args = `+users+`
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=`+dir+`/mail/%u
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service pop3-login {
  service_count = 0
  process_min_avail = 1
`+listener("pop3", ports.pop, false)+listener("pop3s", ports.pops, true)+`}
service imap-login {
  service_count = 0
  process_min_avail = 1
`+listener("imap", ports.imap, false)+listener("imaps", ports.imaps, true)+`}
`)
	var addrs []string
	for _, port := range []uint16{ports.pop, ports.pops, ports.imap, ports.imaps} {
		addrs = append(addrs, loopback4(port), loopback6(port), "127.0.0.2:"+itoa(int(port)))
	}
	return serverSpec{
		name: "dovecot", pkg: "dovecot-pop3d and dovecot-imapd", path: "/usr/sbin/dovecot",
		args: []string{"-F", "-c", conf},
		dir:  dir, logs: []string{logFile}, addrs: addrs,
	}
}

// waitLog waits until the server's log file contains want.
func waitLog(t *testing.T, file, want string) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(file)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("%s does not say %q:\n%s", file, want, b)
			return
		}
	}
}

// TestInteropPOPIMAPDovecot runs service=pop, pops, imap and imaps against Debian's dovecot.
func TestInteropPOPIMAPDovecot(t *testing.T) {
	noLeak(t)
	d, ports, logFile := dovecot(t, "plain apop")
	v4, v6 := mustAddr("127.0.0.1"), mustAddr("::1")
	tg := func(a netip.Addr, port uint16, login, passwd string) *Target {
		return &Target{Addr: a, Port: port, Login: login, Passwd: passwd}
	}
	check := func(c Checker, tg *Target) error { return c.Check(timeout(t, 5*time.Second), tg) }

	t.Run("up", func(t *testing.T) {
		for _, a := range []netip.Addr{v4, v6} {
			// alice's password is stored in plain text: dovecot offers APOP, and the check uses it.
			wantErr(t, check(POP, tg(a, ports.pop, "alice", "secret")), "")
			waitLog(t, logFile, "Login: user=<alice>, method=APOP, rip="+a.String())
			// bob's is a hash: dovecot refuses APOP for him, the check falls back to USER/PASS. (4.12's
			// Mail::POP3Client means to, but first sends NOOP, which dovecot refuses before a login, and the
			// module then gives up: bob is down for ever in 4.12.)
			wantErr(t, check(POPS, tg(a, ports.pops, "bob", "secret")), "")
			waitLog(t, logFile, "Login: user=<bob>, method=PLAIN, rip="+a.String())
			wantErr(t, check(POP, tg(a, ports.pop, "", "")), "") // no login: the greeting decides
			wantErr(t, check(IMAP, tg(a, ports.imap, "alice", "secret")), "")
			wantErr(t, check(IMAPS, tg(a, ports.imaps, "bob", "secret")), "")
			wantErr(t, check(IMAPS, tg(a, ports.imaps, "", "")), "")
			// A password with a quote, a backslash and a space: IMAP-quoted for LOGIN, sent whole in PASS.
			wantErr(t, check(IMAP, tg(a, ports.imap, "carol", carolPassword)), "")
			wantErr(t, check(POP, tg(a, ports.pop, "carol", carolPassword)), "")
			wantErr(t, check(IMAP, tg(a, ports.imap, "dave", davePassword)), "")
			wantErr(t, check(POP, tg(a, ports.pop, "dave", davePassword)), "")
		}
	})
	t.Run("login refused", func(t *testing.T) {
		label := func(name string, port uint16) string { return name + " " + loopback4(port) + ": " }
		wantErr(t, check(POP, tg(v4, ports.pop, "alice", "wrong")), label("pop", ports.pop)+"reply to PASS: -ERR [AUTH] Authentication failed.")
		wantErr(t, check(POPS, tg(v4, ports.pops, "nobody", "secret")), label("pops", ports.pops)+"reply to PASS: -ERR [AUTH] Authentication failed.")
		wantErr(t, check(IMAP, tg(v4, ports.imap, "alice", "wrong")), label("imap", ports.imap)+"reply to LOGIN: a1 NO [AUTHENTICATIONFAILED] Authentication failed.")
		wantErr(t, check(IMAPS, tg(v4, ports.imaps, "bob", "wrong")), label("imaps", ports.imaps)+"reply to LOGIN: a1 NO [AUTHENTICATIONFAILED] Authentication failed.")
	})
	t.Run("plaintext disallowed", func(t *testing.T) {
		// From another address than the server's, dovecot refuses USER/PASS and LOGIN without TLS. APOP is not
		// plain text: alice still logs in with pop, bob (no APOP) does not; pops and imaps do.
		insecure := mustAddr("127.0.0.2")
		label := func(name string, port uint16) string { return name + " 127.0.0.2:" + itoa(int(port)) + ": " }
		wantErr(t, check(POP, tg(insecure, ports.pop, "alice", "secret")), "")
		wantErr(t, check(POP, tg(insecure, ports.pop, "bob", "secret")),
			label("pop", ports.pop)+"reply to USER: -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
		wantErr(t, check(IMAP, tg(insecure, ports.imap, "alice", "secret")),
			label("imap", ports.imap)+"reply to LOGIN: a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
		wantErr(t, check(POPS, tg(insecure, ports.pops, "bob", "secret")), "")
		wantErr(t, check(IMAPS, tg(insecure, ports.imaps, "alice", "secret")), "")
		wantErr(t, check(IMAP, tg(insecure, ports.imap, "", "")), "") // no login: the greeting decides
	})
	t.Run("wrong protocol", func(t *testing.T) {
		// A TLS check of a plain port, and a plain check of a TLS port.
		wantErr(t, check(POPS, tg(v4, ports.pop, "", "")), "pops "+loopback4(ports.pop)+": tls handshake: peer does not speak TLS")
		// The pop3 greeting ends in an APOP timestamp that changes with every connection.
		err := check(IMAP, tg(v4, ports.pop, "", ""))
		if want := "imap " + loopback4(ports.pop) + ": greeting +OK Dovecot (Debian) ready. <"; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %v, want one that begins with %q", err, want)
		}
	})
	t.Run("refused", func(t *testing.T) {
		r := refusedTarget(t)
		hp := hostPort(r.Addr, r.Port)
		wantErr(t, check(POP, r), "pop "+hp+": connection refused")
		wantErr(t, check(POPS, r), "pops "+hp+": connection refused")
		wantErr(t, check(IMAP, r), "imap "+hp+": connection refused")
		wantErr(t, check(IMAPS, r), "imaps "+hp+": connection refused")
	})
	t.Run("hang", func(t *testing.T) {
		d.freeze(t)
		defer d.thaw(t)
		hangCheck(t, POP, tg(v4, ports.pop, "alice", "secret"), "pop "+loopback4(ports.pop)+": reading banner: timed out")
		hangCheck(t, POPS, tg(v6, ports.pops, "alice", "secret"), "pops "+loopback6(ports.pops)+": tls handshake: timed out")
		hangCheck(t, IMAP, tg(v4, ports.imap, "alice", "secret"), "imap "+loopback4(ports.imap)+": reading greeting: timed out")
		hangCheck(t, IMAPS, tg(v6, ports.imaps, "alice", "secret"), "imaps "+loopback6(ports.imaps)+": tls handshake: timed out")
	})
	t.Run("hang at login", func(t *testing.T) {
		// Only dovecot's auth process stops (it runs since the logins above): greetings come, logins are
		// never answered.
		auth := d.process(t, "auth")
		if err := syscall.Kill(auth, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(auth, syscall.SIGCONT)
		hangCheck(t, POP, tg(v4, ports.pop, "alice", "secret"), "pop "+loopback4(ports.pop)+": reading reply to APOP: timed out")
		hangCheck(t, POPS, tg(v4, ports.pops, "bob", "secret"), "pops "+loopback4(ports.pops)+": reading reply to APOP: timed out")
		hangCheck(t, IMAP, tg(v6, ports.imap, "alice", "secret"), "imap "+loopback6(ports.imap)+": reading reply to LOGIN: timed out")
		hangCheck(t, IMAPS, tg(v4, ports.imaps, "bob", "secret"), "imaps "+loopback4(ports.imaps)+": reading reply to LOGIN: timed out")
		wantErr(t, check(POP, tg(v4, ports.pop, "", "")), "") // no login: the greeting decides
	})
	wantErr(t, check(IMAP, tg(v4, ports.imap, "alice", "secret")), "")
}

// TestInteropPOPCRAMMD5Dovecot runs service=pop against a dovecot that offers CRAM-MD5 and no APOP.
func TestInteropPOPCRAMMD5Dovecot(t *testing.T) {
	noLeak(t)
	_, ports, logFile := dovecot(t, "plain cram-md5")
	tg := func(a string, login, passwd string) *Target {
		return &Target{Addr: mustAddr(a), Port: ports.pop, Login: login, Passwd: passwd}
	}
	check := func(tg *Target) error { return POP.Check(timeout(t, 5*time.Second), tg) }
	// alice's password is in plain text: CRAM-MD5 works, even where plain text logins are disallowed.
	wantErr(t, check(tg("127.0.0.1", "alice", "secret")), "")
	waitLog(t, logFile, "Login: user=<alice>, method=CRAM-MD5, rip=127.0.0.1, lip=127.0.0.1")
	wantErr(t, check(tg("127.0.0.2", "alice", "secret")), "")
	waitLog(t, logFile, "Login: user=<alice>, method=CRAM-MD5, rip=127.0.0.1, lip=127.0.0.2")
	// bob's is a hash: CRAM-MD5 is refused, USER/PASS follows where plain text is allowed.
	wantErr(t, check(tg("127.0.0.1", "bob", "secret")), "")
	waitLog(t, logFile, "Login: user=<bob>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1")
	wantErr(t, check(tg("127.0.0.2", "bob", "secret")),
		"pop 127.0.0.2:"+itoa(int(ports.pop))+": reply to USER: -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
	wantErr(t, check(tg("127.0.0.1", "alice", "wrong")), "pop "+loopback4(ports.pop)+": reply to PASS: -ERR [AUTH] Authentication failed.")
}

// postfixPorts are the smtpd listeners of the test's postfix.
type postfixPorts struct {
	smtp       uint16 // plain smtpd on 127.0.0.1 and ::1
	submission uint16 // smtpd as on port 587: TLS required for mail (STARTTLS offered), as in Debian's master.cf
	rejectAll  uint16 // smtpd_client_restrictions = reject, decided at connect time
	rejectHELO uint16 // smtpd_helo_restrictions = reject, decided at EHLO/HELO
	postscreen uint16 // postscreen in front of smtpd, with its greeting test enforced
}

// postfix runs Debian's postfix from a private config directory: its master in the foreground (-d) with a
// master.cf of four smtpd listeners on loopback and the two services smtpd needs before MAIL FROM
// (proxymap, postlogd for the log file); the queue and data directories in the temporary directory.
func postfix(t *testing.T) (d *debianServer, ports postfixPorts) {
	t.Helper()
	needRoot(t, "postfix's master runs as root and its services switch to the user postfix")
	d = startServer(t, 5, func(p []uint16) serverSpec {
		ports = postfixPorts{smtp: p[0], submission: p[1], rejectAll: p[2], rejectHELO: p[3], postscreen: p[4]}
		return postfixSpec(t, ports)
	})
	return d, ports
}

func postfixSpec(t *testing.T, ports postfixPorts) serverSpec {
	dir := serverDir(t)
	cert, key := writeCert(t, dir, "server")
	for _, sub := range []string{"queue/pid", "queue/private", "queue/public", "data"} {
		if err := os.MkdirAll(dir+"/"+sub, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	owner, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("postfix: no user postfix (Debian package postfix): %v", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	for _, sub := range []string{"queue/private", "queue/public", "data"} {
		if err := os.Chown(dir+"/"+sub, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	logFile := dir + "/maillog"
	writeFile(t, dir, "main.cf", `compatibility_level = 3.6
queue_directory = `+dir+`/queue
data_directory = `+dir+`/data
maillog_file = `+logFile+`
maillog_file_prefixes = `+dir+`
myhostname = mx.ldgo.test
mydestination =
alias_maps =
alias_database =
inet_interfaces = loopback-only
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_tls_cert_file = `+cert+`
smtpd_tls_key_file = `+key+`
postscreen_access_list =
postscreen_greet_action = enforce
postscreen_greet_wait = 1s
postscreen_cache_map = btree:$data_directory/postscreen_cache
`)
	smtpd := func(addr string, opts ...string) string {
		return addr + " inet n - n - - smtpd" + strings.Join(append([]string{""}, opts...), " -o ") + "\n"
	}
	writeFile(t, dir, "master.cf", smtpd(loopback4(ports.smtp))+smtpd(loopback6(ports.smtp))+
		smtpd(loopback4(ports.submission), "syslog_name=postfix/submission", "smtpd_tls_security_level=encrypt")+
		smtpd(loopback4(ports.rejectAll), "smtpd_delay_reject=no", "smtpd_client_restrictions=reject")+
		smtpd(loopback4(ports.rejectHELO), "smtpd_delay_reject=no", "smtpd_helo_restrictions=reject")+
		loopback4(ports.postscreen)+" inet n - n - 1 postscreen\nsmtpd pass - - n - - smtpd\n"+
		"proxymap unix - - n - - proxymap\ntlsmgr unix - - n 1000? 1 tlsmgr\npostlog unix-dgram n - n - 1 postlogd\n")
	return serverSpec{
		name: "postfix", pkg: "postfix", path: "/usr/lib/postfix/sbin/master", args: []string{"-c", dir, "-d"},
		dir: dir, logs: []string{logFile},
		// Not the postscreen port: its first client must be the check (master opens every listener before
		// it accepts on any).
		addrs: []string{loopback4(ports.smtp), loopback6(ports.smtp), loopback4(ports.submission),
			loopback4(ports.rejectAll), loopback4(ports.rejectHELO)},
	}
}

// TestInteropSMTPPostfix runs service=smtp and submission against Debian's postfix.
func TestInteropSMTPPostfix(t *testing.T) {
	noLeak(t)
	d, ports := postfix(t)
	tg := func(a netip.Addr, port uint16) *Target { return &Target{Addr: a, Port: port} }
	smtp, _ := Negotiate("smtp")
	submission, _ := Negotiate("submission")
	check := func(c Checker, tg *Target) error { return c.Check(timeout(t, 5*time.Second), tg) }
	v4 := mustAddr("127.0.0.1")

	t.Run("up", func(t *testing.T) {
		wantErr(t, check(smtp, tg(v4, ports.smtp)), "")
		wantErr(t, check(smtp, tg(mustAddr("::1"), ports.smtp)), "")
		wantErr(t, check(submission, tg(v4, ports.submission)), "")
	})
	t.Run("postscreen", func(t *testing.T) {
		// postscreen greets with "220-" and lets smtpd send the final "220 " only after its greeting wait
		// (1s), if the client said nothing meanwhile: the check must wait for the whole greeting. postscreen
		// then lets the client straight through to smtpd. (A check that gave up sooner might still be
		// counted as a pass by postscreen, so none is made here.)
		ps := tg(v4, ports.postscreen)
		var err error
		var took time.Duration
		took = elapsed(func() { err = check(smtp, ps) })
		wantErr(t, err, "")
		if took < 900*time.Millisecond {
			t.Errorf("the check through postscreen took %v, less than its greeting wait of 1s", took)
		}
		wantErr(t, check(smtp, ps), "")
		waitLog(t, d.spec.logs[0], "PASS NEW [127.0.0.1]")
		waitLog(t, d.spec.logs[0], "PASS OLD [127.0.0.1]")
	})
	t.Run("wrong answer", func(t *testing.T) {
		// smtpd_delay_reject=no: postfix rejects the client in its greeting (RFC 5321 allows a 554 greeting).
		wantErr(t, check(smtp, tg(v4, ports.rejectAll)),
			"smtp "+loopback4(ports.rejectAll)+": banner: 554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied")
		// EHLO refused, then HELO refused.
		wantErr(t, check(smtp, tg(v4, ports.rejectHELO)),
			"smtp "+loopback4(ports.rejectHELO)+": reply to HELO: 554 5.7.1 <localhost.localdomain>: Helo command rejected: Access denied")
	})
	t.Run("refused", func(t *testing.T) {
		r := refusedTarget(t)
		wantErr(t, check(smtp, r), "smtp "+hostPort(r.Addr, r.Port)+": connection refused")
	})
	t.Run("hang", func(t *testing.T) {
		d.freeze(t)
		defer d.thaw(t)
		hangCheck(t, smtp, tg(v4, ports.smtp), "smtp "+loopback4(ports.smtp)+": reading banner: timed out")
		hangCheck(t, submission, tg(v4, ports.submission), "smtp "+loopback4(ports.submission)+": reading banner: timed out")
	})
	wantErr(t, check(smtp, tg(v4, ports.smtp)), "")
}
