package actions

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portknock/journal"
	"portknock/nftset"
	"portknock/sequence"
)

// Runner runs doors' commands for matches and closes doors on time. It is
// the shell around the machine (machine.go), which decides; the Runner
// carries out its decisions: workers run start commands, a scheduler runs
// due closes, and a writer keeps the journal.
//
// Open may be called from any goroutine, before or while Run runs; it never
// blocks on a command. Run must be called once for anything to execute,
// and CloseAll once after it, to close what is open.
//
// Start commands go through the queue to MaxConcurrent workers. Stop
// commands never use that queue or those workers: the scheduler runs each
// due close on a goroutine of its own, at most MaxConcurrent at once, so a
// close is never delayed by starts, and a start never waits for a close
// while holding a worker.
type Runner struct {
	log      *slog.Logger
	dryRun   bool
	timeout  time.Duration
	workers  int
	keepOpen bool

	// exec runs one command; tests replace it to observe commands under a
	// fake clock, where real processes cannot take part.
	exec func(ctx context.Context, c Command, timeout time.Duration) result

	work     chan struct{} // 1-buffered: tells a worker starts are queued
	wake     chan struct{} // 1-buffered: tells the scheduler the schedule changed
	jwake    chan struct{} // 1-buffered: tells the journal writer to flush
	closeSem chan struct{} // one token per running stop command
	// closers are the goroutines running stop commands for the scheduler;
	// Run waits for them before it returns.
	closers sync.WaitGroup
	// flushMu makes journal flushes one at a time, so that a later
	// extension is never overwritten by an earlier one that lost the race.
	flushMu sync.Mutex

	started, failed, timedOut, refused, stopRetries atomic.Uint64
	dc                                              doorCounters

	mu      sync.Mutex
	m       *machine
	journal Journal
	sets    Sets
	running bool          // Run has been called
	idle    chan struct{} // closed when no start is in flight, for Drain
}

// NewRunner returns a Runner for doors. Doors with duplicate names: the
// last one wins, as the config loader is expected to refuse duplicates.
func NewRunner(doors []Door, opts Options) *Runner {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = DefaultCommandTimeout
	}
	r := &Runner{
		log:      opts.Logger,
		dryRun:   opts.DryRun,
		timeout:  opts.CommandTimeout,
		workers:  opts.MaxConcurrent,
		keepOpen: opts.KeepOpenOnExit,
		exec:     execCommand,
		work:     make(chan struct{}, 1),
		wake:     make(chan struct{}, 1),
		jwake:    make(chan struct{}, 1),
		closeSem: make(chan struct{}, opts.MaxConcurrent),
		m:        newMachine(opts.QueueSize, opts.DryRun),
		sets:     opts.Sets,
	}
	if !opts.DryRun {
		// In a dry run nothing opens, so nothing needs closing after a
		// crash.
		r.journal = opts.Journal
		r.m.journaled = opts.Journal != nil
	}
	r.m.setDoors(doors)
	return r
}

// with runs f on the machine under the lock, with the time, and then
// carries out the effects f left.
func (r *Runner) with(f func(m *machine, now time.Time)) {
	now := time.Now()
	r.mu.Lock()
	f(r.m, now)
	fx := r.m.take()
	if r.m.inflight == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
	r.mu.Unlock()
	for _, l := range fx.logs {
		r.log.Log(context.Background(), l.level, l.msg, l.attrs...)
	}
	if fx.work {
		poke(r.work)
	}
	if fx.schedule {
		poke(r.wake)
	}
	if fx.journal {
		poke(r.jwake)
	}
}

// poke signals a 1-buffered wake-up channel without waiting: one signal
// pending is enough for the goroutine to look again.
func poke(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// SetDoors replaces the door definitions used by future opens, for a
// config reload. Pending closes, including those of removed doors, still
// run at their time with the command they were scheduled with.
func (r *Runner) SetDoors(doors []Door) {
	r.with(func(m *machine, _ time.Time) { m.setDoors(doors) })
}

// SetJournal gives a Runner made without a journal one, for a reload that
// adds the first door with a timed close. Opens from then on are recorded.
func (r *Runner) SetJournal(j Journal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.dryRun {
		r.journal = j
		r.m.journaled = j != nil
	}
}

// SetSets gives the Runner its nftables connection, for a reload that adds
// the first door with a set.
func (r *Runner) SetSets(s Sets) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets = s
}

// Stats returns the counters.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	s := Stats{
		Dropped:       r.m.dropped,
		Extended:      r.m.extended,
		StopsGivenUp:  r.m.givenUp,
		PendingCloses: len(r.m.open),
		Queued:        r.m.queued(),
	}
	r.mu.Unlock()
	s.Started = r.started.Load()
	s.Failed = r.failed.Load()
	s.TimedOut = r.timedOut.Load()
	s.Refused = r.refused.Load()
	s.StopRetries = r.stopRetries.Load()
	return s
}

// Open acts on a match: it queues the door's start command and, for a door
// with a stop command and a CmdTimeout, schedules the close at
// now+CmdTimeout. A match for a (door, address) that is already open only
// moves its close to now+CmdTimeout, so a re-knock never runs the start
// command twice (which, with firewall rules, would add a rule the single
// close does not remove).
//
// A match that comes while the pair's close is running, or waiting to be
// retried, opens again once that close has finished (or been given up), so
// the close cannot shut the new open.
//
// Open never blocks: when the queue is full the request is refused,
// counted and logged.
//
// For a door with one-time sequences, the matcher has already used up the
// sequence when Open is called. If Open then refuses (queue full, unknown
// door, Runner stopped), the sequence stays used and the door stays shut.
// That is on purpose: failing closed is right, because the consumption must
// be durable before any action, and so cannot wait for the action's fate.
func (r *Runner) Open(mt sequence.Match) {
	r.with(func(m *machine, now time.Time) { m.openMatch(now, mt) })
}

// Restore schedules closes left pending by an earlier run, as read from the
// journal: those already due run as soon as Run starts, the others at their
// time. A knock for one of these (door, address) pairs then extends it
// like any open door. The daemon calls it before Run, and again during Run
// when a reload opens the first journal.
//
// A close is never scheduled further ahead than the door stays open (the
// record's For, or the door's cmd_timeout now if a reload raised it): a
// due time beyond that means this clock reads earlier than the one that
// wrote it, and waiting for the clock to catch up could keep the door
// open for hours. Deadlines are taken from this process's clock, so they
// also keep its monotonic reading, as fresh opens do.
//
// Two records for one pair (a reopen during a retried or given-up close,
// or a crash between a reopen's record and the end of the close before
// it) both run: each may undo a start of its own. Re-knocks extend the
// later one.
func (r *Runner) Restore(recs []journal.Record) {
	r.with(func(m *machine, now time.Time) { m.restore(now, recs) })
}

// Drain waits until every start command asked for so far has run, or ctx
// ends. The daemon calls it when its inputs have ended, so that the last
// knocks of a log still open their doors before CloseAll closes them.
func (r *Runner) Drain(ctx context.Context) {
	r.mu.Lock()
	if r.m.inflight == 0 {
		r.mu.Unlock()
		return
	}
	if r.idle == nil {
		r.idle = make(chan struct{})
	}
	idle := r.idle
	r.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// Run runs the workers, the close scheduler and the journal writer until
// ctx ends. A stop command that fails is retried after 1s, 5s and 30s,
// then given up with an error saying the door may still be open.
//
// When ctx ends, start commands still running are killed, and a stop
// command already running is allowed to finish; Run returns once they
// have. Start commands still queued, and closes not yet due, are left for
// CloseAll. Run returns nil after a shutdown by ctx.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("actions: Runner.Run called twice")
	}
	r.running = true
	r.mu.Unlock()

	var wg sync.WaitGroup
	for range r.workers {
		wg.Go(func() { r.worker(ctx) })
	}
	wg.Go(func() { r.schedule(ctx) })
	wg.Go(func() { r.writeJournal(ctx) })
	wg.Wait()
	// The scheduler has returned, so no closer is added from here on.
	r.closers.Wait()
	r.flushJournal()
	return nil
}

// CloseAll closes every open door before exit, after Run has returned (or
// when it never ran, to run the closes restored from the journal): it runs
// every pending close, including those waiting to be retried,
// MaxConcurrent at a time, and removes every nftables set element the
// Runner added. With KeepOpenOnExit, journaled closes are left for the
// next start and set elements to their timeout. Start commands still
// queued are not run: a door is not opened on the way out. Open refuses
// from now on.
//
// There is no overall deadline: each command has its own time limit, and
// a stop that fails is tried once more after 1s before it is given up, so
// CloseAll takes at most about ceil(pending/MaxConcurrent) ×
// (2 × CommandTimeout + 1s). ctx does not cut a close short, which would
// leave its door open; its end only skips the wait before a last retry.
func (r *Runner) CloseAll(ctx context.Context) {
	var pending []*entry
	var live []liveElem
	r.with(func(m *machine, now time.Time) { pending, live = m.shutdown(now, r.keepOpen) })
	if len(pending) > 0 {
		r.log.Info("closing open doors before exit", "count", len(pending))
		// No budget is shared between the closes: one that ran out of a
		// shared deadline would leave its door open. The close slots are
		// all free here: Run's scheduler and closers have returned.
		var wg sync.WaitGroup
		for _, e := range pending {
			r.closeSem <- struct{}{}
			wg.Go(func() {
				defer func() { <-r.closeSem }()
				r.runFinalStop(ctx, e)
			})
		}
		wg.Wait()
	}
	r.removeSetElems(live)
	r.flushJournal()
}

// worker runs start commands until ctx ends.
func (r *Runner) worker(ctx context.Context) {
	waited := false
	for ctx.Err() == nil {
		var j *startJob
		var ok bool
		r.with(func(m *machine, _ time.Time) {
			if waited {
				m.idle--
			}
			if j, ok = m.nextStart(); !ok {
				m.idle++
			}
		})
		if waited = !ok; waited {
			select {
			case <-ctx.Done():
				return
			case <-r.work:
			}
			continue
		}
		r.runStart(ctx, j)
	}
}

// runStart runs one start job: its journal record, its command and its set
// element, in that order.
func (r *Runner) runStart(ctx context.Context, j *startJob) {
	defer r.with(func(m *machine, _ time.Time) { m.startDone() })
	if ctx.Err() != nil {
		// Shutting down: a door is not opened on the way out.
		r.with(func(m *machine, now time.Time) { m.abandon(now, j) })
		return
	}
	if !r.record(j) {
		return
	}
	if j.refreshOf != nil {
		r.mu.Lock()
		live := r.m.refreshLive(j)
		r.mu.Unlock()
		if !live {
			return // closed meanwhile: do not put the address back
		}
	}
	ok := true
	hasSet := j.set != (nftset.Ref{})
	if !j.start.IsZero() {
		ok = r.runCommand(ctx, j.door, j.src, "start", j.start)
	} else if !hasSet && !j.refresh {
		// A door may have only a timed close; the open is still worth
		// a line.
		r.log.Info("opened", "door", j.door, "src", j.src, "cmd", "start")
		r.dc.opened(j.door)
	}
	// The set is the second half of the same open: not after a failed
	// start command, nor on the way out. Its failure is logged, and a
	// re-knock adds it again; it does not make the start run twice.
	tried := hasSet && ok && ctx.Err() == nil
	var added bool
	var until time.Time
	if tried {
		added, until = r.addToSet(j)
	}
	r.with(func(m *machine, _ time.Time) { m.started(j, ok, tried, added, until) })
}

// record writes the close of j to the journal before its start runs, and
// reports whether the start may run. A door whose close could be lost must
// not open: the open is refused, logged and counted.
func (r *Runner) record(j *startJob) bool {
	r.mu.Lock()
	rec, need := r.m.recordFor(j)
	jl := r.journal
	r.mu.Unlock()
	if !need {
		return true
	}
	id, err := jl.Add(rec)
	if err != nil {
		r.refused.Add(1)
	}
	var ok bool
	r.with(func(m *machine, now time.Time) { ok = m.recorded(now, j, rec, id, err) })
	return ok
}

// addToSet adds (or refreshes) the job's source in its nftables set and
// logs the outcome. It reports whether the kernel has the element, and
// until when; a dry run adds nothing.
func (r *Runner) addToSet(j *startJob) (bool, time.Time) {
	until := time.Now().Add(j.setTimeout)
	if r.dryRun {
		r.log.Info("dry run, not adding to nft set", "door", j.door, "src", j.src, "set", j.set.String(), "timeout", j.setTimeout)
		return false, time.Time{}
	}
	r.mu.Lock()
	sets := r.sets
	r.mu.Unlock()
	var err error
	if sets == nil {
		err = errors.New("no nftables connection")
	} else {
		err = sets.Add(j.set, j.src, j.setTimeout)
	}
	if err != nil {
		r.failed.Add(1)
		r.dc.failed(j.door)
		r.log.Error("nft set add failed", "door", j.door, "src", j.src, "set", j.set.String(), "err", err)
		return false, time.Time{}
	}
	msg := "opened"
	if j.refresh {
		msg = "nft set element refreshed"
	}
	r.log.Info(msg, "door", j.door, "src", j.src, "set", j.set.String(), "until", until)
	if !j.refresh && j.start.IsZero() {
		r.dc.opened(j.door)
	}
	return true, until
}

// removeSetElems deletes, at exit, the set elements that have not expired
// yet, so that no door stays open because the daemon stopped.
func (r *Runner) removeSetElems(live []liveElem) {
	if len(live) == 0 {
		return
	}
	r.mu.Lock()
	sets := r.sets
	r.mu.Unlock()
	for _, it := range live {
		err := sets.Delete(it.ref, it.key.src) // not nil: elements were added
		switch {
		case err == nil || errors.Is(err, nftset.ErrNoElement):
			r.log.Info("closed", "door", it.key.door, "src", it.key.src, "set", it.ref.String())
		default:
			r.failed.Add(1)
			r.log.Error("nft set delete failed; the element stays until its timeout", "door", it.key.door, "src", it.key.src,
				"set", it.ref.String(), "until", it.exp, "err", err)
		}
	}
}

// schedule runs due closes until ctx ends, each on a goroutine of its own
// once a close slot is free, and lets the machine end set elements on
// time. Waiting for a slot only ever waits for other closes, which are
// bounded by their time limit, never for starts.
func (r *Runner) schedule(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var due []*entry
		var next time.Time
		r.with(func(m *machine, now time.Time) { due, next = m.takeDue(now) })
		for i, e := range due {
			select {
			case r.closeSem <- struct{}{}:
			case <-ctx.Done():
				// CloseAll runs what was not started.
				r.with(func(m *machine, _ time.Time) { m.putBack(due[i:]) })
				return
			}
			r.closers.Go(func() {
				defer func() { <-r.closeSem }()
				// A close must not be cut short by shutdown: the door
				// would stay open. Its own time limit still bounds it.
				r.runStop(context.WithoutCancel(ctx), e)
			})
		}
		if len(due) > 0 {
			// Waiting for slots took time; look again before sleeping.
			continue
		}
		var fire <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-fire:
		}
	}
}

// runStop runs a due close while the Runner runs. On failure the machine
// puts it back into the schedule for its next retry, as long as retries
// are left; CloseAll finds it there if it comes first.
func (r *Runner) runStop(ctx context.Context, e *entry) {
	ok := r.runCommand(ctx, e.key.door, e.key.src, "stop", e.stop)
	var retried bool
	r.with(func(m *machine, now time.Time) { retried = m.stopDone(now, e, ok) })
	if retried {
		r.stopRetries.Add(1)
	}
	r.flushJournal()
}

// runFinalStop runs a close at exit, where there is no later: a failed
// stop command is tried once more after the first retry delay, its slot
// freed meanwhile, and then given up. The end of ctx skips the wait.
func (r *Runner) runFinalStop(ctx context.Context, e *entry) {
	cmdCtx := context.WithoutCancel(ctx)
	ok := r.runCommand(cmdCtx, e.key.door, e.key.src, "stop", e.stop)
	failures := 0
	if !ok {
		failures++
		delay := stopRetryDelays[0]
		r.stopRetries.Add(1)
		r.log.Warn("stop command will be retried before exit", "door", e.key.door, "src", e.key.src, "cmd", "stop", "in", delay)
		<-r.closeSem
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		r.closeSem <- struct{}{}
		if ok = r.runCommand(cmdCtx, e.key.door, e.key.src, "stop", e.stop); !ok {
			failures++
		}
	}
	r.with(func(m *machine, now time.Time) { m.finalStopDone(now, e, ok, failures) })
	r.flushJournal()
}

// writeJournal writes re-knocks' extensions (and anything else waiting) to
// the journal as they come, until ctx ends; Run flushes what is left.
func (r *Runner) writeJournal(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.jwake:
			r.flushJournal()
		}
	}
}

// flushJournal writes the waiting extensions and finished closes to the
// journal, and syncs it when closes finished. It runs outside the lock, so
// that Open never waits for the journal.
func (r *Runner) flushJournal() {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	j := r.journal
	ids, exts := r.m.takeJournal()
	r.mu.Unlock()
	if j == nil {
		return
	}
	for id, x := range exts {
		if err := j.Extend(id, x.due); err != nil {
			r.log.Warn("journal: extension not recorded; after a crash the door would close at its earlier time",
				"door", x.key.door, "src", x.key.src, "err", err)
		}
	}
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		if err := j.Done(id); err != nil {
			r.log.Warn("journal: close not marked done; a restart would run it again", "err", err)
			break
		}
	}
	if err := j.Sync(); err != nil {
		r.log.Warn("journal: sync failed; a restart may run finished closes again", "err", err)
	}
}

// runCommand runs one command (or logs it in a dry run) and logs the
// outcome. It reports whether the command succeeded.
func (r *Runner) runCommand(ctx context.Context, door string, src netip.Addr, which string, c Command) bool {
	success := "opened"
	if which == "stop" {
		success = "closed"
	}
	if r.dryRun {
		r.log.Info("dry run, not running command", "door", door, "src", src, "cmd", which, "command", c.String())
		r.log.Info(success, "door", door, "src", src, "cmd", which, "dry_run", true)
		return true
	}
	r.started.Add(1)
	began := time.Now()
	res := r.exec(ctx, c, r.timeout)
	r.dc.ran(door, which, res.err == nil, time.Since(began))
	output := strings.TrimSpace(res.output)
	if res.err == nil {
		// The output (its tail) goes on the same line: one line per open
		// or close, and what the command said is often what the
		// administrator wants to see.
		if output != "" {
			r.log.Info(success, "door", door, "src", src, "cmd", which, "output", output)
		} else {
			r.log.Info(success, "door", door, "src", src, "cmd", which)
		}
		return true
	}
	r.failed.Add(1)
	msg := "command failed"
	if res.timedOut {
		r.timedOut.Add(1)
		msg = "command timed out"
	}
	attrs := []any{"door", door, "src", src, "cmd", which, "command", c.String(), "exit", res.exitCode}
	if res.signal != "" {
		attrs = append(attrs, "signal", res.signal)
	}
	attrs = append(attrs, "err", res.err.Error(), "stderr", strings.TrimSpace(res.stderr), "output", output)
	r.log.Error(msg, attrs...)
	return false
}
