package supervisor

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

func TestBackoff(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		name      string
		base, max time.Duration
		steps     string // f: failed, s: succeeded
		want      []time.Duration
	}{
		{"doubles to the cap", 2 * s, time.Minute, "fffffffff", []time.Duration{2 * s, 4 * s, 8 * s, 16 * s, 32 * s, time.Minute, time.Minute, time.Minute, time.Minute}},
		{"a success starts again", 2 * s, time.Minute, "fffsff", []time.Duration{2 * s, 4 * s, 8 * s, 2 * s, 4 * s}},
		{"base above the cap", 2 * time.Minute, time.Minute, "ff", []time.Duration{time.Minute, time.Minute}},
		{"many failures do not overflow", 2 * s, time.Minute, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := backoff{base: c.base, max: c.max}
			var got []time.Duration
			for _, st := range c.steps {
				if st == 's' {
					b.succeeded()
					continue
				}
				got = append(got, b.failed())
			}
			if c.want == nil {
				if last := got[len(got)-1]; last != c.max {
					t.Errorf("after %d failures: %s, want %s", len(got), last, c.max)
				}
				return
			}
			if len(got) != len(c.want) {
				t.Fatalf("delays %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("delays %v, want %v", got, c.want)
				}
			}
		})
	}
}

// TestKernelFailureBacksOff (issue 9, item 12): an operation the kernel always refuses (scheduler=foo) is
// retried after 2s, 4s, 8s, ... up to once a minute (it was every 2s, forever), and each repeat is logged
// with its count.
func TestKernelFailureBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := vs("10.9.9.9:80", rs("10.0.0.1:80", masq, 1))
		v.CheckType = config.CheckOff
		v.Scheduler = "foo"
		h := newHarness(t, cfgOf(v), nil, func(o *Options) { o.ResyncInterval = time.Hour })
		start := time.Now()
		var tries []time.Duration
		var mu sync.Mutex
		h.fake.SetHook(func(op ipvsctl.Op) error {
			if op.Kind == ipvsctl.OpAddService {
				mu.Lock()
				tries = append(tries, time.Since(start).Round(time.Millisecond))
				mu.Unlock()
			}
			return nil
		})
		h.run()
		wait(5 * time.Minute)
		s := time.Second
		want := []time.Duration{0, 2 * s, 6 * s, 14 * s, 30 * s, 62 * s, 122 * s, 182 * s, 242 * s}
		mu.Lock()
		if fmt.Sprint(tries) != fmt.Sprint(want) {
			t.Errorf("add service tried %d times at %v, want %v", len(tries), tries[:min(len(tries), 12)], want)
		}
		mu.Unlock()
		msg := `E: IPVS: add service TCP 10.9.9.9:80: scheduler not available: scheduler "foo" (the kernel has no module ip_vs_foo)`
		var lines []string
		for _, l := range h.logs() {
			if strings.HasPrefix(l, "E: ") {
				lines = append(lines, l)
			}
		}
		wantLines := []string{msg}
		for n := 2; n <= 9; n++ {
			wantLines = append(wantLines, fmt.Sprintf("%s (failed %d times in a row)", msg, n))
		}
		if !slices.Equal(lines, wantLines) {
			t.Errorf("errors logged (%d):\n  got  %q\n  want %q", len(lines), lines[:min(len(lines), 12)], wantLines)
		}
		h.stop()
	})
}
