package uml

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Several kernels: StartSwitch starts a uml_switch; Switch.Boot boots a kernel whose interfaces are plugged
// into it and that runs an agent (this package, inside a binary that imports it: a test binary); the host
// runs shell scripts in it with Machine.Exec, reads what it wrote to Machine.OutDir, and kills it with
// Machine.Kill (a power cut). StartNet does all of it for a test, with the cleanup.

// Node says how to boot one kernel of several on a Switch.
type Node struct {
	// Name names the machine in errors and logs.
	Name string
	// ID (1-255) makes the machine's MAC addresses: interface eth<n> has MAC(ID, n).
	ID int
	// NICs is the number of interfaces (eth0, eth1, ...) plugged into the switch; default 1.
	NICs int
	// Options are the kernel's (Modules, Env, Mem, Timeout, ...). Args and Dir are the agent's: Agent is
	// the binary to run as the agent, default this process's own executable.
	Options Options
	// Agent is a binary that imports this package (a test binary does), run as the machine's agent.
	Agent string
}

// MAC is the MAC address of interface eth<nic> of the machine with the given ID: 02:75:6d:<id>:00:<nic>.
func MAC(id, nic int) string { return fmt.Sprintf("02:75:6d:%02x:00:%02x", id, nic) }

// Machine is a running kernel on a Switch, with an agent that runs the host's scripts in it (Exec).
type Machine struct {
	// Name is the Node's name.
	Name string
	dir  string
	seq  atomic.Int64

	cancel context.CancelFunc
	done   chan struct{}
	res    Result
	err    error
}

// Boot starts the kernel of n with its interfaces on the switch and returns once its agent serves
// requests. The kernel dies with ctx, at n.Options.Timeout (default 10 minutes), on Kill, and with this
// process.
func (s *Switch) Boot(ctx context.Context, n Node) (*Machine, error) {
	if n.ID < 1 || n.ID > 255 {
		return nil, fmt.Errorf("uml: machine %s: ID %d is not in 1-255", n.Name, n.ID)
	}
	if n.NICs == 0 {
		n.NICs = 1
	}
	if n.Agent == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		n.Agent = self
	}
	dir, err := os.MkdirTemp("", "uml-agent-")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"req", "resp", "out"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o777); err != nil {
			return nil, err
		}
	}
	// hostfs gives the guest the host's owners and modes; let the guest's root write here.
	for _, d := range []string{dir, filepath.Join(dir, "resp"), filepath.Join(dir, "out")} {
		if err := os.Chmod(d, 0o777); err != nil {
			return nil, err
		}
	}
	o := n.Options
	o.Args = []string{n.Agent}
	o.Env = append(append([]string(nil), o.Env...), AgentEnv+"="+dir)
	o.KernelArgs = append([]string(nil), o.KernelArgs...)
	for i := 0; i < n.NICs; i++ {
		o.KernelArgs = append(o.KernelArgs, s.Port(i, MAC(n.ID, i)))
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &Machine{Name: n.Name, dir: dir, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		m.res, m.err = Run(ctx, o)
		if m.err == nil && m.res.ExitCode != 0 {
			m.err = fmt.Errorf("uml: the agent of %s exited with status %d: %s", n.Name, m.res.ExitCode, m.res.Output)
		}
	}()
	for {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			return m, nil
		}
		select {
		case <-m.done:
			os.RemoveAll(dir)
			if m.err == nil {
				m.err = errors.New("the agent exited at start")
			}
			return nil, fmt.Errorf("uml: machine %s did not start: %w", n.Name, m.err)
		case <-time.After(agentPoll):
		}
	}
}

// Exec runs script with /bin/sh in the machine and returns its combined output and exit status (124 when
// it overran the deadline of ctx, or 2 minutes without one). A script that runs and fails is not an
// error; a machine that is dead, or a ctx that ends first, is. Background processes a script starts keep
// running (start daemons with setsid and their own output files).
func (m *Machine) Exec(ctx context.Context, script string) (string, int, error) {
	timeout := 2 * time.Minute
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	id := strconv.FormatInt(m.seq.Add(1), 10)
	b, err := json.Marshal(request{Script: script, Timeout: timeout})
	if err != nil {
		return "", 0, err
	}
	if err := writeAtomic(filepath.Join(m.dir, "req", id+".json"), b); err != nil {
		return "", 0, err
	}
	rc := filepath.Join(m.dir, "resp", id+".rc")
	// Give the guest's own timeout a moment to report first.
	wait := time.NewTimer(timeout + 5*time.Second)
	defer wait.Stop()
	tick := time.NewTicker(agentPoll)
	defer tick.Stop()
	ctxDone := ctx.Done()
	for {
		if b, err := os.ReadFile(rc); err == nil {
			out, _ := os.ReadFile(filepath.Join(m.dir, "resp", id+".out"))
			code, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || code < 0 {
				return string(out), code, fmt.Errorf("uml: %s: the agent could not run the script (status %q): %s", m.Name, b, out)
			}
			return string(out), code, nil
		}
		select {
		case <-m.done:
			return "", 0, fmt.Errorf("uml: %s is not running: %v", m.Name, m.err)
		case <-wait.C:
			return "", 0, fmt.Errorf("uml: %s: no answer within %v", m.Name, timeout)
		case <-ctxDone:
			if ctx.Err() == context.DeadlineExceeded {
				ctxDone = nil // the guest kills the script at the same deadline and reports 124
				continue
			}
			return "", 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// OutDir is the host directory the machine's scripts may write results to ($LDIRECTORD_UML_OUT in the
// guest). It outlives the machine until Cleanup.
func (m *Machine) OutDir() string { return filepath.Join(m.dir, "out") }

// Kill pulls the plug: the kernel and its helper processes get SIGKILL, as a host that loses power. It
// returns once they are gone.
func (m *Machine) Kill() {
	m.cancel()
	<-m.done
}

// Shutdown asks the agent to exit (the kernel powers off; processes in it get no signal) and waits up to
// within, then kills it. It returns the kernel's error, if any.
func (m *Machine) Shutdown(within time.Duration) error {
	select {
	case <-m.done:
		return m.err
	default:
	}
	writeAtomic(filepath.Join(m.dir, "req", "exit"), nil)
	select {
	case <-m.done:
		return m.err
	case <-time.After(within):
		m.Kill()
		return fmt.Errorf("uml: %s did not power off within %v", m.Name, within)
	}
}

// Done is closed when the kernel has exited.
func (m *Machine) Done() <-chan struct{} { return m.done }

// Console is the tail of the kernel's console, once it has exited.
func (m *Machine) Console() []byte {
	select {
	case <-m.done:
		return m.res.Console
	default:
		return nil
	}
}

// Cleanup kills the machine if it still runs and removes its host directory.
func (m *Machine) Cleanup() {
	m.Kill()
	os.RemoveAll(m.dir)
}

// BootAll boots the nodes in parallel; on any failure it kills those that started.
func (s *Switch) BootAll(ctx context.Context, nodes ...Node) ([]*Machine, error) {
	ms := make([]*Machine, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms[i], errs[i] = s.Boot(ctx, n)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, m := range ms {
			if m != nil {
				m.Cleanup()
			}
		}
		return nil, err
	}
	return ms, nil
}
