package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/daemon"
)

// foreground starts `ldirectord -d --dry-run <cfg> start` and returns it with its stderr (the log).
func foreground(t *testing.T, e *env, cfg string) (*syncBuf, func() error, func(os.Signal)) {
	t.Helper()
	c := e.cmd("-d", "--dry-run", cfg, "start")
	var out syncBuf
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	t.Cleanup(func() { c.Process.Kill() })
	wait := func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatalf("the daemon did not exit within 20s of the stop; its log:\n%s", out.String())
			return nil
		}
	}
	return &out, wait, func(s os.Signal) { c.Process.Signal(s) }
}

// TestStopWhileAutoreloadStalls (issue 9, item 1): autoreload=yes, the config gains a monitorfile= that
// is a FIFO (its open stalls the load), then TERM: the daemon stops at once, cleanly.
func TestStopWhileAutoreloadStalls(t *testing.T) {
	e := newEnv(t)
	real := backend(t, "127.0.0.1:0")
	text := fmt.Sprintf("autoreload=yes\ncheckinterval=1\nvirtual=10.9.9.9:80\n\treal=%s masq\n\tchecktype=connect\n", real)
	cfg := e.write("auto.cf", text)
	out, wait, signal := foreground(t, e, cfg)
	waitOut(t, out, "Added real server: "+real+" (10.9.9.9:80) (Weight set to 1)")

	fifo := filepath.Join(e.dir, "monitor.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	e.write("auto.cf", text+fmt.Sprintf("\tmonitorfile=%q\n", fifo))
	waitOut(t, out, " - reread new configuration")
	time.Sleep(200 * time.Millisecond) // the load is in the FIFO's open
	signal(syscall.SIGTERM)
	if err := wait(); err != nil {
		t.Errorf("exit: %v; log:\n%s", err, out.String())
	}
	waitOut(t, out, "Linux Director Daemon terminated on signal: TERM")
}

// TestAutoreloadExecute (issue 9, item 4): an autoreload updates the execute= instances as a SIGHUP
// reload does: the one removed stops, the one added starts; the stop then stops the added one.
func TestAutoreloadExecute(t *testing.T) {
	e := newEnv(t)
	t.Setenv(daemon.PidDirEnv, e.dir) // for daemon.Lookup in this process
	real := backend(t, "127.0.0.1:0")
	one, two := goodConfig(e, "one.cf", real), goodConfig(e, "two.cf", real)
	mainText := func(execute string) string {
		return fmt.Sprintf("autoreload=yes\nexecute=%q\ncheckinterval=1\nvirtual=10.9.9.9:80\n\treal=%s masq\n\tchecktype=connect\n",
			execute, real)
	}
	main := e.write("main.cf", mainText(one))
	out, wait, signal := foreground(t, e, main)
	state := func(name string) daemon.State {
		_, st, _ := daemon.Lookup(name)
		return st
	}
	await := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("never %s; the daemon's log:\n%s", what, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	await("one.cf running", func() bool { return state("one.cf") == daemon.Running })

	e.write("main.cf", mainText(two))
	waitOut(t, out, " - reread new configuration")
	await("two.cf running", func() bool { return state("two.cf") == daemon.Running })
	await("one.cf stopped", func() bool { return state("one.cf") != daemon.Running })

	signal(syscall.SIGTERM)
	if err := wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
	if st := state("two.cf"); st == daemon.Running {
		t.Errorf("two.cf still running after the stop")
	}
}
