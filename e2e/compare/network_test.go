package compare

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// backend is the process serving every real, in netns "rs".
type backend struct {
	cmd   *exec.Cmd
	stdin io.Writer
	lines chan string
}

// answered is the number of requests the backend has answered so far.
func (b *backend) answered(t *testing.T) int64 {
	fmt.Fprintln(b.stdin)
	select {
	case l, ok := <-b.lines:
		n, err := strconv.ParseInt(l, 10, 64)
		if !ok || err != nil {
			t.Fatalf("backend count: %q (%v)", l, err)
		}
		return n
	case <-time.After(30 * time.Second):
		t.Fatal("the backend did not say how many requests it answered within 30 s")
	}
	return 0
}

// hangVictim makes the victim start hanging (true) or answer again (false).
func (b *backend) hangVictim(t *testing.T, hang bool) {
	sig := syscall.SIGUSR2
	if hang {
		sig = syscall.SIGUSR1
	}
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal the backend: %v", err)
	}
}

// startNetwork builds netns "rs" behind a veth pair (the director's side 10.2.255.254/16, the reals'
// addresses 10.2.0.1-100 on the other) and starts the backend process there.
func startNetwork(t *testing.T) *backend {
	t.Helper()
	var batch strings.Builder
	for i := 1; i <= nIPs; i++ {
		fmt.Fprintf(&batch, "addr add 10.2.0.%d/16 dev r0\n", i)
	}
	script := `
set -e
mkdir -p /run/netns
ip netns add rs
ip link add r0 type veth peer name d1
ip link set r0 netns rs
ip addr add 10.2.255.254/16 dev d1
ip link set d1 up
ip -n rs link set r0 up
ip -n rs link set lo up
ip -n rs -batch -
`
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("guest network: %v: %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bc := exec.Command("ip", "netns", "exec", "rs", self)
	bc.Env = append(os.Environ(), backendEnv+"=1")
	bc.Stderr = os.Stderr
	stdout, err := bc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := bc.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Process.Kill(); bc.Wait() })
	lines := make(chan string, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case l := <-lines:
		if want := fmt.Sprintf("ready %d", nVirtuals*nIPs/hangEvery); l != want {
			t.Fatalf("backend: %q, want %q", l, want)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the backend did not listen on every real's address within 60 s")
	}
	return &backend{cmd: bc, stdin: stdin, lines: lines}
}
