package checker

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// freeUDPTCPPort returns a port free for UDP on 127.0.0.1 and ::1 and for TCP on both.
func freeUDPTCPPort(t *testing.T) uint16 {
	t.Helper()
	for try := 0; try < 100; try++ {
		p := freePorts(t, 1)[0]
		u4, err4 := net.ListenPacket("udp4", "127.0.0.1:"+itoa(int(p)))
		u6, err6 := net.ListenPacket("udp6", "[::1]:"+itoa(int(p)))
		if u4 != nil {
			u4.Close()
		}
		if u6 != nil {
			u6.Close()
		}
		if err4 == nil && err6 == nil {
			return p
		}
	}
	t.Fatal("no port free for UDP and TCP on 127.0.0.1 and ::1")
	return 0
}

// writeConf writes a private config file into dir.
func writeConf(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// silentUDP is a UDP socket on 127.0.0.1 that reads and never answers (a server that hangs).
func silentUDP(t *testing.T) *Target {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tg := target(t, c.LocalAddr())
	tg.UDP = true
	return tg
}

// closedUDP is a UDP port on 127.0.0.1 nothing listens on.
func closedUDP(t *testing.T) *Target {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := target(t, c.LocalAddr())
	c.Close()
	tg.UDP = true
	return tg
}

// startUnbound runs Debian's unbound (package unbound) in the foreground on 127.0.0.1 and ::1, UDP and
// TCP, answering only from local data (it never queries another server): www.example.test has the A
// records 192.0.2.10 and 192.0.2.11, 192.0.2.10 the PTR www.example.test, and every other name is
// NXDOMAIN.
func startUnbound(t *testing.T) uint16 {
	t.Helper()
	bin := debBinary(t, "unbound", "unbound", "/usr/sbin/unbound")
	dir := ownedTempDir(t, nil)
	port := freeUDPTCPPort(t)
	p := itoa(int(port))
	conf := writeConf(t, dir, "unbound.conf", `server:
	interface: 127.0.0.1@`+p+`
	interface: ::1@`+p+`
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "`+dir+`"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 1
	num-threads: 1
	so-reuseport: no
	rrset-roundrobin: no
	access-control: 127.0.0.0/8 allow
	access-control: ::1 allow
	do-not-query-address: 0.0.0.0/0
	do-not-query-address: ::/0
	module-config: "iterator"
	local-zone: "." static
	local-zone: "example.test." static
	local-data: "www.example.test. A 192.0.2.10"
	local-data: "www.example.test. A 192.0.2.11"
	local-data-ptr: "192.0.2.10 www.example.test"
remote-control:
	control-enable: no
`)
	startDebServer(t, "unbound", nil, "start of service", bin, "-d", "-c", conf)
	return port
}

// TestDNSAgainstUnbound runs service=dns against Debian's unbound.
func TestDNSAgainstUnbound(t *testing.T) {
	noLeak(t)
	port := startUnbound(t)
	for _, addr := range []string{"127.0.0.1", "::1"} {
		for _, udp := range []bool{true, false} {
			tg := &Target{Addr: mustAddr(addr), Port: port, UDP: udp}
			network := "tcp"
			if udp {
				network = "udp"
			}
			label := "dns " + network + " " + hostPort(tg.Addr, port)
			t.Run(network+" "+addr, func(t *testing.T) {
				tg.Request, tg.Receive = "/www.example.test", `^192\.0\.2\.11$`
				wantErr(t, DNS.Check(timeout(t, 10*time.Second), tg), "")
				tg.Receive = ""
				wantErr(t, DNS.Check(timeout(t, 10*time.Second), tg), "")
				tg.Receive = `^10\.`
				wantErr(t, DNS.Check(timeout(t, 10*time.Second), tg),
					label+` A www.example.test: answer 192.0.2.10, 192.0.2.11 does not match "^10\\."`)
				tg.Request, tg.Receive = "/192.0.2.10", "^www.example.test$"
				wantErr(t, DNS.Check(timeout(t, 10*time.Second), tg), "")
				tg.Receive = "^mail"
				wantErr(t, DNS.Check(timeout(t, 10*time.Second), tg),
					label+` PTR 10.2.0.192.in-addr.arpa: answer www.example.test does not match "^mail"`)
				tg.Request, tg.Receive = "/nothing.example.test", ""
				wantErr(t, DNS.Check(timeout(t, 10*time.Second), tg), label+" A nothing.example.test: NameError")
			})
		}
	}
	t.Run("refused", func(t *testing.T) {
		tg := closedPort(t, "tcp4")
		tg.Request = "/www.example.test"
		wantErr(t, DNS.Check(timeout(t, 10*time.Second), tg), "dns tcp "+hostPort(tg.Addr, tg.Port)+" A www.example.test: connection refused")
	})
	t.Run("hangs", func(t *testing.T) {
		for _, tg := range []*Target{silentUDP(t), sqlHangingTarget(t)} {
			tg.Request = "/www.example.test"
			network := map[bool]string{true: "udp", false: "tcp"}[tg.UDP]
			var err error
			d := elapsed(func() { err = DNS.Check(timeout(t, 300*time.Millisecond), tg) })
			wantErr(t, err, "dns "+network+" "+hostPort(tg.Addr, tg.Port)+" A www.example.test: timed out")
			if d > 5*time.Second {
				t.Errorf("the check took %v with a timeout of 300ms", d)
			}
		}
	})
}

// startFreeRADIUS runs Debian's FreeRADIUS (package freeradius) in the foreground (-X) with a private
// config of its own (no file of /etc/freeradius is read): authentication on 127.0.0.1 and ::1, clients
// 127.0.0.1 and ::1 with the secret "testing-secret", user ld with password sqlTestPasswd (PAP).
func startFreeRADIUS(t *testing.T) uint16 {
	t.Helper()
	bin := debBinary(t, "freeradius", "freeradius", "/usr/sbin/freeradius")
	dir := ownedTempDir(t, nil)
	port := freeUDPTCPPort(t)
	p := itoa(int(port))
	writeConf(t, dir, "users", `ld Cleartext-Password := "`+sqlTestPasswd+`"`+"\n")
	writeConf(t, dir, "radiusd.conf", `prefix = /usr
exec_prefix = /usr
sysconfdir = `+dir+`
localstatedir = `+dir+`
sbindir = /usr/sbin
logdir = `+dir+`
raddbdir = `+dir+`
radacctdir = `+dir+`
name = radiusd
confdir = `+dir+`
modconfdir = `+dir+`
run_dir = `+dir+`
db_dir = `+dir+`
libdir = /usr/lib/freeradius
pidfile = `+dir+`/radiusd.pid
dictdir = /usr/share/freeradius
max_request_time = 30
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no
log {
	destination = stderr
	auth = yes
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}
client localhost {
	ipaddr = 127.0.0.1
	secret = testing-secret
}
client localhost6 {
	ipv6addr = ::1
	secret = testing-secret
}
modules {
	pap {
	}
	files {
		filename = `+dir+`/users
	}
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = `+p+`
	}
	listen {
		type = auth
		ipv6addr = ::1
		port = `+p+`
	}
	authorize {
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
}
`)
	startDebServer(t, "freeradius", nil, "Ready to process requests", bin, "-X", "-d", dir)
	return port
}

// TestRADIUSAgainstFreeRADIUS runs service=radius against Debian's FreeRADIUS.
func TestRADIUSAgainstFreeRADIUS(t *testing.T) {
	noLeak(t)
	port := startFreeRADIUS(t)
	for _, addr := range []string{"127.0.0.1", "::1"} {
		t.Run(addr, func(t *testing.T) {
			tg := &Target{Addr: mustAddr(addr), Port: port, UDP: true, Login: "ld", Passwd: sqlTestPasswd, Secret: "testing-secret"}
			label := "radius " + hostPort(tg.Addr, port)
			wantErr(t, RADIUS.Check(timeout(t, 10*time.Second), tg), "")
			tg.Passwd = "wrong"
			wantErr(t, RADIUS.Check(timeout(t, 10*time.Second), tg), label+": Access-Reject")
			tg.Passwd, tg.Login = sqlTestPasswd, "nobody"
			wantErr(t, RADIUS.Check(timeout(t, 10*time.Second), tg), label+": Access-Reject")
			tg.Login, tg.Secret = "ld", "wrong-secret"
			wantErr(t, RADIUS.Check(timeout(t, 10*time.Second), tg), label+": answer has a bad authenticator (wrong secret?)")
		})
	}
	t.Run("refused", func(t *testing.T) {
		tg := closedUDP(t)
		tg.Login, tg.Passwd, tg.Secret = "ld", "x", "s"
		wantErr(t, RADIUS.Check(timeout(t, 10*time.Second), tg), "radius "+hostPort(tg.Addr, tg.Port)+": Access-Request: connection refused")
	})
	t.Run("hangs", func(t *testing.T) {
		tg := silentUDP(t)
		tg.Login, tg.Passwd, tg.Secret = "ld", "x", "s"
		var err error
		d := elapsed(func() { err = RADIUS.Check(timeout(t, 300*time.Millisecond), tg) })
		wantErr(t, err, "radius "+hostPort(tg.Addr, tg.Port)+": Access-Request: timed out")
		if d > 5*time.Second {
			t.Errorf("the check took %v with a timeout of 300ms", d)
		}
	})
}

// startKamailio runs Debian's kamailio (package kamailio) in the foreground with a private config on
// 127.0.0.1 (UDP and TCP) and ::1 (UDP): OPTIONS for sip:ping@... is answered 200 OK, a request for user
// "silent" is dropped without an answer, anything else gets 404 Not Here.
func startKamailio(t *testing.T) uint16 {
	t.Helper()
	bin := debBinary(t, "kamailio", "kamailio", "/usr/sbin/kamailio")
	dir := ownedTempDir(t, nil)
	port := freeUDPTCPPort(t)
	p := itoa(int(port))
	mods := "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
	if m, _ := filepath.Glob("/usr/lib/*/kamailio/modules/sl.so"); len(m) > 0 {
		mods = filepath.Dir(m[0]) + "/"
	}
	conf := writeConf(t, dir, "kamailio.cfg", `#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:`+p+`
listen=tcp:127.0.0.1:`+p+`
listen=udp:[::1]:`+p+`
mpath="`+mods+`"
loadmodule "pv.so"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {
	if ($rU == "silent") {
		exit;
	}
	if (is_method("OPTIONS") && $rU == "ping") {
		sl_send_reply("200", "OK");
		exit;
	}
	sl_send_reply("404", "Not Here");
}
`)
	s := startDebServer(t, "kamailio", nil, "", bin, "-f", conf, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "pid"), "-m", "32", "-M", "4")
	// kamailio says nothing when it is ready: ask it until it answers (or 60 s pass).
	tg := &Target{Addr: mustAddr("127.0.0.1"), Port: port, UDP: true, Login: "ping@127.0.0.1"}
	for start := time.Now(); ; {
		err := SIP.Check(timeout(t, 500*time.Millisecond), tg)
		if err == nil {
			break
		}
		select {
		case e := <-s.exited:
			s.exited <- e
			t.Fatalf("kamailio exited: %v\n%s", e, s.out.output())
		default:
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("kamailio does not answer OPTIONS after 60s: %v\n%s", err, s.out.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return port
}

// TestSIPAgainstKamailio runs service=sip against Debian's kamailio.
func TestSIPAgainstKamailio(t *testing.T) {
	noLeak(t)
	port := startKamailio(t)
	for _, tc := range []struct {
		addr string
		udp  bool
	}{{"127.0.0.1", true}, {"127.0.0.1", false}, {"::1", true}} {
		network := map[bool]string{true: "udp", false: "tcp"}[tc.udp]
		t.Run(network+" "+tc.addr, func(t *testing.T) {
			tg := &Target{Addr: mustAddr(tc.addr), Port: port, UDP: tc.udp, Login: "ping@" + hostLiteral(mustAddr(tc.addr))}
			label := "sip " + network + " " + hostPort(tg.Addr, port)
			wantErr(t, SIP.Check(timeout(t, 10*time.Second), tg), "")
			tg.Login = "other@" + hostLiteral(mustAddr(tc.addr))
			wantErr(t, SIP.Check(timeout(t, 10*time.Second), tg), label+": OPTIONS: SIP/2.0 404 Not Here")
			tg.Login = "silent@" + hostLiteral(mustAddr(tc.addr))
			var err error
			d := elapsed(func() { err = SIP.Check(timeout(t, 500*time.Millisecond), tg) })
			wantErr(t, err, label+": OPTIONS: timed out")
			if d > 5*time.Second {
				t.Errorf("the unanswered check took %v with a timeout of 500ms", d)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		tg := closedUDP(t)
		tg.Login = "ping@127.0.0.1"
		wantErr(t, SIP.Check(timeout(t, 10*time.Second), tg), "sip udp "+hostPort(tg.Addr, tg.Port)+": OPTIONS: connection refused")
	})
}
