package supervisor

import (
	"slices"
	"testing"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
)

// TestServiceListsAgree keeps the parser's service= names and the checker registry from drifting apart:
// every name the config accepts has a check, and every check is reachable from a config.
func TestServiceListsAgree(t *testing.T) {
	got, want := slices.Sorted(slices.Values(checker.Services())), slices.Sorted(slices.Values(config.Services))
	if !slices.Equal(got, want) {
		t.Errorf("checker.Services() = %v\nconfig.Services    = %v", got, want)
	}
	for _, s := range config.Services {
		if _, ok := checker.Negotiate(s); !ok {
			t.Errorf("service=%s parses but checker.Negotiate has no check for it", s)
		}
	}
}
