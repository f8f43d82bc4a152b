// Command ldirectord is a drop-in replacement for the Linux Director Daemon (ldirectord 4.12): it reads
// ldirectord.cf, health-checks the real servers and keeps the kernel IPVS table in step.
//
//	ldirectord [-d|--debug] [--dry-run] [--] [configfile] start|stop|restart|try-restart|reload|force-reload|status
//	ldirectord -t|--dump-config [configfile]
//	ldirectord -h|-?|--help|-v|--version
package main

import (
	"os"
	"runtime/debug"
)

// gcPercent is the garbage collector's target unless GOGC says otherwise: the daemon's heap is mostly its
// long-lived state (a unit, a config entry and a table entry per real), so Go's default of 100 let the
// heap grow to twice that between collections, 80 MB of resident memory at 10,000 reals where 50 keeps
// it near 60, for no CPU that the benchmarks can tell apart (docs/benchmarks.md).
const gcPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	stopProfile := startProfile()
	a := newApp(os.Args, os.Stdout, os.Stderr)
	code := a.run()
	stopProfile()
	a.flushLog()
	os.Exit(code)
}
