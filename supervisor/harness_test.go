package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// checks is a controllable set of fake checks keyed by the target "ip:port": healthy unless told
// otherwise. It counts calls.
type checks struct {
	mu      sync.Mutex
	results map[string]func(ctx context.Context) error
	calls   map[string]int
}

func newChecks() *checks {
	return &checks{results: map[string]func(context.Context) error{}, calls: map[string]int{}}
}

var errDown = errors.New("500 Internal Server Error")

func (c *checks) set(target string, f func(ctx context.Context) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.results[target] = f
}
func (c *checks) down(targets ...string) {
	for _, t := range targets {
		c.set(t, func(context.Context) error { return errDown })
	}
}
func (c *checks) up(targets ...string) {
	for _, t := range targets {
		c.set(t, nil)
	}
}
func (c *checks) hang(targets ...string) {
	for _, t := range targets {
		c.set(t, func(ctx context.Context) error { <-ctx.Done(); return fmt.Errorf("500 Timeout Alarm") })
	}
}
func (c *checks) count(target string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[target]
}

func (c *checks) newChecker(v *config.Virtual, r *config.Real) (checker.Checker, error) {
	return checker.Func(func(ctx context.Context, t *checker.Target) error {
		key := fmt.Sprintf("%s:%d", t.Addr, t.Port)
		c.mu.Lock()
		c.calls[key]++
		f := c.results[key]
		c.mu.Unlock()
		if f == nil {
			return nil
		}
		return f(ctx)
	}), nil
}

// commands records fallbackcommand and callback runs.
type commands struct {
	mu   sync.Mutex
	runs []string
}

func (c *commands) run(ctx context.Context, argv []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs = append(c.runs, strings.Join(argv, " "))
	return nil
}
func (c *commands) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.runs)
}

func (c *commands) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.runs
	c.runs = nil
	return r
}

type alert struct {
	virtual string
	phase   config.AlertStatus
	msg     string
}

type alerts struct {
	mu  sync.Mutex
	got []alert
}

func (a *alerts) Alert(v *config.Virtual, phase config.AlertStatus, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, alert{v.String(), phase, msg})
}

func (a *alerts) list() []alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

type harness struct {
	t      *testing.T
	fake   *ipvsctl.Fake
	hook   *logtest.Hook
	checks *checks
	cmds   *commands
	alerts *alerts
	s      *Supervisor
	cancel context.CancelFunc
	done   chan error
	seen   int
}

// newHarness makes a supervisor for cfg on a Fake loaded with have. Call run to start it.
func newHarness(t *testing.T, cfg *config.Config, have ipvsctl.Table, opt func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, fake: ipvsctl.NewFake(), checks: newChecks(), cmds: &commands{}, alerts: &alerts{}}
	h.fake.Load(have)
	var logger *logrus.Logger
	logger, h.hook = logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	o := Options{Client: h.fake, Log: logger, Alert: h.alerts, NewChecker: h.checks.newChecker, Run: h.cmds.run,
		LookupAddr: func(ctx context.Context, addr string) ([]string, error) { return nil, errors.New("no PTR") }}
	if opt != nil {
		opt(&o)
	}
	s, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	// The harness runs in synctest bubbles with fake time, but the runtime's scheduling latencies are real
	// and process-wide (other tests, -race on a shared machine): the tests that need a stall or a throttle
	// set it themselves.
	s.eng.schedLat, s.eng.checkLat, s.eng.throttle = nil, nil, 0
	h.s = s
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.s.Run(ctx) }()
}

// stop cancels Run and waits for it.
func (h *harness) stop() {
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Fatalf("Run: %v", err)
	}
}

// logs returns the Info, Warn and Error lines logged since the last call ("E: " marks errors).
func (h *harness) logs() []string {
	var out []string
	entries := h.hook.AllEntries()
	for _, e := range entries[h.seen:] {
		switch e.Level {
		case logrus.InfoLevel:
			out = append(out, e.Message)
		case logrus.WarnLevel:
			out = append(out, "W: "+e.Message)
		case logrus.ErrorLevel:
			out = append(out, "E: "+e.Message)
		}
	}
	h.seen = len(entries)
	return out
}

func (h *harness) expectLogs(want ...string) {
	h.t.Helper()
	got := h.logs()
	if !slices.Equal(got, want) {
		h.t.Errorf("log lines:\n  got  %q\n  want %q", got, want)
	}
}

// expectLogsAnyOrder is for lines of independent checks, whose relative order depends on the stagger.
func (h *harness) expectLogsAnyOrder(want ...string) {
	h.t.Helper()
	got := h.logs()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		h.t.Errorf("log lines (any order):\n  got  %q\n  want %q", got, want)
	}
}

func (h *harness) expectTable(want ipvsctl.Table) {
	h.t.Helper()
	if got := h.fake.Table(); got.String() != want.String() {
		h.t.Errorf("kernel table:\n%swant\n%s", got, want)
	}
}

func (h *harness) expectCommands(want ...string) {
	h.t.Helper()
	if got := h.cmds.take(); !slices.Equal(got, want) {
		h.t.Errorf("commands run:\n  got  %q\n  want %q", got, want)
	}
}

// opsText renders the Fake's op log since the last ResetOps, and resets it.
func (h *harness) ops() []string {
	var out []string
	for _, op := range h.fake.Ops() {
		out = append(out, op.String())
	}
	h.fake.ResetOps()
	return out
}

func (h *harness) expectOps(want ...string) {
	h.t.Helper()
	if got := h.ops(); !slices.Equal(got, want) {
		h.t.Errorf("kernel operations:\n  got  %q\n  want %q", got, want)
	}
}

// wait advances the fake clock by d and lets everything settle.
func wait(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}
