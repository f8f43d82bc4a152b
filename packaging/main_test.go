package packaging

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// root is the source tree.
const root = ".."

var (
	scratch  string // removed by TestMain
	debOnce  sync.Once
	debPath  string
	debErr   error
	debBuilt string // the version the .deb was built with
)

func TestMain(m *testing.M) {
	var err error
	scratch, err = os.MkdirTemp("", "packaging-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

// need fails the test when a tool the test runs is missing, naming the Debian package that has it.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed (Debian package %s; make deps installs it): %v", tool, pkg, err)
	}
	return p
}

// run runs a command and returns its stdout, stderr and exit code; a command that cannot start fails t.
func run(t *testing.T, dir string, env []string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		if x, ok := err.(*exec.ExitError); ok {
			return o.String(), e.String(), x.ExitCode()
		}
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return o.String(), e.String(), 0
}

// version is what scripts/version.sh says for the source tree.
func version(t *testing.T) string {
	t.Helper()
	out, errOut, code := run(t, root, nil, "scripts/version.sh")
	if code != 0 {
		t.Fatalf("scripts/version.sh: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

// deb builds the package once per test run (make deb's script) and returns its path.
func deb(t *testing.T) string {
	t.Helper()
	need(t, "dpkg-deb", "dpkg")
	debOnce.Do(func() {
		out := filepath.Join(scratch, "deb")
		cmd := exec.Command("scripts/build-deb.sh")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "OUT="+out)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			debErr = fmt.Errorf("scripts/build-deb.sh: %v\n%s%s", err, o.String(), e.String())
			return
		}
		debPath = strings.TrimSpace(o.String())
	})
	if debErr != nil {
		t.Fatal(debErr)
	}
	return debPath
}
