package metrics

import (
	"os/exec"
	"strings"
	"testing"
)

// TestExamples checks examples/prometheus with promtool: the scrape config, the alerting rules, and the rules'
// own unit tests (each alert fires, with its labels and texts, exactly when it should).
func TestExamples(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus; make deps installs it): %v", err)
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "ldirectord.rules.yml"},
		{"test", "rules", "ldirectord.rules.test.yml"},
	} {
		cmd := exec.Command(path, args...)
		cmd.Dir = "../../examples/prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
