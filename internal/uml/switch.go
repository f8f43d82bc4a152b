package uml

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// SwitchBinary is Debian's virtual Ethernet switch for user-mode Linux (package uml-utilities).
const SwitchBinary = "/usr/bin/uml_switch"

// Switch is a uml_switch process: an Ethernet switch that lives in a unix socket. Kernels whose interfaces
// are plugged into it (see Port) reach each other through it and through nothing else: it has no host
// network interface (no -tap), so no packet of theirs, multicast included, touches the host's network.
type Switch struct {
	// Socket is the switch's control socket.
	Socket string
	dir    string
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartSwitch starts uml_switch on a socket in a new temporary directory and waits until it accepts
// connections. The switch dies with ctx, and with this process.
func StartSwitch(ctx context.Context) (*Switch, error) {
	if _, err := os.Stat(SwitchBinary); err != nil {
		return nil, fmt.Errorf("uml: no switch: %w (install uml-utilities: make deps)", err)
	}
	// A short path: a unix socket's name is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "uml-sw-")
	if err != nil {
		return nil, err
	}
	// The kernels connect as this user, but keep others out.
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Switch{Socket: filepath.Join(dir, "ctl"), dir: dir, done: make(chan struct{})}
	s.cmd = exec.CommandContext(ctx, SwitchBinary, "-unix", s.Socket)
	out := &tailBuffer{max: 8 << 10}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.cmd.Cancel = func() error { return syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) }
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("uml: start %s: %w", SwitchBinary, err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", s.Socket)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("uml: %s exited at start: %s", SwitchBinary, out.Bytes())
		default:
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("uml: %s does not listen on %s after 10s: %v", SwitchBinary, s.Socket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Port is the kernel argument that plugs the guest's interface eth<n> into the switch, with the given MAC
// address ("" lets the kernel choose one).
func (s *Switch) Port(n int, mac string) string {
	return fmt.Sprintf("eth%d=daemon,%s,unix,%s", n, mac, s.Socket)
}

// Close kills the switch and removes its socket. It is safe to call more than once.
func (s *Switch) Close() error {
	select {
	case <-s.done:
	default:
		if s.cmd.Process != nil {
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			return errors.New("uml: the switch does not exit")
		}
	}
	return os.RemoveAll(s.dir)
}
