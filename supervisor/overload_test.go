package supervisor

import (
	"fmt"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
)

// TestOverloadIsLateNotDown runs far more HTTP checks than one core can do, with a lowered fd limit: 18,000
// checks at checkinterval 1 (1,500 healthy loopback backends in a child process, each checked for twelve
// request paths by twelve virtuals; 6,000 in goroutines with the race detector, which makes them 5-10
// times slower), GOMAXPROCS 1, soft RLIMIT_NOFILE 256. One core does about 7,000-10,000 of these checks a
// second in the loop (4,000-8,000 with the race detector, which kept up with 6,000 due in some runs) and
// 5,000-8,000 in goroutines (1,000-3,500 with the race detector). The checks must run late, fairly, and say so; no real may be
// removed, and the director must never run out of file descriptors. It runs until every real was checked
// twice after the start (10-30 s). It runs the checks in the engine's check loop, as the daemon does, and
// again each in a goroutine of its own, the path of the checks the loop does not run.
func TestOverloadIsLateNotDown(t *testing.T) {
	t.Run("loop", func(t *testing.T) { testOverload(t, true) })
	t.Run("goroutines", func(t *testing.T) { testOverload(t, false) })
}

func testOverload(t *testing.T, inLoop bool) {
	backends, virtuals := 1500, 12
	if raceEnabled && !inLoop {
		backends = 500
	}
	checks := backends * virtuals
	ports := startBackends(t, backends, 0)

	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	lowered := rl
	lowered.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatalf("lowering the fd limit: %v", err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	var vsList []*config.Virtual
	for i := range virtuals {
		v := vs(fmt.Sprintf("10.9.9.%d:80", i+1))
		// A long timeout: the backends share the loaded machine, and this test is about the director's
		// overload, not a backend's.
		v.CheckInterval, v.NegotiateTimeout = time.Second, 15*time.Second
		for _, p := range ports {
			r := rs(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p).String(), masq, 1)
			r.Request = fmt.Sprintf("/v%d", i)
			v.Reals = append(v.Reals, r)
		}
		vsList = append(vsList, v)
	}
	cfg := cfgOf(vsList...)

	var mu sync.Mutex
	count := map[*job]int{} // checks run, by real
	h := newHarness(t, cfg, nil, func(o *Options) {
		o.NewChecker = NewChecker
		if !inLoop {
			o.NewChecker = func(v *config.Virtual, r *config.Real) (checker.Checker, error) {
				c, err := NewChecker(v, r)
				return checker.Func(c.Check), err // not a checker the loop knows
			}
		}
	})
	if h.s.eng.limit != inflightLimit(256) {
		t.Fatalf("in-flight limit %d, want %d (from the lowered fd limit)", h.s.eng.limit, inflightLimit(256))
	}
	h.s.eng.onChecked = func(j *job) {
		if (j.start != nil) != inLoop {
			t.Errorf("a check ran in the loop: %v, want %v", j.start != nil, inLoop)
		}
		mu.Lock()
		count[j]++
		mu.Unlock()
	}
	h.run()
	waitFor(t, 60*time.Second, "every real in the table", func() bool { return inTable(h.fake) == checks })
	mu.Lock()
	clear(count)
	mu.Unlock()
	h.fake.ResetOps()
	var worstLag time.Duration
	var perCheck []int
	t0 := time.Now()
	for {
		time.Sleep(100 * time.Millisecond)
		worstLag = max(worstLag, h.s.Snapshot().Lag)
		mu.Lock()
		perCheck = slices.Collect(maps.Values(count))
		mu.Unlock()
		if len(perCheck) == checks && slices.Min(perCheck) >= 2 {
			break
		}
		if time.Since(t0) > 60*time.Second {
			t.Fatalf("after 60 s, %d of %d reals checked, at least %d times", len(perCheck), checks, slices.Min(perCheck))
		}
	}
	run := time.Since(t0)
	ops := h.fake.Ops()
	logs := h.logs()
	h.stop()

	for _, op := range ops {
		t.Errorf("kernel operation under overload: %s", op)
	}
	var lagLines int
	for _, l := range logs { // since start
		switch {
		case strings.HasPrefix(l, "W: checks are running ") && strings.HasSuffix(l, " s behind checkinterval"):
			lagLines++
		case strings.HasPrefix(l, "Added real server: "), strings.HasPrefix(l, "Added virtual server: "),
			strings.HasPrefix(l, "Resetting soft failure count: "): // the first check of each real
		default:
			t.Errorf("log line under overload: %q", l)
		}
	}
	if lagLines == 0 {
		t.Error("no lag logged")
	}
	if worstLag < lagThreshold {
		t.Errorf("show's lag at most %v under overload", worstLag)
	}
	total := 0
	for _, n := range perCheck {
		total += n
	}
	lo, hi := slices.Min(perCheck), slices.Max(perCheck)
	t.Logf("%d checks in %v (%.0f/s, %d due/s), %d to %d per real, lag up to %v", total, run,
		float64(total)/run.Seconds(), checks, lo, hi, worstLag)
	if hi > lo+2 {
		t.Errorf("%d of %d reals checked, %d to %d times each: want every real, round-robin (at most 2 apart)",
			len(perCheck), checks, lo, hi)
	}
}
