package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
)

// TestCheckConfigAsNobody: `-t` as an unprivileged user on a valid config exits 0 and creates nothing:
// not the default log file, not logfile=, not a monitorfile; a file it could not write is a warning.
func TestCheckConfigAsNobody(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatalf("this test runs ldirectord -t as user 65534 and needs root to switch to it (uid %d)", os.Getuid())
	}
	e := newEnv(t)
	os.Chmod(e.dir, 0o755)
	os.Chmod(filepath.Dir(e.dir), 0o755) // t.TempDir's parent is 0700
	// The test binary lives in a directory only root can enter: copy it where nobody can run it.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(e.dir, "ldirectord")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	rootOnly := filepath.Join(e.dir, "root-only")
	if err := os.Mkdir(rootOnly, 0o755); err != nil {
		t.Fatal(err)
	}
	mon := filepath.Join(rootOnly, "monitor.log")
	cfgs := map[string]string{
		// No logfile=: the default /var/log/ldirectord.log, which nobody cannot write or create.
		"default.cf": "virtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n\tmonitorfile=" + mon + "\n",
		"named.cf":   fmt.Sprintf("logfile=%q\nvirtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n", filepath.Join(rootOnly, "ld.log")),
	}
	want := map[string]string{
		"default.cf": "default.cf:3: warning: unable to open monitorfile " + mon + ": Permission denied\n",
		"named.cf":   "named.cf:1: warning: unable to open logfile: " + filepath.Join(rootOnly, "ld.log") + ": Permission denied\n",
	}
	// /var/log/ldirectord.log, present or not, is root's.
	want["default.cf"] = "default.cf: warning: unable to open logfile: /var/log/ldirectord.log: Permission denied\n" + want["default.cf"]
	for name, text := range cfgs {
		e.write(name, text)
		c := exec.Command(bin, "-t", name)
		c.Dir = e.dir
		c.Env = append(e.environ(), "HOME="+e.dir)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		if err != nil || stdout.String() != "" || stderr.String() != want[name] {
			t.Errorf("-t %s as nobody: %v, stdout %q, stderr:\n%s\nwant exit 0 and:\n%s", name, err, stdout.String(), stderr.String(), want[name])
		}
	}
	for _, p := range []string{mon, filepath.Join(rootOnly, "ld.log"), e.log} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("-t created %s", p)
		}
	}
}

// TestExecuteSelf: an execute= that names this instance (same CFGNAME, so the same pid file) is refused
// by -t, start and reload with its line, since its stop would stop this daemon in the middle of its clean
// stop. Another config of another name is fine.
func TestExecuteSelf(t *testing.T) {
	e := newEnv(t)
	cfg := goodConfig(e, "web.cf", backend(t, "127.0.0.1:0"))
	self := e.write("self.cf", "checkinterval=1\nexecute=\"/etc/ha.d/self.cf\"\nexecute="+cfg+"\n"+
		"virtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n")
	want := self + `:2: execute="/etc/ha.d/self.cf" names this instance itself (CFGNAME self.cf, pid file ` +
		filepath.Join(e.dir, "ldirectord.self.cf.pid") + "): its stop would stop this daemon\n"
	if _, errOut, code := e.run("-t", self); code != 2 || errOut != want {
		t.Errorf("-t: exit %d, stderr %q; want 2, %q", code, errOut, want)
	}
	if _, errOut, code := e.run("-d", "--dry-run", self, "start"); code != 2 || !strings.HasPrefix(errOut, want) {
		t.Errorf("start: exit %d, stderr %q; want 2, %q", code, errOut, want)
	}
	// reload of a running daemon whose file now names itself.
	if _, errOut, code := e.run("--dry-run", cfg, "start"); code != 0 {
		t.Fatalf("start: exit %d, %s", code, errOut)
	}
	defer e.run(cfg, "stop")
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte("execute=./web.cf\n"), text...), 0o644)
	wantReload := cfg + `:1: execute=./web.cf names this instance itself (CFGNAME web.cf, pid file ` +
		filepath.Join(e.dir, "ldirectord.web.cf.pid") + "): its stop would stop this daemon\n"
	if _, errOut, code := e.run(cfg, "reload"); code != 2 || errOut != wantReload {
		t.Errorf("reload: exit %d, stderr %q; want 2, %q", code, errOut, wantReload)
	}
	// With no config argument CFGNAME is "ldirectord": execute=ldirectord would be the same instance.
	if err := ownInstance(&config.Config{File: "x.cf", Execute: []string{"other.cf", "ldirectord"}}, "ldirectord"); err == nil ||
		err.Error() != "x.cf: execute=ldirectord names this instance itself (CFGNAME ldirectord, pid file "+
			daemon.PidFile("ldirectord")+
			"): its stop would stop this daemon" {
		t.Errorf("ownInstance: %v", err)
	}
}

// TestHugeInput: a 1 MB line and a 12 MB receive= are refused by -t without echoing them (the error
// quotes nothing of a line that long) and without holding copies of them (peak RSS stays small); a
// 17 MB file is refused before it is read.
func TestHugeInput(t *testing.T) {
	e := newEnv(t)
	long := e.write("long.cf", strings.Repeat("z", 1<<20)+"\n")
	big := e.write("big.cf", "virtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n\tservice=http\n\treceive=\""+
		strings.Repeat("a(", 6<<20)+"\"\n")
	huge := e.write("huge.cf", strings.Repeat("# a comment line, a config would never be this long\n", (17<<20)/52))
	// The peak RSS of -t on a small config, as this binary is built (the race detector adds its own).
	small := e.write("small.cf", "virtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n")
	c := e.cmd("-t", small)
	if err := c.Run(); err != nil {
		t.Fatalf("-t small.cf: %v", err)
	}
	base := c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	for _, tc := range []struct{ file, want string }{
		{long, long + ":1: line too long (1048576 bytes; at most 65536)\n"},
		{big, big + ":4: line too long (12582923 bytes; at most 65536)\n"},
		{huge, huge + ": file too large (more than 16777216 bytes)\n"},
	} {
		c := e.cmd("-t", tc.file)
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || stderr.String() != tc.want {
			t.Errorf("-t %s: %v, stderr %q (%d bytes); want exit 2, %q", filepath.Base(tc.file), err,
				config.Excerpt(stderr.String()), stderr.Len(), tc.want)
		}
		// ru_maxrss is in KiB. The 12 MB file needs its bytes and a string copy: well under 100 MB more
		// than a small config (a 20 MB receive= used to peak at 457 MB).
		if rss := c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss; rss > base+100<<10 {
			t.Errorf("-t %s: peak RSS %d KiB, %d KiB for a small config", filepath.Base(tc.file), rss, base)
		}
	}
}

// TestUnknownScheduler: -t warns about a scheduler the running kernel has neither loaded, built in nor
// installed, and says nothing when it cannot tell (no module tree for the running kernel).
func TestUnknownScheduler(t *testing.T) {
	root := t.TempDir()
	sys := filepath.Join(root, "sys")
	lib := filepath.Join(root, "lib")
	for _, d := range []string{filepath.Join(sys, "ip_vs_wrr"), filepath.Join(lib, "kernel/net/netfilter/ipvs")} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(lib, "kernel/net/netfilter/ipvs/ip_vs_sh.ko.zst"), nil, 0o644)
	os.WriteFile(filepath.Join(lib, "modules.builtin"), []byte("kernel/net/netfilter/ipvs/ip_vs_rr.ko\n"), 0o644)
	os.WriteFile(filepath.Join(lib, "modules.dep"), []byte("kernel/extra/ip_vs_mh.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko\n"), 0o644)
	src := "virtual=10.9.9.9:80\n\treal=127.0.0.2:80 masq\n" + // wrr: loaded
		"virtual=10.9.9.9:81\n\treal=127.0.0.2:80 masq\n\tscheduler=rr\n" + // built in
		"virtual=10.9.9.9:82\n\treal=127.0.0.2:80 masq\n\tscheduler=sh\n" + // installed
		"virtual=10.9.9.9:83\n\treal=127.0.0.2:80 masq\n\tscheduler=mh\n" + // installed elsewhere
		"virtual=10.9.9.9:84\n\treal=127.0.0.2:80 masq\n\tscheduler=foo\n" +
		"virtual=10.9.9.9:85\n\treal=127.0.0.2:80 masq\n\tscheduler=foo\n"
	cfg, err := config.Parse("s.cf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range unknownSchedulers(cfg, modules{sys: sys, lib: lib}) {
		got = append(got, warningText(w))
	}
	want := []string{`s.cf:14: warning: scheduler=foo: the running kernel has no IPVS scheduler "foo" (module ip_vs_foo is neither loaded nor installed)`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if w := unknownSchedulers(cfg, modules{sys: sys, lib: filepath.Join(root, "no-such-release")}); len(w) != 0 {
		t.Errorf("warned without a module tree: %v", w[0])
	}
	// Through -t, with the kernel's own module tree replaced.
	e := newEnv(t)
	f := e.write("s.cf", src)
	save := kernelModules
	kernelModules = modules{sys: sys, lib: lib}
	defer func() { kernelModules = save }()
	var stderr bytes.Buffer
	a := newApp([]string{"ldirectord", "-t", f}, &bytes.Buffer{}, &stderr)
	t.Setenv("LDIRECTORD_PIDDIR", e.dir)
	if code := a.run(); code != 0 || stderr.String() != strings.Replace(want[0], "s.cf", f, 1)+"\n" {
		t.Errorf("-t: exit %d, stderr %q", code, stderr.String())
	}
}
