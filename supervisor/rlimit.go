package supervisor

import "syscall"

// nofileLimit is the process's soft RLIMIT_NOFILE: what bounds the checks in flight. The daemon does not
// raise it itself: Go (1.19 and later) raises the soft limit to the hard one (less one, go1.26) when the
// syscall package starts, and gives child processes (external checks, fallbackcommand) the original soft
// limit back; a Setrlimit of ours would make the children inherit the raised one.
func nofileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	return rl.Cur
}
