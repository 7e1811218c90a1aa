package actions

import (
	"container/heap"
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

// Defaults for the zero Options fields.
const (
	DefaultMaxConcurrent  = 8
	DefaultQueueSize      = 256
	DefaultCommandTimeout = 30 * time.Second
)

// stopRetryDelays are the waits before a failed stop command runs again,
// one per retry. A stop often fails for a passing reason, such as iptables
// losing the race for the xtables lock, and a door left open is worse than
// a stop command run twice. After the last retry the close is given up.
var stopRetryDelays = [...]time.Duration{time.Second, 5 * time.Second, 30 * time.Second}

// Options tune a Runner. The zero value is usable.
type Options struct {
	// Logger receives one line per open, close, failure and refusal. Nil
	// discards them.
	Logger *slog.Logger
	// DryRun logs the command that would run and runs nothing; closes are
	// still scheduled, so the log shows the whole life of an open.
	DryRun bool
	// MaxConcurrent is how many start commands run at once (default 8).
	// Stop commands have as many slots of their own, so that a due close
	// never waits behind starts: at most twice this many commands run at
	// once.
	MaxConcurrent int
	// QueueSize is how many start requests may wait for a free worker
	// (default 256). Requests beyond it are refused, counted and logged
	// with door and src, so a flood of matches cannot grow memory.
	QueueSize int
	// CommandTimeout is the time limit per command (default 30s), each
	// run of a command its own; on expiry the command's whole process
	// group is killed.
	CommandTimeout time.Duration
	// Journal, when set, records every timed close before the start
	// command runs; an open whose close cannot be recorded is refused.
	// Nil keeps closes in memory only (tests, dry runs).
	Journal Journal
	// KeepOpenOnExit leaves journaled doors open at shutdown, for the next
	// start to close on time; by default every pending close runs, and
	// every nftables set element the Runner added is removed.
	KeepOpenOnExit bool
	// Sets changes nftables sets for doors that name one.
	Sets Sets
}

// Sets adds and removes nftables set elements; *nftset.Conn is one.
type Sets interface {
	// Add adds addr with the timeout, or refreshes its timeout.
	Add(ref nftset.Ref, addr netip.Addr, timeout time.Duration) error
	// Delete removes addr; an error wrapping nftset.ErrNoElement means it
	// was gone already.
	Delete(ref nftset.Ref, addr netip.Addr) error
}

// Journal is where a Runner makes its pending closes durable;
// *journal.Journal is one.
type Journal interface {
	// Add records a close durably and returns its ID.
	Add(journal.Record) (uint64, error)
	// Extend records a later due time; it need not be durable at once.
	Extend(id uint64, due time.Time) error
	// Done records that a close ran or was given up; Sync makes it durable.
	Done(id uint64) error
	Sync() error
}

// Stats counts what a Runner did since it was made.
type Stats struct {
	// Started counts commands started (dry runs excluded).
	Started uint64
	// Failed counts commands that did not exit with status 0, including
	// those killed at the time limit and those that could not start. Each
	// run of a retried stop command counts.
	Failed uint64
	// TimedOut counts commands killed at the time limit.
	TimedOut uint64
	// Dropped counts start requests refused because the queue was full.
	Dropped uint64
	// Extended counts re-knocks that moved a pending close instead of
	// running the start command again.
	Extended uint64
	// Refused counts opens refused because the journal could not record
	// their close.
	Refused uint64
	// StopRetries counts failed stop commands scheduled to run again.
	StopRetries uint64
	// StopsGivenUp counts closes abandoned after their stop command failed
	// on every try: each of those doors may still be open, and was logged
	// as an error with door and src.
	StopsGivenUp uint64
	// PendingCloses is the number of (door, address) pairs opening, open
	// or closing whose stop command has not finished yet.
	PendingCloses int
}

// Runner runs doors' commands for matches and closes doors on time.
//
// Open may be called from any goroutine, before or while Run runs; it never
// blocks on a command. Run must be called once for anything to execute.
//
// Start commands go through a bounded queue to MaxConcurrent workers. Stop
// commands never use that queue or those workers: the scheduler runs each
// due close on a goroutine of its own, at most MaxConcurrent at once, so a
// close is never delayed by starts, and a start never waits for a close
// while holding a worker.
type Runner struct {
	log     *slog.Logger
	dryRun  bool
	timeout time.Duration
	workers int

	// exec runs one command; tests replace it to observe commands under a
	// fake clock, where real processes cannot take part.
	exec func(ctx context.Context, c Command, timeout time.Duration) result

	starts   chan *startJob // bounded: the queue Open refuses to overfill
	closeSem chan struct{}  // one token per running stop command
	wake     chan struct{}  // 1-buffered: tells the scheduler the heap changed
	// closers are the goroutines running stop commands for the scheduler;
	// Run waits for them before its shutdown closes what is left.
	closers sync.WaitGroup

	journal  Journal
	keepOpen bool
	sets     Sets

	started, failed, timedOut, dropped, extended, refused atomic.Uint64
	stopRetries, stopsGivenUp                             atomic.Uint64

	mu    sync.Mutex
	doors map[string]Door
	open  map[openKey]*entry
	// elems are the set elements added, with when the kernel drops them:
	// how a door without a stop command knows it is open (for reknock),
	// and what shutdown removes. Expired ones are swept as it grows.
	elems     map[openKey]setElem
	sweepSize int
	// doneIDs are journal records whose close has finished, written to
	// the journal by flushJournal outside the lock, so that Open never
	// waits for the journal.
	doneIDs []uint64
	// extends are re-knocks' new due times by journal record, written by
	// the journal writer outside the lock, for the same reason.
	extends map[uint64]extension
	// flushMu makes flushes one at a time, so that a later extension is
	// never overwritten by an earlier one that lost the race.
	flushMu sync.Mutex
	jwake   chan struct{} // 1-buffered: tells the journal writer to flush
	due     closeHeap     // entries whose start has run, by close deadline
	running bool          // Run has been called
	stopped bool          // Run has returned; Open refuses
	// starts queued, parked or running, and a channel closed when that
	// reaches zero, for Drain.
	inflight int
	idle     chan struct{}
}

// openKey identifies one open door for one source.
type openKey struct {
	door string
	src  netip.Addr
}

// entryState is where an open (door, address) is in its life.
type entryState uint8

const (
	// stateQueued: the start command waits for a worker, or is parked on
	// the close of the previous open of the same pair.
	stateQueued entryState = iota
	// stateOpen: the start command has run; the close is in the heap.
	stateOpen
	// stateClosing: the close is due; its stop command is running,
	// waiting for a slot, or in the heap waiting to be retried.
	stateClosing
)

// entry is one (door, address) with a close to run. The stop command is
// substituted when the door opens, so a config reload that changes or
// removes the door does not change how an already open door is closed.
type entry struct {
	key      openKey
	stop     Command
	deadline time.Time
	// openFor is the door's cmd_timeout when it opened, kept in the
	// journal to bound the close after a restart whose clock is behind.
	openFor time.Duration
	state   entryState
	// started is set once the start command has run (or failed): from
	// then on the close must run whatever happens to later starts.
	started bool
	// startFailed is set when the start command failed: a re-knock then
	// runs it again instead of only extending an open that never happened.
	startFailed bool
	index       int // in the heap, -1 when not there
	// stopFailures is how many times the stop command has failed.
	stopFailures int
	// jid is the entry's journal record, 0 while it has none.
	jid uint64
	// reopen is a start for the same (door, address) that came while this
	// entry was closing. It is parked here, not queued, until the close
	// has finished: run earlier, the close would shut the door it opens,
	// and a worker must never wait for a close.
	reopen *startJob
}

// extension is a re-knock's new due time for a journal record.
type extension struct {
	key openKey
	due time.Time
}

// setElem is an nftables set element the Runner added.
type setElem struct {
	ref     nftset.Ref
	expires time.Time
}

// startJob is one start command for a worker.
type startJob struct {
	door  string
	src   netip.Addr
	start Command
	// set, when valid, gets src with setTimeout after the start command;
	// refresh marks a re-knock, which logs differently.
	set        nftset.Ref
	setTimeout time.Duration
	refresh    bool
	// refreshOf is the open entry whose set element a refresh-only job
	// renews; the job does nothing once that entry is closing or gone.
	refreshOf *entry
	// e is nil for doors without a timed close.
	e *entry
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
		exec:     execCommand,
		starts:   make(chan *startJob, opts.QueueSize),
		closeSem: make(chan struct{}, opts.MaxConcurrent),
		wake:     make(chan struct{}, 1),
		open:     make(map[openKey]*entry),
		journal:  opts.Journal,
		keepOpen: opts.KeepOpenOnExit,
		sets:     opts.Sets,
		elems:    make(map[openKey]setElem),
		extends:  make(map[uint64]extension),
		jwake:    make(chan struct{}, 1),
	}
	if opts.DryRun {
		// Nothing opens, so nothing needs closing after a crash.
		r.journal = nil
	}
	r.SetDoors(doors)
	return r
}

// SetDoors replaces the door definitions used by future opens, for a
// config reload. Pending closes, including those of removed doors, still
// run at their time with the command they were scheduled with.
func (r *Runner) SetDoors(doors []Door) {
	m := make(map[string]Door, len(doors))
	for _, d := range doors {
		m[d.Name] = d
	}
	r.mu.Lock()
	r.doors = m
	r.mu.Unlock()
}

// SetJournal gives a Runner made without a journal one, for a reload that
// adds the first door with a timed close. Opens from then on are recorded.
func (r *Runner) SetJournal(j Journal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.dryRun {
		r.journal = j
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
	pending := len(r.open)
	r.mu.Unlock()
	return Stats{
		Started:       r.started.Load(),
		Failed:        r.failed.Load(),
		TimedOut:      r.timedOut.Load(),
		Dropped:       r.dropped.Load(),
		Extended:      r.extended.Load(),
		Refused:       r.refused.Load(),
		StopRetries:   r.stopRetries.Load(),
		StopsGivenUp:  r.stopsGivenUp.Load(),
		PendingCloses: pending,
	}
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
func (r *Runner) Open(m sequence.Match) {
	src := sequence.NormalizeAddr(m.Src)
	if !src.IsValid() {
		r.log.Warn("match without a source address ignored", "door", m.Door)
		return
	}
	m.Src = src
	now := time.Now()

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		r.log.Warn("runner stopped, match ignored", "door", m.Door, "src", src)
		return
	}
	d, ok := r.doors[m.Door]
	if !ok {
		r.log.Warn("match for unknown door ignored", "door", m.Door, "src", src)
		return
	}
	start, stop := d.commandsFor(src)
	start = Substitute(start, m)
	set, hasSet := d.setFor(src)
	if start.IsZero() && stop.IsZero() && !hasSet {
		// Say so rather than log an open that did nothing: a door with
		// only an nft_set, say, knocked from an IPv6 address.
		r.log.Warn("door has nothing to open for this address family; knock ignored", "door", d.Name, "src", src)
		return
	}
	key := openKey{d.Name, src}
	job := func(start Command, refresh bool) *startJob {
		j := &startJob{door: d.Name, src: src, start: start, refresh: refresh}
		if hasSet {
			j.set, j.setTimeout = set, d.CmdTimeout
		}
		return j
	}
	if stop.IsZero() || d.CmdTimeout <= 0 {
		if el, ok := r.elems[key]; ok && hasSet && el.ref == set && el.expires.After(now) {
			// Open by its set element alone.
			switch d.Reknock {
			case ReknockIgnore:
				r.log.Info("re-knock ignored, door already open", "door", d.Name, "src", src, "until", el.expires)
				return
			case ReknockRerun:
				r.enqueueLocked(job(start, true))
				return
			default:
				r.enqueueLocked(job(Command{}, true))
				return
			}
		}
		if r.enqueueLocked(job(start, false)) && hasSet && !r.dryRun {
			// Counted as open from now, so that a second knock before
			// the element is in is a re-knock, not a second open.
			r.elems[key] = setElem{ref: set, expires: now.Add(d.CmdTimeout)}
		}
		return
	}
	deadline := now.Add(d.CmdTimeout)
	old := r.open[key]
	if old != nil && old.state != stateClosing {
		extendJournal := func() {
			if old.jid != 0 {
				// Written by the journal writer: Open must not wait for
				// the journal, whose lock another open holds across its
				// fsync. If the line is lost in a crash, the door closes
				// at its earlier time.
				r.extends[old.jid] = extension{key, deadline}
				r.wakeJournal()
			}
		}
		if old.state == stateOpen && old.startFailed {
			// Nothing was opened last time; try again rather than only
			// extending. The close stays scheduled either way.
			extendJournal()
			r.retryLocked(old, job(start, false), deadline)
			return
		}
		if d.Reknock == ReknockIgnore {
			r.log.Info("re-knock ignored, door already open", "door", d.Name, "src", src, "until", old.deadline)
			return
		}
		extendJournal()
		r.extended.Add(1)
		if d.Reknock == ReknockRerun && old.state == stateOpen && (!start.IsZero() || hasSet) {
			// Through the entry, so that its close is scheduled after
			// this start has run, never before it.
			r.log.Info("re-knock runs the start command again", "door", d.Name, "src", src, "until", deadline)
			r.retryLocked(old, job(start, true), deadline)
			return
		}
		old.deadline = deadline
		if old.index >= 0 {
			heap.Fix(&r.due, old.index)
		}
		r.wakeScheduler()
		// A queued entry's start has yet to run, and will use the new
		// deadline; only an open one has a set element to refresh.
		r.log.Info("re-knock extends open", "door", d.Name, "src", src, "until", deadline)
		if hasSet && old.state == stateOpen {
			rj := job(Command{}, true)
			rj.refreshOf = old
			r.enqueueLocked(rj)
		}
		return
	}
	e := &entry{
		key:      key,
		stop:     Substitute(stop, m),
		deadline: deadline,
		openFor:  d.CmdTimeout,
		state:    stateQueued,
		index:    -1,
	}
	j := job(start, false)
	j.e = e
	if old != nil {
		// old is closing and is no longer in the open set's way: the new
		// entry takes its place there, so that further re-knocks extend
		// it, and its start is queued when old's close has finished.
		old.reopen = j
		r.inflight++
		r.open[key] = e
		r.log.Info("knock while closing, opens again after the close", "door", d.Name, "src", src)
		return
	}
	if r.enqueueLocked(j) {
		r.open[key] = e
	}
}

// retryLocked runs the start of an open entry again (after a failed start,
// or for reknock = "rerun"), taking its close out of the heap until the
// start has run, so that the close always follows the last start.
func (r *Runner) retryLocked(e *entry, j *startJob, deadline time.Time) {
	if e.index >= 0 {
		heap.Remove(&r.due, e.index)
	}
	e.state = stateQueued
	e.deadline = deadline
	j.e = e
	if !r.enqueueLocked(j) {
		e.state = stateOpen
		heap.Push(&r.due, e)
	}
	r.wakeScheduler()
}

// enqueueLocked hands a start job to the workers without waiting.
func (r *Runner) enqueueLocked(j *startJob) bool {
	select {
	case r.starts <- j:
		r.inflight++
		return true
	default:
		r.dropped.Add(1)
		if j.refresh {
			// The door is open: only the re-knock's start or set
			// refresh is lost, and a set element keeps its earlier
			// timeout (the kernel closes early, never late).
			r.log.Warn("command queue full, re-knock not applied", "door", j.door, "src", j.src, "cmd", "start")
		} else {
			r.log.Warn("command queue full, open refused", "door", j.door, "src", j.src, "cmd", "start")
		}
		return false
	}
}

func (r *Runner) wakeJournal()   { poke(r.jwake) }
func (r *Runner) wakeScheduler() { poke(r.wake) }

// poke signals a 1-buffered wake-up channel without waiting: one signal
// pending is enough for the goroutine to look again.
func poke(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run runs the workers and the close scheduler until ctx ends. A stop
// command that fails is retried after 1s, 5s and 30s, then given up with an
// error saying the door may still be open.
//
// Before returning, Run runs every pending close, including those waiting
// to be retried, MaxConcurrent at a time, so doors never stay open because
// the daemon stopped. There is no overall deadline: each command has its
// own time limit, and a stop that fails is tried once more after 1s before
// it is given up. Shutdown therefore takes at most about
// ceil(pending/MaxConcurrent) × (2 × CommandTimeout + 1s). Start commands
// still waiting in the queue are not run, and start commands running when
// ctx ends are killed; a stop command already running is allowed to
// finish. Run returns nil after a shutdown by ctx.
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
	r.shutdown(context.WithoutCancel(ctx))
	r.removeSetElems()
	r.flushJournal()
	return nil
}

// worker runs start commands until ctx ends.
func (r *Runner) worker(ctx context.Context) {
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case j := <-r.starts:
			r.runStart(ctx, j)
		}
	}
}

func (r *Runner) runStart(ctx context.Context, j *startJob) {
	defer r.startDone()
	if ctx.Err() != nil {
		// Shutting down: a door is not opened on the way out.
		if j.e != nil {
			r.mu.Lock()
			r.abandonLocked(j.e)
			r.mu.Unlock()
		}
		return
	}
	if j.e != nil && !r.record(j) {
		return
	}
	if j.refreshOf != nil {
		r.mu.Lock()
		live := r.open[j.refreshOf.key] == j.refreshOf && j.refreshOf.state == stateOpen
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
	}
	// The set is the second half of the same open: not after a failed
	// start command, nor on the way out. Its failure is logged, and a
	// re-knock adds it again; it does not make the start run twice.
	if hasSet && ok && ctx.Err() == nil {
		r.addToSet(j)
	} else if hasSet && j.e == nil {
		r.mu.Lock()
		delete(r.elems, openKey{j.door, j.src})
		r.mu.Unlock()
	}
	if j.e == nil {
		return
	}
	r.mu.Lock()
	j.e.state = stateOpen
	j.e.started = true
	j.e.startFailed = !ok
	heap.Push(&r.due, j.e)
	r.mu.Unlock()
	r.wakeScheduler()
}

// record writes the close of j to the journal before its start runs, and
// reports whether the start may run. A door whose close could be lost must
// not open: the open is refused, logged and counted.
func (r *Runner) record(j *startJob) bool {
	r.mu.Lock()
	e := j.e
	jl := r.journal
	need := jl != nil && e.jid == 0 // a retried start has its record
	rec := journal.Record{Door: e.key.door, Src: e.key.src, Due: e.deadline, For: e.openFor, Stop: e.stop}
	r.mu.Unlock()
	if !need {
		return true
	}
	id, err := jl.Add(rec)
	r.mu.Lock()
	if err != nil {
		r.refused.Add(1)
		r.log.Error("open refused: its close could not be recorded in state_dir", "door", j.door, "src", j.src, "err", err)
		r.forgetLocked(e)
		r.mu.Unlock()
		return false
	}
	e.jid = id
	if !e.deadline.Equal(rec.Due) {
		// Extended while the record was written.
		r.extends[id] = extension{e.key, e.deadline}
		r.wakeJournal()
	}
	r.mu.Unlock()
	return true
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
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	overdue := 0
	for _, rec := range recs {
		src := sequence.NormalizeAddr(rec.Src)
		left := rec.Due.Sub(now)
		limit := rec.For
		if d, ok := r.doors[rec.Door]; ok && limit > 0 {
			limit = max(limit, d.CmdTimeout)
		}
		if limit > 0 && left > limit {
			r.log.Warn("pending close due later than its door stays open; the clock was behind; closing within cmd_timeout",
				"door", rec.Door, "src", src, "due", rec.Due, "cmd_timeout", limit)
			left = limit
		}
		e := &entry{
			key:      openKey{rec.Door, src},
			stop:     rec.Stop,
			deadline: now.Add(max(left, 0)),
			openFor:  rec.For,
			state:    stateOpen,
			// The earlier run opened the door: whatever happens to a
			// later start (a rerun dropped at shutdown), this close
			// must still run.
			started: true,
			index:   -1,
			jid:     rec.ID,
		}
		if cur := r.open[e.key]; cur == nil || cur.deadline.Before(e.deadline) {
			r.open[e.key] = e
		}
		heap.Push(&r.due, e)
		late := left <= 0
		if late {
			overdue++
		}
		r.log.Info("pending close restored from journal", "door", rec.Door, "src", src, "due", rec.Due, "overdue", late)
	}
	if len(recs) > 0 {
		r.log.Info("pending closes restored", "count", len(recs), "overdue", overdue)
	}
	r.wakeScheduler()
}

// addToSet adds (or refreshes) the job's source in its nftables set and
// logs the outcome, reporting success.
func (r *Runner) addToSet(j *startJob) bool {
	until := time.Now().Add(j.setTimeout)
	msg := "opened"
	if j.refresh {
		msg = "nft set element refreshed"
	}
	if r.dryRun {
		r.log.Info("dry run, not adding to nft set", "door", j.door, "src", j.src, "set", j.set.String(), "timeout", j.setTimeout)
		return true
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
		r.log.Error("nft set add failed", "door", j.door, "src", j.src, "set", j.set.String(), "err", err)
		if j.e == nil && !j.refresh {
			r.mu.Lock()
			delete(r.elems, openKey{j.door, j.src})
			r.mu.Unlock()
		}
		return false
	}
	r.mu.Lock()
	r.elems[openKey{j.door, j.src}] = setElem{ref: j.set, expires: until}
	if len(r.elems) > max(2*r.sweepSize, 1024) {
		now := time.Now()
		for k, el := range r.elems {
			if !el.expires.After(now) {
				delete(r.elems, k)
			}
		}
		r.sweepSize = len(r.elems)
	}
	r.mu.Unlock()
	r.log.Info(msg, "door", j.door, "src", j.src, "set", j.set.String(), "until", until)
	return true
}

// removeSetElems deletes, at shutdown, the set elements that have not
// expired yet, so that no door stays open because the daemon stopped.
func (r *Runner) removeSetElems() {
	r.mu.Lock()
	now := time.Now()
	type item struct {
		key openKey
		el  setElem
	}
	var live []item
	for k, el := range r.elems {
		if el.expires.After(now) {
			live = append(live, item{k, el})
		}
	}
	clear(r.elems)
	sets := r.sets
	r.mu.Unlock()
	if len(live) == 0 {
		return
	}
	if r.keepOpen {
		r.log.Info("close_on_exit is off: nft set elements left to expire", "count", len(live))
		return
	}
	for _, it := range live {
		err := sets.Delete(it.el.ref, it.key.src) // not nil: elements were added
		switch {
		case err == nil || errors.Is(err, nftset.ErrNoElement):
			r.log.Info("closed", "door", it.key.door, "src", it.key.src, "set", it.el.ref.String())
		default:
			r.failed.Add(1)
			r.log.Error("nft set delete failed; the element stays until its timeout", "door", it.key.door, "src", it.key.src,
				"set", it.el.ref.String(), "until", it.el.expires, "err", err)
		}
	}
}

// startDone counts a start job as finished, waking Drain at zero.
func (r *Runner) startDone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startDoneLocked()
}

func (r *Runner) startDoneLocked() {
	r.inflight--
	if r.inflight == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
}

// Drain waits until every start command asked for so far has run, or ctx
// ends. The daemon calls it when its inputs have ended, so that the last
// knocks of a log still open their doors before shutdown closes them.
func (r *Runner) Drain(ctx context.Context) {
	r.mu.Lock()
	if r.inflight == 0 {
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

// runStop runs a due close while the Runner runs. On failure the close
// goes back into the heap for its next retry, as long as retries are left.
// Shutdown finds it there if it comes first.
func (r *Runner) runStop(ctx context.Context, e *entry) {
	ok := r.runCommand(ctx, e.key.door, e.key.src, "stop", e.stop)
	defer r.flushJournal()
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		if cur := r.open[e.key]; cur != nil && cur != e && cur.state == stateOpen {
			// An older close of a pair open again (two restored
			// records) may have undone what the newer open relies on:
			// its next knock runs the start again instead of only
			// extending, so the knocker is not locked out.
			cur.startFailed = true
		}
		r.forgetLocked(e)
		return
	}
	e.stopFailures++
	if e.stopFailures > len(stopRetryDelays) {
		r.giveUpLocked(e)
		return
	}
	delay := stopRetryDelays[e.stopFailures-1]
	e.deadline = time.Now().Add(delay)
	heap.Push(&r.due, e)
	r.stopRetries.Add(1)
	r.log.Warn("stop command will be retried", "door", e.key.door, "src", e.key.src, "cmd", "stop",
		"in", delay, "retry", e.stopFailures, "of", len(stopRetryDelays))
	r.wakeScheduler()
}

// runFinalStop runs a close at shutdown, where there is no later: a failed
// stop command is tried once more after the first retry delay, its slot
// freed meanwhile, and then given up.
func (r *Runner) runFinalStop(ctx context.Context, e *entry) {
	ok := r.runCommand(ctx, e.key.door, e.key.src, "stop", e.stop)
	if !ok {
		e.stopFailures++
		delay := stopRetryDelays[0]
		r.stopRetries.Add(1)
		r.log.Warn("stop command will be retried before exit", "door", e.key.door, "src", e.key.src, "cmd", "stop", "in", delay)
		<-r.closeSem
		time.Sleep(delay)
		r.closeSem <- struct{}{}
		if ok = r.runCommand(ctx, e.key.door, e.key.src, "stop", e.stop); !ok {
			e.stopFailures++
		}
	}
	defer r.flushJournal()
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.forgetLocked(e)
		return
	}
	r.giveUpLocked(e)
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
	j, ids, exts := r.journal, r.doneIDs, r.extends
	r.doneIDs = nil
	if len(exts) > 0 {
		r.extends = make(map[uint64]extension)
	} else {
		exts = nil // still r's: not to be read outside the lock
	}
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

// giveUpLocked abandons a close whose stop command failed on every try.
// The error line is what an administrator must act on, so it names the door,
// the source and the command to run by hand.
func (r *Runner) giveUpLocked(e *entry) {
	r.stopsGivenUp.Add(1)
	retry := "run it by hand"
	if e.jid != 0 {
		// The journal keeps the close, so the next start tries again.
		e.jid = 0
		retry = "the next start tries again"
	}
	r.log.Error("giving up on stop command; door may still be open", "door", e.key.door, "src", e.key.src, "cmd", "stop",
		"command", e.stop.String(), "attempts", e.stopFailures, "then", retry)
	r.forgetLocked(e)
}

// abandonLocked gives up on a start that was never run. An entry whose
// start ran before (a retry, or a rerun) still gets its close, for what
// that start did.
func (r *Runner) abandonLocked(e *entry) {
	if e.started {
		e.state = stateOpen
		heap.Push(&r.due, e)
		return
	}
	r.forgetLocked(e)
}

// forgetLocked drops e from the open set, unless a newer open of the same
// (door, address) has replaced it, and queues the reopen parked on it.
func (r *Runner) forgetLocked(e *entry) {
	if r.open[e.key] == e {
		delete(r.open, e.key)
	}
	if e.jid != 0 {
		delete(r.extends, e.jid)
		r.doneIDs = append(r.doneIDs, e.jid)
		e.jid = 0
	}
	j := e.reopen
	if j == nil {
		return
	}
	e.reopen = nil
	// The parked job was counted in inflight when it was parked; once
	// queued it is counted again, so it leaves Drain's count only here.
	defer r.startDoneLocked()
	if r.stopped {
		// Shutting down: a door is not opened on the way out.
		r.forgetLocked(j.e)
		return
	}
	if !r.enqueueLocked(j) {
		r.forgetLocked(j.e)
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
	res := r.exec(ctx, c, r.timeout)
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

// schedule runs due closes until ctx ends, each on a goroutine of its own
// once a close slot is free. Waiting for a slot only ever waits for other
// closes, which are bounded by their time limit, never for starts.
func (r *Runner) schedule(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := r.takeDue(time.Now())
		for i, e := range due {
			select {
			case r.closeSem <- struct{}{}:
			case <-ctx.Done():
				// Shutdown runs what was not started.
				r.mu.Lock()
				for _, e := range due[i:] {
					heap.Push(&r.due, e)
				}
				r.mu.Unlock()
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

// takeDue removes the entries due at now from the heap and returns them,
// with the next deadline after them (zero when none).
func (r *Runner) takeDue(now time.Time) (due []*entry, next time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.due.Len() > 0 && !r.due[0].deadline.After(now) {
		e := heap.Pop(&r.due).(*entry)
		e.state = stateClosing
		due = append(due, e)
	}
	if r.due.Len() > 0 {
		next = r.due[0].deadline
	}
	return due, next
}

// shutdown runs every pending close after the workers have stopped.
func (r *Runner) shutdown(ctx context.Context) {
	r.mu.Lock()
	r.stopped = true
	// Starts still queued are not run: a door is not opened on the way
	// out. A retry of a failed start goes back to the heap, since the
	// first start may have done part of its work; anything else never
	// started has nothing to close. Reopens parked on a close are dropped
	// the same way when that close finishes below.
	for drained := false; !drained; {
		select {
		case j := <-r.starts:
			if j.e != nil {
				r.abandonLocked(j.e)
			}
			r.startDoneLocked()
		default:
			drained = true
		}
	}
	var pending []*entry
	kept := 0
	for r.due.Len() > 0 {
		e := heap.Pop(&r.due).(*entry)
		if r.keepOpen && e.jid != 0 {
			// The journal holds it for the next start.
			kept++
			r.log.Info("door left open at exit, closed by the next start", "door", e.key.door, "src", e.key.src, "due", e.deadline)
			continue
		}
		e.state = stateClosing
		pending = append(pending, e)
	}
	r.mu.Unlock()
	if kept > 0 {
		r.log.Info("close_on_exit is off: doors left open for the next start", "count", kept)
	}
	if len(pending) == 0 {
		return
	}
	r.log.Info("closing open doors before exit", "count", len(pending))

	// No budget is shared between the closes: one that ran out of a
	// shared deadline would leave its door open. Each command has its own
	// time limit, so a hanging close still cannot keep the daemon alive.
	// The close slots are all free here: the scheduler and its closers
	// have returned.
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

// closeHeap orders entries by close deadline.
type closeHeap []*entry

func (h closeHeap) Len() int           { return len(h) }
func (h closeHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h closeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *closeHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *closeHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
