package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	flag "github.com/spf13/pflag"

	"portknock/config"
	"portknock/daemon"
	"portknock/internal/filetrust"
	"portknock/journal"
	"portknock/nftset"
	"portknock/replay"
	"portknock/sequence"
	"portknock/textlog"
)

// runCheck validates a configuration and prints what it would do: the
// doors, and the knock space the firewall must log. It judges every file
// the daemon would believe (the configuration, one-time sequence files,
// key files, FIFO and file inputs, state_dir and what it holds) as the
// daemon will, and reports every one it would refuse, not only the first.
// The judging is the daemon's own (see daemon.CheckFiles); this prints.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portknockd check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.StringP("config", "c", defaultConfig, "configuration `file` (TOML or knockd.conf)")
	asUser := fs.StringP("user", "u", "", "judge files as the daemon running as `user` will (default: the user running check)")
	specs := fs.StringArrayP("input", "i", nil, "check with this `input` added, as the daemon's -i adds it (repeatable)")
	if code, done := parseFlags(fs, args, checkHelp, stdout); done {
		return code
	}
	if fs.NArg() == 1 {
		*cfgPath = fs.Arg(0)
	} else if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "usage: portknockd check [-u USER] [-i INPUT]... [-c] FILE")
		return exitUsage
	}
	extra, err := config.ParseInputSpecs(*specs)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage
	}
	uid := uint32(os.Geteuid())
	if *asUser != "" {
		var err error
		if uid, err = lookupUID(*asUser); err != nil {
			fmt.Fprintf(stderr, "%s: --user: %v\n", fs.Name(), err)
			return exitUsage
		}
	}
	// Judged first and read anyway, so that a file both untrusted and
	// broken is reported for both at once.
	untrusted := filetrust.Split(config.CheckFile(*cfgPath, uid))
	cfg, err := config.ReadFile(*cfgPath)
	if err != nil {
		printProblems(stderr, untrusted)
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	inputs := append(append([]config.Input(nil), cfg.Inputs...), extra...)
	warnings := append(append([]string(nil), cfg.Warnings...), config.InputWarnings(extra)...)
	if len(inputs) == 0 {
		warnings = append(warnings, fmt.Sprintf("%s: %v; the daemon will not start without one", cfg.Path, daemon.ErrNoInputs))
	}
	warnings = append(warnings, daemon.DoorsWithoutClose(cfg)...)
	if daemon.UsesStateDir(cfg, cfg.Daemon.StateDir) {
		if err := daemon.CheckStateDir(cfg.Daemon.StateDir, uid); err != nil {
			warnings = append(warnings, err.Error())
		}
	}
	notYet, probeErr := daemon.ProbeTextInputs(inputs)
	for _, e := range notYet {
		warnings = append(warnings, e.Error()+"; the daemon waits for it")
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	untrusted = append(untrusted, daemon.CheckFiles(cfg, inputs, uid)...)
	oneTime, err := daemon.ReadDoorsOneTime(cfg)
	if err != nil {
		printProblems(stderr, untrusted)
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	for _, w := range daemon.OneTimeInSealedRanges(cfg, oneTime) {
		fmt.Fprintln(stderr, "warning:", w)
	}
	printConfig(stdout, cfg, inputs, oneTime)
	ok := checkTLS(stdout, cfg, time.Now())
	if !checkSets(stdout, cfg) {
		ok = false
	}
	if probeErr != nil {
		// Trust problems are listed below; what remains would stop an
		// input from opening.
		for _, e := range filetrust.Split(probeErr) {
			if !isTrustError(e) {
				fmt.Fprintln(stderr, "error:", e)
				ok = false
			}
		}
	}
	if len(untrusted) > 0 {
		printProblems(stderr, untrusted)
		fmt.Fprintf(stderr, "%d problem(s) with files portknockd would not trust: it refuses to start until they are fixed\n", len(untrusted))
		ok = false
	}
	if !ok {
		return exitFail
	}
	return exitOK
}

// isTrustError reports whether err is a file the daemon would not believe,
// which CheckFiles reports already.
func isTrustError(err error) bool {
	var te *filetrust.Error
	return errors.As(err, &te)
}

func printProblems(w io.Writer, errs []error) {
	for _, e := range errs {
		fmt.Fprintln(w, "error:", e)
	}
}

// lookupUID returns the uid of a user name or number.
func lookupUID(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("user %s: uid %q is not a number", name, u.Uid)
	}
	return uint32(n), nil
}

// checkTLS reads the certificate, key and client CAs of every TLS syslog
// input, as the daemon will, and reports whether all are usable.
func checkTLS(w io.Writer, cfg *config.Config, now time.Time) bool {
	ok := true
	for _, in := range cfg.Inputs {
		if in.Type != config.InputSyslog || in.Network != config.SyslogTLS {
			continue
		}
		creds, err := textlog.LoadSyslogCredentials(textlog.SyslogTLSFiles{Cert: in.TLSCert, Key: in.TLSKey, ClientCA: in.TLSClientCA})
		if err != nil {
			ok = false
			fmt.Fprintf(w, "input %s: error: %v\n", in.String(), err)
			continue
		}
		cert := creds.Certificate()
		valid := "valid until " + cert.NotAfter.UTC().Format(time.DateOnly)
		if now.After(cert.NotAfter) {
			valid = "EXPIRED on " + cert.NotAfter.UTC().Format(time.DateOnly)
		}
		clients := "senders need no certificate"
		if creds.ClientCertRequired() {
			clients = "senders need a certificate from " + in.TLSClientCA
		}
		fmt.Fprintf(w, "input %s: certificate %q, %s; %s\n", in.String(), cert.Subject.String(), valid, clients)
	}
	return ok
}

// checkSets looks up the doors' nftables sets in the running kernel, as
// the daemon does, when there are any and the check is allowed to
// (CAP_NET_ADMIN), and reports whether none is unusable.
func checkSets(w io.Writer, cfg *config.Config) bool {
	ok := true
	for _, c := range daemon.LookupSets(cfg, nftset.New()) {
		switch {
		case c.Err == nil:
			fmt.Fprintf(w, "door %s %s %q: ok\n", c.Door, c.Key, c.Ref)
		case errors.Is(c.Err, os.ErrPermission):
			fmt.Fprintf(w, "door %s %s %q: not checked: %v\n", c.Door, c.Key, c.Ref, c.Err)
		default:
			ok = false
			fmt.Fprintf(w, "door %s %s: error: %v\n", c.Door, c.Key, c.Err)
		}
	}
	return ok
}

func printConfig(w io.Writer, cfg *config.Config, inputs []config.Input, oneTime map[string][][]sequence.Step) {
	fmt.Fprintf(w, "%s: %s format, %d door(s), %d input(s)\n\n", cfg.Path, cfg.Format, len(cfg.Doors), len(inputs))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, d := range cfg.Doors {
		fmt.Fprintf(tw, "door %s\n", d.Name)
		if s := d.Sealed; s != nil {
			fmt.Fprintf(tw, "  sealed\t%s, id %d, key %s\n", s.Range(), s.ID, s.KeyFile)
			fmt.Fprintf(tw, "  max_skew\t%s\n", s.MaxSkew)
			if s.BindSource {
				fmt.Fprintf(tw, "  bind_source\ttrue: blocks must be bound to the sender's address\n")
			} else {
				fmt.Fprintf(tw, "  bind_source\tfalse: unbound blocks accepted from anywhere (see the warning)\n")
			}
		} else if d.OneTimeSequences != "" {
			unused := oneTime[d.Name]
			fmt.Fprintf(tw, "  sequence\tone-time, from %s: %d unused\n", d.OneTimeSequences, len(unused))
			if len(unused) > 0 {
				fmt.Fprintf(tw, "  next\t%s\n", joinSteps(unused[0], " "))
			}
		} else {
			fmt.Fprintf(tw, "  sequence\t%s\n", joinSteps(d.Sequence, " "))
		}
		fmt.Fprintf(tw, "  seq_timeout\t%s\n", d.SeqTimeout)
		if !d.TCPFlags.IsZero() {
			fmt.Fprintf(tw, "  tcpflags\t%s\n", d.TCPFlags)
		}
		if d.Target.IsValid() {
			fmt.Fprintf(tw, "  target\t%s\n", d.Target)
		}
		if !d.StartCommand.IsZero() || !d.HasSets() {
			printCommand(tw, "start_command", d.StartCommand)
		}
		if d.StartCommand6.String() != d.StartCommand.String() {
			printCommand(tw, "start_command_6", d.StartCommand6)
		}
		if d.NFTSet != (nftset.Ref{}) {
			fmt.Fprintf(tw, "  nft_set\t%s\n", d.NFTSet)
		}
		if d.NFTSet6 != (nftset.Ref{}) {
			fmt.Fprintf(tw, "  nft_set_6\t%s\n", d.NFTSet6)
		}
		if d.HasStop() || d.HasSets() {
			fmt.Fprintf(tw, "  cmd_timeout\t%s\n", d.CmdTimeout)
			fmt.Fprintf(tw, "  reknock\t%s\n", d.Reknock)
		}
		if d.HasStop() {
			printCommand(tw, "stop_command", d.StopCommand)
			if d.StopCommand6.String() != d.StopCommand.String() {
				printCommand(tw, "stop_command_6", d.StopCommand6)
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, in := range inputs {
		fmt.Fprintf(w, "input %s", in.String())
		if in.Type == config.InputText || in.Type == config.InputSyslog {
			fmt.Fprintf(w, " format %s", in.Format)
		}
		if in.Prefix != "" {
			fmt.Fprintf(w, " prefix %q", in.Prefix)
		}
		fmt.Fprintln(w)
	}
	space := cfg.KnockSpace()
	for _, seqs := range oneTime {
		for _, steps := range seqs {
			space = append(space, steps...)
		}
	}
	slices.SortFunc(space, func(a, b sequence.Step) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto))
	})
	parts := []string{joinSteps(slices.Compact(space), " ")}
	for _, r := range cfg.SealedRanges() {
		parts = append(parts, r.String()+" (sealed)")
	}
	fmt.Fprintf(w, "knock space (log these, drop them): %s\n", strings.TrimSpace(strings.Join(parts, " ")))
	printState(w, cfg)
}

// printState says where pending closes are kept and what is pending there
// now, and what the sealed doors' replay cache holds, reading both without
// touching them.
func printState(w io.Writer, cfg *config.Config) {
	dc := cfg.Daemon
	onExit := "closes every open door"
	if !dc.CloseOnExit {
		onExit = "leaves open doors to the next start (close_on_exit = false)"
	}
	recs, damaged, err := journal.Read(dc.StateDir)
	switch {
	case err != nil:
		fmt.Fprintf(w, "state_dir %s: journal unreadable: %v\n", dc.StateDir, err)
	case len(damaged) > 0:
		fmt.Fprintf(w, "state_dir %s: %d pending close(s), %d damaged journal line(s)\n", dc.StateDir, len(recs), len(damaged))
	default:
		fmt.Fprintf(w, "state_dir %s: %d pending close(s)\n", dc.StateDir, len(recs))
	}
	if len(cfg.SealedRanges()) > 0 {
		s, err := replay.Read(dc.StateDir, time.Now())
		switch {
		case err != nil:
			fmt.Fprintf(w, "replay cache: unreadable: %v\n", err)
		case s.Damaged > 0:
			fmt.Fprintf(w, "replay cache: %d used block(s) kept, %d damaged line(s): the daemon refuses every sealed knock for %v after it reads them\n",
				s.Kept, s.Damaged, replay.DefaultHold)
		case !s.Hold.IsZero():
			fmt.Fprintf(w, "replay cache: %d used block(s) kept; damaged before: sealed doors refuse every knock until %s\n",
				s.Kept, s.Hold.Format(time.RFC3339))
		default:
			fmt.Fprintf(w, "replay cache: %d used block(s) kept\n", s.Kept)
		}
	}
	fmt.Fprintf(w, "on a clean stop: %s\n", onExit)
}

func printCommand(w io.Writer, key string, c config.Command) {
	if c.IsZero() {
		fmt.Fprintf(w, "  %s\t(none)\n", key)
		return
	}
	how := "sh -c"
	if len(c.Argv) > 0 {
		how = "exec"
	}
	fmt.Fprintf(w, "  %s\t%s: %s\n", key, how, c.String())
}

func joinSteps(steps []sequence.Step, sep string) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = s.String()
	}
	return strings.Join(parts, sep)
}
