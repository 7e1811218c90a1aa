// Package daemon wires portknockd together: inputs feed events through a
// bounded queue to one matcher goroutine, whose matches go to the action
// runner; a timer drives eager expiry and a reload swaps the doors without
// losing progress at unchanged ones.
//
// It exists so that the whole daemon — inputs, matching, commands, reload
// and shutdown — can be driven by tests without a process or signals.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"portknock/actions"
	"portknock/config"
	"portknock/input"
	"portknock/internal/filetrust"
	"portknock/journal"
	"portknock/nflog"
	"portknock/nftset"
	"portknock/replay"
	"portknock/sealed"
	"portknock/sequence"
	"portknock/textlog"
)

// QueueSize is how many events may wait between the inputs and the
// matcher. Text inputs wait when it is full (a pipe just slows down).
const QueueSize = 4096

// Options configure a Daemon.
type Options struct {
	// Logger receives everything the daemon and its parts log.
	Logger *slog.Logger
	// DryRun logs commands instead of running them.
	DryRun bool
	// ExtraInputs are added to the configuration's inputs, and survive
	// reloads: they come from the command line.
	ExtraInputs []config.Input
	// Load reads the configuration again on Reload; nil disables reload.
	Load func() (*config.Config, error)
	// Now is the wall clock, for logs and the close journal; time.Now when
	// nil.
	Now func() time.Time
	// Mono is the monotonic clock knock timeouts run on; time since New
	// when nil. It is separate from Now so that a step of the wall clock
	// neither extends nor cuts an attempt.
	Mono func() time.Duration
	// Stdin is what a text input reading "-" reads; os.Stdin when nil.
	Stdin *os.File
	// Status serves the status socket (StatusSocket in state_dir), which
	// `portknockd status` asks. Off for tests that run many daemons.
	Status bool
}

// Daemon is a configured portknockd, ready to Run.
type Daemon struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	mono   func() time.Duration
	cfg    *config.Config
	inputs []config.Input
	// running holds the [daemon] settings in force: they are fixed at
	// start, whatever a reload reads.
	running config.Daemon

	matcher *sequence.Matcher
	runner  *actions.Runner
	journal *journal.Journal // nil in a dry run or with no timed close
	replay  replayCache      // the sealed doors' replay cache, once there are any
	nft     *nftset.Conn     // nil until a door names a set
	sources []source
	oneTime []*OneTimeFile // the matcher's one-time stores, closed when replaced

	events chan sequence.Event
	reload chan chan error
	snaps  snapshots
	obs    observers // the metrics server and status socket
}

// ErrNoInputs is New's error for a configuration without inputs, which a
// knockd.conf always is until -i names one.
var ErrNoInputs = errors.New("no inputs: add an [[input]] to the configuration or use -i (for example -i - for stdin, or -i nflog:GROUP)")

// New checks cfg and builds every part of the daemon. Nothing runs until
// Run, but every input has been opened or bound once (see probeInputs): a
// caller that logs it has started after New does so only once every input
// can be read, and a port in use or a missing capability is New's error.
//
// Every file New reads is judged first (see package filetrust): a FIFO or
// file input, a one-time sequence file, or state_dir and its journal that
// root or the daemon's user does not own, or that others can write to,
// stops the start before anything in it is used. The configuration file
// itself is the caller's to judge (config.Load does).
//
// If New fails after reading the close journal (a missing nftables set, an
// input that cannot bind), it runs the closes it read before returning,
// as a clean stop would: no daemon will be there to run them on time.
func New(cfg *config.Config, opts Options) (_ *Daemon, err error) {
	d := &Daemon{
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		mono:    opts.Mono,
		cfg:     cfg,
		running: cfg.Daemon,
		events:  make(chan sequence.Event, QueueSize),
		reload:  make(chan chan error),
		snaps:   newSnapshots(),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.mono == nil {
		start := time.Now()
		d.mono = func() time.Duration { return time.Since(start) }
	}
	d.inputs = append(append([]config.Input(nil), cfg.Inputs...), opts.ExtraInputs...)
	if len(d.inputs) == 0 {
		return nil, ErrNoInputs
	}
	// Before anything is read or run: an input someone else can write
	// to would let them knock from any address. The sources judge again
	// when they open.
	if err := CheckInputs(d.inputs, uint32(os.Geteuid())); err != nil {
		return nil, err
	}
	if err := probeInputs(d.inputs); err != nil {
		return nil, err
	}
	doors, adoors, files, err := d.doors(cfg)
	if err != nil {
		return nil, err
	}
	d.oneTime = files
	defer func() {
		if err != nil {
			d.abort()
		}
	}()
	d.matcher, err = sequence.New(doors, sequence.Options{MaxSources: cfg.Daemon.MaxSources, Logger: d.log, Replay: &d.replay})
	if err != nil {
		return nil, err
	}
	// The journal comes first: its lock keeps a second daemon from going
	// further, and once its closes are read every later failure runs them.
	var restored []journal.Record
	if d.needsJournal(cfg) {
		if restored, err = d.openJournal(d.running.StateDir); err != nil {
			return nil, err
		}
	}
	if hasSealed(cfg) {
		if err = d.openReplay(); err != nil {
			return nil, err
		}
	}
	ropts := actions.Options{
		Logger:         d.log,
		DryRun:         opts.DryRun,
		MaxConcurrent:  cfg.Daemon.MaxCommands,
		CommandTimeout: cfg.Daemon.CommandTimeLimit,
		KeepOpenOnExit: !cfg.Daemon.CloseOnExit,
	}
	if d.journal != nil {
		ropts.Journal = d.journal
	}
	if usesSets(cfg) {
		ropts.Sets = d.sets()
	}
	d.runner = actions.NewRunner(adoors, ropts)
	d.runner.Restore(restored)
	if !opts.DryRun && usesSets(cfg) {
		if err = CheckSets(cfg, d.sets()); err != nil {
			return nil, err
		}
	}
	for _, in := range d.inputs {
		src, err := d.newSource(in)
		if err != nil {
			return nil, err
		}
		d.sources = append(d.sources, src)
	}
	if err = d.listenObservers(); err != nil {
		return nil, err
	}
	return d, nil
}

// abort releases what a failed New built, running the closes restored
// from the journal.
func (d *Daemon) abort() {
	for _, src := range d.sources {
		if c, ok := src.in.(io.Closer); ok {
			c.Close()
		}
	}
	d.obs.close()
	closeAll(d.oneTime)
	d.closeReplay()
	if d.runner != nil && d.runner.Stats().PendingCloses > 0 {
		d.log.Warn("start failed; running the closes restored from the journal before exit")
		d.runner.CloseAll(context.Background())
	}
	d.closeJournal()
}

// needsJournal reports whether cfg calls for the close journal: a door
// closes itself later, an earlier run left a journal whose closes are
// still ours to run, or a sealed door needs the state_dir's lock, which
// the journal holds, for its replay cache. A dry run opens nothing, so it
// never does.
func (d *Daemon) needsJournal(cfg *config.Config) bool {
	if d.opts.DryRun {
		return false
	}
	return UsesStateDir(cfg, d.running.StateDir)
}

// UsesStateDir reports whether a daemon running cfg with the given
// state_dir opens its close journal there: a door closes itself later, a
// sealed door needs the state_dir's lock, which the journal holds, for its
// replay cache, or an earlier run left a journal whose closes are still to
// run. Only then is state_dir read, and judged.
func UsesStateDir(cfg *config.Config, stateDir string) bool {
	if hasTimedClose(cfg) || hasSealed(cfg) {
		return true
	}
	_, err := os.Lstat(filepath.Join(stateDir, journal.FileName))
	// Anything but a clear "not there" (a permission error, say) goes to
	// Open, which reports it.
	return !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR)
}

// CheckInputs judges, for a daemon running as uid, every file an input
// makes it believe (see package filetrust): a FIFO or file input (see
// textlog.CheckInput), and a TLS syslog input's key (a secret: not even
// readable by others), certificate and client CAs (whoever writes those
// chooses who may send knocks). It returns every problem found, joined.
func CheckInputs(inputs []config.Input, uid uint32) error {
	var errs []error
	for _, in := range inputs {
		var found []error
		switch {
		case in.Type == config.InputText:
			found = filetrust.Split(textlog.CheckInput(in.Path, uid))
		case in.Type == config.InputSyslog && in.Network == config.SyslogTLS:
			found = filetrust.Split(checkTLSFiles(syslogTLSFiles(in), uid))
		}
		for _, err := range found {
			errs = append(errs, fmt.Errorf("input %s: %w", in.String(), err))
		}
	}
	return errors.Join(errs...)
}

// checkTLSFiles judges a TLS listener's files, each problem prefixed with
// the key that names the file.
func checkTLSFiles(files textlog.SyslogTLSFiles, uid uint32) error {
	var errs []error
	for _, f := range []struct {
		key, path string
		role      filetrust.Role
	}{
		{"tls_cert", files.Cert, filetrust.Config},
		{"tls_key", files.Key, filetrust.Secret},
		{"tls_client_ca", files.ClientCA, filetrust.Config},
	} {
		if f.path == "" {
			continue
		}
		// A missing file is left to the reading, which says so.
		err := filetrust.CheckExisting(f.path, f.role, uid)
		for _, e := range filetrust.Split(err) {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, e))
		}
	}
	return errors.Join(errs...)
}

// sets returns the daemon's nftables connection, made on first use: a
// daemon without set doors never touches nf_tables.
func (d *Daemon) sets() *nftset.Conn {
	if d.nft == nil {
		d.nft = nftset.New()
	}
	return d.nft
}

func usesSets(cfg *config.Config) bool {
	for i := range cfg.Doors {
		if cfg.Doors[i].HasSets() {
			return true
		}
	}
	return false
}

// CheckSets verifies that every nftables set the doors name exists, has
// the timeout flag and holds addresses of the right family, so that a typo
// fails the start (or a reload) instead of the first knock.
func CheckSets(cfg *config.Config, conn *nftset.Conn) error {
	var errs []error
	for _, c := range LookupSets(cfg, conn) {
		if c.Err != nil {
			errs = append(errs, fmt.Errorf("door %q: %s: %w", c.Door, c.Key, c.Err))
		}
	}
	return errors.Join(errs...)
}

// hasSealed reports whether any door is sealed, and so needs the replay
// cache.
func hasSealed(cfg *config.Config) bool {
	for i := range cfg.Doors {
		if cfg.Doors[i].Sealed != nil {
			return true
		}
	}
	return false
}

// replayCache is the replay cache as the matcher sees it. The cache opens
// after the matcher is built, since it needs the state_dir's lock, which
// the journal takes; and only once there is a sealed door, perhaps on a
// reload.
type replayCache struct{ c *replay.Cache }

func (r *replayCache) Use(ct [sealed.BlockSize]byte, until time.Time) error {
	if r.c == nil {
		return errors.New("no replay cache open")
	}
	return r.c.Use(ct, until)
}

// openReplay opens the sealed doors' replay cache in the state_dir, under
// the journal's lock, or in memory for a dry run. Only a cache that
// cannot be read stops the start (or the reload): damage and a state_dir
// that cannot be written are logged loudly, and sealed doors refuse to
// open until the cache can record what opens them.
func (d *Daemon) openReplay() error {
	opts := replay.Options{Now: d.now, Logger: d.log}
	if d.opts.DryRun {
		d.replay.c = replay.NewMemory(opts)
		return nil
	}
	dir := d.running.StateDir
	c, err := replay.Open(dir, opts)
	if c == nil {
		return err
	}
	var errs []error
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		errs = u.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	for _, e := range errs {
		var de *replay.DamageError
		if errors.As(e, &de) {
			d.log.Error("replay cache damaged; sealed doors refuse every knock until the hold ends", "dir", dir, "until", de.Hold, "err", e)
			continue
		}
		d.log.Error("state_dir not writable: sealed doors will not open until it is", "dir", dir, "err", e)
	}
	d.replay.c = c
	return nil
}

func (d *Daemon) closeReplay() {
	if d.replay.c == nil {
		return
	}
	if err := d.replay.c.Close(); err != nil {
		d.log.Warn("closing the replay cache", "err", err)
	}
}

// hasTimedClose reports whether any door closes itself later, and so needs
// the journal.
func hasTimedClose(cfg *config.Config) bool {
	for i := range cfg.Doors {
		if cfg.Doors[i].HasStop() && cfg.Doors[i].CmdTimeout > 0 {
			return true
		}
	}
	return false
}

// openJournal opens the close journal in dir and returns the closes an
// earlier run left pending. Only a journal that cannot be read stops the
// start: damage is logged and set aside, and a state_dir that cannot be
// written is logged loudly; its pending closes still run, while opens with
// a timed close are refused until a write succeeds.
func (d *Daemon) openJournal(dir string) ([]journal.Record, error) {
	j, err := journal.Open(dir, d.log)
	if err != nil {
		return nil, err
	}
	if de := j.Damage(); de != nil {
		kept := "damaged lines set aside"
		if de.SetAside == "" {
			kept = "damaged lines kept in the journal until they can be set aside"
		}
		d.log.Error("close journal damaged; readable records kept, "+kept, "dir", dir, "err", de)
	}
	if werr := j.WriteErr(); werr != nil {
		d.log.Error("state_dir not writable: doors with a timed close will not open until it is", "dir", dir, "err", werr)
	}
	d.journal = j
	return j.Restored(), nil
}

func (d *Daemon) closeJournal() {
	if d.journal == nil {
		return
	}
	if err := d.journal.Close(); err != nil {
		d.log.Warn("closing the journal", "err", err)
	}
}

// doors turns the configured doors into the matcher's and the runner's
// (see config.Door.Split), opening each one-time sequence file for the
// matcher; the caller owns the files it returns.
func (d *Daemon) doors(cfg *config.Config) ([]sequence.Door, []actions.Door, []*OneTimeFile, error) {
	mdoors := make([]sequence.Door, len(cfg.Doors))
	adoors := make([]actions.Door, len(cfg.Doors))
	var files []*OneTimeFile
	for i := range cfg.Doors {
		cd := &cfg.Doors[i]
		mdoors[i], adoors[i] = cd.Split()
		if cd.OneTimeSequences != "" {
			ot, err := OpenOneTime(cd.OneTimeSequences, d.log.With("door", cd.Name))
			if err != nil {
				closeAll(files)
				return nil, nil, nil, fmt.Errorf("door %q: %w", cd.Name, err)
			}
			files = append(files, ot)
			mdoors[i].OneTime = ot
		}
	}
	return mdoors, adoors, files, nil
}

func closeAll(files []*OneTimeFile) {
	for _, f := range files {
		f.Close()
	}
}

// source is an input as the daemon runs it.
type source struct {
	// name identifies the input in logs and errors.
	name string
	in   input.Input
}

// emitter returns how every input hands the matcher its events, stamped
// on the monotonic clock. An input that waits (input.Wait) waits until
// there is room or ctx ends; one that does not is refused at once when
// the queue is full, and counts the loss.
func (d *Daemon) emitter(ctx context.Context) input.Emit {
	return func(ev *sequence.Event, mode input.Mode) bool {
		ev.Mono = d.mono()
		select {
		case d.events <- *ev:
			return true
		default:
		}
		if mode == input.NoWait {
			return false
		}
		select {
		case d.events <- *ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
}

// InputStats is one input's counters, with its name.
type InputStats struct {
	// Name identifies the input, as in logs and events.
	Name string
	input.Stats
}

// InputStats returns the counters of every input, in the order they were
// configured. Every kind of input reports in the same shape, so a reader
// needs to know none of them. It is safe to call while Run runs.
func (d *Daemon) InputStats() []InputStats {
	out := make([]InputStats, len(d.sources))
	for i, src := range d.sources {
		out[i] = InputStats{Name: src.name, Stats: src.in.Stats()}
	}
	return out
}

// loadTLS reads a TLS listener's certificate, key and client CAs again
// from the files it was started with, and returns what puts them in force;
// nil for a listener without TLS.
func loadTLS(name string, l *textlog.SyslogListener) (func() error, error) {
	if l.TLS == nil {
		return nil, nil
	}
	// Judged again, as they are read again: a renewed key must be as
	// private as the first.
	if err := checkTLSFiles(l.TLS.Files(), uint32(os.Geteuid())); err != nil {
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	creds, err := textlog.LoadSyslogCredentials(l.TLS.Files())
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	return func() error { return l.SetTLS(creds) }, nil
}

// syslogTLSFiles names the TLS files of a syslog input.
func syslogTLSFiles(in config.Input) textlog.SyslogTLSFiles {
	return textlog.SyslogTLSFiles{Cert: in.TLSCert, Key: in.TLSKey, ClientCA: in.TLSClientCA}
}

func (d *Daemon) newSource(in config.Input) (source, error) {
	switch in.Type {
	case config.InputText:
		format, err := textlog.ParseFormat(in.Format)
		if err != nil {
			return source{}, fmt.Errorf("input %s: %w", in.String(), err)
		}
		return source{in.String(), &textlog.Source{
			Name:   in.String(),
			Path:   in.Path,
			Parser: textlog.Parser{Format: format, Prefix: in.Prefix, Programs: in.Programs},
			Now:    d.now,
			Logger: d.log,
			Stdin:  d.opts.Stdin,
		}}, nil
	case config.InputSyslog:
		format, err := textlog.ParseFormat(in.Format)
		if err != nil {
			return source{}, fmt.Errorf("input %s: %w", in.String(), err)
		}
		l := &textlog.SyslogListener{
			Name:            in.String(),
			Network:         in.Network,
			Addr:            in.Listen,
			AcceptSpoofable: in.AcceptSpoofable,
			Allow:           in.Allow,
			MessageTimeout:  in.MessageTimeLimit,
			IdleTimeout:     in.IdleTimeLimit,
			Parser:          textlog.Parser{Format: format, Prefix: in.Prefix, Programs: in.Programs},
			Now:             d.now,
			Logger:          d.log,
		}
		if in.Network == config.SyslogTLS {
			if l.TLS, err = textlog.LoadSyslogCredentials(syslogTLSFiles(in)); err != nil {
				return source{}, fmt.Errorf("input %s: %w", in.String(), err)
			}
		}
		// Bind now, so that a port in use or a missing capability stops
		// the daemon at start with a clear error.
		if err := l.Listen(); err != nil {
			return source{}, fmt.Errorf("input %s: %w", in.String(), err)
		}
		return source{in.String(), l}, nil
	case config.InputNFLOG:
		return source{in.String(), &nflog.Input{
			Name:       in.String(),
			Groups:     in.Groups,
			Prefix:     in.Prefix,
			BatchAbove: in.BatchAbove,
			BatchBelow: in.BatchBelow,
			Now:        d.now,
			Logger:     d.log,
		}}, nil
	}
	return source{}, fmt.Errorf("input %s: unknown input type %q", in.String(), in.Type)
}

// Reload reads the configuration again and applies it: doors whose rules
// did not change keep their attempts in progress. An invalid configuration
// is reported and the running one stays. Reload waits until the new
// configuration is in force or refused, or ctx ends.
func (d *Daemon) Reload(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case d.reload <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run runs the daemon until ctx ends or every input has ended (stdin or a
// file reaching its end). It then lets running commands finish and closes
// every open door before returning.
//
// One errgroup holds everything that runs: the inputs, the matcher loop
// and the runner. An input that fails stops the daemon: running with an
// input silently gone would leave its doors unknockable.
func (d *Daemon) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)

	// The runner outlives the loop, whatever ends the loop: it stops only
	// once the loop has handed it the last match, so no open is lost on
	// the way out. What is open is closed by CloseAll once the group has
	// returned.
	runnerCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunner()
	g.Go(func() error { return d.runner.Run(runnerCtx) })

	emit := d.emitter(gctx)
	inputsDone := make(chan struct{})
	var inputs sync.WaitGroup
	for _, src := range d.sources {
		inputs.Add(1)
		g.Go(func() error {
			defer inputs.Done()
			if err := src.in.Run(gctx, emit); err != nil && gctx.Err() == nil {
				return fmt.Errorf("input %s: %w", src.name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		inputs.Wait()
		close(inputsDone)
		return nil
	})
	g.Go(func() error {
		defer stopRunner()
		err := func() error {
			defer close(d.snaps.loopDone)
			return d.loop(gctx, inputsDone)
		}()
		// When the inputs ran out (rather than a signal stopping us), let
		// the commands their last knocks asked for run first.
		if ctx.Err() == nil {
			d.runner.Drain(ctx)
		}
		return err
	})
	obsDone := d.obs.serve(ctx, d)
	err := g.Wait()

	// Everything has stopped: close what is open.
	d.runner.CloseAll(context.WithoutCancel(ctx))
	obsDone()
	d.logStats()
	closeAll(d.oneTime)
	d.closeReplay()
	d.closeJournal()
	return err
}

// loop is the only goroutine that touches the matcher.
func (d *Daemon) loop(ctx context.Context, inputsDone <-chan struct{}) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var armed time.Duration // when the timer fires, on d.mono; 0 when stopped
	arm := func() {
		next, ok := d.matcher.NextExpiry()
		if !ok || (armed != 0 && next >= armed) {
			return
		}
		armed = next
		timer.Reset(max(next-d.mono(), 0))
	}
	var out []sequence.Match
	verbose := d.log.Enabled(ctx, slog.LevelDebug)
	handle := func(ev *sequence.Event) {
		if verbose && d.matcher.InSpace(ev.Port, ev.Proto) {
			d.log.Debug("knock", "src", ev.Src, "port", ev.Port, "proto", ev.Proto.String(), "flags", ev.Flags.String(), "input", ev.Input)
		}
		out = d.matcher.Handle(ev, out[:0])
		for _, m := range out {
			d.log.Info("knock sequence complete", "door", m.Door, "src", m.Src, "input", m.Input)
			d.runner.Open(m)
		}
		arm()
	}
	for {
		select {
		case ev := <-d.events:
			handle(&ev)
		case <-timer.C:
			armed = 0
			d.matcher.Expire(d.mono())
			arm()
		case done := <-d.reload:
			err := d.apply()
			done <- err
			arm()
		case reply := <-d.snaps.req:
			reply <- d.takeSnapshot()
		case <-inputsDone:
			// Every input has ended: take what is still queued, then stop.
			for {
				select {
				case ev := <-d.events:
					handle(&ev)
				default:
					d.log.Info("all inputs ended; shutting down")
					return nil
				}
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// apply loads and installs a new configuration, on the loop goroutine.
// Everything that can refuse it is checked before anything is swapped, so a
// refused reload leaves the running configuration whole.
func (d *Daemon) apply() error {
	if d.opts.Load == nil {
		return errors.New("reload is not enabled")
	}
	fail := func(err error) error {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return err
	}
	cfg, err := d.opts.Load()
	if err != nil {
		return fail(err)
	}
	if !d.opts.DryRun && usesSets(cfg) {
		if err := CheckSets(cfg, d.sets()); err != nil {
			return fail(err)
		}
	}
	// Renewed certificates are read with the rest, and refuse the reload
	// as the rest does when they are unusable.
	var renewTLS []func() error
	for _, src := range d.sources {
		if l, ok := src.in.(*textlog.SyslogListener); ok {
			swap, err := loadTLS(src.name, l)
			if err != nil {
				return fail(err)
			}
			if swap != nil {
				renewTLS = append(renewTLS, swap)
			}
		}
	}
	doors, adoors, files, err := d.doors(cfg)
	if err != nil {
		return fail(err)
	}
	if d.journal == nil && d.needsJournal(cfg) {
		// The first door with a timed close: it needs the journal now.
		// Should an earlier run have left closes there, they are ours.
		recs, err := d.openJournal(d.running.StateDir)
		if err != nil {
			closeAll(files)
			return fail(err)
		}
		d.runner.SetJournal(d.journal)
		d.runner.Restore(recs)
	}
	if d.replay.c == nil && hasSealed(cfg) {
		// The first sealed door: it needs the replay cache now.
		if err := d.openReplay(); err != nil {
			closeAll(files)
			return fail(err)
		}
	}
	if err := d.matcher.Reconfigure(doors); err != nil {
		closeAll(files)
		return fail(err)
	}
	if usesSets(cfg) {
		d.runner.SetSets(d.sets())
	}
	closeAll(d.oneTime)
	d.oneTime = files
	d.runner.SetDoors(adoors)
	for _, swap := range renewTLS {
		if err := swap(); err != nil {
			d.log.Error("TLS credentials not renewed", "err", err)
		}
	}
	for _, w := range cfg.Warnings {
		d.log.Warn(w)
	}
	if inputs := append(append([]config.Input(nil), cfg.Inputs...), d.opts.ExtraInputs...); !reflect.DeepEqual(inputs, d.inputs) {
		d.log.Warn("inputs changed in the configuration; restart portknockd to apply them")
	}
	if cfg.Daemon != d.running {
		d.log.Warn("[daemon] settings changed in the configuration; restart portknockd to apply them")
	}
	d.cfg = cfg
	d.log.Info("configuration reloaded", "doors", len(cfg.Doors))
	return nil
}

// logStats reports what every part did, once, at exit.
func (d *Daemon) logStats() {
	ms := d.matcher.Stats()
	d.log.Info("matcher totals", "events", ms.Events, "outside", ms.Outside, "matches", ms.Matches,
		"wrong_knocks", ms.WrongKnocks, "timeouts", ms.Timeouts, "evictions", ms.Evictions, "peak_sources", ms.PeakSources)
	if hasSealed(d.cfg) || ms.SealedKnocks > 0 {
		r := ms.SealedRejects
		d.log.Info("sealed totals", "knocks", ms.SealedKnocks, "checks", ms.SealedChecks,
			"rejected_key", r.Key, "rejected_door", r.Door, "rejected_source", r.Source, "rejected_skew", r.Skew, "rejected_replay", r.Replay,
			"replay_errors", ms.ReplayErrs)
	}
	for _, st := range d.InputStats() {
		// What an input read is logged by its unit, lines or packets;
		// events the queue did not take as queue_overflow, the name
		// NFLOG's losses have had; and the input's own counters by their
		// names, levels (connections open now) left out of totals.
		args := []any{"input", st.Name, st.Unit, st.Read, "events", st.Events, "skipped", st.SkippedTotal(), "queue_overflow", st.Dropped}
		for _, c := range st.Counters {
			if !c.Gauge {
				args = append(args, c.Name, c.Value)
			}
		}
		d.log.Info("input totals", args...)
	}
	rs := d.runner.Stats()
	d.log.Info("command totals", "started", rs.Started, "failed", rs.Failed, "timed_out", rs.TimedOut, "dropped", rs.Dropped,
		"refused", rs.Refused, "extended", rs.Extended, "stop_retries", rs.StopRetries, "stops_given_up", rs.StopsGivenUp,
		"left_open", rs.PendingCloses)
}
