package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDemo runs the README's demo (`make demo`) against a fresh build, so the first command a newcomer
// runs keeps working; and, when the tests run as root, once more as an unprivileged user, since the demo
// promises to need no root.
func TestDemo(t *testing.T) {
	// Not t.TempDir: its parent is private to root, and user nobody must reach the binaries.
	dir, err := os.MkdirTemp("", "ldirectord-demo-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ldirectord")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ldirectord").CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	var out bytes.Buffer
	if err := run(bin, &out); err != nil {
		t.Fatalf("%v\noutput:\n%s", err, out.String())
	}
	if os.Getuid() != 0 {
		return
	}
	demo := filepath.Join(dir, "demo")
	if out, err := exec.Command("go", "build", "-o", demo, ".").CombinedOutput(); err != nil {
		t.Fatalf("build the demo: %v: %s", err, out)
	}
	cmd := exec.Command(demo, "-bin", bin)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the demo as user nobody: %v\n%s", err, b)
	}
}
