package config

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// perlLDirectord is Debian's ldirectord 4.12 (package ldirectord), the reference implementation.
const perlLDirectord = "/usr/sbin/ldirectord"

var perlSeq atomic.Int64

var rePerlError = regexp.MustCompile(`(?m)^Error \[\d+\] reading file .* at line (\d+): (.*)$`)

// perlVerdict runs `ldirectord /abs/file.cf status` on src. accepted is exit status 3 (config fine, no
// daemon running), rejected is exit status 2; line is the line of 4.12's (single) error message.
func perlVerdict(t *testing.T, src string) (accepted bool, line int, msg string) {
	t.Helper()
	if _, err := os.Stat(perlLDirectord); err != nil {
		t.Fatalf("the reference ldirectord is missing (%v): run scripts/install-deps.sh (package ldirectord)", err)
	}
	dir := t.TempDir()
	// A unique name: the pid file /var/run/ldirectord.<name>.pid must not exist.
	path := filepath.Join(dir, fmt.Sprintf("ldgo-difftest-%d-%d.cf", os.Getpid(), perlSeq.Add(1)))
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, perlLDirectord, path, "status")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "HOSTNAME=ldtest"}
	var stderr, stdout bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, &stdout
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	switch code {
	case 3:
		return true, 0, ""
	case 2:
		m := rePerlError.FindStringSubmatch(stderr.String())
		if m == nil {
			t.Fatalf("ldirectord exit 2 without an error line: %v\nstderr: %s", err, stderr.String())
		}
		n, _ := strconv.Atoi(m[1])
		return false, n, m[2]
	}
	t.Fatalf("ldirectord exit %d (%v)\nstdout: %s\nstderr: %s", code, err, stdout.String(), stderr.String())
	return false, 0, ""
}

// TestPerlDifferential checks every invalid config of the table against ldirectord 4.12: it must reject
// it too, and its error must be on a line we report.
func TestPerlDifferential(t *testing.T) {
	for _, tc := range invalidConfigs {
		if tc.notPerl != "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			acc, line, msg := perlVerdict(t, tc.src)
			if tc.perlAccepts {
				if !acc {
					t.Errorf("ldirectord 4.12 rejects it (line %d: %s), but the table says it accepts it", line, msg)
				}
				return
			}
			if acc {
				t.Fatalf("ldirectord 4.12 accepts it:\n%s", tc.src)
			}
			if tc.perlLine != 0 {
				if tc.perlLine > 0 && line != tc.perlLine {
					t.Errorf("ldirectord 4.12 error on line %d (%s), want line %d", line, msg, tc.perlLine)
				}
				return
			}
			var lines []string
			for _, w := range tc.want {
				if strings.Contains(w, fmt.Sprintf("t.cf:%d: ", line)) {
					return
				}
				lines = append(lines, w)
			}
			t.Errorf("ldirectord 4.12 error is on line %d (%s); ours:\n%s", line, msg, strings.Join(lines, "\n"))
		})
	}
}

// TestPerlDifferentialValid runs ldirectord 4.12 on every valid config and example: it must accept each,
// except the configs whose first line is "# perl: rejects" (bug fixes and extensions, in docs/compat.md),
// which it must reject.
func TestPerlDifferentialValid(t *testing.T) {
	for _, f := range validFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(f, src)
			if err == nil {
				err = c.Resolve(DefaultResolver)
			}
			if err != nil {
				t.Fatalf("we reject it: %v", err)
			}
			wantReject := bytes.HasPrefix(src, []byte("# perl: rejects"))
			acc, line, msg := perlVerdict(t, string(src))
			switch {
			case wantReject && acc:
				t.Errorf("ldirectord 4.12 accepts it, but the file says it rejects it")
			case !wantReject && !acc:
				t.Errorf("ldirectord 4.12 rejects it: line %d: %s", line, msg)
			}
		})
	}
}
