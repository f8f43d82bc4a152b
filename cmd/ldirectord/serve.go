package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/alert"
	"github.com/ldirectord-go/ldirectord/internal/command"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
	"github.com/ldirectord-go/ldirectord/internal/metrics"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
	"github.com/ldirectord-go/ldirectord/supervisor"
)

// start starts the daemon: in the foreground with -d or supervised=yes, else by re-executing this
// program as a daemon and returning once it reports that it is running.
func (a *app) start(cfg *config.Config) int {
	a.warnings(cfg, !a.opts.debug)
	// Under systemd's Type=notify the process systemd started must be the daemon.
	if a.opts.debug || cfg.Supervised || daemon.SystemdMain() {
		a.log.Infof("Starting %s with pid: %d", Version, os.Getpid())
		return a.serve(cfg)
	}
	a.log.Infof("Starting %s as daemon", Version)
	// A $NOTIFY_SOCKET inherited from another service is not the daemon's to talk to.
	os.Unsetenv(daemon.NotifySocketEnv)
	p, err := daemon.Spawn(daemon.SpawnOptions{Args: a.daemonArgs()})
	var reported *daemon.ReportedError
	switch {
	case errors.As(err, &reported):
		// The daemon has logged it.
		fmt.Fprintln(a.stderr, err)
		return 1
	case err != nil:
		a.log.Info(err.Error())
		fmt.Fprintln(a.stderr, err)
		return a.exit(1, "ld_daemon: "+err.Error())
	}
	p.Release()
	return 0
}

// daemonArgs is the daemon's argv: `<argv0 as invoked> [--dry-run] [<cfg>] start`, so that its command
// line still matches `pgrep -f "ldirectord <cfg> start"` (also after `restart`).
func (a *app) daemonArgs() []string {
	args := []string{a.argv[0]}
	if a.opts.dryRun {
		args = append(args, "--dry-run")
	}
	if a.cfgArg != "" {
		if strings.HasPrefix(a.cfgArg, "-") {
			args = append(args, "--")
		}
		args = append(args, a.cfgArg)
	}
	return append(args, "start")
}

// serveChild is the daemon process started by start: it reports failures to its parent, which prints
// them, and runs.
func (a *app) serveChild(cfg *config.Config, cfgErr error) int {
	if cfgErr != nil {
		list := errorList(cfgErr)
		a.child.Fail(errors.New(list.Error()))
		return a.configError(cfgErr)
	}
	return a.serve(cfg)
}

// serve runs the daemon until a TERM, INT or QUIT signal: pid file, IPVS client, alerter, supervisor,
// execute= instances; HUP reloads.
func (a *app) serve(cfg *config.Config) int {
	fail := func(msg, reason string, code int) int {
		a.child.Fail(errors.New(msg))
		a.log.Info(msg)
		if !a.opts.debug && a.child == nil {
			fmt.Fprintln(a.stderr, msg)
		}
		return a.exit(code, reason)
	}
	abs := a.absConfig()
	if a.child != nil {
		if err := os.Chdir("/"); err != nil {
			return fail("ld_daemon: Could not chdir", "ld_daemon: Could not chdir", 1)
		}
	}
	pidFile := daemon.PidFile(a.cfgName)
	if err := daemon.WritePidFile(pidFile, os.Getpid()); err != nil {
		return fail(err.Error(), "Initialisation Error", 1)
	}
	defer daemon.RemovePidFile(pidFile, os.Getpid())

	// Signals first, so that a TERM right after `start` returns is a clean stop.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	signal.Ignore(syscall.SIGPIPE, syscall.SIGUSR2)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var client ipvsctl.Client
	if a.opts.dryRun {
		client = ipvsctl.NewDryRun(ipvsctl.NewDryRunTable(), a.log.Infof)
	} else {
		var err error
		if client, err = newKernelClient(ctx); err != nil {
			return fail(err.Error(), "Initialisation Error", 1)
		}
	}
	defer client.Close()

	hostname := os.Getenv("HOSTNAME")
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	mailer := alert.New(alert.Options{Log: a.log, From: cfg.EmailAlertFrom})
	d := &running{a: a, mailer: mailer, abs: abs, execute: cfg.Execute, wake: make(chan struct{}, 1)}
	var state func() supervisor.Snapshot
	met := metrics.New(programVersion(), metrics.Source{
		State: func() supervisor.Snapshot { return state() },
		Table: func(ctx context.Context) (ipvsctl.Table, error) { return ipvsctl.ReadTable(ctx, client) },
	})
	d.metrics = &metricsServer{m: met, log: a.log}
	sup, err := newRunner(cfg, supervisor.Options{
		Client: client, Log: a.log, Load: d.load, Reloaded: d.reloaded, Alert: mailer, Hostname: hostname,
		ResyncInterval: a.resyncFromEnv(), Observer: met,
	})
	if err != nil {
		return fail(err.Error(), "Initialisation Error", 1)
	}
	state = func() supervisor.Snapshot { return supervisor.Snapshot{} }
	if s, ok := sup.(interface{ Snapshot() supervisor.Snapshot }); ok {
		state = s.Snapshot
	}
	d.metrics.set(cfg.Metrics)
	defer d.metrics.close()

	alertCtx, stopAlerts := context.WithCancel(context.Background())
	defer stopAlerts()
	alertsDone := make(chan struct{})
	go func() { mailer.Run(alertCtx); close(alertsDone) }()
	runDone := make(chan error, 1)
	go func() { runDone <- sup.Run(ctx) }()

	stopState, refreshState := startPublisher(a, sup)
	defer stopState()

	a.child.Ready()
	var notify notifier
	go notify.ready(ctx, sup)
	if iv := daemon.WatchdogInterval(); iv > 0 {
		go notify.watchdog(ctx, sup, iv, a.log.Errorf, a.log.Infof)
	}
	go releaseAfterStart(ctx, sup)
	a.instances(cfg.Execute, "start")
	instCtx, stopInstances := context.WithCancel(context.Background())
	defer stopInstances()
	instDone := make(chan struct{})
	go func() { d.follow(instCtx); close(instDone) }()

	var (
		termSig string
		runErr  error
	)
loop:
	for {
		select {
		case s := <-sigs:
			switch s {
			case syscall.SIGUSR1: // `show` asks for the state file as of now
				refreshState()
			case syscall.SIGHUP:
				if termSig != "" {
					continue
				}
				a.log.Info("Reloading Linux Director Daemon config on signal")
				// The supervisor tells d.reloaded when it runs the new config; systemd hears of the
				// reload (RELOADING=1, then READY=1 once it is done).
				go notify.reload(sup)
			default:
				if termSig != "" {
					// A second stop signal while stopping: give up on the clean stop.
					a.log.Infof("Linux Director Daemon terminated on signal: %s (clean stop abandoned)", sigName(s))
					daemon.RemovePidFile(pidFile, os.Getpid())
					return a.exit(1, "Exit Handler Repeatedly Called")
				}
				termSig = sigName(s)
				heapProfile()
				notify.stopped()
				go func() {
					stopInstances()
					<-instDone // the instances a reload is starting are started, then stopped
					a.instances(d.execute, "stop")
					cancel()
				}()
			}
		case runErr = <-runDone:
			break loop
		}
	}
	if termSig == "" {
		// The supervisor returned on its own: it could not run.
		stopAlerts()
		<-alertsDone
		msg := "the supervisor stopped unexpectedly"
		if runErr != nil {
			msg += ": " + runErr.Error()
		}
		a.log.Info(msg)
		return a.exit(1, msg)
	}
	a.log.Infof("Linux Director Daemon terminated on signal: %s", termSig)
	stopAlerts() // sends what the clean stop queued, within the alert timeout
	<-alertsDone
	daemon.RemovePidFile(pidFile, os.Getpid())
	return a.exit(0, "Linux Director Daemon terminated on signal: "+termSig)
}

// sigName is the signal's name without SIG, as Perl's %SIG keys: TERM, INT, QUIT.
func sigName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGQUIT:
		return "QUIT"
	case syscall.SIGHUP:
		return "HUP"
	}
	return strings.TrimPrefix(strings.ToUpper(s.String()), "SIG")
}

// running is the state of a serving daemon that reloads change.
type running struct {
	a      *app
	mailer *alert.Mailer
	abs    string

	// execute is the list of execute= instances started (follow's, once serve has started it).
	execute []string
	// metrics serves metrics= and follows it across reloads.
	metrics *metricsServer

	mu   sync.Mutex
	next *config.Config // the config last installed that follow has not acted on yet
	wake chan struct{}  // capacity 1: next was set
}

// load is the supervisor's Options.Load: it reads the config again (by its absolute path) and, when it
// loads, moves the log to the new logfile= and updates the alert sender.
func (d *running) load() (*config.Config, error) {
	cfg, err := d.a.loadConfig(d.abs)
	if err != nil {
		return nil, err
	}
	d.a.configureLog(cfg)
	d.mailer.SetFrom(cfg.EmailAlertFrom)
	return cfg, nil
}

// reloaded is the supervisor's Options.Reloaded, called for every config a reload installs (SIGHUP or
// autoreload). It must not block: it leaves cfg for follow.
func (d *running) reloaded(cfg *config.Config) {
	d.metrics.follow(cfg.Metrics)
	go debug.FreeOSMemory() // what loading the config used, as after the start
	d.mu.Lock()
	d.next = cfg
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// follow brings the execute= instances in line with each reloaded config until ctx ends, as ldirectord's
// reread_config does: removed ones are stopped, kept ones reloaded (started when the reload fails), new
// ones started. Configs installed while it works are acted on together, against the list it started.
func (d *running) follow(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		d.mu.Lock()
		cfg := d.next
		d.next = nil
		d.mu.Unlock()
		if cfg == nil {
			continue
		}
		prev, cur := d.execute, cfg.Execute
		for _, e := range prev {
			if !slices.Contains(cur, e) {
				d.a.instances([]string{e}, "stop")
			}
		}
		for _, e := range cur {
			if !slices.Contains(prev, e) {
				d.a.instances([]string{e}, "start")
			} else if !d.a.instances([]string{e}, "reload") {
				d.a.instances([]string{e}, "start")
			}
		}
		d.execute = cur
	}
}

// InstanceTimeout bounds one `ldirectord <cfg> <cmd>` run for an execute= instance.
const InstanceTimeout = time.Minute

// instances runs `<this program> [--dry-run] <cfg> <cmd>` for each execute= config, the value as written
// and judged by Perl's system rule (internal/command: with quotes or other shell metacharacters through
// /bin/sh, else split on blanks). It reports whether all succeeded; failures are logged as ldirectord does
// (`system(<command>) failed: <error>`).
func (a *app) instances(list []string, cmd string) bool {
	ok := true
	exe, err := os.Executable()
	if err != nil {
		exe = "/usr/sbin/ldirectord"
	}
	for _, cfg := range list {
		before := []string{exe}
		if a.opts.dryRun {
			before = append(before, "--dry-run")
		}
		argv := command.Prefixed(before, cfg, cmd)
		ctx, cancel := context.WithTimeout(context.Background(), InstanceTimeout)
		c := exec.CommandContext(ctx, argv[0], argv[1:]...)
		// Not NOTIFY_SOCKET: an instance is not the service systemd watches.
		c.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "NOTIFY_SOCKET=") })
		c.Stdout, c.Stderr = a.stdout, a.stderr
		c.WaitDelay = time.Second
		err := c.Run()
		cancel()
		if err != nil {
			ok = false
			a.log.Infof("system(%s) failed: %v", command.Text(argv), err)
		}
	}
	return ok
}
