// Package uml runs commands and tests inside a real Linux kernel (Debian's user-mode Linux) with IPVS, so
// code that programs the kernel is tested against the kernel and not against a model of it.
//
// The guest sees the host's file system read-only as /, with fresh tmpfs mounts at /tmp, /run and /mnt, a
// loopback interface that is up, and the kernel modules of the UML kernel loadable with modprobe (the
// kernel loads them on demand too, as on a real system, unless Options.NoAutoload is set). The command runs
// as root with the environment given in Options; its output and exit status come back in Result.
package uml

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Environment variables the guest's init sets for the command it runs.
const (
	// GuestEnv is "1" in the guest.
	GuestEnv = "LDIRECTORD_UML_GUEST"
	// ModRootEnv is the directory to pass to `modprobe -d` in the guest (LoadModule does).
	ModRootEnv = "LDIRECTORD_UML_MODROOT"
)

// DefaultKernel is Debian's user-mode Linux kernel (package user-mode-linux).
const DefaultKernel = "/usr/bin/linux.uml"

// DefaultModulesDir holds the UML kernel's modules, one directory per kernel release.
const DefaultModulesDir = "/usr/lib/uml/modules"

// Options say what to run in the guest and how.
type Options struct {
	// Args is the command and its arguments, run directly (not through a shell). Required.
	Args []string
	// Env is added to the guest command's environment (PATH, HOME, TMPDIR and the guest variables are
	// set already; entries here override them).
	Env []string
	// Dir is the working directory in the guest; default: the caller's working directory.
	Dir string
	// Modules are loaded, in order, before the command runs; a module that does not load fails Run.
	Modules []string
	// NoAutoload stops the kernel from loading modules on demand (and makes modprobe fail without -d),
	// as on a system that lacks them.
	NoAutoload bool
	// Timeout bounds the whole run, boot included; default 10 minutes. The command gets 15 seconds less.
	Timeout time.Duration
	// Mem is the guest's memory, default "1G".
	Mem string
	// Output, if set, receives the command's output while it runs.
	Output io.Writer
	// Kernel is the UML kernel binary; default $LDIRECTORD_UML_KERNEL, else DefaultKernel.
	Kernel string
	// KernelArgs are added to the kernel command line (e.g. "eth0=daemon,MAC,unix,SOCKET": see Switch).
	KernelArgs []string
}

// Result is what a command run in the guest produced.
type Result struct {
	// Output is the command's combined stdout and stderr.
	Output []byte
	// ExitCode is the command's exit status (124 when the guest-side timeout killed it).
	ExitCode int
	// Console is the tail of the kernel console, for diagnosing a guest that misbehaved.
	Console []byte
	// Elapsed is the wall time of the whole run, boot included.
	Elapsed time.Duration
}

// InGuest reports whether this process runs inside the UML kernel started by Run.
func InGuest() bool { return os.Getenv(GuestEnv) == "1" }

// LoadModule loads a kernel module in the guest (modprobe with the UML modules). It fails on the host.
func LoadModule(name string) error {
	root := os.Getenv(ModRootEnv)
	if !InGuest() || root == "" {
		return errors.New("uml: LoadModule works only in the guest")
	}
	out, err := exec.Command(realModprobe, "-d", root, name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("modprobe %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

const realModprobe = "/usr/sbin/modprobe"

// Files in the shared host directory the guest writes to.
const (
	fileOutput = "output"
	fileStatus = "status"
	fileSetup  = "setup-error"
)

// Run boots the kernel, loads modules, runs o.Args inside it, and returns its output and exit status. A
// command that runs and fails is not an error (see Result.ExitCode); a kernel that does not boot, a module
// that does not load, or a run that overruns its timeout is, with the console's tail to say why. It never
// reports success for a command that did not run.
func Run(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	var res Result
	if len(o.Args) == 0 {
		return res, errors.New("uml: no command to run")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Mem == "" {
		o.Mem = "1G"
	}
	if o.Kernel == "" {
		o.Kernel = os.Getenv("LDIRECTORD_UML_KERNEL")
	}
	if o.Kernel == "" {
		o.Kernel = DefaultKernel
	}
	if o.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return res, err
		}
		o.Dir = wd
	}
	if _, err := os.Stat(o.Kernel); err != nil {
		return res, fmt.Errorf("uml: no kernel to boot: %w (install user-mode-linux: make deps)", err)
	}
	so, err := shim()
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "uml-run-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	// hostfs gives the guest the host's owners and modes; let the guest's root write here.
	if err := os.Chmod(dir, 0o777); err != nil {
		return res, err
	}
	init := filepath.Join(dir, "init")
	if err := os.WriteFile(init, []byte(initScript(o, dir)), 0o755); err != nil {
		return res, err
	}

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	umid := "ldgo-" + randHex(6)
	args := []string{"umid=" + umid, "mem=" + o.Mem, "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
		"init=" + init, "quiet", "con=null", "con0=fd:0,fd:1"}
	cmd := exec.CommandContext(ctx, o.Kernel, append(args, o.KernelArgs...)...)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+so)
	cmd.Stdin = nil // /dev/null
	console := &tailBuffer{max: 64 << 10}
	cmd.Stdout = console
	cmd.Stderr = console
	// UML forks helper processes; kill them all on cancellation, and the kernel if this process dies
	// (e.g. the test binary's own -test.timeout panics).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second

	stopStream := func() {}
	if o.Output != nil {
		stopStream = stream(filepath.Join(dir, fileOutput), o.Output)
	}
	runErr := cmd.Run()
	stopStream()
	res.Elapsed = time.Since(start)
	res.Console = console.Bytes()
	res.Output, _ = os.ReadFile(filepath.Join(dir, fileOutput))

	if setup, err := os.ReadFile(filepath.Join(dir, fileSetup)); err == nil {
		return res, fmt.Errorf("uml: guest setup failed: %s", bytes.TrimSpace(setup))
	}
	status, err := os.ReadFile(filepath.Join(dir, fileStatus))
	if err != nil {
		why := "the kernel did not boot or did not run the command"
		if ctx.Err() != nil {
			why = fmt.Sprintf("the run did not finish within %v", o.Timeout)
		}
		return res, fmt.Errorf("uml: %s (kernel: %v); console:\n%s", why, runErr, lastLines(res.Console, 30))
	}
	res.ExitCode, err = strconv.Atoi(strings.TrimSpace(string(status)))
	if err != nil {
		return res, fmt.Errorf("uml: bad exit status %q from the guest", status)
	}
	return res, nil
}

// initScript is the guest's PID 1: mount, load modules, run the command, record its status, power off.
func initScript(o Options, hostDir string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("#!/bin/sh")
	p("# Generated by internal/uml: init of a user-mode Linux guest.")
	p("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	p("mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /mnt")
	p("mkdir -p /mnt/host /mnt/hosttmp; mount -t hostfs none /mnt/host -o %s || poweroff -f", shq(hostDir))
	p("fail() { echo \"$*\" > /mnt/host/%s; sync; poweroff -f; }", fileSetup)
	p("V=$(uname -r); R=/mnt/modroot; mkdir -p $R/lib/modules/$V")
	p("mount --bind %s/$V $R/lib/modules/$V || fail \"no modules for kernel $V in %s\"", DefaultModulesDir, DefaultModulesDir)
	// A fresh /tmp, with the directories of the command and its working directory mapped back if they
	// were in the host's /tmp (go test binaries are).
	p("mount --bind /tmp /mnt/hosttmp && mount -t tmpfs tmpfs /tmp || fail 'cannot mount /tmp'")
	for _, d := range keepDirs(o) {
		p("mkdir -p %s && mount --bind /mnt/hosttmp/%s %s || fail %s", shq(d), shq(strings.TrimPrefix(d, "/tmp/")), shq(d), shq("cannot map "+d))
	}
	if o.NoAutoload {
		p("echo > /proc/sys/kernel/modprobe")
	} else {
		p("mkdir -p /run/uml-bin")
		p("printf '#!/bin/sh\\nexec %s -d %s \"$@\"\\n' > /run/uml-bin/modprobe; chmod 755 /run/uml-bin/modprobe", realModprobe, "/mnt/modroot")
		p("echo /run/uml-bin/modprobe > /proc/sys/kernel/modprobe")
		p("PATH=/run/uml-bin:$PATH")
	}
	for _, m := range o.Modules {
		p("out=$(%s -d $R %s 2>&1) || fail %s\"$out\"", realModprobe, shq(m), shq("load module "+m+": "))
	}
	p("ip link set lo up || fail 'cannot bring up lo'")
	p("cd %s || fail %s", shq(o.Dir), shq("no directory "+o.Dir))
	p("export HOME=/tmp TMPDIR=/tmp %s=1 %s=$R", GuestEnv, ModRootEnv)
	for _, e := range o.Env {
		p("export %s", shq(e))
	}
	limit := int((o.Timeout - 15*time.Second).Seconds())
	if limit < 5 {
		limit = 5
	}
	var argv []string
	for _, a := range o.Args {
		argv = append(argv, shq(a))
	}
	p("timeout -k 5 %d %s > /mnt/host/%s 2>&1 < /dev/null", limit, strings.Join(argv, " "), fileOutput)
	p("echo $? > /mnt/host/%s", fileStatus)
	p("sync; poweroff -f")
	return b.String()
}

// keepDirs are the directories under /tmp the command needs: its own and its working directory.
func keepDirs(o Options) []string {
	var out []string
	for _, p := range []string{filepath.Dir(o.Args[0]), o.Dir} {
		p = filepath.Clean(p)
		if strings.HasPrefix(p, "/tmp/") {
			out = append(out, p)
		}
	}
	return out
}

// shq quotes s for the shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// stream copies what the guest appends to path into w until the returned stop is called.
func stream(path string, w io.Writer) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var off int64
		poll := func() {
			f, err := os.Open(path)
			if err != nil {
				return
			}
			defer f.Close()
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return
			}
			n, _ := io.Copy(w, f)
			off += n
		}
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				poll()
				return
			case <-t.C:
				poll()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
