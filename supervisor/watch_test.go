package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// eventually polls cond for up to 5s. The watcher sits on inotify, which a synctest bubble cannot fake.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatchConfig(t *testing.T) {
	const debounce = 20 * time.Millisecond
	dir := t.TempDir()
	for _, d := range []string{"v1", "v2"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "v1", "ld.cf"), "checkinterval=5\n")
	path := filepath.Join(dir, "ld.cf")
	if err := os.Symlink("v1/ld.cf", path); err != nil {
		t.Fatal(err)
	}
	callback := filepath.Join(dir, "callback.sh")
	write(callback, "#!/bin/sh\n")
	os.Chmod(callback, 0o755)

	mkcfg := func(auto bool) *config.Config {
		return &config.Config{File: path, CheckInterval: time.Hour, AutoReload: auto, Callback: callback}
	}
	var loads atomic.Int32
	var nextAuto atomic.Bool
	nextAuto.Store(true)
	h := newHarness(t, mkcfg(true), nil, func(o *Options) {
		o.Load = func() (*config.Config, error) { loads.Add(1); return mkcfg(nextAuto.Load()), nil }
		o.Debounce = debounce
	})
	started := make(chan struct{})
	h.s.watchStarted = func() { close(started) }
	h.run()
	defer h.stop()
	<-started
	changed := "Configuration file '" + path + "' has changed on disk"
	logged := func(want ...string) func() bool {
		return func() bool {
			var got []string
			for _, e := range h.hook.AllEntries()[h.seen:] {
				got = append(got, e.Message)
			}
			return slices.Equal(got, want)
		}
	}

	// An edit in place.
	write(filepath.Join(dir, "v1", "ld.cf"), "checkinterval=6\n")
	eventually(t, "the edit", logged(changed, " - reread new configuration"))
	eventually(t, "the callback", func() bool { return h.cmds.len() == 1 })
	h.logs()
	if got := h.cmds.take(); !slices.Equal(got, []string{callback + " " + path}) {
		t.Errorf("callback runs %q", got)
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads, want 1", n)
	}

	// The same content written again is no change.
	write(filepath.Join(dir, "v1", "ld.cf"), "checkinterval=6\n")
	time.Sleep(10 * debounce)
	h.expectLogs()

	// A symlink swap to another directory (the way configuration management deploys), with autoreload
	// turned off by the new config.
	nextAuto.Store(false)
	write(filepath.Join(dir, "v2", "ld.cf"), "checkinterval=7\n")
	if err := os.Symlink("v2/ld.cf", filepath.Join(dir, "ld.cf.tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "ld.cf.tmp"), path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the swap", logged(changed, " - reread new configuration"))
	eventually(t, "the callback", func() bool { return len(h.cmds.take()) == 1 })
	h.logs()

	// autoreload=no now: a change is logged and ignored, the callback still runs.
	write(filepath.Join(dir, "v2", "ld.cf"), "checkinterval=8\n")
	eventually(t, "the ignored change", logged(changed, " - ignore new configuration"))
	eventually(t, "the callback", func() bool { return len(h.cmds.take()) == 1 })
	if n := loads.Load(); n != 2 {
		t.Errorf("%d loads, want 2", n)
	}
	_ = ipvsctl.Table{}
	_ = context.Background
}
