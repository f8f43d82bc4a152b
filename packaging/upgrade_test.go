package packaging

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/uml"
)

// debEnv passes the package built on the host to the guest.
const debEnv = "PACKAGING_TEST_DEB"

// userConfig is the admin's /etc/ha.d/ldirectord.cf that the upgrade must keep.
const userConfig = `# the admin's own config
checktimeout=3
virtual=192.168.100.10:80
	real=192.168.100.21:80 gate
	service=http
`

// TestKernelDebUpgrade installs the package with apt, as an admin would (apt install ./ldirectord_*.deb),
// on a copy of this machine on which Debian's Perl ldirectord is installed and its config edited: a
// user-mode Linux guest mounts an overlay over the host's file system (read-only below, a tmpfs above) and
// runs apt-get in a chroot into it. apt must replace the Perl package in place without asking anything,
// keep the edited /etc/ha.d/ldirectord.cf, and leave this program as /usr/sbin/ldirectord. Removing the
// package must keep the config too.
func TestKernelDebUpgrade(t *testing.T) {
	o := uml.Options{Modules: []string{"overlay"}, Timeout: 4 * time.Minute}
	if !uml.InGuest() {
		if _, err := os.Stat("/var/lib/dpkg/info/ldirectord.list"); err != nil {
			t.Fatalf("Debian's ldirectord is not installed here (scripts/deps/base.txt; make deps installs it): %v", err)
		}
		// The guest sees the host's file system, but not the host's /tmp: copy the package where it can.
		dir, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir, err = os.MkdirTemp(dir, "ldirectord-deb-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		p := deb(t)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		o.Env = []string{debEnv + "=" + filepath.Join(dir, filepath.Base(p)), "PACKAGING_TEST_VERSION=" + version(t)}
	}
	uml.RunTestsWith(t, o, map[string]func(t *testing.T){"AptReplacesPerl": testAptReplacesPerl})
}

func testAptReplacesPerl(t *testing.T) {
	debFile, v := os.Getenv(debEnv), os.Getenv("PACKAGING_TEST_VERSION")
	ov := t.TempDir()
	root := filepath.Join(ov, "root")
	sh := func(script string) string {
		t.Helper()
		out, err := exec.Command("/bin/sh", "-ec", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	sh(fmt.Sprintf(`cd %s; mkdir upper work root
mount -t overlay overlay -o lowerdir=/,upperdir=upper,workdir=work root
mount -t proc proc root/proc
mount -t tmpfs tmpfs root/run
mount -t tmpfs tmpfs root/tmp
mkdir -p root/tmp/deb && cp %s root/tmp/deb/
# No service is started in the chroot (Debian's convention for chroots).
printf '#!/bin/sh\nexit 101\n' > root/usr/sbin/policy-rc.d; chmod 755 root/usr/sbin/policy-rc.d
# man-db's trigger would rebuild its index over the slow host file system: not what is tested.
rm -f root/var/lib/man-db/auto-update`, ov, debFile))
	t.Cleanup(func() {
		exec.Command("umount", root+"/tmp", root+"/run", root+"/proc", root).Run()
	})
	in := func(args ...string) (string, error) {
		cmd := exec.Command("chroot", append([]string{root}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
		cmd.Stdin = nil // a conffile question would fail on /dev/null
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, _ := in("dpkg-query", "-W", "-f", "${Version} ${Status}", "ldirectord")
	perlVersion, status, _ := strings.Cut(out, " ")
	if !strings.HasPrefix(perlVersion, "1:") || status != "install ok installed" {
		t.Fatalf("the Perl ldirectord in the copy: %q", out)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/ha.d/ldirectord.cf"), []byte(userConfig), 0o644); err != nil {
		t.Fatal(err)
	}

	deb := "/tmp/deb/" + filepath.Base(debFile)
	var err error
	out, err = in("apt-get", "install", "-y", "-o", "Dpkg::Use-Pty=0", deb)
	if err != nil {
		t.Fatalf("apt-get install %s: %v\n%s", deb, err, out)
	}
	t.Logf("apt-get install ./%s:\n%s", filepath.Base(deb), out)
	if want := "Unpacking ldirectord (2:" + v + ") over (" + perlVersion + ")"; !strings.Contains(out, want) {
		t.Errorf("apt did not replace the Perl package in place (%q)", want)
	}
	if strings.Contains(out, "Configuration file") || strings.Contains(out, "conffile") {
		t.Errorf("dpkg asked or said something about a conffile")
	}
	if got, _ := in("dpkg-query", "-W", "-f", "${Version} ${Status}", "ldirectord"); got != "2:"+v+" install ok installed" {
		t.Errorf("ldirectord after the install: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/ha.d/ldirectord.cf")); string(got) != userConfig {
		t.Errorf("/etc/ha.d/ldirectord.cf changed:\n%s", got)
	}
	if leftovers := sh("cd " + root + "/etc && find . -name '*.dpkg-*' -o -name '*.ucf-*'"); leftovers != "" {
		t.Errorf("conffile leftovers: %s", leftovers)
	}
	if out, err := in("/usr/sbin/ldirectord", "-v"); err != nil || !strings.Contains(out, "\nldirectord-go version "+v+"\n") {
		t.Errorf("/usr/sbin/ldirectord -v: %v\n%s", err, out)
	}
	if out, err := in("/usr/sbin/ldirectord", "-t"); err != nil || out != "" {
		t.Errorf("/usr/sbin/ldirectord -t on the kept config: %v %q", err, out)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/ldirectord.service"))
	if !bytes.Contains(unit, []byte("\nType=notify\n")) {
		t.Errorf("the installed unit is not the notify unit:\n%s", unit)
	}
	// Removing (not purging) the package keeps the admin's config, as for any conffile.
	if out, err := in("dpkg", "--remove", "ldirectord"); err != nil {
		t.Fatalf("dpkg --remove ldirectord: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/ha.d/ldirectord.cf")); string(got) != userConfig {
		t.Errorf("/etc/ha.d/ldirectord.cf after remove: %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/ldirectord")); !os.IsNotExist(err) {
		t.Errorf("/usr/sbin/ldirectord after remove: %v", err)
	}
}
