package checker

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The interop tests run the checks against the real servers of Debian packages (scripts/deps/interop.txt).
// Each test starts its server once, from a private config in a temporary directory, on loopback ports, in
// the foreground and in a process group of its own, and kills that group when the test ends.

// serverSpec says how to start one Debian server for a test.
type serverSpec struct {
	name string   // how messages name it: "nginx"
	pkg  string   // the Debian package that installs it, named when the program is missing
	path string   // the program
	args []string // its arguments (a private config in dir, foreground, loopback ports)
	dir  string   // the test's temporary directory: config, logs, pid, the server's stdout and stderr
	logs []string // log files the server writes, shown when it cannot start or the test fails
	// addrs are the host:port addresses that must accept a TCP connection before the server counts as
	// started.
	addrs []string
	// wrap, when set, turns the command line into the one to run (for example through unshare).
	wrap func(argv []string) []string
	// unshareMount runs the server in a mount namespace of its own (for bind mounts made by wrap).
	unshareMount bool
}

// debianServer is a started server. Its whole process group is killed when the test ends.
type debianServer struct {
	spec   serverSpec
	cmd    *exec.Cmd
	out    string // the file that holds its stdout and stderr
	exited chan struct{}
	err    error // the exit status, once exited is closed
}

// serverStartTimeout bounds a server's start: generous, the machine is shared and loaded.
const serverStartTimeout = 30 * time.Second

// startAttempts is how often a server that exits while starting is started again, on other ports: a port
// found free can be taken by another process before the server binds it.
const startAttempts = 3

// startServer starts the server that build describes for nports loopback ports (free on 127.0.0.1, ::1
// and 127.0.0.2 when chosen), waits until every one of its addresses accepts a connection, and fails the
// test with the server's own output and logs when it cannot start. It never skips. A server that exits
// while starting is tried again with new ports, up to startAttempts times in all.
func startServer(t *testing.T, nports int, build func(ports []uint16) serverSpec) *debianServer {
	t.Helper()
	var failures []string
	for attempt := 1; attempt <= startAttempts; attempt++ {
		spec := build(serverPorts(t, nports))
		if _, err := os.Stat(spec.path); err != nil {
			t.Fatalf("%s: %s is not installed (Debian package %s): run scripts/install-deps.sh: %v", spec.name, spec.path, spec.pkg, err)
		}
		d, err := tryStartServer(t, spec)
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("%s output and logs:\n%s", spec.name, d.logText())
				}
			})
			return d
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %v\n%s", attempt, err, d.logText()))
		exited := d.hasExited()
		d.kill(t)
		if !exited {
			break // it runs but never accepted: starting it again would not help
		}
	}
	t.Fatalf("%s", strings.Join(failures, "\n"))
	return nil
}

// tryStartServer starts the server and waits until each of its addresses accepts a connection. The
// server is killed at cleanup in any case.
func tryStartServer(t *testing.T, spec serverSpec) (*debianServer, error) {
	argv := append([]string{spec.path}, spec.args...)
	if spec.wrap != nil {
		argv = spec.wrap(argv)
	}
	d := &debianServer{spec: spec, out: filepath.Join(spec.dir, spec.name+".out"), exited: make(chan struct{})}
	out, err := os.OpenFile(d.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Dir = spec.dir
	d.cmd.Stdout, d.cmd.Stderr = out, out // files: no copying goroutines
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if spec.unshareMount {
		d.cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("%s: cannot start %s: %v", spec.name, strings.Join(argv, " "), err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.kill(t) })

	deadline := time.Now().Add(serverStartTimeout)
	for _, addr := range spec.addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if d.hasExited() {
				return d, fmt.Errorf("%s exited while starting (%v), %s never accepted: %s", spec.name, d.err, addr, describe(err))
			}
			if time.Now().After(deadline) {
				return d, fmt.Errorf("%s did not accept on %s within %v: %s", spec.name, addr, serverStartTimeout, describe(err))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return d, nil
}

// hasExited reports whether the server's first process has exited.
func (d *debianServer) hasExited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// serverPorts returns n distinct TCP ports, each free on 127.0.0.1, 127.0.0.2 and ::1 when chosen, from
// below the kernel's ephemeral range (net.ipv4.ip_local_port_range), where no outgoing connection of
// another test takes them as its local port.
func serverPorts(t *testing.T, n int) []uint16 {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				low = v
			}
		}
	}
	var ports []uint16
	seen := map[int]bool{}
	for try := 0; len(ports) < n; try++ {
		if try == 1000 {
			t.Fatalf("no port free on 127.0.0.1, 127.0.0.2 and ::1 in 10000-%d", low-1)
		}
		port := 10000 + rand.IntN(low-10000)
		if seen[port] {
			continue
		}
		seen[port] = true
		free := true
		for _, a := range []string{"127.0.0.1", "127.0.0.2", "::1"} {
			l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			ports = append(ports, uint16(port))
		}
	}
	return ports
}

// signal sends sig to the server's whole process group.
func (d *debianServer) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(-d.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("%s: kill -%d -%d: %v", d.spec.name, sig, d.cmd.Process.Pid, err)
	}
}

// freeze stops every process of the server (SIGSTOP) until thaw: the kernel still completes TCP
// handshakes into the listen backlog, but nothing answers. That is a server that hangs.
func (d *debianServer) freeze(t *testing.T) { d.signal(t, syscall.SIGSTOP) }

// thaw lets a frozen server run again.
func (d *debianServer) thaw(t *testing.T) { d.signal(t, syscall.SIGCONT) }

// kill ends the server's whole process group and waits until no process of the group is left. The
// group is signalled only while it is known to exist: before its leader is reaped, or while a member is
// seen (a process group's number is not reused while any member lives), so a second kill, or one after
// the server died by itself, never reaches another process that got the same number later.
func (d *debianServer) kill(t *testing.T) {
	pgid := d.cmd.Process.Pid
	if !d.hasExited() {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	select {
	case <-d.exited:
	case <-time.After(serverStartTimeout):
		t.Errorf("%s (pid %d) did not exit after SIGKILL", d.spec.name, pgid)
		return
	}
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		left := groupMembers(pgid)
		if len(left) == 0 {
			return
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("%s: processes %v of group %d are still running after SIGKILL", d.spec.name, left, pgid)
			return
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// groupMembers lists the pids of the processes (zombies excluded) in process group pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// logText is the server's output and the tail of each of its log files.
func (d *debianServer) logText() string {
	var b strings.Builder
	for _, f := range append([]string{d.out}, d.spec.logs...) {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&b, "--- %s: %v\n", f, err)
			continue
		}
		if len(data) > 16<<10 {
			data = data[len(data)-16<<10:]
		}
		fmt.Fprintf(&b, "--- %s:\n%s\n", f, data)
	}
	return b.String()
}

// log returns the contents of the server's log file name (one of spec.logs).
func (d *debianServer) log(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// serverDir is a temporary directory for a server's private config that the server's unprivileged
// processes (nobody, ftp, postfix, dovecot) can enter: t.TempDir is mode 0700.
func serverDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeFile writes a file of the server's private config (mode 0644) and returns its path.
func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeCert writes a fresh self-signed certificate and its key as PEM files in dir and returns their
// paths.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	cert := selfSigned(t).Certificates[0]
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, name+".crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})))
	keyFile = writeFile(t, dir, name+".key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// loopback4 and loopback6 are host:port on 127.0.0.1 and ::1.
func loopback4(port uint16) string { return "127.0.0.1:" + itoa(int(port)) }
func loopback6(port uint16) string { return "[::1]:" + itoa(int(port)) }

// hangCheck runs c against a frozen server with a short deadline: it must fail with want, no sooner than
// the deadline and not much later (a generous margin: the machine is shared).
func hangCheck(t *testing.T, c Checker, tg *Target, want string) {
	t.Helper()
	const d = 300 * time.Millisecond
	var err error
	took := elapsed(func() { err = c.Check(timeout(t, d), tg) })
	wantErr(t, err, want)
	if took < d-time.Millisecond || took > d+3*time.Second {
		t.Errorf("check of a hung server took %v, want %v (+3s at most on a loaded machine)", took, d)
	}
}

// needRoot fails the test, saying why, unless it runs as root (as CI does).
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs root: %s; CI runs as root", why)
	}
}

// process finds the server's process whose name (/proc/PID/comm) is comm.
func (d *debianServer) process(t *testing.T, comm string) int {
	t.Helper()
	for _, pid := range groupMembers(d.cmd.Process.Pid) {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil && strings.TrimSpace(string(b)) == comm {
			return pid
		}
	}
	t.Fatalf("%s has no process named %q", d.spec.name, comm)
	return 0
}

// refusedTarget is a target on a loopback port nothing listens on.
func refusedTarget(t *testing.T) *Target { return closedPort(t, "tcp4") }
