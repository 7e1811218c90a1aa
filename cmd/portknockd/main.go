// Command portknockd is a port-knocking daemon that never sniffs packets:
// firewall rules log the knock packets they drop, and portknockd reads those
// logs (over NFLOG or as text) and runs a door's commands when a source
// completes its knock sequence.
//
// Usage:
//
//	portknockd [-c FILE] [-i INPUT]... [-D] [-v] [--dry-run]
//	portknockd check [-u USER] [-c FILE]
//	portknockd parse [-f FORMAT] [--prefix PREFIX] [--program NAME]... < lines
//	portknockd status [-c FILE] [-s DIR] [--json]
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

func runDaemon(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portknockd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfgPath   = fs.StringP("config", "c", defaultConfig, "configuration `file` (TOML or knockd.conf)")
		inputs    = fs.StringArrayP("input", "i", nil, "add an input: - for stdin, a FIFO or file `path`, or nflog:GROUP[,GROUP] (repeatable)")
		debugLog  = fs.BoolP("debug", "D", false, "log debugging output, including every line that is not a knock")
		verbose   = fs.BoolP("verbose", "v", false, "log every knock as it is matched")
		showVer   = fs.BoolP("version", "V", false, "print the version and exit")
		dryRun    = fs.Bool("dry-run", false, "log the commands doors would run instead of running them")
		pidFile   = fs.StringP("pidfile", "p", "", "write the process id to `file` (overrides the configuration)")
		logFile   = fs.StringP("logfile", "g", "", "also log to `file` (overrides the configuration)")
		stateDir  = fs.StringP("state-dir", "s", "", "keep the journal of pending closes and the replay cache in `dir` (overrides the configuration)")
		daemonize = fs.BoolP("daemon", "d", false, "accepted for knockd compatibility; portknockd always runs in the foreground")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: portknockd [options]\n       portknockd check [-u USER] [-c FILE]\n       portknockd parse [-f FORMAT] [--prefix PREFIX] [--program NAME]... < lines\n       portknockd status [-c FILE] [-s DIR] [--json]\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 2
	}
	if *showVer {
		fmt.Fprintln(stdout, buildinfo.Version("portknockd"))
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portknockd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	// The command line overrides the file at every load, so that a reload
	// does not see the flags' values as a change to [daemon].
	load := func() (*config.Config, error) {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return nil, err
		}
		if *pidFile != "" {
			cfg.Daemon.PIDFile = *pidFile
		}
		if *logFile != "" {
			cfg.Daemon.LogFile = *logFile
		}
		if *stateDir != "" {
			cfg.Daemon.StateDir = *stateDir
		}
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var extra []config.Input
	for _, spec := range *inputs {
		in, err := config.ParseInputSpec(spec)
		if err != nil {
			fmt.Fprintf(stderr, "portknockd: -i %s: %v\n", spec, err)
			return 2
		}
		extra = append(extra, in)
	}
	if len(cfg.Inputs)+len(extra) == 0 {
		// Before the log file is opened: a knockd.conf run without -i
		// must not create knockd's log file only to say so.
		fmt.Fprintf(stderr, "portknockd: %s: %v\n", cfg.Path, daemon.ErrNoInputs)
		return 1
	}
	level := slog.LevelInfo
	if *debugLog || *verbose {
		level = slog.LevelDebug
	}
	log, closeLog, err := newLogger(stderr, cfg.Daemon, level, *debugLog)
	if err != nil {
		fmt.Fprintf(stderr, "portknockd: %v\n", err)
		return 1
	}
	defer closeLog()
	if *daemonize {
		log.Warn("-d/--daemon is ignored: portknockd runs in the foreground; let the service manager run it")
	}
	for _, w := range append(cfg.Warnings, config.InputWarnings(extra)...) {
		log.Warn(w)
	}

	in, _ := stdin.(*os.File) // a text input reading "-" needs a file
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
		return 1
	}
	if cfg.Daemon.PIDFile != "" {
		if err := os.WriteFile(cfg.Daemon.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error("cannot write pid file", "err", err)
			return 1
		}
		defer os.Remove(cfg.Daemon.PIDFile)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading configuration", "config", *cfgPath)
				_ = d.Reload(ctx) // the daemon logs the outcome
			case <-ctx.Done():
				return
			}
		}
	}()

	log.Info("portknockd started", "version", buildinfo.Version("portknockd"), "config", cfg.Path, "doors", len(cfg.Doors), "dry_run", *dryRun)
	if err := d.Run(ctx); err != nil {
		log.Error("portknockd stopped", "err", err)
		return 1
	}
	log.Info("portknockd stopped")
	return 0
}

// newLogger builds the daemon's logger: text to stderr, and also to the
// configured log file and syslog, as knockd's logfile and usesyslog did.
func newLogger(stderr io.Writer, dc config.Daemon, level slog.Level, source bool) (*slog.Logger, func(), error) {
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
	if dc.UseSyslog {
		w, err := syslog.New(syslog.LOG_INFO|syslog.LOG_DAEMON, "portknockd")
		if err != nil {
			return nil, nil, fmt.Errorf("syslog: %w", err)
		}
		closers = append(closers, w)
		handlers = append(handlers, slog.NewTextHandler(w, opts))
	}
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	return slog.New(slog.NewMultiHandler(handlers...)), closeAll, nil
}
