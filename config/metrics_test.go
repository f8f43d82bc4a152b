package config

import (
	"strings"
	"testing"
)

func TestMetricsDirective(t *testing.T) {
	for _, tt := range []struct{ val, addr, dump string }{
		{"9523", "127.0.0.1:9523", "metrics=127.0.0.1:9523"},
		{"10.0.0.1:9100", "10.0.0.1:9100", "metrics=10.0.0.1:9100"},
		{"[::1]:9523", "[::1]:9523", "metrics=[::1]:9523"},
		{"[2001:DB8::1]:9523", "[2001:db8::1]:9523", "metrics=[2001:db8::1]:9523"},
		{"*:9523", ":9523", "metrics=*:9523"},
		{"no", "", ""},
	} {
		c, err := Parse("t.cf", []byte("metrics="+tt.val+"\n"+v+"\treal=10.0.0.2:80 gate\n"))
		if err != nil {
			t.Errorf("metrics=%s: %v", tt.val, err)
			continue
		}
		if c.Metrics != tt.addr {
			t.Errorf("metrics=%s: address %q, want %q", tt.val, c.Metrics, tt.addr)
		}
		dump := string(Dump(c))
		if tt.dump != "" && !strings.Contains(dump, "\n"+tt.dump+"\n") || tt.dump == "" && strings.Contains(dump, "metrics=") {
			t.Errorf("metrics=%s: dump has no line %q:\n%s", tt.val, tt.dump, dump)
		}
		// The dump reads back to the same address.
		back, err := Parse("t.cf", []byte(dump))
		if err != nil || back.Metrics != tt.addr {
			t.Errorf("metrics=%s: dump read back as %q, %v", tt.val, back.Metrics, err)
		}
	}
	c, err := Parse("t.cf", []byte(v+"\treal=10.0.0.2:80 gate\n"))
	if err != nil || c.Metrics != "" {
		t.Errorf("metrics on by default: %q, %v", c.Metrics, err)
	}
}
