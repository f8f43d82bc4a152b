package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
	"github.com/ldirectord-go/ldirectord/internal/logging"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
	"github.com/ldirectord-go/ldirectord/supervisor"
	"github.com/sirupsen/logrus"
)

// LogFileEnv names the environment variable that overrides the default log file
// (/var/log/ldirectord.log), used when the config sets no logfile= or cannot be read.
const LogFileEnv = "LDIRECTORD_LOGFILE"

// DefaultStopTimeout bounds how long `stop` and `restart` wait for the daemon to exit after SIGTERM.
const DefaultStopTimeout = 30 * time.Second

// runner is what `start` runs: the supervisor. Tests replace newRunner with a stand-in.
type runner interface {
	Run(ctx context.Context) error
	RequestReload()
}

var newRunner = func(cfg *config.Config, o supervisor.Options) (runner, error) {
	return supervisor.New(cfg, o)
}

// newKernelClient opens the kernel IPVS table. A kernel that refuses this process the table (no
// CAP_NET_ADMIN) is a start-up error, like a kernel without IPVS: retrying cannot make it work.
var newKernelClient = func(ctx context.Context) (ipvsctl.Client, error) {
	c, err := ipvsctl.NewNetlink(ctx, ipvsctl.NetlinkOptions{})
	if err != nil {
		return nil, err
	}
	if _, err := c.Services(ctx); errors.Is(err, syscall.EPERM) {
		c.Close()
		return nil, errors.New("the kernel refuses access to the IPVS table (operation not permitted): " +
			"ldirectord needs CAP_NET_ADMIN; run it as root")
	}
	return c, nil
}

// app is one invocation of ldirectord.
type app struct {
	argv           []string
	stdout, stderr io.Writer
	opts           options
	child          *daemon.Child // set when this process is the daemon started by `start`

	cfgArg  string // the config argument as given ("" when none)
	cmd     string
	cfgName string // CFGNAME
	config  string // the config path as found (<CONFIG> in messages)
	abs     string // config made absolute while the working directory was still the caller's
	log     *logrus.Logger

	showJSON bool // show --json

	stopTimeout time.Duration // how long stop waits for the daemon; 0: DefaultStopTimeout
}

func newApp(argv []string, stdout, stderr io.Writer) *app {
	return &app{argv: argv, stdout: stdout, stderr: stderr, child: daemon.ChildFromEnv()}
}

func (a *app) run() int {
	var errs []string
	a.opts, errs = parseArgs(a.argv[1:])
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(a.stderr, e)
		}
		fmt.Fprint(a.stdout, usageText)
		return 255
	}
	switch {
	case a.opts.help:
		fmt.Fprint(a.stdout, usageText)
		return 0
	case a.opts.version:
		fmt.Fprint(a.stdout, versionText)
		return 0
	case a.opts.check || a.opts.dump:
		return a.checkConfig()
	}
	var ok bool
	args, showJSON := splitShowJSON(a.opts.args)
	a.cfgArg, a.cmd, ok = target(args)
	a.showJSON = showJSON && a.cmd == "show"
	if !ok {
		fmt.Fprint(a.stdout, usageText)
		return 255
	}
	a.cfgName = daemon.CfgName(a.cfgArg)
	a.log = logrus.New()

	name := a.cfgArg
	if name == "" {
		name = "ldirectord.cf"
	}
	if a.cmd == "show" {
		return a.show(name)
	}
	path, err := config.Find(name)
	if err != nil {
		a.configureLog(nil)
		if a.child != nil {
			a.child.Fail(err)
		}
		return a.initError(err.Error())
	}
	a.setConfig(path)
	cfg, cfgErr := a.loadConfig(path)
	// The log goes where the config says; the default log file only when the config cannot be read, so a
	// command never touches a log file the config does not use.
	a.configureLog(cfg)
	if a.child != nil {
		return a.serveLocked(cfg, cfgErr)
	}
	switch a.cmd {
	case "stop", "status":
		// These work from the pid file alone, so they still work when the file on disk is broken.
	default:
		if cfgErr != nil {
			return a.configError(cfgErr)
		}
	}
	a.logInvocation()

	pid, st, err := daemon.Lookup(a.cfgName)
	if err != nil {
		return a.initError(fmt.Sprintf("Can not open %s: %v", daemon.PidFile(a.cfgName), err))
	}
	running := st == daemon.Running
	switch a.cmd {
	case "start":
		if running {
			if a.opts.debug {
				a.log.Infof("ldirectord for %s is already running with pid: %d", a.config, pid)
			}
			return a.exit(0, "Exiting from ldirectord start")
		}
		return a.startLocked(cfg)
	case "stop":
		if running {
			if code := a.stop(pid); code != 0 {
				return code
			}
		}
		return a.exit(0, "Exiting from ldirectord stop")
	case "restart", "try-restart":
		if !running && a.cmd == "try-restart" {
			return a.exit(0, "Exiting from ldirectord try-restart")
		}
		if running {
			if code := a.stop(pid); code != 0 {
				return code
			}
		}
		return a.startLocked(cfg)
	case "reload", "force-reload":
		if !running {
			msg := "ldirectord is stopped for " + a.config
			a.log.Info(msg)
			if !a.opts.debug {
				fmt.Fprintln(a.stderr, msg)
			}
			return a.exit(1, "Exiting from ldirectord "+a.cmd)
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return a.initError(fmt.Sprintf("kill -HUP %d: %v", pid, err))
		}
		return a.exit(0, "Exiting from ldirectord "+a.cmd)
	}
	// status
	switch st {
	case daemon.Running:
		msg := fmt.Sprintf("ldirectord for %s is running with pid: %d", a.config, pid)
		fmt.Fprintln(a.stderr, msg)
		if cfg != nil {
			a.instances(cfg.Execute, "status")
		}
		a.log.Info(msg)
		a.log.Info("Exiting from ldirectord status")
		return a.exit(0, "Exiting from ldirectord status")
	case daemon.Stale:
		msg := fmt.Sprintf("ldirectord stale pid file %s for %s", daemon.PidFile(a.cfgName), a.config)
		fmt.Fprintln(a.stderr, msg)
		a.log.Info(msg)
		fmt.Fprintln(a.stdout, "ldirectord is stopped for "+a.config)
		return a.exit(1, "Exiting from ldirectord status")
	}
	fmt.Fprintln(a.stdout, "ldirectord is stopped for "+a.config)
	return a.exit(3, "Exiting from ldirectord status")
}

// configureLog points the log where cfg says (nil: the default log file), as ld_openlog does; -d always
// means stderr. A log file that cannot be opened leaves the lines on stderr.
func (a *app) configureLog(cfg *config.Config) {
	o := logging.Options{Debug: a.opts.debug, CfgName: a.cfgName, Stdout: a.stdout, Stderr: a.stderr,
		LogFile: os.Getenv(LogFileEnv)}
	if cfg != nil {
		o.Supervised = cfg.Supervised
		if cfg.LogFile != "" && cfg.LogFile != logging.DefaultLogFile {
			o.LogFile = cfg.LogFile
		}
	}
	if err := logging.Configure(a.log, o); err != nil {
		// Bare lines on stderr, as ld_log does when the log file cannot be opened.
		logging.Configure(a.log, logging.Options{Debug: true, Stdout: a.stdout, Stderr: a.stderr})
		a.log.SetLevel(logrus.InfoLevel)
		a.log.Warn(err.Error())
	}
}

// FlushTimeout bounds how long ldirectord waits at exit for log lines that its log file could not take
// yet (see logging.File).
const FlushTimeout = time.Second

// flushLog waits, at most FlushTimeout, for the log lines still queued, so that the last lines of a
// command or of the daemon are not lost to a log file that was being rotated.
func (a *app) flushLog() {
	if a.log != nil {
		logging.Flush(a.log, FlushTimeout)
	}
}

// logInvocation logs `Invoking ldirectord invoked as: <argv0> <args...> ` (every positional argument
// followed by a space, options removed), as ldirectord does for every command.
func (a *app) logInvocation() {
	var b strings.Builder
	b.WriteString("Invoking ldirectord invoked as: " + a.argv[0] + " ")
	for _, arg := range a.opts.args {
		b.WriteString(arg + " ")
	}
	a.log.Info(b.String())
}

// exit logs `Exiting with exit_status <n>: <reason>` when n is not 0 (always with -d), as ld_exit does,
// and returns n.
func (a *app) exit(code int, reason string) int {
	if code != 0 || a.opts.debug {
		a.log.Infof("Exiting with exit_status %d: %s", code, reason)
	}
	return code
}

// initError is ldirectord's init_error: the message to the log and (without -d) to stderr, exit 1.
func (a *app) initError(msg string) int {
	a.log.Info(msg)
	if !a.opts.debug {
		fmt.Fprintln(a.stderr, msg)
	}
	return a.exit(1, "Initialisation Error")
}

// configError reports a config that does not load: each error as FILE:LINE: message on stderr, and in
// ldirectord's own format in the log for scrapers (`Error [<pid>] reading file <CONFIG> at line <n>:
// <message>`); exit 2.
func (a *app) configError(err error) int {
	for _, e := range errorList(err) {
		fmt.Fprintln(a.stderr, e.Error())
		a.log.Info(perlConfigLine("Error", e))
	}
	return a.exit(2, "config_error: Configuration Error")
}

// errorList is err as a list of positioned errors (an I/O error becomes one without a line).
func errorList(err error) config.ErrorList {
	var list config.ErrorList
	if errors.As(err, &list) {
		return list
	}
	return config.ErrorList{{Msg: err.Error()}}
}

func perlConfigLine(kind string, e *config.Error) string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s [%d]: %s", kind, os.Getpid(), e.Msg)
	}
	return fmt.Sprintf("%s [%d] reading file %s at line %d: %s", kind, os.Getpid(), e.File, e.Line, e.Msg)
}

// warnings prints and logs the warnings of a config that loaded.
func (a *app) warnings(cfg *config.Config, toStderr bool) {
	for _, w := range cfg.Warnings {
		if toStderr {
			fmt.Fprintln(a.stderr, warningText(w))
		}
		a.log.Info(perlConfigLine("Warning", w))
	}
}

func warningText(w *config.Error) string {
	if w.Line <= 0 {
		return fmt.Sprintf("%s: warning: %s", w.File, w.Msg)
	}
	return fmt.Sprintf("%s:%d: warning: %s", w.File, w.Line, w.Msg)
}

// checkConfig is -t and --dump-config: load the config, print every error and warning on stderr, and
// (--dump-config) the effective config on stdout. Exit 0 when valid, 2 when not, 1 when not found.
func (a *app) checkConfig() int {
	name := "ldirectord.cf"
	if len(a.opts.args) > 0 {
		name = a.opts.args[0]
	}
	path, err := config.Find(name)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return 1
	}
	if len(a.opts.args) > 0 {
		a.cfgName = daemon.CfgName(a.opts.args[0])
	} else {
		a.cfgName = daemon.CfgName("")
	}
	cfg, err := a.loadConfig(path)
	if err != nil {
		for _, e := range errorList(err) {
			if e.File == "" {
				e.File = path
			}
			fmt.Fprintln(a.stderr, e.Error())
		}
		return 2
	}
	for _, w := range append(cfg.Warnings, unknownSchedulers(cfg, kernelModules)...) {
		fmt.Fprintln(a.stderr, warningText(w))
	}
	if a.opts.dump {
		a.stdout.Write(config.Dump(config.Redacted(cfg))) // passwords and secrets are not shown
	}
	return 0
}

// stop sends TERM to the daemon and waits (at most the stop timeout) until it has exited.
func (a *app) stop(pid int) int {
	err := daemon.Terminate(pid, a.cfgName, cmp.Or(a.stopTimeout, DefaultStopTimeout))
	switch {
	case err == nil, errors.Is(err, daemon.ErrNotOurs):
		return 0
	}
	msg := fmt.Sprintf("ldirectord for %s did not stop: %v", a.config, err)
	a.log.Info(msg)
	fmt.Fprintln(a.stderr, msg)
	return a.exit(1, "Exiting from ldirectord "+a.cmd)
}

// setConfig records the config path as found, and its absolute form while the working directory is
// still the caller's: the daemon works in "/", where a relative path names another file.
func (a *app) setConfig(path string) {
	a.config = path
	a.abs = path
	if p, err := filepath.Abs(path); err == nil {
		a.abs = p
	}
}

// absConfig is the config path made absolute (before the daemon changed to "/"), so that the daemon
// still finds it on reload (ldirectord does not, W1) and `show` names the file that was loaded.
func (a *app) absConfig() string {
	if a.abs != "" {
		return a.abs
	}
	return a.config
}

// loadConfig reads a config as every command and every reload does: config.Load (without opening
// logfile= under -d, whose log goes to stderr; with -t and --dump-config opening and creating no file at
// all), then the checks only the checkers can make (supervisor.Validate: receive= patterns Go cannot run
// are errors), and refuses an execute= of this very instance (ownInstance).
func (a *app) loadConfig(path string) (*config.Config, error) {
	cfg, err := config.LoadWith(path, config.LoadOptions{NoLogFile: a.opts.debug, NoCreate: a.opts.check || a.opts.dump})
	if err != nil {
		return nil, err
	}
	if err := supervisor.Validate(cfg); err != nil {
		return nil, err
	}
	if err := ownInstance(cfg, a.cfgName); err != nil {
		return nil, err
	}
	return cfg, nil
}
