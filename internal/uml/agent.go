package uml

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The agent is the command a Machine's kernel runs: it executes the scripts the host drops into a shared
// directory and leaves each one's output and exit status there. Its host directory holds
//
//	req/<n>.json   a request (written by the host, atomically)
//	resp/<n>.out   the script's combined output (written by the guest while it runs)
//	resp/<n>.rc    its exit status, written last (atomically): the host waits for this file
//	out/           free for the guest's own results ($LDIRECTORD_UML_OUT in the guest)
//	ready          written by the agent once it serves requests
//	req/exit       asks the agent to exit (the kernel then powers off)
const (
	// AgentEnv names the agent's host directory; a binary that imports this package serves as the agent
	// when it finds this variable in the guest.
	AgentEnv = "LDIRECTORD_UML_AGENT"
	// OutEnv is the guest path of the machine's output directory (Machine.OutDir on the host).
	OutEnv = "LDIRECTORD_UML_OUT"
	// SelfEnv is the agent's binary, for scripts that start more processes of it (a test binary's helper
	// modes).
	SelfEnv = "LDIRECTORD_UML_SELF"

	agentMount = "/mnt/agent"
	agentPoll  = 20 * time.Millisecond
)

// request is one script for the agent.
type request struct {
	Script  string        `json:"script"`
	Timeout time.Duration `json:"timeout"`
}

// A test binary (or any binary importing this package) started by Machine becomes the agent before main or
// TestMain run, as reexec-style helpers do.
func init() {
	if dir := os.Getenv(AgentEnv); dir != "" && InGuest() {
		if err := serveAgent(dir); err != nil {
			fmt.Fprintln(os.Stderr, "uml agent:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// serveAgent mounts the host directory and runs requests until it is asked to exit.
func serveAgent(hostDir string) error {
	if err := os.MkdirAll(agentMount, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("mount", "-t", "hostfs", "none", agentMount, "-o", hostDir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount hostfs %s: %v: %s", hostDir, err, out)
	}
	// The scripts' processes are not agents.
	os.Unsetenv(AgentEnv)
	os.Setenv(OutEnv, filepath.Join(agentMount, "out"))
	if self, err := os.Executable(); err == nil {
		os.Setenv(SelfEnv, self)
	}
	reqDir := filepath.Join(agentMount, "req")
	if err := writeAtomic(filepath.Join(agentMount, "ready"), []byte("ready\n")); err != nil {
		return err
	}
	for {
		ents, err := os.ReadDir(reqDir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			if name == "exit" {
				return nil
			}
			id, ok := strings.CutSuffix(name, ".json")
			if !ok {
				continue
			}
			path := filepath.Join(reqDir, name)
			b, err := os.ReadFile(path)
			os.Remove(path)
			if err != nil {
				continue
			}
			var r request
			if err := json.Unmarshal(b, &r); err != nil {
				writeAtomic(filepath.Join(agentMount, "resp", id+".rc"), []byte("-1\n"))
				continue
			}
			go runRequest(id, r)
		}
		time.Sleep(agentPoll)
	}
}

// runRequest runs one script with /bin/sh, in its own process group, killed with it at its timeout.
func runRequest(id string, r request) {
	resp := filepath.Join(agentMount, "resp")
	code := -1
	defer func() { writeAtomic(filepath.Join(resp, id+".rc"), []byte(strconv.Itoa(code)+"\n")) }()
	out, err := os.Create(filepath.Join(resp, id+".out"))
	if err != nil {
		return
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", r.Script)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(out, "uml agent: killed after %v\n", r.Timeout)
		code = 124
	case err == nil:
		code = 0
	default:
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			fmt.Fprintf(out, "uml agent: %v\n", err)
		}
	}
}

// writeAtomic writes a file under a temporary name and renames it, so a reader never sees half of it.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
