package compare

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonUnderTest starts a daemon (returning the pid whose process tree is measured) and stops it.
type daemonUnderTest struct {
	name string
	// mustNotRemove: removing a healthy real fails the test (this daemon), else it is reported.
	mustNotRemove bool
	start         func(t *testing.T) int
	stop          func(t *testing.T)
	log           func() string
	// removedLine matches the daemon's log line for a real leaving the table; its groups are the real's
	// last address byte and port.
	removedLine *regexp.Regexp
	// diag, when set, says more about a failure while the daemon still runs.
	diag func() string
}

// ours is this ldirectord, started and stopped through its command line like the Perl one.
func ours(cf string) daemonUnderTest {
	bin := os.Getenv(binEnv)
	logPath := filepath.Join(workDir, "ldirectord.log")
	run := func(t *testing.T, cmd string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, bin, cf, cmd)
		if os.Getenv(profileEnv) != "" && cmd == "start" { // not the stop command's own profile
			c.Env = append(os.Environ(), "LDIRECTORD_CPUPROFILE="+profilePath)
			if d := os.Getenv(profileForEnv); d != "" {
				c.Env = append(c.Env, "LDIRECTORD_CPUPROFILE_FOR="+d)
			}
		}
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("ldirectord %s: %v: %s", cmd, err, out)
		}
	}
	return daemonUnderTest{
		name:          "ldirectord (this)",
		mustNotRemove: true,
		removedLine:   oursRemoved,
		start: func(t *testing.T) int {
			if bin == "" {
				t.Fatalf("%s is not set: the host side passes the binary", binEnv)
			}
			run(t, "start")
			b, err := os.ReadFile("/var/run/ldirectord." + filepath.Base(cf) + ".pid")
			if err != nil {
				t.Fatalf("ldirectord started without a pid file: %v", err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file: %v", err)
			}
			return pid
		},
		stop: func(t *testing.T) {
			run(t, "stop")
			if os.Getenv(profileEnv) != "" {
				printProfile(t)
			}
		},
		log: func() string {
			b, _ := os.ReadFile(logPath)
			return string(b)
		},
		diag: func() string { return failedHealthy(bin, cf) },
	}
}

// failedHealthy is the lines of `ldirectord show` whose real is healthy and whose last check failed (the
// first 20, and how many there are): the reason a daemon removed healthy reals.
func failedHealthy(bin, cf string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, cf, "show").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ldirectord show: %v: %s", err, out)
	}
	var lines []string
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		var a, b, c, ip, port int
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "real" || !strings.Contains(l, "failed: ") {
			continue
		}
		if k, _ := fmt.Sscanf(f[1], "%d.%d.%d.%d:%d", &a, &b, &c, &ip, &port); k != 5 || (real{ip: ip}).hangs() {
			continue
		}
		if n++; n <= 20 {
			lines = append(lines, l)
		}
	}
	return fmt.Sprintf("%d healthy reals whose last check failed (ldirectord show):\n%s", n, strings.Join(lines, "\n"))
}

// keepalivedDaemon is Debian's keepalived, health-checker subsystem only, in the foreground.
func keepalivedDaemon(conf string) daemonUnderTest {
	logPath := filepath.Join(workDir, "keepalived.log")
	var cmd *exec.Cmd
	return daemonUnderTest{
		name:        "keepalived " + keepalivedVersion(),
		removedLine: keepalivedRemoved,
		start: func(t *testing.T) int {
			lf, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer lf.Close()
			cmd = exec.Command("keepalived", "--dont-fork", "--check", "--log-console", "--log-detail", "--no-syslog",
				"--use-file", conf, "--pid", filepath.Join(workDir, "keepalived.pid"),
				"--checkers_pid", filepath.Join(workDir, "keepalived-checkers.pid"))
			cmd.Stdout, cmd.Stderr = lf, lf
			if err := cmd.Start(); err != nil {
				t.Fatalf("keepalived (Debian package keepalived, scripts/deps/compare.txt): %v", err)
			}
			return cmd.Process.Pid
		},
		stop: func(t *testing.T) {
			if cmd == nil || cmd.Process == nil {
				return
			}
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("keepalived did not stop within 20 s of SIGTERM")
				cmd.Process.Kill()
				<-done
			}
		},
		log: func() string {
			b, _ := os.ReadFile(logPath)
			return string(b)
		},
	}
}

func keepalivedVersion() string {
	out, _ := exec.Command("keepalived", "--version").CombinedOutput()
	if f := strings.Fields(string(out)); len(f) >= 2 {
		return f[1]
	}
	return "(version unknown)"
}

// straceDaemon counts the syscalls of the daemon's processes for the duration dur (strace -c -f) and
// logs them with the checks the backend answered meanwhile.
func straceDaemon(t *testing.T, name string, pid int, dur string, bk *backend) {
	d, err := time.ParseDuration(dur)
	if err != nil {
		t.Fatalf("%s=%q: %v", straceEnv, dur, err)
	}
	st, err := treeStat(pid)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	args := []string{"-c", "-f"}
	for _, p := range st.list {
		args = append(args, "-p", strconv.Itoa(p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "strace", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	a0 := bk.answered(t)
	if err := cmd.Start(); err != nil {
		t.Fatalf("strace (Debian package strace): %v", err)
	}
	time.Sleep(d)
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	a := bk.answered(t) - a0
	t.Logf("%s: strace -c -f over %v, %d checks answered meanwhile:\n%s", name, d, a, out.String())
}

// profilePath is where this ldirectord writes its CPU profile when profileEnv is set.
const profilePath = workDir + "/cpu.pprof"

// printProfile logs the CPU profile this ldirectord wrote when it stopped (profileEnv), base64 in the
// lines after "cpu.pprof base64: ": the guest cannot run go tool pprof (it hangs), so read it on the host
// (grep -o 'cpu.pprof base64: .*' | cut -c19- | tr -d '\n' | base64 -d > cpu.pprof; go tool pprof -top
// cpu.pprof).
func printProfile(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The stop command returns when the daemon was told to stop; the profile is written as it exits.
		if _, err := os.Stat("/var/run/ldirectord.compare.cf.pid"); err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, err := os.ReadFile(profilePath)
	if err != nil {
		t.Logf("CPU profile: %v", err)
		return
	}
	// In lines of 4,000 characters: the guest's output is read line by line, and long lines are cut.
	enc := base64.StdEncoding.EncodeToString(b)
	for i := 0; i < len(enc); i += 4000 {
		t.Logf("cpu.pprof base64: %s", enc[i:min(i+4000, len(enc))])
	}
}
