package supervisor

import "syscall"

// nofileLimit is the process's soft RLIMIT_NOFILE: what bounds the checks in flight. Go (1.19 and later)
// raises the soft limit to the hard one when the os package starts, so this is normally the hard limit;
// RaiseNofile does it again for a process whose limit was lowered after start.
func nofileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	return rl.Cur
}

// RaiseNofile raises the soft RLIMIT_NOFILE to the hard limit and returns the soft limit then in force.
func RaiseNofile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return nofileLimit(), err
		}
	}
	return rl.Cur, nil
}
