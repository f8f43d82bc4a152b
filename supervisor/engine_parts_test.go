package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)

func TestSlot(t *testing.T) {
	cases := []struct {
		name      string
		iv        time.Duration
		frac      float64
		first     time.Duration // first due, after start
		advanceAt time.Duration // after start
		next      time.Duration // due after advance, after start
	}{
		{"first round within a second", 10 * time.Second, 0.5, 500 * time.Millisecond, 600 * time.Millisecond, 5 * time.Second},
		{"short interval: first at its phase", 500 * time.Millisecond, 0.5, 250 * time.Millisecond, 300 * time.Millisecond, 750 * time.Millisecond},
		{"a late check skips the slots it missed", time.Second, 0.25, 250 * time.Millisecond, 3700 * time.Millisecond, 4250 * time.Millisecond},
		{"finishing on a slot goes to the next one", time.Second, 0, 0, 2 * time.Second, 3 * time.Second},
		{"finishing before the phase: the first slot", 10 * time.Second, 0.9, 900 * time.Millisecond, time.Second, 9 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSlot(c.iv, c.frac, t0)
			if got := s.due.Sub(t0); got != c.first {
				t.Errorf("first due +%v, want +%v", got, c.first)
			}
			s.advance(t0.Add(c.advanceAt))
			if got := s.due.Sub(t0); got != c.next {
				t.Errorf("after +%v: due +%v, want +%v", c.advanceAt, got, c.next)
			}
		})
	}
}

func TestSchedulePopDueInOrder(t *testing.T) {
	var q schedule
	var jobs []*job
	for _, ms := range []int{50, 10, 40, 20, 30, 60} {
		j := &job{idx: -1, slot: slot{due: t0.Add(time.Duration(ms) * time.Millisecond)}}
		jobs = append(jobs, j)
		q.add(j)
	}
	q.remove(jobs[2]) // the one due at 40 ms
	q.remove(jobs[2]) // twice is harmless
	if n, _ := q.next(); !n.Equal(t0.Add(10 * time.Millisecond)) {
		t.Fatalf("next %v", n)
	}
	var got []int
	for _, j := range q.popDue(t0.Add(50*time.Millisecond), nil) {
		got = append(got, int(j.slot.due.Sub(t0)/time.Millisecond))
		if j.idx != -1 {
			t.Errorf("popped job keeps index %d", j.idx)
		}
	}
	if want := []int{10, 20, 30, 50}; !slices.Equal(got, want) {
		t.Fatalf("popDue = %v, want %v", got, want)
	}
	if q.Len() != 1 {
		t.Fatalf("%d left, want 1", q.Len())
	}
}

func TestQuantumFor(t *testing.T) {
	for iv, want := range map[time.Duration]time.Duration{
		100 * time.Millisecond: 20 * time.Millisecond, time.Second: 20 * time.Millisecond,
		2 * time.Second: 40 * time.Millisecond, 10 * time.Second: 100 * time.Millisecond, time.Hour: 100 * time.Millisecond,
	} {
		if got := quantumFor(iv); got != want {
			t.Errorf("quantumFor(%v) = %v, want %v", iv, got, want)
		}
	}
}

func TestInflightLimit(t *testing.T) {
	cases := []struct {
		nofile uint64
		want   int
	}{
		{0, 1}, {64, 1}, {80, 6}, {256, 160}, {512, 384}, {1024, 832}, {1300, 1024}, {16384, 1024}, {1 << 20, 1024},
	}
	for _, c := range cases {
		if got := inflightLimit(c.nofile); got != c.want {
			t.Errorf("inflightLimit(%d) = %d, want %d", c.nofile, got, c.want)
		}
	}
}

// dialErr is the error a net.Dialer returns when the socket cannot be made.
func dialErr(call string, e syscall.Errno) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80},
		Err: os.NewSyscallError(call, e)}
}

func TestLocalCause(t *testing.T) {
	cases := []struct {
		err   error
		cause string
	}{
		{dialErr("socket", syscall.EMFILE), "too many open files"},
		{dialErr("socket", syscall.ENFILE), "too many open files in system"},
		{fmt.Errorf("GET http://127.0.0.1/: %w", dialErr("connect", syscall.ENOBUFS)), "no buffer space available"},
		{dialErr("socket", syscall.ENOMEM), "cannot allocate memory"},
		{dialErr("connect", syscall.EADDRNOTAVAIL), "cannot assign requested address"},
		{&localError{cause: "timed out while this director was overloaded", err: os.ErrDeadlineExceeded}, "timed out while this director was overloaded"},
		{dialErr("connect", syscall.ECONNREFUSED), ""},
		{os.ErrDeadlineExceeded, ""},
		{errors.New("too many open files"), ""}, // words are not a cause: only the errno is
		{nil, ""},
	}
	for _, c := range cases {
		cause, ok := LocalCause(c.err)
		if cause != c.cause || ok != (c.cause != "") {
			t.Errorf("LocalCause(%v) = %q, %v; want %q", c.err, cause, ok, c.cause)
		}
	}
}

func TestLocalReporter(t *testing.T) {
	var r localReporter
	first := "Could not check real server 127.0.0.1:80 (tcp:10.0.0.1:80): too many open files; it keeps its health (local error, logged once a minute per cause)"
	steps := []struct {
		at    time.Duration
		cause string // "" = flush
		want  []string
	}{
		{0, "too many open files", []string{first}},
		{time.Second, "too many open files", nil},
		{2 * time.Second, "too many open files", nil},
		{3 * time.Second, "no buffer space available", []string{"Could not check real server 127.0.0.1:80 (tcp:10.0.0.1:80): no buffer space available; it keeps its health (local error, logged once a minute per cause)"}},
		{30 * time.Second, "", nil},
		{61 * time.Second, "", []string{"Could not run 2 more checks in the last minute: too many open files; the real servers keep their health"}},
		{62 * time.Second, "too many open files", nil}, // counted in the new minute
		{64 * time.Second, "", nil},                    // no buffer space: a minute with nothing more, forgotten
		{122 * time.Second, "", []string{"Could not run 1 more check in the last minute: too many open files; the real servers keep their health"}},
		{183 * time.Second, "", nil},
		{184 * time.Second, "too many open files", []string{first}}, // a quiet minute passed: logged at once again
	}
	for _, s := range steps {
		var got []string
		if s.cause == "" {
			got = r.flush(t0.Add(s.at))
		} else {
			got = r.note(s.cause, "127.0.0.1:80 (tcp:10.0.0.1:80)", t0.Add(s.at))
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("at +%v %q: got %q, want %q", s.at, s.cause, got, s.want)
		}
	}
}

func TestLagMeter(t *testing.T) {
	var m lagMeter
	steps := []struct {
		at   time.Duration
		late time.Duration
		want string
	}{
		{0, 10 * time.Millisecond, ""},
		{time.Second, 400 * time.Millisecond, ""},
		{2 * time.Second, 2500 * time.Millisecond, "checks are running 2.5 s behind checkinterval"},
		{3 * time.Second, 9 * time.Second, ""}, // once a minute
		{30 * time.Second, time.Second, ""},
		{62 * time.Second, 0, "checks are running 9.0 s behind checkinterval"},
		{123 * time.Second, 100 * time.Millisecond, ""}, // caught up
		{124 * time.Second, -time.Second, ""},
	}
	for _, s := range steps {
		m.observe(s.late)
		if got := m.report(t0.Add(s.at)); got != s.want {
			t.Errorf("at +%v late %v: %q, want %q", s.at, s.late, got, s.want)
		}
	}
	if m.last != 0 {
		t.Errorf("last %v, want 0 (negative lateness is none)", m.last)
	}
}

// TestReadyQueueStaysBounded: under sustained overload the waiting queue never empties; its backing array
// must not grow with the number of checks run.
func TestReadyQueueStaysBounded(t *testing.T) {
	e := newEngine(1, func(string, string) {})
	jobs := make([]*job, 100)
	for i := range jobs {
		jobs[i] = &job{idx: -1}
	}
	e.ready = append(e.ready, jobs...)
	for range 100_000 { // take the oldest, queue it again at the end, as overload does
		e.compactReady()
		j := e.nextReady()
		e.ready = append(e.ready, j)
	}
	if c := cap(e.ready); c > 400 {
		t.Fatalf("ready queue capacity %d after 100,000 turns of 100 jobs", c)
	}
	if n := len(e.ready) - e.head; n != 100 {
		t.Fatalf("%d jobs waiting, want 100", n)
	}
}
