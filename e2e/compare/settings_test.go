package compare

const (
	// binEnv is the path of the ldirectord binary to compare. On the host it may name any build (e.g.
	// another branch's); unset, the host builds ./cmd/ldirectord. The guest gets a copy it can see.
	binEnv = "COMPARE_LDIRECTORD"
	// straceEnv, set to a duration (e.g. 5s), makes each daemon's run end with `strace -c -f` of its
	// processes for that long, printed with the checks answered meanwhile: the syscalls per check (issue 8,
	// item 4). Off by default: it slows the daemon down and is not part of the measurement above it.
	straceEnv = "COMPARE_STRACE"
	// limitEnv bounds the wait for convergence (a Go duration, default 60s): a daemon that does not get
	// every healthy real into the table by then fails the test.
	limitEnv = "COMPARE_CONVERGE_LIMIT"
	// logEnv, set to any value, prints the digest and the tail of each daemon's log after its run, as a
	// failed run does: what the daemon said while it converged.
	logEnv = "COMPARE_LOG"
	// profileEnv, set to any value, runs this ldirectord with a CPU profile of its whole run and prints
	// the profile's top functions (go tool pprof -top) after it stopped: where its CPU goes in the guest.
	profileEnv = "COMPARE_PROFILE"
	// profileForEnv, set to a duration (e.g. 3s) with profileEnv, profiles only that much of the run from
	// the daemon's start (LDIRECTORD_CPUPROFILE_FOR): where the CPU goes while the reals come up.
	profileForEnv = "COMPARE_PROFILE_FOR"
	workDir       = "/tmp/compare"
)
