package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var units = []string{"examples/ldirectord.service", "examples/ldirectord-forking.service"}

// TestUnitsVerify: systemd-analyze verify finds nothing wrong with either unit.
func TestUnitsVerify(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	for _, u := range units {
		abs, _ := filepath.Abs(filepath.Join(root, u))
		out, errOut, code := run(t, "", []string{"SYSTEMD_LOG_COLOR=0"}, "systemd-analyze", "verify", abs)
		// verify also loads the system's units and may complain about those: only ours count.
		var ours []string
		for _, l := range strings.Split(out+errOut, "\n") {
			if strings.Contains(l, filepath.Base(u)) {
				ours = append(ours, l)
			}
		}
		if code != 0 || len(ours) > 0 {
			t.Errorf("systemd-analyze verify %s: exit %d\n%s", u, code, strings.Join(ours, "\n")+"\n"+errOut)
		}
	}
}

var reExposure = regexp.MustCompile(`Overall exposure level for ldirectord\.service: (\d+\.\d) (\S+)`)

// TestUnitSecurity: systemd-analyze security rates the notify unit "OK" or better (exposure below 5.0),
// and README states the score it gets.
func TestUnitSecurity(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	abs, _ := filepath.Abs(filepath.Join(root, "examples/ldirectord.service"))
	out, errOut, _ := run(t, "", []string{"SYSTEMD_LOG_COLOR=0", "SYSTEMD_COLORS=0"}, "systemd-analyze", "security",
		"--offline=true", "--no-pager", abs)
	m := reExposure.FindStringSubmatch(out + errOut)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security output:\n%s%s", out, errOut)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	if !slices.Contains([]string{"OK", "SAFE"}, m[2]) || score >= 5 {
		t.Errorf("exposure %s %s, want OK or better:\n%s", m[1], m[2], out)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "exposure level " + m[1] + " " + m[2]; !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not state the unit's score %q", want)
	}
}

// TestUnitHardening: the notify unit has the settings issue 11 asks for, exactly.
func TestUnitHardening(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "examples/ldirectord.service"))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			set[k] = v
		}
	}
	for k, want := range map[string]string{
		"Type":                    "notify",
		"NotifyAccess":            "main",
		"ExecStart":               "/usr/sbin/ldirectord start",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"CapabilityBoundingSet":   "CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ReadWritePaths":          "/var/log /run",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"SystemCallFilter":        "@system-service",
	} {
		if set[k] != want {
			t.Errorf("%s=%s, want %s", k, set[k], want)
		}
	}
}
