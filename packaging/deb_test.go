package packaging

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestVersionScript(t *testing.T) {
	for _, c := range []struct{ describe, count, want string }{
		{"v1.2.3", "9", "1.2.3"},
		{"1.2.3", "9", "1.2.3"},
		{"v1.2.3-4-gabc1234", "9", "1.2.3+git4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", "9", "1.2.3+git4.gabc1234+dirty"},
		{"v1.2-rc1", "9", "1.2~rc1"},
		{"v1.2-rc1-3-gdeadbee", "9", "1.2~rc1+git3.gdeadbee"},
		{"gabc1234", "57", "0.0+git57.gabc1234"},
		{"g1234567-dirty", "57", "0.0+git57.g1234567+dirty"},
	} {
		out, errOut, code := run(t, root, nil, "scripts/version.sh", c.describe, c.count)
		if got := strings.TrimSpace(out); got != c.want || code != 0 {
			t.Errorf("version.sh %s %s = %q (exit %d, %s), want %q", c.describe, c.count, got, code, errOut, c.want)
		}
	}
	_, errOut, code := run(t, root, nil, "scripts/version.sh", "release one", "1")
	if want := "version.sh: cannot make a Debian version of git describe output \"release one\"\n"; code != 1 || errOut != want {
		t.Errorf("version.sh of a bad describe: exit %d, stderr %q; want exit 1, %q", code, errOut, want)
	}
	v := version(t)
	if out, errOut, code := run(t, root, nil, "dpkg", "--validate-version", "2:"+v); code != 0 {
		t.Errorf("the tree's version 2:%s is not a valid Debian version: %s%s", v, out, errOut)
	}
}

func debArch(t *testing.T) string {
	out, _, code := run(t, root, nil, "dpkg", "--print-architecture")
	if code != 0 {
		t.Fatal("dpkg --print-architecture failed")
	}
	return strings.TrimSpace(out)
}

func TestDebControl(t *testing.T) {
	p := deb(t)
	v, arch := version(t), debArch(t)
	if want := "ldirectord_" + v + "_" + arch + ".deb"; filepath.Base(p) != want {
		t.Errorf("package file %s, want %s", filepath.Base(p), want)
	}
	want := map[string]string{
		"Package":      "ldirectord",
		"Version":      "2:" + v,
		"Architecture": arch,
		"Maintainer":   "ldirectord-go developers <ldirectord-go@users.noreply.github.com>",
		"Pre-Depends":  "init-system-helpers (>= 1.54~)",
		"Depends":      "kmod",
		"Recommends":   "logrotate, ipvsadm",
		"Suggests":     "default-mta | mail-transport-agent, resource-agents",
		"Section":      "admin",
		"Priority":     "optional",
		"Homepage":     "https://github.com/ldirectord-go/ldirectord",
	}
	for field, w := range want {
		out, errOut, code := run(t, "", nil, "dpkg-deb", "--field", p, field)
		if got := strings.TrimSpace(out); got != w || code != 0 {
			t.Errorf("%s: %q (exit %d %s), want %q", field, got, code, errOut, w)
		}
	}
	out, _, _ := run(t, "", nil, "dpkg-deb", "--field", p)
	var fields []string
	for _, l := range strings.Split(out, "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && l[0] != ' ' {
			fields = append(fields, k)
		}
	}
	wantFields := []string{"Package", "Version", "Architecture", "Maintainer", "Installed-Size", "Pre-Depends",
		"Depends", "Recommends", "Suggests", "Section", "Priority", "Homepage", "Description"}
	if !slices.Equal(fields, wantFields) {
		t.Errorf("control fields %v, want %v", fields, wantFields)
	}
	desc, _, _ := run(t, "", nil, "dpkg-deb", "--field", p, "Description")
	if !strings.HasPrefix(desc, "Monitors virtual services provided by LVS (Go implementation)\n") {
		t.Errorf("Description: %q", desc)
	}
	// Newer than Debian's Perl package (1:4.12.0-2), so that apt installs it as an upgrade.
	if _, _, code := run(t, "", nil, "dpkg", "--compare-versions", "2:"+v, "gt", "1:4.12.0-2"); code != 0 {
		t.Errorf("2:%s does not sort after Debian's 1:4.12.0-2", v)
	}
}

// TestDebFiles checks every file of the package, its mode and owner, and the conffiles.
func TestDebFiles(t *testing.T) {
	p := deb(t)
	out, errOut, code := run(t, "", nil, "dpkg-deb", "--contents", p)
	if code != 0 {
		t.Fatalf("dpkg-deb --contents: exit %d: %s", code, errOut)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l) // mode owner size date time path [-> target]
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", l)
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", f[5], f[1])
		}
		if strings.HasSuffix(f[5], "/") {
			continue
		}
		got = append(got, f[0]+" "+strings.Join(f[5:], " "))
	}
	want := []string{
		"-rw-r--r-- ./etc/default/ldirectord",
		"-rw-r--r-- ./etc/ha.d/ldirectord.cf",
		"lrwxrwxrwx ./etc/ha.d/resource.d/ldirectord -> /usr/sbin/ldirectord",
		"-rwxr-xr-x ./etc/init.d/ldirectord",
		"-rw-r--r-- ./etc/logrotate.d/ldirectord",
		"-rw-r--r-- ./lib/systemd/system/ldirectord.service",
		"-rwxr-xr-x ./usr/sbin/ldirectord",
		"-rw-r--r-- ./usr/share/doc/ldirectord/README.md",
		"-rw-r--r-- ./usr/share/doc/ldirectord/changelog.gz",
		"-rw-r--r-- ./usr/share/doc/ldirectord/compat.md.gz",
		"-rw-r--r-- ./usr/share/doc/ldirectord/copyright",
		"-rw-r--r-- ./usr/share/doc/ldirectord/examples/fwmark.cf",
		"-rw-r--r-- ./usr/share/doc/ldirectord/examples/https.cf",
		"-rw-r--r-- ./usr/share/doc/ldirectord/examples/ipv6.cf",
		"-rw-r--r-- ./usr/share/doc/ldirectord/examples/ldirectord-forking.service",
		"-rw-r--r-- ./usr/share/doc/ldirectord/examples/ldirectord.cf.gz",
		"-rw-r--r-- ./usr/share/doc/ldirectord/examples/quiescent-fallback.cf",
		"-rw-r--r-- ./usr/share/doc/ldirectord/examples/udp-ping.cf",
		"-rw-r--r-- ./usr/share/lintian/overrides/ldirectord",
		"-rw-r--r-- ./usr/share/man/man8/ldirectord.8.gz",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("package files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	ctrl := filepath.Join(t.TempDir(), "DEBIAN")
	if _, errOut, code := run(t, "", nil, "dpkg-deb", "--control", p, ctrl); code != 0 {
		t.Fatalf("dpkg-deb --control: %s", errOut)
	}
	conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "/etc/default/ldirectord\n/etc/ha.d/ldirectord.cf\n/etc/init.d/ldirectord\n/etc/logrotate.d/ldirectord\n"; string(conffiles) != want {
		t.Errorf("conffiles %q, want %q", conffiles, want)
	}
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if fi, err := os.Stat(filepath.Join(ctrl, s)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("maintainer script %s: %v", s, err)
		}
	}
}

// TestDebLintian: lintian reports no error and no warning (one error is overridden, with its reason, in
// packaging/debian/lintian-overrides: a Go program is statically linked).
func TestDebLintian(t *testing.T) {
	need(t, "lintian", "lintian")
	p := deb(t)
	out, errOut, code := run(t, "", nil, "lintian", "--fail-on", "error,warning", p)
	var bad []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			bad = append(bad, l)
		}
	}
	if code != 0 || len(bad) > 0 {
		t.Errorf("lintian %s: exit %d\n%s%s", filepath.Base(p), code, out, errOut)
	}
}

// TestDebExtracted unpacks the package into a scratch root without privileges and runs what it installed
// there: the program reports the package's version, checks the config and every shipped example, and is a
// static program (no C library, so the package depends on nothing for it).
func TestDebExtracted(t *testing.T) {
	p := deb(t)
	r := t.TempDir()
	if _, errOut, code := run(t, "", nil, "dpkg-deb", "--extract", p, r); code != 0 {
		t.Fatalf("dpkg-deb --extract: %s", errOut)
	}
	bin := filepath.Join(r, "usr/sbin/ldirectord")

	out, _, code := run(t, "", nil, bin, "-v")
	lines := strings.Split(out, "\n")
	if want := "ldirectord-go version " + version(t); code != 0 || len(lines) < 4 || lines[0] != "Linux Director v1.186-ha" || lines[3] != want {
		t.Errorf("ldirectord -v: exit %d\n%s\nwant line 4 %q", code, out, want)
	}

	configs := []string{filepath.Join(r, "etc/ha.d/ldirectord.cf")}
	ex, _ := filepath.Glob(filepath.Join(r, "usr/share/doc/ldirectord/examples/*.cf"))
	configs = append(configs, ex...)
	gz, err := os.ReadFile(filepath.Join(r, "usr/share/doc/ldirectord/examples/ldirectord.cf.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	unz := filepath.Join(t.TempDir(), "ldirectord.cf")
	if err := os.WriteFile(unz, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	configs = append(configs, unz)
	if len(configs) != 7 { // the dummy, five examples, ldirectord.cf.gz
		t.Errorf("%d configs to check, want 7: %v", len(configs), configs)
	}
	for _, c := range configs {
		out, errOut, code := run(t, "", nil, bin, "-t", c)
		if code != 0 || out != "" || errOut != "" {
			t.Errorf("ldirectord -t %s: exit %d, stdout %q, stderr %q", c, code, out, errOut)
		}
	}

	// Debian's dummy /etc/ha.d/ldirectord.cf, init script and defaults file, byte for byte: upgrading
	// from the Perl package finds them unchanged and never asks about a file the admin edited.
	for path, sum := range map[string]string{
		"etc/ha.d/ldirectord.cf": "59f9c6ebacf1b4bf5473506a0c06429c",
		"etc/init.d/ldirectord":  "04a75c258917d0c759ea7f2cddf986d1",
		"etc/default/ldirectord": "5480412cedf9cf3666b8696105d1f7e9",
	} {
		b, err := os.ReadFile(filepath.Join(r, path))
		if err != nil {
			t.Fatal(err)
		}
		h := md5.Sum(b)
		if got := hex.EncodeToString(h[:]); got != sum {
			t.Errorf("%s has md5 %s, Debian's has %s", path, got, sum)
		}
	}
	for path, src := range map[string]string{
		"lib/systemd/system/ldirectord.service": "examples/ldirectord.service",
		"etc/logrotate.d/ldirectord":            "examples/logrotate.conf",
	} {
		a, _ := os.ReadFile(filepath.Join(r, path))
		b, _ := os.ReadFile(filepath.Join(root, src))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s is not %s", path, src)
		}
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("usr/sbin/ldirectord has a %v program header: it is not static", prog.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("usr/sbin/ldirectord needs %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("usr/sbin/ldirectord is not stripped")
	}
}

// TestDebReproducible: the same tree builds the same package, byte for byte (file times are the last
// commit's, the program is built with -trimpath and no build id).
func TestDebReproducible(t *testing.T) {
	p := deb(t)
	out := t.TempDir()
	stdout, errOut, code := run(t, root, []string{"OUT=" + out}, "scripts/build-deb.sh")
	if code != 0 {
		t.Fatalf("scripts/build-deb.sh: exit %d: %s", code, errOut)
	}
	a, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of the same tree differ: %s (%d bytes) and %s (%d bytes)", p, len(a), stdout, len(b))
	}
}
