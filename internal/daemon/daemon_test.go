package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects what the test binary does when a test runs it as a child process.
const helperEnv = "DAEMON_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "daemon": // a stand-in daemon: pid file, ready, wait for TERM, remove pid file
		c := ChildFromEnv()
		if os.Getenv(ChildEnv) != "" {
			c.Fail(errors.New("ChildEnv still set"))
			os.Exit(1)
		}
		cfgName := CfgName(os.Args[len(os.Args)-2])
		if err := os.Chdir("/"); err != nil {
			c.Fail(err)
			os.Exit(1)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		pf := PidFile(cfgName)
		if err := WritePidFile(pf, os.Getpid()); err != nil {
			c.Fail(err)
			os.Exit(1)
		}
		c.Ready()
		<-sig
		time.Sleep(100 * time.Millisecond) // a daemon that takes a moment to clean up
		RemovePidFile(pf, os.Getpid())
		os.Exit(0)
	case "fail":
		ChildFromEnv().Fail(errors.New("Can not open /var/run/ldirectord.x.pid: permission denied"))
		os.Exit(1)
	case "crash":
		os.Exit(3)
	case "hang":
		ChildFromEnv()
		time.Sleep(time.Hour)
	case "stubborn": // ignores TERM
		signal.Ignore(syscall.SIGTERM)
		os.Stdout.WriteString("up\n")
		time.Sleep(time.Hour)
	case "sleep": // exits 7 on TERM
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		os.Stdout.WriteString("up\n")
		<-sig
		os.Exit(7)
	}
	os.Exit(99)
}

// helper starts the test binary as a process with the given argv and helper mode.
func helper(t *testing.T, mode string, argv ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: exe, Args: argv, Env: append(os.Environ(), helperEnv+"="+mode)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Wait until the helper has set up its signal handling.
	if _, err := out.Read(make([]byte, 3)); err != nil {
		t.Fatalf("helper %s: %v", mode, err)
	}
	return cmd
}

func TestCfgNameAndPidFile(t *testing.T) {
	t.Setenv(PidDirEnv, "")
	for arg, want := range map[string]string{
		"":                        "ldirectord",
		"ldirectord.cf":           "ldirectord.cf",
		"/etc/ha.d/ldirectord.cf": "ldirectord.cf",
		"conf/web.cf":             "web.cf",
		"dir/":                    "ldirectord",
	} {
		if got := CfgName(arg); got != want {
			t.Errorf("CfgName(%q) = %q, want %q", arg, got, want)
		}
	}
	if got := PidFile("ldirectord"); got != "/var/run/ldirectord.ldirectord.pid" {
		t.Errorf("PidFile = %q", got)
	}
	t.Setenv(PidDirEnv, "/tmp/x")
	if got := PidFile("ldirectord.cf"); got != "/tmp/x/ldirectord.ldirectord.cf.pid" {
		t.Errorf("PidFile with %s = %q", PidDirEnv, got)
	}
}

func TestPidFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ldirectord.ldirectord.pid")
	if pid, exists, err := ReadPidFile(path); pid != 0 || exists || err != nil {
		t.Errorf("ReadPidFile(missing) = %d, %v, %v", pid, exists, err)
	}
	if err := WritePidFile(path, 4242); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if string(data) != "4242\n" {
		t.Errorf("pid file holds %q, want %q", data, "4242\n")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("pid file mode %v, want 0644", fi.Mode().Perm())
	}
	if pid, exists, err := ReadPidFile(path); pid != 4242 || !exists || err != nil {
		t.Errorf("ReadPidFile = %d, %v, %v", pid, exists, err)
	}
	// Overwritten in place; no temporary files left behind.
	if err := WritePidFile(path, 17); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the pid file", len(ents))
	}
	// RemovePidFile leaves a file that names another process.
	if err := RemovePidFile(path, 4242); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("RemovePidFile removed another process's pid file")
	}
	if err := RemovePidFile(path, 17); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("RemovePidFile did not remove our pid file: %v", err)
	}
	// A file that is not a number exists but has no pid (status says stale).
	os.WriteFile(path, []byte("\n"), 0o644)
	if pid, exists, err := ReadPidFile(path); pid != 0 || !exists || err != nil {
		t.Errorf("ReadPidFile(empty line) = %d, %v, %v", pid, exists, err)
	}
	err := WritePidFile(filepath.Join(dir, "missing", "x.pid"), 1)
	if err == nil || !strings.HasPrefix(err.Error(), "Can not open "+filepath.Join(dir, "missing", "x.pid")+": ") {
		t.Errorf("WritePidFile in a missing directory: %v", err)
	}
}

// TestPidFileNeverEmpty reads the pid file while it is rewritten: a reader never sees an empty or partial
// file (Perl's "stale pid file" window).
func TestPidFileNeverEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.pid")
	if err := WritePidFile(path, 1000000); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			data, err := os.ReadFile(path)
			if err != nil || (string(data) != "1000000\n" && string(data) != "2000000\n") {
				bad = append(bad, fmt.Sprintf("%q %v", data, err))
			}
		}
	})
	for i := range 500 {
		if err := WritePidFile(path, 1000000*(1+i%2)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("reader saw %d bad reads, first %s", len(bad), bad[0])
	}
}

func TestMatchCmdline(t *testing.T) {
	for _, c := range []struct {
		argv    string
		cfgName string
		want    bool
	}{
		{"/usr/sbin/ldirectord /etc/ha.d/ldirectord.cf start", "ldirectord.cf", true},
		{"/usr/sbin/ldirectord ldirectord.cf start", "ldirectord.cf", true},
		{"ldirectord --dry-run t2.cf start", "t2.cf", true},
		{"/usr/sbin/ldirectord start", "ldirectord", true},
		{"./bin/ldirectord --dry-run start", "ldirectord", true},
		{"/usr/bin/perl -w /usr/sbin/ldirectord /etc/ha.d/ldirectord.cf start", "ldirectord.cf", true},
		{"/usr/bin/perl -w /usr/sbin/ldirectord start", "ldirectord", true},
		{"/usr/sbin/ldirectord -- web.cf start", "web.cf", true},
		// Not ours: other configs, other commands, other programs on a recycled pid.
		{"/usr/sbin/ldirectord /etc/ha.d/other.cf start", "ldirectord.cf", false},
		{"/usr/sbin/ldirectord /etc/ha.d/other.cf start", "ldirectord", false},
		{"/usr/sbin/ldirectord ldirectord.cf status", "ldirectord.cf", false},
		{"/usr/sbin/ldirectord start", "ldirectord.cf", false},
		{"tail -f /var/log/ldirectord.log", "ldirectord", false},
		{"vi /etc/ha.d/ldirectord.cf", "ldirectord.cf", false},
		{"vi ldirectord.cf start", "ldirectord.cf", false},
		{"/usr/bin/vim /usr/sbin/ldirectord start", "ldirectord", false},
		{"sleep 100", "ldirectord", false},
		{"start", "ldirectord", false},
		{"", "ldirectord", false},
	} {
		var argv []string
		if c.argv != "" {
			argv = strings.Fields(c.argv)
		}
		if got := MatchCmdline(argv, c.cfgName); got != c.want {
			t.Errorf("MatchCmdline(%q, %q) = %v, want %v", c.argv, c.cfgName, got, c.want)
		}
	}
}

func TestLookupAndTerminate(t *testing.T) {
	t.Setenv(PidDirEnv, t.TempDir())
	if _, st, err := Lookup("web.cf"); st != Stopped || err != nil {
		t.Errorf("Lookup without a pid file = %v, %v; want stopped", st, err)
	}

	d := helper(t, "sleep", "ldirectord", "/etc/ha.d/web.cf", "start")
	WritePidFile(PidFile("web.cf"), d.Process.Pid)
	if pid, st, err := Lookup("web.cf"); pid != d.Process.Pid || st != Running || err != nil {
		t.Errorf("Lookup = %d, %v, %v; want %d running", pid, st, err, d.Process.Pid)
	}
	// The same pid file name reached through another path of the same config is the same instance.
	if !IsOurs(d.Process.Pid, "web.cf") || IsOurs(d.Process.Pid, "other.cf") {
		t.Errorf("IsOurs does not tell configs apart")
	}

	// A recycled pid now running another program: stale, and Terminate refuses to signal it.
	other := helper(t, "sleep", "tail", "-f", "/var/log/ldirectord.log")
	WritePidFile(PidFile("other.cf"), other.Process.Pid)
	if pid, st, _ := Lookup("other.cf"); pid != other.Process.Pid || st != Stale {
		t.Errorf("Lookup(recycled pid) = %d, %v; want stale", pid, st)
	}
	if err := Terminate(other.Process.Pid, "other.cf", time.Second); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Terminate(recycled pid) = %v, want ErrNotOurs", err)
	}
	if other.ProcessState != nil || syscall.Kill(other.Process.Pid, 0) != nil {
		t.Fatalf("the other program was hit")
	}

	// This executable under another name is an ldirectord; another program with the same arguments is not.
	renamed := helper(t, "sleep", "lbd", "web.cf", "start")
	if !IsOurs(renamed.Process.Pid, "web.cf") {
		t.Errorf("this executable run as lbd is not recognised")
	}
	sh := exec.Command("/bin/sh", "-c", "sleep 30", "x.cf", "start")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sh.Process.Kill(); sh.Wait() }()
	for i := 0; i < 200 && len(Cmdline(sh.Process.Pid)) < 5; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if IsOurs(sh.Process.Pid, "x.cf") {
		t.Errorf("%q is taken for an ldirectord", Cmdline(sh.Process.Pid))
	}

	// Terminate sends TERM and returns once the daemon is gone.
	if err := Terminate(d.Process.Pid, "web.cf", 10*time.Second); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if IsOurs(d.Process.Pid, "web.cf") {
		t.Errorf("Terminate returned while the daemon is still running")
	}
	err := d.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("daemon exit = %v, want exit 7 (its TERM handler)", err)
	}
	// Its pid file is now stale: the process is gone.
	if _, st, _ := Lookup("web.cf"); st != Stale {
		t.Errorf("Lookup after the daemon exited = %v, want stale", st)
	}
}

func TestTerminateTimeout(t *testing.T) {
	d := helper(t, "stubborn", "/usr/sbin/ldirectord", "x.cf", "start")
	err := Terminate(d.Process.Pid, "x.cf", 300*time.Millisecond)
	want := fmt.Sprintf("ldirectord pid %d has not exited 300ms after SIGTERM", d.Process.Pid)
	if err == nil || err.Error() != want {
		t.Errorf("Terminate(stubborn) = %v, want %q", err, want)
	}
}

func procStat(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
}

func TestSpawn(t *testing.T) {
	piddir := t.TempDir()
	t.Setenv(PidDirEnv, piddir)
	t.Setenv(helperEnv, "daemon")
	argv := []string{"ldirectord", "--dry-run", "my.cf", "start"}
	p, err := Spawn(SpawnOptions{Args: argv})
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	defer p.Kill()
	waited := make(chan *os.ProcessState, 1)
	go func() { st, _ := p.Wait(); waited <- st }()

	// Spawn returned after the daemon wrote its pid file.
	pid, st, err := Lookup("my.cf")
	if pid != p.Pid || st != Running || err != nil {
		t.Fatalf("Lookup after Spawn = %d, %v, %v; want %d running", pid, st, err, p.Pid)
	}
	if got := Cmdline(p.Pid); strings.Join(got, "\x00") != strings.Join(argv, "\x00") {
		t.Errorf("daemon argv %q, want %q", got, argv)
	}
	if stat := procStat(t, p.Pid); stat[3] != strconv.Itoa(p.Pid) { // session id
		t.Errorf("daemon session %s, want its own (%d)", stat[3], p.Pid)
	}
	for fd := range 3 {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", p.Pid, fd)); l != "/dev/null" {
			t.Errorf("daemon fd %d -> %q, want /dev/null", fd, l)
		}
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/fd/3", p.Pid)); err == nil {
		t.Errorf("daemon still holds the report pipe on fd 3")
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", p.Pid)); cwd != "/" {
		t.Errorf("daemon cwd %q, want /", cwd)
	}
	// ChildFromEnv removed ChildEnv (the helper fails its start otherwise), so execute= instances the
	// daemon starts do not take themselves for a spawned daemon.

	if err := Terminate(p.Pid, "my.cf", 10*time.Second); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if st := <-waited; st == nil || st.ExitCode() != 0 {
		t.Errorf("daemon exit state %v", st)
	}
	if _, err := os.Stat(PidFile("my.cf")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind after a clean stop: %v", err)
	}
}

func TestSpawnFailures(t *testing.T) {
	t.Setenv(PidDirEnv, t.TempDir())
	for _, c := range []struct {
		mode, want string
	}{
		{"fail", "Can not open /var/run/ldirectord.x.pid: permission denied"},
		{"crash", "the daemon exited before it was running: exit status 3"},
		{"hang", "the daemon did not report that it was running within 300ms; killed it"},
	} {
		t.Setenv(helperEnv, c.mode)
		p, err := Spawn(SpawnOptions{Args: []string{"ldirectord", "x.cf", "start"}, Timeout: 300 * time.Millisecond})
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: Spawn = %v, %v; want error %q", c.mode, p, err, c.want)
		}
		var re *ReportedError
		if errors.As(err, &re) != (c.mode == "fail") {
			t.Errorf("%s: error %T, want a *ReportedError only when the daemon reported it", c.mode, err)
		}
	}
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET: %v", err)
	}
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), fmt.Sprintf("@ldirectord-test-%d", os.Getpid())} {
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("NOTIFY_SOCKET", name)
		for _, state := range []string{"READY=1", "STOPPING=1"} {
			if err := Notify(state); err != nil {
				t.Fatalf("Notify(%s) on %s: %v", state, name, err)
			}
			buf := make([]byte, 100)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != state {
				t.Errorf("%s got %q, %v; want %q", name, buf[:n], err, state)
			}
		}
		c.Close()
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if err := Notify("READY=1"); err == nil {
		t.Errorf("Notify to a missing socket: no error")
	}
}

// TestWatchdogInterval reads $WATCHDOG_USEC as sd_watchdog_enabled(3) does: only with a $NOTIFY_SOCKET to
// feed it through, only for the process $WATCHDOG_PID names when it is set, and nothing that is not a
// positive number of microseconds.
func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		socket, usec, pid string // pid "-": unset
		want              time.Duration
	}{
		{"/run/notify", "30000000", "-", 30 * time.Second},
		{"/run/notify", "500000", self, 500 * time.Millisecond},
		{"", "30000000", "-", 0},
		{"/run/notify", "30000000", "1", 0},
		{"/run/notify", "", "-", 0},
		{"/run/notify", "0", "-", 0},
		{"/run/notify", "-5", "-", 0},
		{"/run/notify", "30s", "-", 0},
		{"/run/notify", "99999999999999999999", "-", 0},
	} {
		t.Setenv("NOTIFY_SOCKET", c.socket)
		t.Setenv("WATCHDOG_USEC", c.usec)
		if c.pid == "-" {
			os.Unsetenv("WATCHDOG_PID")
		} else {
			t.Setenv("WATCHDOG_PID", c.pid)
		}
		if got := WatchdogInterval(); got != c.want {
			t.Errorf("NOTIFY_SOCKET=%q WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, want %v", c.socket, c.usec, c.pid, got, c.want)
		}
	}
}

func TestAcquireLock(t *testing.T) {
	t.Setenv(PidDirEnv, t.TempDir())
	l, err := AcquireLock("web.cf")
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file: a second open in this process conflicts as another process would.
	if _, err := AcquireLock("web.cf"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second AcquireLock: %v, want ErrLocked", err)
	}
	if other, err := AcquireLock("other.cf"); err != nil {
		t.Errorf("another config's lock: %v", err)
	} else {
		other.Release()
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := AcquireLock("web.cf")
	if err != nil {
		t.Fatalf("AcquireLock after Release: %v", err)
	}
	l2.Release()
	if _, err := os.Stat(LockFile("web.cf")); err != nil {
		t.Errorf("lock file: %v", err)
	}
	t.Setenv(PidDirEnv, "/nonexistent-dir")
	if _, err := AcquireLock("web.cf"); err == nil || err.Error() != "Can not open /nonexistent-dir/ldirectord.web.cf.lock: open /nonexistent-dir/ldirectord.web.cf.lock: no such file or directory" {
		t.Errorf("AcquireLock in a missing directory: %v", err)
	}
}
