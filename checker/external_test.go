package checker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check")
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func extTarget(cmd string) *Target {
	return &Target{Command: cmd, VIP: "[2001:db8::1]", VPort: 80, RIP: "10.0.0.2", RPort: 8080,
		Addr: mustAddr("10.0.0.2"), Port: 9999}
}

func TestExternal(t *testing.T) {
	noLeak(t)
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	ok := script(t, "#!/bin/sh\nprintf '%s|' \"$@\" > "+args+"\npwd >> "+args+"\nexit 0\n")
	wantErr(t, External.Check(timeout(t, 5*time.Second), extTarget(ok)), "")
	got, _ := os.ReadFile(args)
	if string(got) != "[2001:db8::1]|80|10.0.0.2|8080|/\n" {
		t.Errorf("the command got %q, want VIP VPORT RIP RPORT and cwd /", got)
	}

	fwm := extTarget(ok)
	fwm.VIP, fwm.VPort = "7", 0
	wantErr(t, External.Check(timeout(t, 5*time.Second), fwm), "")
	got, _ = os.ReadFile(args)
	if !strings.HasPrefix(string(got), "7|0|") {
		t.Errorf("fwmark virtual: the command got %q", got)
	}

	fail := script(t, "#!/bin/sh\necho 'backend says no' >&2\nexit 3\n")
	wantErr(t, External.Check(timeout(t, 5*time.Second), extTarget(fail)),
		fail+" [2001:db8::1] 80 10.0.0.2 8080: exit status 3: backend says no")

	// Arguments inside checkcommand are split off (no shell: the $HOME stays literal).
	withArgs := extTarget(script(t, "#!/bin/sh\n[ \"$1\" = --flag ] && [ \"$2\" = '$HOME' ] && [ \"$3\" = '[2001:db8::1]' ]\n"))
	withArgs.Command += " --flag $HOME"
	wantErr(t, External.Check(timeout(t, 5*time.Second), withArgs), "")

	missing := extTarget("/nonexistent/check")
	wantErr(t, External.Check(timeout(t, 5*time.Second), missing),
		"/nonexistent/check [2001:db8::1] 80 10.0.0.2 8080: no such file or directory")
	wantErr(t, External.Check(timeout(t, 5*time.Second), extTarget("")), "external check: no checkcommand")

	// Output is bounded: the last 512 bytes.
	loud := script(t, "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\necho END\nexit 1\n")
	err := External.Check(timeout(t, 5*time.Second), extTarget(loud))
	if err == nil || !strings.HasSuffix(err.Error(), "xxxxEND") || len(err.Error()) > 700 {
		t.Errorf("loud script: %.200q... (%d bytes)", err, len(err.Error()))
	}
}

func TestExternalTimeoutKillsTheProcessGroup(t *testing.T) {
	noLeak(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// The script starts a helper that would outlive it, then hangs.
	hang := script(t, "#!/bin/sh\nsleep 60 &\necho $! > "+pidFile+"\necho started\nsleep 60\n")
	var err error
	d := elapsed(func() { err = External.Check(timeout(t, 300*time.Millisecond), extTarget(hang)) })
	wantErr(t, err, hang+" [2001:db8::1] 80 10.0.0.2 8080: timed out, killed its process group: started")
	withinDeadline(t, d, 300*time.Millisecond)
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The helper is gone (or a zombie waiting for init): it got SIGKILL with its group.
	for range 100 {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("helper %d of a timed-out check still runs", pid)
}

func TestExternalPerl(t *testing.T) {
	noLeak(t)
	if _, err := os.Stat("/usr/bin/perl"); err != nil {
		t.Fatal("external-perl tests need perl")
	}
	for _, tc := range []struct{ code, want string }{
		{`exit 0;`, ""},
		{`my ($vip, $vport, $rip, $rport) = @ARGV; exit($rip eq "10.0.0.2" && $rport == 8080 ? 0 : 1);`, ""},
		{`1;`, ""}, // falling off the end is healthy, as in ldirectord
		{`exit 2;`, "exit status 2"},
		{`die "no backend\n";`, "exit status 255: no backend"},
	} {
		p := script(t, tc.code+"\n")
		want := tc.want
		if want != "" {
			want = "perl " + p + " [2001:db8::1] 80 10.0.0.2 8080: " + want
		}
		wantErr(t, ExternalPerl.Check(timeout(t, 5*time.Second), extTarget(p)), want)
	}
}
