package main

import (
	"fmt"
	"strings"
)

// Version is the version ldirectord reports and logs; scripts and log scrapers know this string.
const Version = "Linux Director v1.186-ha"

// versionText is `ldirectord -v`, exact: 4.12's text with this program's own version as the fourth line.
var versionText = Version + "\n" +
	"1999-2006 Jacob Rief, Horms and others\n" +
	"<http://www.vergenet.net/linux/ldirectord/>\n" +
	"ldirectord-go version " + programVersion() + "\n" +
	"\n" +
	"ldirectord comes with ABSOLUTELY NO WARRANTY.\n" +
	"This is free software, and you are welcome to redistribute it\n" +
	"under certain conditions. See the GNU General Public Licence for details.\n"

// usageText is what ldirectord's pod2usage prints (on stdout), exact, plus this version's options
// (-t, --dump-config, --dry-run, show) in the same style.
const usageText = `Usage:
    ldirectord [-d|--debug] [--] [configfile] start | stop | restart |
    try-restart | reload | force-reload | status

    ldirectord [-h|-?|--help|-v|--version]

    ldirectord -t|--dump-config [--] [configfile]

    ldirectord [-d|--debug] [--] [configfile] show [--json]

Options:
    configuration: This is the name for the configuration as specified in
    the file /etc/ha.d/conf/configuration

    -d|--debug Don't start as daemon and log verbosely.

    -h|--help Print this help and exit.

    -v|--version Print version and exit.

    -t Check the configuration file: print every error and warning and exit
    0 if it is valid, 2 if it is not.

    --dump-config Print the effective configuration, with every default
    and inherited value, and exit.

    --dry-run Run as usual, but keep the IPVS table in memory and log each
    change as an ipvsadm command instead of making it.

    start the daemon for the specified configuration.

    stop the daemon for the specified configuration. This is the same as
    sending a TERM signal to the running daemon.

    restart the daemon for the specified configuration. The same as stopping
    and starting.

    reload the configuration file: virtual services and real servers that
    were added, removed or changed are applied, everything else is left as
    it is; a file with errors is refused and the running configuration
    kept. This is the same as sending a HUP signal to the running daemon.

    status of the running daemon for the specified configuration.

    show the state of the running daemon for the specified configuration:
    each virtual service and real server, its health, since when, and its
    last check and error. With --json, the daemon's state file as it is.

`

// commands are the positional commands ldirectord accepts.
var commands = map[string]bool{
	"start": true, "stop": true, "restart": true, "try-restart": true,
	"reload": true, "force-reload": true, "status": true,
	"show": true, // extension
}

// options is the parsed command line.
type options struct {
	debug, help, version bool
	check, dump, dryRun  bool
	// args are the positional arguments (options removed), as Perl's @ARGV after GetOptions.
	args []string
	// flags are the options as given, to pass on to the daemon and to execute= instances.
	flags []string
}

// parseArgs parses the command line as Getopt::Long with bundling, no_auto_abbrev and require_order:
// options come before the first non-option argument, single-letter options can be bundled (-dv), long
// options need two dashes, "--" ends the options. errs holds one line per bad option, in Getopt::Long's
// words (`Unknown option: foo`).
func parseArgs(args []string) (o options, errs []string) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		if strings.HasPrefix(a, "--") {
			name, _, hasValue := strings.Cut(a[2:], "=")
			var flag *bool
			switch name {
			case "debug":
				flag = &o.debug
			case "help":
				flag = &o.help
			case "version":
				flag = &o.version
			case "dump-config":
				flag = &o.dump
			case "dry-run":
				flag = &o.dryRun
			default:
				errs = append(errs, "Unknown option: "+strings.ToLower(name))
				continue
			}
			if hasValue {
				errs = append(errs, "Option "+name+" does not take an argument")
				continue
			}
			*flag = true
			o.flags = append(o.flags, "--"+name)
			continue
		}
		for _, c := range a[1:] {
			switch c {
			case 'd':
				o.debug = true
			case 'h', '?':
				o.help = true
			case 'v':
				o.version = true
			case 't':
				o.check = true
			default:
				errs = append(errs, fmt.Sprintf("Unknown option: %c", c))
				continue
			}
			o.flags = append(o.flags, "-"+string(c))
		}
	}
	o.args = args[i:]
	return o, errs
}

// target is the config argument and command of ldirectord's positional arguments: with two or more
// arguments the first is the config and the second the command; with one it is the command and there is
// no config argument (config ldirectord.cf, CFGNAME ldirectord). Extra arguments are ignored, as in
// ldirectord. ok is false when the command is missing or unknown (usage, exit 255).
func target(args []string) (cfgArg, cmd string, ok bool) {
	switch len(args) {
	case 0:
		return "", "", false
	case 1:
		cmd = args[0]
	default:
		cfgArg, cmd = args[0], args[1]
	}
	return cfgArg, cmd, commands[cmd]
}
