package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDemo runs the README's demo (`make demo`) against a fresh build, so the first command a newcomer
// runs keeps working.
func TestDemo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ldirectord")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ldirectord").CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	var out bytes.Buffer
	if err := run(bin, &out); err != nil {
		t.Fatalf("%v\noutput:\n%s", err, out.String())
	}
}
