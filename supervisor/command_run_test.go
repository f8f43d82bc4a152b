package supervisor

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// cmdScript writes an executable shell script into dir.
func cmdScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFileIs waits (real time, up to 10 s) until file holds exactly want.
func waitFileIs(t *testing.T, file, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		if string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q, want %q", filepath.Base(file), b, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFallbackCommandThroughTheShell runs real fallbackcommands as 4.12 does: a line with a pipe and a
// redirection goes to /bin/sh, with the daemon's words appended as single quoted words (an IPv6 address in
// brackets is not a glob pattern); a plain line is exec'd.
func TestFallbackCommandThroughTheShell(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	rec := cmdScript(t, dir, "rec", `read line; echo "$line $*"`+"\n")
	plain := cmdScript(t, dir, "plain", `echo "plain $*" >> `+out+"\n")
	// A file the glob [2001:db8::1]:80 would match if the address reached the shell unquoted.
	if err := os.WriteFile(filepath.Join(dir, "2:80"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	v4 := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
	v4.FallbackCommand = "echo piped | " + rec + " >> " + out
	v6 := vs("[2001:db8::1]:80", rs("[2001:db8::2]:80", masq, 1))
	v6.FallbackCommand = "echo six | " + rec + " >>" + out
	v6p := vs("[2001:db8::1]:81", rs("[2001:db8::3]:81", masq, 1))
	v6p.FallbackCommand = plain
	h := newHarness(t, cfgOf(v4, v6, v6p), nil, func(o *Options) { o.Run = nil }) // the real runCommand
	h.checks.down("10.0.0.1:80", "2001:db8::2:80", "2001:db8::3:81")
	h.run()
	defer h.stop()
	eventually(t, "three fallbackcommand runs", func() bool {
		b, _ := os.ReadFile(out)
		return len(b) > 0 && len(cmdLines(string(b))) == 3
	})
	got := map[string]bool{}
	b, _ := os.ReadFile(out)
	for _, l := range cmdLines(string(b)) {
		got[l] = true
	}
	for _, want := range []string{"piped start 10.9.9.9:80 tcp", "six start [2001:db8::1]:80 tcp", "plain start [2001:db8::1]:81 tcp"} {
		if !got[want] {
			t.Errorf("fallbackcommand output %q lacks %q", b, want)
		}
	}
	for _, l := range h.logs() {
		if len(l) > 2 && l[:2] == "E:" {
			t.Errorf("logged %q", l)
		}
	}
}

func cmdLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// TestCallbackHostileConfigName: the config file name the daemon appends to the callback is one word,
// whatever it holds (4.12 pasted it into a shell line).
func TestCallbackHostileConfigName(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cb := cmdScript(t, dir, "cb", `for a in "$@"; do echo "[$a]"; done >> `+out+"\n")
	hostile := filepath.Join(dir, "ld $(touch "+dir+"/pwned);`touch "+dir+"/pwned2` '\".cf")
	cfg := cfgOf()
	cfg.File, cfg.Callback = hostile, cb
	h := newHarness(t, cfg, nil, func(o *Options) { o.Run = nil })
	h.run()
	h.s.changed <- hostile // as the config watcher tells the owner
	waitFileIs(t, out, "["+hostile+"]\n")
	h.stop()
	for _, f := range []string{"pwned", "pwned2"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("the config name ran a command: %s exists", f)
		}
	}
	// A failing callback is logged as 4.12 logs it, with the line as the shell would have seen it.
	bad := cmdScript(t, dir, "bad", "exit 3\n")
	cfg = cfgOf()
	cfg.File, cfg.Callback = dir+"/x.cf", bad
	h = newHarness(t, cfg, nil, func(o *Options) { o.Run = nil })
	h.run()
	h.s.changed <- dir + "/x.cf"
	h.stop() // waits (CommandWait) for the queued callback
	want := "E: system(" + bad + " " + dir + "/x.cf) failed: exit status 3"
	found := false
	for _, l := range h.logs() {
		found = found || l == want
	}
	if !found {
		t.Errorf("no log line %q", want)
	}
}
