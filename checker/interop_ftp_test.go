package checker

import (
	"os"
	"strings"
	"testing"
	"time"
)

// ftpUserHash is the SHA-512 crypt of "secret" (openssl passwd -6 -salt abc secret), for the local user
// ldtest of the test's private /etc/shadow.
const ftpUserHash = "$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1"

// vsftpd runs Debian's vsftpd from a private config in the foreground, on 127.0.0.1 or on ::1 (one vsftpd
// listens on one address): anonymous logins see anon/ (welcome.msg), and with local the local user ldtest
// (password "secret", home home/ with hello.txt, chrooted) logs in through Debian's own PAM service
// "vsftpd" (pam_unix). ldtest exists only for this vsftpd: it runs in a mount namespace of its own where
// /etc/passwd and /etc/shadow are copies with ldtest added, bind-mounted over the real ones (the host's
// files are not touched; root is needed, as for the other tests of this package).
func vsftpd(t *testing.T, v6, local bool) (d *debianServer, port uint16) {
	t.Helper()
	d = startServer(t, 1, func(ports []uint16) serverSpec {
		port = ports[0]
		return vsftpdSpec(t, port, v6, local)
	})
	return d, port
}

func vsftpdSpec(t *testing.T, port uint16, v6, local bool) serverSpec {
	dir := serverDir(t)
	writeFile(t, dir, "anon/welcome.msg", "Welcome to the test FTP server.\n")
	writeFile(t, dir, "home/hello.txt", "hello, ldtest\n")
	if err := os.Mkdir(dir+"/empty", 0o755); err != nil {
		t.Fatal(err)
	}
	// pasv_address: vsftpd names another address in its PASV replies, as an FTP server behind a load
	// balancer names the virtual address; the check must still connect to the real (documentation range,
	// so a connection there would go nowhere).
	listen, addr := "listen=YES\nlisten_address=127.0.0.1\npasv_address=192.0.2.21\n", loopback4(port)
	if v6 {
		listen, addr = "listen=NO\nlisten_ipv6=YES\nlisten_address6=::1\n", loopback6(port)
	}
	conf := writeFile(t, dir, "vsftpd.conf", listen+`listen_port=`+itoa(int(port))+`
background=NO
anonymous_enable=YES
anon_root=`+dir+`/anon
local_enable=`+yesNo(local)+`
chroot_local_user=YES
pam_service_name=vsftpd
write_enable=NO
secure_chroot_dir=`+dir+`/empty
pasv_enable=YES
delay_failed_login=0
xferlog_enable=YES
log_ftp_protocol=YES
vsftpd_log_file=`+dir+`/vsftpd.log
`)
	spec := serverSpec{
		name: "vsftpd", pkg: "vsftpd", path: "/usr/sbin/vsftpd", args: []string{conf},
		dir: dir, logs: []string{dir + "/vsftpd.log"}, addrs: []string{addr},
	}
	if local {
		passwd, err := os.ReadFile("/etc/passwd")
		if err != nil {
			t.Fatal(err)
		}
		shadow, err := os.ReadFile("/etc/shadow")
		if err != nil {
			t.Fatalf("reading /etc/shadow (this test needs root): %v", err)
		}
		p := writeFile(t, dir, "etc/passwd", string(passwd)+"ldtest:x:64123:65534:ldirectord test:"+dir+"/home:/bin/sh\n")
		// The copy of /etc/shadow is never readable by others, not even for a moment.
		s := dir + "/etc/shadow"
		if err := os.WriteFile(s, append(shadow, "ldtest:"+ftpUserHash+":20000:0:99999:7:::\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		spec.unshareMount = true
		spec.wrap = func(argv []string) []string {
			return append([]string{"/bin/sh", "-c",
				`mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/shadow && shift 2 && exec "$@"`, "vsftpd-ns", p, s}, argv...)
		}
	}
	return spec
}

// TestInteropFTPVsftpd runs service=ftp against Debian's vsftpd.
func TestInteropFTPVsftpd(t *testing.T) {
	noLeak(t)
	needRoot(t, "vsftpd's local user lives in a mount namespace with a private /etc/passwd and /etc/shadow")
	d, port := vsftpd(t, false, true)
	_, port6 := vsftpd(t, true, false)
	label := "ftp " + loopback4(port) + ": "
	ftpT := func(login, passwd, request, receive string) *Target {
		return &Target{Addr: mustAddr("127.0.0.1"), Port: port, Service: "ftp", Login: login, Passwd: passwd, Request: request, Receive: receive}
	}
	check := func(tg *Target) error { return FTP.Check(timeout(t, 5*time.Second), tg) }

	t.Run("up", func(t *testing.T) {
		wantErr(t, check(ftpT("", "", "", "")), "")  // anonymous, no file: the login decides
		wantErr(t, check(ftpT("", "", "/", "")), "") // "/" names no file either
		// vsftpd answers PASV with 192.0.2.21 (pasv_address): the data connection goes to the real anyway.
		wantErr(t, check(ftpT("", "", "/welcome.msg", "^Welcome to the test FTP server")), "")
		wantErr(t, check(ftpT("", "", "/welcome.msg", "")), "") // a file and no receive: the download decides
		wantErr(t, check(ftpT("ftp", "anything", "/welcome.msg", "FTP server\\.$")), "")
		// The local user, through PAM, chrooted to the home directory.
		wantErr(t, check(ftpT("ldtest", "secret", "", "")), "")
		wantErr(t, check(ftpT("ldtest", "secret", "/hello.txt", "^hello, ldtest$")), "")
		// IPv6: EPSV instead of PASV.
		v6 := ftpT("", "", "/welcome.msg", "Welcome")
		v6.Addr, v6.Port = mustAddr("::1"), port6
		wantErr(t, check(v6), "")
	})
	t.Run("wrong answer", func(t *testing.T) {
		wantErr(t, check(ftpT("ldtest", "wrong", "", "")), label+"reply to PASS: 530 Login incorrect.")
		wantErr(t, check(ftpT("nosuchuser", "secret", "/hello.txt", "")), label+"reply to PASS: 530 Login incorrect.")
		wantErr(t, check(ftpT("", "", "/missing.txt", "")), label+"reply to RETR: 550 Failed to open file.")
		wantErr(t, check(ftpT("", "", "/welcome.msg", "^Goodbye")), label+`RETR /welcome.msg: contents do not match "^Goodbye"`)
		wantErr(t, check(ftpT("", "", "", "Welcome")), label+"receive is set but request names no file")
		wantErr(t, check(ftpT("ldtest", "secret", "/", "x")), label+"receive is set but request names no file")
	})
	t.Run("refused", func(t *testing.T) {
		r := refusedTarget(t)
		wantErr(t, check(r), "ftp "+hostPort(r.Addr, r.Port)+": connection refused")
	})
	t.Run("hang", func(t *testing.T) {
		d.freeze(t)
		defer d.thaw(t)
		hangCheck(t, FTP, ftpT("ldtest", "secret", "/hello.txt", "hello"), label+"reading banner: timed out")
	})
	wantErr(t, check(ftpT("ldtest", "secret", "/hello.txt", "hello")), "")
	// vsftpd's log shows what the check did: the local login and its download.
	log := d.log(t, d.spec.logs[0])
	for _, want := range []string{`[ldtest] OK LOGIN: Client "127.0.0.1"`, `FTP command: Client "127.0.0.1", "RETR /hello.txt"`,
		`FTP response: Client "127.0.0.1", "227 Entering Passive Mode (192,0,2,21,`} {
		if !strings.Contains(log, want) {
			t.Errorf("vsftpd.log does not say %q:\n%s", want, log)
		}
	}
}

// yesNo is a vsftpd boolean.
func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}
