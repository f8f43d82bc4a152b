package command

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestArgv(t *testing.T) {
	sh := func(script string) []string { return []string{"/bin/sh", "-c", script} }
	for _, tc := range []struct {
		text  string
		after []string
		want  []string
	}{
		// Plain: split on blanks, appended words kept whole.
		{"/usr/local/bin/fb", []string{"start", "10.0.0.1:80", "tcp"}, []string{"/usr/local/bin/fb", "start", "10.0.0.1:80", "tcp"}},
		{"  /bin/fb  -v\t--x ", []string{"stop"}, []string{"/bin/fb", "-v", "--x", "stop"}},
		{"/bin/fb #x !y %z ^w a=b @c", nil, []string{"/bin/fb", "#x", "!y", "%z", "^w", "a=b", "@c"}},
		{"/bin/fb\n", nil, []string{"/bin/fb"}}, // a final newline is dropped
		{"", []string{"start"}, nil},
		{"   ", nil, nil},
		// Shell: every metacharacter, and the three forms at the start.
		{"/bin/fb | logger", []string{"start", "10.0.0.1:80", "tcp"}, sh("/bin/fb | logger start 10.0.0.1:80 tcp")},
		{"/bin/fb >> /var/log/fb.log 2>&1", []string{"start"}, sh("/bin/fb >> /var/log/fb.log 2>&1 start")},
		{"/bin/fb 2>&1", nil, sh("/bin/fb 2>&1")},
		{`"/opt/my scripts/fb"`, []string{"start"}, sh(`"/opt/my scripts/fb" start`)},
		{"/bin/fb $HOME", nil, sh("/bin/fb $HOME")},
		{"/bin/fb a&", nil, sh("/bin/fb a&")},
		{"/bin/fb *", nil, sh("/bin/fb *")},
		{"/bin/fb (", nil, sh("/bin/fb (")},
		{"/bin/fb )", nil, sh("/bin/fb )")},
		{"/bin/fb {", nil, sh("/bin/fb {")},
		{"/bin/fb }", nil, sh("/bin/fb }")},
		{"/bin/fb [", nil, sh("/bin/fb [")},
		{"/bin/fb ]", nil, sh("/bin/fb ]")},
		{"/bin/fb 'a b'", nil, sh("/bin/fb 'a b'")},
		{"/bin/fb a;b", nil, sh("/bin/fb a;b")},
		{`/bin/fb a\ b`, nil, sh(`/bin/fb a\ b`)},
		{"/bin/fb ?", nil, sh("/bin/fb ?")},
		{"/bin/fb <x", nil, sh("/bin/fb <x")},
		{"/bin/fb ~", nil, sh("/bin/fb ~")},
		{"/bin/fb `id`", nil, sh("/bin/fb `id`")},
		{"/bin/fb\nid", nil, sh("/bin/fb\nid")},
		{"/bin/fb\n", []string{"start"}, sh("/bin/fb\n start")}, // the newline is no longer the last character
		{". /etc/fb.sh", nil, sh(". /etc/fb.sh")},
		{"  exec /bin/fb", nil, sh("  exec /bin/fb")},
		{"FOO_1=x /bin/fb", nil, sh("FOO_1=x /bin/fb")},
		{"=x", nil, sh("=x")},
		{"execute /bin/fb", nil, []string{"execute", "/bin/fb"}},
		{"./fb", nil, []string{"./fb"}},
		{"/bin/a-b=c", nil, []string{"/bin/a-b=c"}}, // NAME= must be a word of [A-Za-z0-9_]
		// Hostile appended words: one word each, whatever they hold, in both forms.
		{"/bin/fb", []string{"start", "$(reboot)", "a b;c", "`id`", "'x'", "*"}, []string{"/bin/fb", "start", "$(reboot)", "a b;c", "`id`", "'x'", "*"}},
		{"/bin/fb | cat", []string{"$(reboot)", "a b;c", "`id`", "'x'", "*", "", "[::1]:80"},
			sh(`/bin/fb | cat '$(reboot)' 'a b;c' '` + "`id`" + `' ''\''x'\''' '*' '' '[::1]:80'`)},
	} {
		if got := Argv(tc.text, tc.after...); !slices.Equal(got, tc.want) {
			t.Errorf("Argv(%q, %q) = %q, want %q", tc.text, tc.after, got, tc.want)
		}
	}
}

func TestPrefixed(t *testing.T) {
	exe := "/usr/sbin/ldirectord"
	for _, tc := range []struct {
		before []string
		text   string
		after  []string
		want   []string
	}{
		{[]string{exe}, "/etc/ha.d/other.cf", []string{"start"}, []string{exe, "/etc/ha.d/other.cf", "start"}},
		{[]string{exe, "--dry-run"}, "other.cf", []string{"stop"}, []string{exe, "--dry-run", "other.cf", "stop"}},
		{[]string{exe}, `"/etc/ha.d/my other.cf"`, []string{"start"}, []string{"/bin/sh", "-c", `/usr/sbin/ldirectord "/etc/ha.d/my other.cf" start`}},
		{[]string{"/opt/ld dir/ldirectord"}, "a.cf;id", []string{"status"}, []string{"/bin/sh", "-c", `'/opt/ld dir/ldirectord' a.cf;id status`}},
		// Not at the start of the line: these are plain words.
		{[]string{exe}, "exec x.cf", []string{"start"}, []string{exe, "exec", "x.cf", "start"}},
		{[]string{exe}, "A=b", []string{"start"}, []string{exe, "A=b", "start"}},
		{[]string{exe}, "", []string{"start"}, []string{exe, "start"}},
	} {
		if got := Prefixed(tc.before, tc.text, tc.after...); !slices.Equal(got, tc.want) {
			t.Errorf("Prefixed(%q, %q, %q) = %q, want %q", tc.before, tc.text, tc.after, got, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	if got := Text(Argv("/bin/fb | logger", "start", "10.0.0.1:80", "tcp")); got != "/bin/fb | logger start 10.0.0.1:80 tcp" {
		t.Errorf("shell form: %q", got)
	}
	if got := Text(Argv("/bin/fb -v", "start", "[::1]:80", "tcp")); got != "/bin/fb -v start [::1]:80 tcp" {
		t.Errorf("exec form: %q", got)
	}
}

// probe writes a script that appends its arguments, each in brackets, to the file out, one line per run.
func probe(t *testing.T, dir string) (bin, out string) {
	t.Helper()
	bin, out = filepath.Join(dir, "probe"), filepath.Join(dir, "out")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n{ for a in \"$@\"; do printf '[%s]' \"$a\"; done; echo; } >>"+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, out
}

func runFor(t *testing.T, argv []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	Run(ctx, argv) // failures are part of what is compared: the output file
}

// TestQuoteAgainstShell: every hostile word reaches the program unchanged through /bin/sh -c.
func TestQuoteAgainstShell(t *testing.T) {
	dir := t.TempDir()
	bin, out := probe(t, dir)
	hostile := []string{"$(touch " + dir + "/pwned)", "`touch " + dir + "/pwned`", "a b", "a'b", `a"b`, `a\b`, "*", "~",
		"x;touch " + dir + "/pwned", "|", "&", "$HOME", "${IFS}", "\n", "'", "''", "-n", "", "[::1]:80", "é", "!x", "#x", "a=b"}
	runFor(t, Argv("true; "+bin, hostile...)) // shell form
	runFor(t, Argv(bin, hostile...))          // exec form
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, w := range hostile {
		want.WriteString("[" + w + "]")
	}
	line := want.String() + "\n"
	if string(data) != line+line {
		t.Errorf("the probe got\n%q\nwant twice\n%q", data, line)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("an appended word ran a command")
	}
}

// TestAgainstPerl runs each command line through Perl's own system(STRING) and through Run(Argv(...)),
// and wants the same arguments to arrive: Perl is the oracle of which lines a shell interprets.
func TestAgainstPerl(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Fatal("perl is not installed (Debian package perl-base, needed by ldirectord): ", err)
	}
	dir := t.TempDir()
	bin, out := probe(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "noshebang"), []byte(bin+" from-a-script \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROBEVAR", "v a l")
	for _, text := range []string{
		bin + " a b", bin + " #x !y %z ^w a=b @c", bin + "\t-v  --x", bin + " $PROBEVAR", bin + ` "$PROBEVAR"`,
		bin + " 'a  b'", bin + " a;" + bin + " b", bin + " a | cat", bin + ` a\ b`, "PROBEVAR=1 " + bin + " $PROBEVAR",
		"exec " + bin + " e", bin + " x 2>&1", bin + " x > /dev/null; " + bin + " y", bin + " ~ ", bin + " `echo q`",
		bin + " a=b", bin + " {a,b}", filepath.Join(dir, "noshebang") + " n",
	} {
		os.Remove(out)
		cmd := exec.Command(perl, "-e", "system($ARGV[0])", text)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("perl: %v\n%s", err, b)
		}
		perlGot, _ := os.ReadFile(out)
		os.Remove(out)
		runFor(t, Argv(text))
		got, _ := os.ReadFile(out)
		if string(got) != string(perlGot) || len(got) == 0 {
			t.Errorf("%q: Perl's system gave the probe %q, Argv %q gave %q", text, perlGot, Argv(text), got)
		}
	}
}

// TestRunKillsTheGroup: when ctx ends, the shell and the children of its pipeline are killed.
func TestRunKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Run(ctx, Argv("sleep 30 & echo $! > "+pidFile+"; wait"))
	if err == nil {
		t.Fatal("Run returned nil for a command killed at its deadline")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v with a 500ms deadline", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break // gone, or a zombie waiting for its reaper
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the pipeline's child %s still runs", pid)
		}
	}
}
