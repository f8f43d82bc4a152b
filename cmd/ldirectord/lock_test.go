package main

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/daemon"
)

// daemonsFor lists the running ldirectord daemons for CFGNAME started in the sandbox.
func daemonsFor(e *env, cfgName string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if daemon.IsOurs(pid, cfgName) && strings.Contains(strings.Join(daemon.Cmdline(pid), " "), e.dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestConcurrentStart: four `start`s at once leave exactly one daemon (the others see its lock and exit
// 0 as a start of a running daemon does); stop stops it and status then says stopped.
func TestConcurrentStart(t *testing.T) {
	e := newEnv(t)
	cfg := goodConfig(e, "web.cf", backend(t, "127.0.0.1:0"))
	const n = 4
	var wg sync.WaitGroup
	codes := make([]int, n)
	errOuts := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errOuts[i], codes[i] = e.run("--dry-run", cfg, "start")
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, pid := range daemonsFor(e, "web.cf") {
			daemon.Terminate(pid, "web.cf", DefaultStopTimeout)
		}
	})
	for i := range n {
		if codes[i] != 0 || errOuts[i] != "" {
			t.Errorf("start %d: exit %d, stderr %q", i, codes[i], errOuts[i])
		}
	}
	pids := daemonsFor(e, "web.cf")
	pid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf"))
	if len(pids) != 1 || pids[0] != pid {
		t.Fatalf("daemons after %d concurrent starts: %v, pid file %d; want exactly the one in the pid file", n, pids, pid)
	}
	if _, errOut, code := e.run(cfg, "stop"); code != 0 || errOut != "" {
		t.Fatalf("stop: exit %d, stderr %q", code, errOut)
	}
	if out, _, code := e.run(cfg, "status"); code != 3 || out != "ldirectord is stopped for "+cfg+"\n" {
		t.Errorf("status after stop: exit %d, stdout %q; want 3 and stopped", code, out)
	}
	if pids := daemonsFor(e, "web.cf"); len(pids) != 0 {
		t.Errorf("daemons left after stop: %v", pids)
	}
}

// TestForegroundLoses: a foreground start (-d) of a config whose daemon holds the lock does nothing and
// exits 0, even when the pid file is gone (removed by hand), and says so on its log.
func TestForegroundLoses(t *testing.T) {
	e := newEnv(t)
	cfg := goodConfig(e, "web.cf", backend(t, "127.0.0.1:0"))
	if _, errOut, code := e.run("--dry-run", cfg, "start"); code != 0 {
		t.Fatalf("start: exit %d, %s", code, errOut)
	}
	pid, _, _ := daemon.ReadPidFile(daemonPidFile(e, "web.cf"))
	defer daemon.Terminate(pid, "web.cf", DefaultStopTimeout)
	os.Remove(daemonPidFile(e, "web.cf"))
	c := e.cmd("-d", "--dry-run", cfg, "start")
	var stderr syncBuf
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(stderr.String(), "ldirectord for "+cfg+" is already running with pid: 0\n") {
			t.Errorf("-d start beside a running daemon: %v, stderr %q", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		c.Process.Kill()
		<-done
		t.Errorf("-d start beside a running daemon ran as a second daemon; stderr:\n%s", stderr.String())
	}
	if pids := daemonsFor(e, "web.cf"); len(pids) != 1 || pids[0] != pid {
		t.Errorf("daemons: %v, want only %d", pids, pid)
	}
}
