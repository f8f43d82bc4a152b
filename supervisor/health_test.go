package supervisor

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestHealthObserve(t *testing.T) {
	bad := errors.New("refused")
	// Steps: "+" success, "-" failure, "m" maintenance (forced down). Each step's expected outcome:
	// the state after it, "*" if it changed, "s<n>" for soft failure n, "r" for a reset.
	cases := []struct {
		name           string
		start          Health
		failure, rise  int
		steps, outcome string
	}{
		{"up stays up", Up, 1, 1, "+ +", "up up"},
		{"failurecount 1: first failure is down", Up, 1, 1, "-", "down*"},
		{"failurecount 3: two soft failures, third is down", Up, 3, 1, "- - -", "up,s1 up,s2 down*"},
		{"a success resets the soft failures", Up, 3, 1, "- - + - -", "up,s1 up,s2 up,r up,s1 up,s2"},
		{"failures of a down real are not counted", Down, 3, 1, "- - - +", "down down down up*,r"},
		{"one success brings a down real up, with a reset", Down, 1, 1, "+", "up*,r"},
		{"successcount 3 needs three in a row", Down, 1, 3, "+ + - + + +", "down down down down down up*,r"},
		{"unknown: first success is up", Unknown, 3, 1, "+", "up*,r"},
		{"unknown: first failure is down whatever failurecount", Unknown, 3, 1, "-", "down*"},
		{"unknown with successcount 2 waits", Unknown, 1, 2, "+ +", "unknown up*,r"},
		{"maintenance takes an up real down at once", Up, 5, 1, "m m +", "down* down up*,r"},
		{"maintenance on unknown", Unknown, 1, 1, "m", "down*"},
		{"maintenance after soft failures", Up, 3, 1, "- m", "up,s1 down*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHealth(c.start, c.failure, c.rise)
			var got []string
			for _, step := range strings.Fields(c.steps) {
				var changed bool
				switch step {
				case "+":
					changed = h.observe(nil)
				case "-":
					changed = h.observe(bad)
				case "m":
					changed = h.forceDown()
				}
				out := h.state.String()
				if changed {
					out += "*"
				}
				if h.soft > 0 {
					out += fmt.Sprintf(",s%d", h.soft)
				}
				if h.reset {
					out += ",r"
				}
				got = append(got, out)
			}
			if g := strings.Join(got, " "); g != c.outcome {
				t.Errorf("steps %q: got %q, want %q", c.steps, g, c.outcome)
			}
		})
	}
}
