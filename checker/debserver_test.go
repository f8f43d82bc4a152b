package checker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// debServer is a server from a Debian package, run by a test in the foreground with a private config on
// loopback ports, and killed (with its process group) at cleanup.
type debServer struct {
	name   string
	cmd    *exec.Cmd
	out    *startWatch
	exited chan error
}

// debBinary returns the path of a server binary, or fails the test naming the Debian package to install.
func debBinary(t testing.TB, pkg string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if filepath.IsAbs(p) {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		} else if lp, err := exec.LookPath(p); err == nil {
			return lp
		}
	}
	t.Fatalf("%s is not installed (Debian package %s): run scripts/install-deps.sh", paths[0], pkg)
	return ""
}

// startDebServer starts bin with args and waits (at most 60 s: the machine may be loaded) until ready
// appears in its output (ready "": it does not wait). cred, when not nil, is the user to run as. The server is stopped at cleanup.
func startDebServer(t testing.TB, name string, cred *syscall.Credential, ready string, bin string, args ...string) *debServer {
	t.Helper()
	s := &debServer{name: name, out: &startWatch{want: []byte(ready), ready: make(chan struct{})}, exited: make(chan error, 1)}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, s.out.output())
		}
	})
	if ready == "" {
		return s // the caller polls the server itself
	}
	select {
	case <-s.out.ready:
	case err := <-s.exited:
		s.exited <- err
		t.Fatalf("%s exited before it was ready: %v\n%s", name, err, s.out.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not say %q within 60s:\n%s", name, ready, s.out.output())
	}
	return s
}

// stop sends sig to the server and waits (at most 30 s) until it has exited.
func (s *debServer) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	s.cmd.Process.Signal(sig)
	select {
	case err := <-s.exited:
		s.exited <- err
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not exit within 30s of %v", s.name, sig)
	}
}

// kill ends the server's whole process group and waits for it.
func (s *debServer) kill() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.exited <- nil
}

// unprivileged returns the credential of a user that servers refusing to run as root can run as
// (postgres, else nobody), and its uid and gid; nil when the test does not run as root.
func unprivileged(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	t.Fatal("no user postgres or nobody to run a server as (it refuses to run as root)")
	return nil
}

// ownedTempDir is a new directory under the system temp dir (t.TempDir's parents are private to root)
// owned by cred's user, removed at cleanup.
func ownedTempDir(t testing.TB, cred *syscall.Credential) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ldirectord-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runAs runs a command to completion as cred (nil: as we are) and fails the test with its output.
func runAs(t testing.TB, cred *syscall.Credential, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and ::1 and its key (PEM) into dir,
// owned by cred's user (servers insist on a private key only they can read). It returns the two paths.
func writeSelfSigned(t testing.TB, dir string, cred *syscall.Credential) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			if err := os.Chown(f, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return certFile, keyFile
}

// freeLoopbackPort returns a TCP port free on both 127.0.0.1 and ::1 at the time of the call.
func freeLoopbackPort(t testing.TB) uint16 {
	t.Helper()
	for try := 0; try < 100; try++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp6", "[::1]:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			l6.Close()
			return uint16(port)
		}
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return 0
}
