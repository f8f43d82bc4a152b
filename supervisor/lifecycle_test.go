package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// TestPhaseAfterReloadStopsCheckedUnit (issue 9, item 2): a reload stops a unit whose loop has made its
// first check but whose first event is still queued for the owner. The phase must still leave "starting"
// once the other loops have reported. The owner's steps are called directly, in the order that loses the
// count: the loop checks, the reload stops the unit, the owner takes the queued event.
func TestPhaseAfterReloadStopsCheckedUnit(t *testing.T) {
	one := cfgOf(vs("10.9.9.1:80", rs("10.0.0.1:80", masq, 1)), vs("10.9.9.2:80", rs("10.0.0.2:80", masq, 1)))
	s, err := New(one, Options{Client: ipvsctl.NewFake(), Log: quietLogger(), NewChecker: newChecks().newChecker})
	if err != nil {
		t.Fatal(err)
	}
	s.have = ipvsctl.Table{}
	s.install(prepare(s.gen, nil, nil, s.cfg))
	gone, stays := s.byReal[one.Virtuals[0].Reals[0]], s.byReal[one.Virtuals[1].Reals[0]]
	if s.pending != 2 {
		t.Fatalf("pending %d after start, want 2", s.pending)
	}

	// The loop of the first real checks: its first event is queued.
	gone.mu.Lock()
	gone.checked = true
	gone.mu.Unlock()
	queued := event{u: gone, state: Up, first: true}

	// A reload drops that real's virtual.
	two := cfgOf(one.Virtuals[1])
	s.install(prepare(s.gen, s.cfg, s.virtuals, two))
	if gone.live {
		t.Fatal("the unit of the dropped virtual still runs")
	}

	// The owner takes the queued event, then the event of the other loop's first check.
	s.handle(queued, map[*config.Virtual]bool{}, map[*config.Virtual][]int{})
	s.handle(event{u: stays, state: Up, first: true}, map[*config.Virtual]bool{}, map[*config.Virtual][]int{})
	s.updatePhase()
	if s.pending != 0 || s.phase != config.StatusRunning {
		t.Errorf("after every running loop reported: pending %d, phase %s; want 0, running", s.pending, s.phase)
	}
}

// stopsWithin cancels h's Run and fails the test unless Run returns within d.
func stopsWithin(t *testing.T, h *harness, d time.Duration) {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(d):
		t.Fatalf("Run did not return within %s of the stop", d)
	}
}

// watchedConfig writes a config file in a new directory and returns its path and a config naming it.
func watchedConfig(t *testing.T, auto bool) (string, *config.Config) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ld.cf")
	if err := os.WriteFile(path, []byte("checkinterval=5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := cfgOf(vs("10.9.9.1:80", rs("10.0.0.1:80", masq, 1)))
	cfg.File, cfg.AutoReload, cfg.CheckInterval = path, auto, time.Hour
	return path, cfg
}

// TestStopWhileAutoreloadLoads (issue 9, item 1): TERM while an autoreload is loading a config that
// never finishes loading (a monitorfile= FIFO, slow DNS) stops at once.
func TestStopWhileAutoreloadLoads(t *testing.T) {
	path, cfg := watchedConfig(t, true)
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := newHarness(t, cfg, nil, func(o *Options) {
		o.Debounce = 20 * time.Millisecond
		o.Load = func() (*config.Config, error) { close(entered); <-release; return nil, errors.New("released") }
	})
	started := make(chan struct{})
	h.s.watchStarted = func() { close(started) }
	h.run()
	<-started
	if err := os.WriteFile(path, []byte("checkinterval=6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the change was never loaded")
	}
	stopsWithin(t, h, 10*time.Second)
}

// TestStopWhileReloadHangs: TERM while a SIGHUP reload is loading stops at once, and the waiting
// Reload returns ErrStopped.
func TestStopWhileReloadHangs(t *testing.T) {
	_, cfg := watchedConfig(t, false)
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := newHarness(t, cfg, nil, func(o *Options) {
		o.Load = func() (*config.Config, error) { close(entered); <-release; return nil, errors.New("released") }
	})
	h.run()
	eventually(t, "the first checks", func() bool { return h.s.Snapshot().Phase == config.StatusRunning })
	res := make(chan error, 1)
	go func() { res <- h.s.Reload() }()
	<-entered
	stopsWithin(t, h, 10*time.Second)
	if err := <-res; !errors.Is(err, ErrStopped) {
		t.Errorf("Reload: %v, want %v", err, ErrStopped)
	}
}

// TestReloadTurnsAutoreloadOffWhileWatcherReports (issue 9, item 1): a SIGHUP reload that turns
// autoreload off stops the config watcher while the watcher is reporting a change to the owner, busy
// with that very reload. Neither may wait for the other: the reload finishes and stop stops.
func TestReloadTurnsAutoreloadOffWhileWatcherReports(t *testing.T) {
	path, cfg := watchedConfig(t, true)
	off := cfgOf(vs("10.9.9.1:80", rs("10.0.0.1:80", masq, 2))) // a new weight: the reload changes the table
	off.File, off.CheckInterval = path, time.Hour
	h := newHarness(t, cfg, nil, func(o *Options) {
		o.Debounce = 20 * time.Millisecond
		o.Load = func() (*config.Config, error) { return off, nil }
	})
	started := make(chan struct{})
	h.s.watchStarted = func() { close(started) }
	h.run()
	<-started
	eventually(t, "the real's entry", func() bool {
		return h.s.Snapshot().Phase == config.StatusRunning && h.s.Snapshot().Virtuals[0].Reals[0].InTable
	})

	inKernel, release := make(chan struct{}), make(chan struct{})
	h.fake.SetHook(func(op ipvsctl.Op) error {
		if op.Kind == ipvsctl.OpUpdateDestination {
			close(inKernel)
			<-release
		}
		return nil
	})
	reloaded := make(chan error, 1)
	go func() { reloaded <- h.s.Reload() }()
	<-inKernel // the owner is in the reload
	if err := os.WriteFile(path, []byte("checkinterval=6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the watcher notices and waits for the owner
	close(release)
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("Reload: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reload never finished")
	}
	stopsWithin(t, h, 10*time.Second)
}

// TestWatchNotRegularFile (issue 9, item 6): with autoreload=yes, the config replaced by a symlink to
// /dev/zero (endless) or by a FIFO (its open blocks) is not read: the watcher warns, once, that it cannot
// check the file, and stop still stops at once.
func TestWatchNotRegularFile(t *testing.T) {
	for _, c := range []struct {
		name    string
		replace func(t *testing.T, path string)
	}{
		{"symlink to /dev/zero", func(t *testing.T, path string) {
			tmp := path + ".new"
			if err := os.Symlink("/dev/zero", tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"FIFO", func(t *testing.T, path string) {
			tmp := path + ".new"
			if err := syscall.Mkfifo(tmp, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, cfg := watchedConfig(t, true)
			var loads atomic.Int32
			h := newHarness(t, cfg, nil, func(o *Options) {
				o.Debounce = 20 * time.Millisecond
				o.Load = func() (*config.Config, error) { loads.Add(1); return nil, errors.New("no load expected") }
			})
			started := make(chan struct{})
			h.s.watchStarted = func() { close(started) }
			h.run()
			<-started
			c.replace(t, path)
			warning := "W: can not open file " + path + " for checking"
			var got []string
			eventually(t, "the warning", func() bool { got = append(got, h.logs()...); return slices.Contains(got, warning) })
			time.Sleep(300 * time.Millisecond) // more events, more checks: still one warning
			got = append(got, h.logs()...)
			var other []string
			n := 0
			for _, l := range got {
				if l == warning {
					n++
				} else if !strings.HasPrefix(l, "Added") && !strings.HasPrefix(l, "Resetting") {
					other = append(other, l)
				}
			}
			if n != 1 || len(other) > 0 {
				t.Errorf("log: %d warnings (want 1), other lines %q", n, other)
			}
			stopsWithin(t, h, 10*time.Second)
			if n := loads.Load(); n != 0 {
				t.Errorf("%d loads of a file that is not a regular file", n)
			}
		})
	}
}

// TestHashFile: the watcher hashes regular files of at most MaxConfigSize bytes and nothing else.
func TestHashFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.cf")
	os.WriteFile(small, []byte("checkinterval=5\n"), 0o644)
	big := filepath.Join(dir, "big.cf")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(MaxConfigSize + 1) // sparse
	f.Close()
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	for _, c := range []struct{ path, err string }{
		{small, ""},
		{dir, dir + ": not a regular file"},
		{"/dev/zero", "/dev/zero: not a regular file"},
		{fifo, fifo + ": not a regular file"},
		{big, fmt.Sprintf("%s: larger than %d bytes", big, MaxConfigSize)},
		{filepath.Join(dir, "missing"), "open " + filepath.Join(dir, "missing") + ": no such file or directory"},
	} {
		_, err := hashFile(c.path)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.err {
			t.Errorf("hashFile(%s): %q, want %q", c.path, got, c.err)
		}
	}
}

// TestSnapshotWhileKernelHangs: Snapshot (show, the state file, metrics) reads what the owner published
// and never waits for it, even while the owner is stuck in a kernel call.
func TestSnapshotWhileKernelHangs(t *testing.T) {
	v := vs("10.9.9.1:80", rs("10.0.0.1:80", masq, 1))
	h := newHarness(t, cfgOf(v), nil, func(o *Options) { o.StopTimeout = time.Second })
	inKernel, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.fake.SetHook(func(op ipvsctl.Op) error {
		if op.Kind == ipvsctl.OpAddDestination {
			once.Do(func() { close(inKernel) })
			<-release
		}
		return nil
	})
	h.run()
	<-inKernel // the real's first check came back up: the owner is adding it
	got := make(chan Snapshot, 1)
	go func() { got <- h.s.Snapshot() }()
	select {
	case snap := <-got:
		if len(snap.Virtuals) != 1 || snap.Virtuals[0].Reals[0].Real != "10.0.0.1:80" || snap.Virtuals[0].Reals[0].InTable {
			t.Errorf("snapshot while the real is being added: %+v", snap)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Snapshot waited for the owner's kernel call")
	}
	close(release)
	eventually(t, "the real in the snapshot", func() bool { return h.s.Snapshot().Virtuals[0].Reals[0].InTable })
	stopsWithin(t, h, 10*time.Second)
}
