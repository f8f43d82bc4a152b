package command

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// Run runs argv (from Argv or Prefixed) until it exits or ctx ends. The command runs in its own process
// group, and when ctx ends the whole group is killed, so the children of a shell pipeline do not outlive
// it. Like Perl, a program the kernel cannot exec (a script without #!, ENOEXEC) is run again by /bin/sh.
// stdin, stdout and stderr are /dev/null.
func Run(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	err := run(ctx, argv)
	if errors.Is(err, syscall.ENOEXEC) && argv[0] != Shell {
		err = run(ctx, shellArgv(argv))
	}
	return err
}

func run(ctx context.Context, argv []string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	return cmd.Run()
}

// shellArgv is /bin/sh -c with every word of argv quoted: what Perl runs when execvp fails with ENOEXEC.
func shellArgv(argv []string) []string {
	script := ""
	for i, w := range argv {
		if i > 0 {
			script += " "
		}
		script += Quote(w)
	}
	return []string{Shell, "-c", script}
}
