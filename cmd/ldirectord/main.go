// Command ldirectord is a drop-in replacement for the Linux Director Daemon (ldirectord 4.12): it reads
// ldirectord.cf, health-checks the real servers and keeps the kernel IPVS table in step.
//
//	ldirectord [-d|--debug] [--dry-run] [--] [configfile] start|stop|restart|try-restart|reload|force-reload|status
//	ldirectord -t|--dump-config [configfile]
//	ldirectord -h|-?|--help|-v|--version
package main

import "os"

func main() {
	a := newApp(os.Args, os.Stdout, os.Stderr)
	code := a.run()
	a.flushLog()
	os.Exit(code)
}
