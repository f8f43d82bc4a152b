package checker

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// slapd runs Debian's OpenLDAP server (package slapd, see scripts/install-deps.sh) on loopback: suffix
// dc=example,dc=org with its base entry, rootdn cn=admin,dc=example,dc=org / secret, ldap:// on 127.0.0.1
// and ::1 and ldaps:// on 127.0.0.1 with a self-signed certificate. It returns the two ports.
func slapd(t *testing.T) (ldapPort, ldapsPort uint16) {
	t.Helper()
	bin, err := exec.LookPath("slapd")
	if err != nil {
		bin = "/usr/sbin/slapd"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("slapd is not installed (Debian package slapd): run scripts/install-deps.sh")
		}
	}
	dir := t.TempDir()
	conf := selfSigned(t)
	cert := conf.Certificates[0]
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile := write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))
	keyFile := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	cf := write("slapd.conf", []byte(`include /etc/ldap/schema/core.schema
pidfile `+dir+`/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile `+certFile+`
TLSCertificateKeyFile `+keyFile+`
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw secret
directory `+dir+`/db
`))
	ldif := write("base.ldif", []byte("dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n"))
	if out, err := exec.Command(filepath.Join(filepath.Dir(bin), "slapadd"), "-f", cf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	ports := freePorts(t, 2)
	ldapPort, ldapsPort = ports[0], ports[1]
	urls := "ldap://127.0.0.1:" + itoa(int(ldapPort)) + "/ ldap://[::1]:" + itoa(int(ldapPort)) +
		"/ ldaps://127.0.0.1:" + itoa(int(ldapsPort)) + "/"
	w := &startWatch{want: []byte("slapd starting"), ready: make(chan struct{})}
	cmd := exec.Command(bin, "-f", cf, "-h", urls, "-d", "stats")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	select {
	case <-w.ready:
	case err := <-exited:
		exited <- err
		t.Fatalf("slapd exited: %v\n%s", err, w.output())
	case <-time.After(10 * time.Second):
		t.Fatalf("slapd did not start within 10s:\n%s", w.output())
	}
	// slapd says "slapd starting" before its listener threads call listen(): wait until each accepts.
	for _, ap := range []string{"127.0.0.1:" + itoa(int(ldapPort)), "[::1]:" + itoa(int(ldapPort)), "127.0.0.1:" + itoa(int(ldapsPort))} {
		for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
			c, err := net.Dial("tcp", ap)
			if err == nil {
				c.Close()
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("slapd does not accept on %s: %v\n%s", ap, err, w.output())
			}
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("slapd output:\n%s", w.output())
		}
	})
	return ldapPort, ldapsPort
}

// freePorts returns n distinct TCP ports free on both 127.0.0.1 and ::1 at the time of the call.
func freePorts(t *testing.T, n int) []uint16 {
	t.Helper()
	var ports []uint16
	for try := 0; len(ports) < n; try++ {
		if try == 100 {
			t.Fatal("no port free on both 127.0.0.1 and ::1")
		}
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // held until all are chosen, so no port comes twice
		port := l.Addr().(*net.TCPAddr).Port
		if l6, err := net.Listen("tcp6", "[::1]:"+strconv.Itoa(port)); err == nil {
			l6.Close()
			ports = append(ports, uint16(port))
		}
	}
	return ports
}

// startWatch collects a process's output and closes ready once want appears in it.
type startWatch struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  []byte
	ready chan struct{}
	seen  bool
}

func (w *startWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() < 1<<20 {
		w.buf.Write(p)
	}
	if !w.seen && bytes.Contains(w.buf.Bytes(), w.want) {
		w.seen = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *startWatch) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestLDAPAgainstSlapd runs the checks against a real OpenLDAP server.
func TestLDAPAgainstSlapd(t *testing.T) {
	noLeak(t)
	ldapPort, ldapsPort := slapd(t)
	for _, addr := range []string{"127.0.0.1", "::1"} {
		tg := &Target{Addr: mustAddr(addr), Port: ldapPort}
		label := "ldap " + hostPort(tg.Addr, tg.Port)
		// Anonymous, the root DSE.
		wantErr(t, LDAP.Check(timeout(t, 2*time.Second), tg), "")
		tg.Receive = "^$"
		wantErr(t, LDAP.Check(timeout(t, 2*time.Second), tg), "")
		// The rootdn, the suffix entry.
		tg.Login, tg.Passwd, tg.Request, tg.Receive = "cn=admin,dc=example,dc=org", "secret", "/dc=example,dc=org", "^dc=example,dc=org$"
		wantErr(t, LDAP.Check(timeout(t, 2*time.Second), tg), "")
		tg.Receive = "^ou="
		wantErr(t, LDAP.Check(timeout(t, 2*time.Second), tg), label+`: response mismatch: dn "dc=example,dc=org" does not match "^ou="`)
		tg.Passwd, tg.Receive = "wrong", ""
		wantErr(t, LDAP.Check(timeout(t, 2*time.Second), tg), label+": bind failed: invalidCredentials (49)")
		tg.Passwd, tg.Request = "secret", "/ou=nobody,dc=example,dc=org"
		wantErr(t, LDAP.Check(timeout(t, 2*time.Second), tg), label+": search failed: noSuchObject (32)")
		tg.Request = "/not a dn"
		wantErr(t, LDAP.Check(timeout(t, 2*time.Second), tg), label+": search failed: invalidDNSyntax (34): invalid DN")
	}
	tg := &Target{Addr: mustAddr("127.0.0.1"), Port: ldapsPort, Login: "cn=admin,dc=example,dc=org", Passwd: "secret",
		Request: "/dc=example,dc=org", Receive: "example"}
	wantErr(t, LDAPS.Check(timeout(t, 2*time.Second), tg), "")
	tg.Port = ldapPort
	wantErr(t, LDAPS.Check(timeout(t, 2*time.Second), tg), "ldaps 127.0.0.1:"+itoa(int(ldapPort))+": connection failed: tls handshake: connection closed by peer")
}
