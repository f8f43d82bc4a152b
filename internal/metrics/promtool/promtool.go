// Package promtool checks a Prometheus exposition with Prometheus's own linter, for tests.
package promtool

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// Check runs `promtool check metrics` (Debian package prometheus) on exposition and returns its findings as
// an error; nil when it finds nothing. A missing promtool is an error, never a pass.
func Check(exposition string) error {
	path, err := exec.LookPath("promtool")
	if err != nil {
		return fmt.Errorf("promtool not found (Debian package prometheus; make deps installs it): %w", err)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || out.Len() != 0 {
		return fmt.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
	return nil
}
