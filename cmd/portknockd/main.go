// Command portknockd is a port-knocking daemon that never sniffs packets:
// firewall rules log the knock packets they drop, and portknockd reads those
// logs (over NFLOG or as text) and runs a door's commands when a source
// completes its knock sequence.
//
// Usage:
//
//	portknockd [-c FILE] [-i INPUT]... [-s DIR] [-D] [-v] [--dry-run] [-p PIDFILE] [-g LOGFILE]
//	portknockd check [-u USER] [-i INPUT]... [-c] FILE
//	portknockd parse [-f FORMAT] [--prefix PREFIX] [--program NAME]... [-D] < lines
//	portknockd status [-c FILE] [-s DIR] [--json]
//
// This package is the command line only: flags, then the configuration,
// then the daemon (package daemon), whose own checks check reuses. --help
// lists every option, input form, format, signal and exit status.
//
// The configuration is TOML or a knockd.conf, recognised by content. It, the
// state directory and every file the daemon reads must be owned by root or
// the daemon's user and not writable by others; check reports every file
// that is not, with the command that fixes it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	flag "github.com/spf13/pflag"

	"portknock/config"
	"portknock/daemon"
	"portknock/internal/buildinfo"
)

const defaultConfig = "/etc/portknockd.toml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main with its inputs and outputs passed in, so tests can call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return runCheck(args[1:], stdout, stderr)
		case "parse":
			return runParse(args[1:], stdin, stdout, stderr)
		case "status":
			return runStatus(args[1:], stdout, stderr)
		}
	}
	return runDaemon(args, stdin, stdout, stderr)
}

// runDaemon runs the daemon until a signal stops it or its inputs end.
func runDaemon(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portknockd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfgPath   = fs.StringP("config", "c", defaultConfig, "configuration `file` (TOML or knockd.conf)")
		inputs    = fs.StringArrayP("input", "i", nil, "add an `input` (see INPUTS; repeatable)")
		debugLog  = fs.BoolP("debug", "D", false, "log debugging output, including every line that is not a knock")
		verbose   = fs.BoolP("verbose", "v", false, "log every knock as it is matched")
		showVer   = fs.BoolP("version", "V", false, "print the version and exit")
		dryRun    = fs.Bool("dry-run", false, "log the commands doors would run instead of running them")
		pidFile   = fs.StringP("pidfile", "p", "", "write the process id to `file` (overrides the configuration)")
		logFile   = fs.StringP("logfile", "g", "", "also log to `file` (overrides the configuration)")
		stateDir  = fs.StringP("state-dir", "s", "", "keep the journal of pending closes and the replay cache in `dir` (overrides the configuration)")
		daemonize = fs.BoolP("daemon", "d", false, "accepted for knockd compatibility; portknockd always runs in the foreground")
	)
	if code, done := parseFlags(fs, args, daemonHelp, stdout); done {
		return code
	}
	if *showVer {
		fmt.Fprintln(stdout, buildinfo.Version("portknockd"))
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portknockd: unexpected argument %q (see portknockd --help)\n", fs.Arg(0))
		return exitUsage
	}
	// Every -i is judged before anything else, with the words check uses.
	extra, err := config.ParseInputSpecs(*inputs)
	if err != nil {
		fmt.Fprintf(stderr, "portknockd: %v\n", err)
		return exitUsage
	}

	// The command line overrides the file at every load, so that a reload
	// does not see the flags' values as a change to [daemon].
	over := overrides{pidFile: *pidFile, logFile: *logFile, stateDir: *stateDir}
	load := func() (*config.Config, error) { return over.load(*cfgPath) }
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	if len(cfg.Inputs)+len(extra) == 0 {
		// Before the log file is opened: a knockd.conf run without -i
		// must not create knockd's log file only to say so.
		fmt.Fprintf(stderr, "portknockd: %s: %v\n", cfg.Path, daemon.ErrNoInputs)
		return exitFail
	}
	level := slog.LevelInfo
	if *debugLog || *verbose {
		level = slog.LevelDebug
	}
	log, closeLog, err := newLogger(stderr, cfg.Daemon, level, *debugLog, dialSyslog)
	if err != nil {
		fmt.Fprintf(stderr, "portknockd: %v\n", err)
		return exitFail
	}
	defer closeLog()
	if *daemonize {
		log.Warn("-d/--daemon is ignored: portknockd runs in the foreground; let the service manager run it")
	}
	for _, w := range append(cfg.Warnings, config.InputWarnings(extra)...) {
		log.Warn(w)
	}

	in, _ := stdin.(*os.File) // a text input reading "-" needs a file
	// New binds and opens every input (or makes sure it can), so that
	// "started" below comes only once every input is there.
	d, err := daemon.New(cfg, daemon.Options{
		Stdin:       in,
		Logger:      log,
		DryRun:      *dryRun,
		ExtraInputs: extra,
		Load:        load,
		// A dry run leaves state_dir alone, the socket included.
		Status: !*dryRun,
	})
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	if cfg.Daemon.PIDFile != "" {
		if err := os.WriteFile(cfg.Daemon.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error("cannot write pid file", "err", err)
			return exitFail
		}
		defer os.Remove(cfg.Daemon.PIDFile)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		handleSignals(ctx, sigs, log, cancel, func() {
			log.Info("SIGHUP: reloading configuration", "config", *cfgPath)
			_ = d.Reload(ctx) // the daemon logs the outcome
		})
	}()
	defer func() { cancel(); <-handled }()

	log.Info("portknockd started", "version", buildinfo.Version("portknockd"), "config", cfg.Path, "doors", len(cfg.Doors), "dry_run", *dryRun)
	if err := d.Run(ctx); err != nil {
		log.Error("portknockd stopped", "err", err)
		return exitFail
	}
	log.Info("portknockd stopped")
	return exitOK
}

// Exit statuses, as --help and portknockd(8) list them.
const (
	exitOK    = 0
	exitFail  = 1 // invalid or untrusted configuration, a failed start, an error
	exitUsage = 2 // a bad command line
)

// parseFlags parses args, and says whether the program is done (help asked
// for, or a bad flag) and with which status. Help asked for goes to stdout,
// where a pager can take it; a bad flag is one line on the flag set's
// output, pointing to the help.
func parseFlags(fs *flag.FlagSet, args []string, h help, stdout io.Writer) (code int, done bool) {
	fs.Usage = func() {}
	// Defined here, rather than left to pflag, so that the help lists it.
	asked := fs.BoolP("help", "h", false, "print this help and exit")
	err := fs.Parse(args)
	switch {
	case err == nil && !*asked:
		return 0, false
	case err == nil || errors.Is(err, flag.ErrHelp):
		printUsage(stdout, h, fs)
		return exitOK, true
	default:
		fmt.Fprintf(fs.Output(), "%s: %v (see %s --help)\n", fs.Name(), err, fs.Name())
		return exitUsage, true
	}
}

// overrides are the flags that replace [daemon] settings of the file.
type overrides struct{ pidFile, logFile, stateDir string }

func (o overrides) load(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if o.pidFile != "" {
		cfg.Daemon.PIDFile = o.pidFile
	}
	if o.logFile != "" {
		cfg.Daemon.LogFile = o.logFile
	}
	if o.stateDir != "" {
		cfg.Daemon.StateDir = o.stateDir
	}
	return cfg, nil
}

// signalName is a signal as the log names it: "SIGTERM", not "terminated".
func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// handleSignals acts on the daemon's signals until ctx ends: SIGHUP
// reloads; SIGINT and SIGTERM are logged, with which one came, and stop
// the daemon, which then logs its shutdown.
func handleSignals(ctx context.Context, sigs <-chan os.Signal, log *slog.Logger, stop func(), reload func()) {
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload() // which logs that it does
				continue
			}
			log.Info("signal received; shutting down", "signal", signalName(s))
			stop()
		case <-ctx.Done():
			return
		}
	}
}

// newLogger builds the daemon's logger: text to stderr, and also to the
// configured log file and syslog, as knockd's logfile and usesyslog did.
// Syslog that cannot be reached (no /dev/log in a container, say) is not
// worth refusing to start over: the logger says so once, on stderr, and
// logs there alone. A log file that cannot be opened is an error: it was
// asked for by name.
func newLogger(stderr io.Writer, dc config.Daemon, level slog.Level, source bool, dial func() (io.WriteCloser, error)) (*slog.Logger, func(), error) {
	opts := &slog.HandlerOptions{Level: level, AddSource: source}
	handlers := []slog.Handler{slog.NewTextHandler(stderr, opts)}
	var closers []io.Closer
	if dc.LogFile != "" {
		f, err := os.OpenFile(dc.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		closers = append(closers, f)
		handlers = append(handlers, slog.NewTextHandler(f, opts))
	}
	var syslogErr error
	if dc.UseSyslog {
		if w, err := dial(); err != nil {
			syslogErr = err
		} else {
			closers = append(closers, w)
			handlers = append(handlers, slog.NewTextHandler(w, opts))
		}
	}
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	log := slog.New(slog.NewMultiHandler(handlers...))
	if syslogErr != nil {
		log.Warn("cannot log to syslog; logging without it", "err", syslogErr)
	}
	return log, closeAll, nil
}

// dialSyslog connects to the local syslog daemon.
func dialSyslog() (io.WriteCloser, error) {
	return syslog.New(syslog.LOG_INFO|syslog.LOG_DAEMON, "portknockd")
}
