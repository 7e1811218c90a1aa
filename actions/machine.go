package actions

import (
	"container/heap"
	"log/slog"
	"net/netip"
	"time"

	"portknock/journal"
	"portknock/nftset"
	"portknock/sequence"
)

// machine is what the Runner knows and decides: the doors, which of them
// are open for whom, the nftables set elements added, the close schedule
// and the queue of start commands. It is plain data: each method takes the
// time, changes the state, and leaves what the shell must do (log lines,
// wake-ups, journal writes) in out for the shell to take. It starts no
// goroutine, takes no lock and does no I/O; the Runner holds a mutex
// around it and carries out its effects.
type machine struct {
	dryRun bool
	// journaled is set when the shell has a journal: starts of doors
	// with a timed close are then recorded before they run.
	journaled bool

	doors map[string]Door
	open  map[openKey]*entry
	// elems are the set elements added (or about to be), with when the
	// kernel drops them: how a door without a stop command knows it is
	// open (for reknock), what shutdown removes, and, through expiry,
	// when such a door is logged closed.
	elems  map[openKey]*setElem
	expiry elemHeap
	due    closeHeap // entries whose start has run, by close deadline

	// queue holds start jobs waiting for a worker, oldest first, from
	// head on; at most queueCap of them.
	queue    []*startJob
	head     int
	queueCap int
	// idle is how many workers wait for a start: a job they will take at
	// once is not waiting, and does not count against queueCap.
	idle int
	// depthLogged is the queue depth last logged, and depthAt when; the
	// depth is logged as it grows, at most once a second.
	depthLogged int
	depthAt     time.Time

	stopped bool // CloseAll has begun; Open refuses
	// inflight counts starts queued, parked on a close, or running, for
	// Drain.
	inflight int

	// doneIDs are journal records whose close has finished, and extends
	// re-knocks' new due times by record, both waiting for the journal
	// writer: the journal is written outside the lock, so that Open never
	// waits for it.
	doneIDs []uint64
	extends map[uint64]extension

	// Counters of what the machine decided, for Stats.
	dropped, extended, givenUp uint64

	out effects
}

// effects are what the shell must do after a call into the machine.
type effects struct {
	logs []logLine
	// work is set when starts were queued: a worker must look.
	work bool
	// schedule is set when the close schedule changed.
	schedule bool
	// journal is set when journal writes are waiting.
	journal bool
}

// logLine is one line for the shell to log.
type logLine struct {
	level slog.Level
	msg   string
	attrs []any
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

// setElem is an nftables set element the Runner added, or is about to.
type setElem struct {
	key     openKey
	ref     nftset.Ref
	expires time.Time
	// added is set once the kernel has the element; before that it only
	// marks the door as opening, so that a second knock is a re-knock.
	added bool
	// closes is set when no stop command closes the door: the kernel's
	// timeout is its close, and is logged as one.
	closes bool
	index  int // in the expiry heap, -1 when not there
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

func newMachine(queueCap int, dryRun bool) *machine {
	return &machine{
		dryRun:   dryRun,
		doors:    map[string]Door{},
		open:     map[openKey]*entry{},
		elems:    map[openKey]*setElem{},
		extends:  map[uint64]extension{},
		queueCap: queueCap,
	}
}

// take returns the effects left by the calls so far, and forgets them.
func (m *machine) take() effects {
	fx := m.out
	m.out = effects{}
	return fx
}

func (m *machine) log(level slog.Level, msg string, attrs ...any) {
	m.out.logs = append(m.out.logs, logLine{level, msg, attrs})
}

func (m *machine) info(msg string, attrs ...any) { m.log(slog.LevelInfo, msg, attrs...) }
func (m *machine) warn(msg string, attrs ...any) { m.log(slog.LevelWarn, msg, attrs...) }

// setDoors replaces the door definitions used by future opens.
func (m *machine) setDoors(doors []Door) {
	d := make(map[string]Door, len(doors))
	for _, door := range doors {
		d[door.Name] = door
	}
	m.doors = d
}

// openMatch acts on a match at now; see Runner.Open.
func (m *machine) openMatch(now time.Time, mt sequence.Match) {
	src := sequence.NormalizeAddr(mt.Src)
	if !src.IsValid() {
		m.warn("match without a source address ignored", "door", mt.Door)
		return
	}
	mt.Src = src
	if m.stopped {
		m.warn("runner stopped, match ignored", "door", mt.Door, "src", src)
		return
	}
	d, ok := m.doors[mt.Door]
	if !ok {
		m.warn("match for unknown door ignored", "door", mt.Door, "src", src)
		return
	}
	start, stop := d.commandsFor(src)
	start = Substitute(start, mt)
	set, hasSet := d.setFor(src)
	if start.IsZero() && stop.IsZero() && !hasSet {
		// Say so rather than log an open that did nothing: a door with
		// only an nft_set, say, knocked from an IPv6 address.
		m.warn("door has nothing to open for this address family; knock ignored", "door", d.Name, "src", src)
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
		m.openUntimed(now, d, key, start, hasSet, set, job)
		return
	}
	deadline := now.Add(d.CmdTimeout)
	old := m.open[key]
	if old != nil && old.state != stateClosing {
		m.reknock(now, d, old, deadline, hasSet, start, job)
		return
	}
	e := &entry{
		key:      key,
		stop:     Substitute(stop, mt),
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
		m.inflight++
		m.open[key] = e
		m.info("knock while closing, opens again after the close", "door", d.Name, "src", src)
		return
	}
	if m.enqueue(now, j) {
		m.open[key] = e
	}
}

// openUntimed opens a door with no stop command to run later: its start
// runs, and a set element, if any, is closed by the kernel's timeout.
func (m *machine) openUntimed(now time.Time, d Door, key openKey, start Command, hasSet bool, set nftset.Ref, job func(Command, bool) *startJob) {
	if el := m.elems[key]; el != nil && hasSet && el.ref == set && el.expires.After(now) {
		// Open by its set element alone.
		switch d.Reknock {
		case ReknockIgnore:
			m.info("re-knock ignored, door already open", "door", d.Name, "src", key.src, "until", el.expires)
		case ReknockRerun:
			m.enqueue(now, job(start, true))
		default:
			m.enqueue(now, job(Command{}, true))
		}
		return
	}
	if m.enqueue(now, job(start, false)) && hasSet && !m.dryRun {
		// Counted as open from now, so that a second knock before the
		// element is in is a re-knock, not a second open.
		m.markElem(key, set, now.Add(d.CmdTimeout), false, true)
	}
}

// reknock acts on a match for a (door, address) whose open is queued or
// open: by the door's reknock policy, it extends the close, runs the start
// again, or does nothing.
func (m *machine) reknock(now time.Time, d Door, old *entry, deadline time.Time, hasSet bool, start Command, job func(Command, bool) *startJob) {
	src := old.key.src
	extendJournal := func() {
		if old.jid != 0 {
			// Written by the journal writer: Open must not wait for the
			// journal, whose lock another open holds across its fsync. If
			// the line is lost in a crash, the door closes at its earlier
			// time.
			m.extends[old.jid] = extension{old.key, deadline}
			m.out.journal = true
		}
	}
	if old.state == stateOpen && old.startFailed {
		// Nothing was opened last time; try again rather than only
		// extending. The close stays scheduled either way.
		extendJournal()
		m.retry(now, old, job(start, false), deadline)
		return
	}
	if d.Reknock == ReknockIgnore {
		m.info("re-knock ignored, door already open", "door", d.Name, "src", src, "until", old.deadline)
		return
	}
	extendJournal()
	m.extended++
	if d.Reknock == ReknockRerun && old.state == stateOpen && (!start.IsZero() || hasSet) {
		// Through the entry, so that its close is scheduled after this
		// start has run, never before it.
		m.info("re-knock runs the start command again", "door", d.Name, "src", src, "until", deadline)
		m.retry(now, old, job(start, true), deadline)
		return
	}
	old.deadline = deadline
	if old.index >= 0 {
		heap.Fix(&m.due, old.index)
	}
	m.out.schedule = true
	// A queued entry's start has yet to run, and will use the new
	// deadline; only an open one has a set element to refresh.
	m.info("re-knock extends open", "door", d.Name, "src", src, "until", deadline)
	if hasSet && old.state == stateOpen {
		rj := job(Command{}, true)
		rj.refreshOf = old
		m.enqueue(now, rj)
	}
}

// retry runs the start of an open entry again (after a failed start, or
// for reknock = "rerun"), taking its close out of the schedule until the
// start has run, so that the close always follows the last start.
func (m *machine) retry(now time.Time, e *entry, j *startJob, deadline time.Time) {
	if e.index >= 0 {
		heap.Remove(&m.due, e.index)
	}
	e.state = stateQueued
	e.deadline = deadline
	j.e = e
	if !m.enqueue(now, j) {
		e.state = stateOpen
		heap.Push(&m.due, e)
	}
	m.out.schedule = true
}

// queueLogDepth is the queue depth from which its growth is logged: below
// it, a burst is gone within moments.
const queueLogDepth = 64

// enqueue queues a start job for the workers, or refuses it when the
// queue is full.
func (m *machine) enqueue(now time.Time, j *startJob) bool {
	depth := len(m.queue) - m.head
	if depth >= m.queueCap+m.idle {
		m.dropped++
		if j.refresh {
			// The door is open: only the re-knock's start or set refresh
			// is lost, and a set element keeps its earlier timeout (the
			// kernel closes early, never late).
			m.warn("command queue full, re-knock not applied", "door", j.door, "src", j.src, "cmd", "start")
		} else {
			m.warn("command queue full, open refused", "door", j.door, "src", j.src, "cmd", "start", "queued", depth)
		}
		return false
	}
	m.queue = append(m.queue, j)
	m.inflight++
	m.out.work = true
	depth++
	if depth -= m.idle; depth >= queueLogDepth && depth > m.depthLogged && (m.depthLogged == 0 || now.Sub(m.depthAt) >= time.Second) {
		m.depthLogged, m.depthAt = depth, now
		m.info("command queue growing; starts run as workers free up", "queued", depth, "limit", m.queueCap)
	}
	return true
}

// nextStart takes the oldest queued start job for a worker.
func (m *machine) nextStart() (*startJob, bool) {
	if m.head == len(m.queue) {
		return nil, false
	}
	j := m.queue[m.head]
	m.queue[m.head] = nil
	m.head++
	switch {
	case m.head == len(m.queue):
		// Empty: reuse the array from its start.
		m.queue, m.head = m.queue[:0], 0
		if m.depthLogged > 0 {
			m.depthLogged = 0
			m.info("command queue drained")
		}
	case m.head >= 1024 && m.head > len(m.queue)/2:
		// Mostly consumed: move the rest down rather than grow.
		n := copy(m.queue, m.queue[m.head:])
		clear(m.queue[n:])
		m.queue, m.head = m.queue[:n], 0
	}
	if len(m.queue) > m.head {
		// More waiting: another worker must look too.
		m.out.work = true
	}
	return j, true
}

// putBack returns due closes the shell could not start to the schedule,
// for CloseAll to find.
func (m *machine) putBack(es []*entry) {
	for _, e := range es {
		heap.Push(&m.due, e)
	}
}

// queued returns how many start jobs wait for a worker.
func (m *machine) queued() int { return len(m.queue) - m.head }

// recordFor returns the journal record a start job's close needs before
// the start may run, and whether it needs one: a door with a timed close,
// with a journal, and not a retried start, which has its record.
func (m *machine) recordFor(j *startJob) (journal.Record, bool) {
	e := j.e
	if e == nil || !m.journaled || e.jid != 0 {
		return journal.Record{}, false
	}
	return journal.Record{Door: e.key.door, Src: e.key.src, Due: e.deadline, For: e.openFor, Stop: e.stop}, true
}

// recorded takes the outcome of recording j's close as rec. A door whose
// close could be lost must not open: the open is refused and logged, and
// recorded reports whether the start may run.
func (m *machine) recorded(now time.Time, j *startJob, rec journal.Record, id uint64, err error) bool {
	e := j.e
	if err != nil {
		m.log(slog.LevelError, "open refused: its close could not be recorded in state_dir", "door", j.door, "src", j.src, "err", err)
		m.forget(now, e)
		return false
	}
	e.jid = id
	if !e.deadline.Equal(rec.Due) {
		// Extended while the record was written.
		m.extends[id] = extension{e.key, e.deadline}
		m.out.journal = true
	}
	return true
}

// refreshLive reports whether a refresh-only job's entry is still open: a
// door closed meanwhile must not get its address back in the set.
func (m *machine) refreshLive(j *startJob) bool {
	return j.refreshOf == nil || (m.open[j.refreshOf.key] == j.refreshOf && j.refreshOf.state == stateOpen)
}

// started takes the outcome of j's start: whether its command succeeded
// (ok), whether adding its set element was tried (not after a failed
// command, nor on the way out), and whether that succeeded and until when.
// An entry's close goes into the schedule from now.
func (m *machine) started(j *startJob, ok, setTried, setAdded bool, until time.Time) {
	key := openKey{j.door, j.src}
	if j.set != (nftset.Ref{}) {
		switch {
		case setAdded:
			m.markElem(key, j.set, until, true, j.e == nil && j.refreshOf == nil)
		case j.e == nil && (!setTried || !j.refresh):
			// Not open after all: the next knock opens afresh. A
			// re-knock whose refresh failed leaves the element as it
			// was, to its earlier timeout.
			if el := m.elems[key]; el != nil {
				m.dropElem(el)
			}
		}
	}
	if j.e == nil {
		return
	}
	j.e.state = stateOpen
	j.e.started = true
	j.e.startFailed = !ok
	heap.Push(&m.due, j.e)
	m.out.schedule = true
}

// abandon gives up on a start that was never run. An entry whose start
// ran before (a retry, or a rerun) still gets its close, for what that
// start did.
func (m *machine) abandon(now time.Time, j *startJob) {
	if e := j.e; e != nil {
		if e.started {
			e.state = stateOpen
			heap.Push(&m.due, e)
		} else {
			m.forget(now, e)
		}
	}
	if el := m.elems[openKey{j.door, j.src}]; el != nil && !el.added && j.e == nil && !j.refresh {
		m.dropElem(el)
	}
}

// startDone counts a start job as finished.
func (m *machine) startDone() { m.inflight-- }

// markElem records a set element (or its refresh) until expires.
func (m *machine) markElem(key openKey, ref nftset.Ref, expires time.Time, added, closes bool) {
	el := m.elems[key]
	if el == nil {
		el = &setElem{key: key, index: -1}
		m.elems[key] = el
	}
	el.ref, el.expires = ref, expires
	el.added = added
	el.closes = closes
	if el.index >= 0 {
		heap.Fix(&m.expiry, el.index)
	} else {
		heap.Push(&m.expiry, el)
	}
	m.out.schedule = true
}

func (m *machine) dropElem(el *setElem) {
	if m.elems[el.key] == el {
		delete(m.elems, el.key)
	}
	if el.index >= 0 {
		heap.Remove(&m.expiry, el.index)
	}
}

// due takes the closes due at now out of the schedule, marking them
// closing, and ends the set elements whose timeout has passed: a door
// closed by the kernel alone is logged closed at the time it closes. It
// returns the next time anything is due (zero when nothing is).
func (m *machine) takeDue(now time.Time) (due []*entry, next time.Time) {
	for m.due.Len() > 0 && !m.due[0].deadline.After(now) {
		e := heap.Pop(&m.due).(*entry)
		e.state = stateClosing
		due = append(due, e)
	}
	for m.expiry.Len() > 0 && !m.expiry[0].expires.After(now) {
		el := heap.Pop(&m.expiry).(*setElem)
		delete(m.elems, el.key)
		if el.added && el.closes {
			m.info("closed", "door", el.key.door, "src", el.key.src, "set", el.ref.String(), "by", "nft set timeout")
		}
	}
	if m.due.Len() > 0 {
		next = m.due[0].deadline
	}
	if m.expiry.Len() > 0 && (next.IsZero() || m.expiry[0].expires.Before(next)) {
		next = m.expiry[0].expires
	}
	return due, next
}

// stopRetryDelays are the waits before a failed stop command runs again,
// one per retry. A stop often fails for a passing reason, such as iptables
// losing the race for the xtables lock, and a door left open is worse than
// a stop command run twice. After the last retry the close is given up.
var stopRetryDelays = [...]time.Duration{time.Second, 5 * time.Second, 30 * time.Second}

// stopDone takes the outcome of a due close's stop command at now. On
// failure the close goes back into the schedule for its next retry, as
// long as retries are left; it reports whether it did.
func (m *machine) stopDone(now time.Time, e *entry, ok bool) (retried bool) {
	if ok {
		if cur := m.open[e.key]; cur != nil && cur != e && cur.state == stateOpen {
			// An older close of a pair open again (two restored records)
			// may have undone what the newer open relies on: its next
			// knock runs the start again instead of only extending, so
			// the knocker is not locked out.
			cur.startFailed = true
		}
		m.forget(now, e)
		return false
	}
	e.stopFailures++
	if e.stopFailures > len(stopRetryDelays) {
		m.giveUp(now, e)
		return false
	}
	delay := stopRetryDelays[e.stopFailures-1]
	e.deadline = now.Add(delay)
	heap.Push(&m.due, e)
	m.warn("stop command will be retried", "door", e.key.door, "src", e.key.src, "cmd", "stop",
		"in", delay, "retry", e.stopFailures, "of", len(stopRetryDelays))
	m.out.schedule = true
	return true
}

// finalStopDone takes the outcome of a close run at exit, where there is
// no later: failures counts the runs that failed.
func (m *machine) finalStopDone(now time.Time, e *entry, ok bool, failures int) {
	e.stopFailures += failures
	if ok {
		m.forget(now, e)
		return
	}
	m.giveUp(now, e)
}

// giveUp abandons a close whose stop command failed on every try. The
// error line is what an administrator must act on, so it names the door,
// the source and the command to run by hand.
func (m *machine) giveUp(now time.Time, e *entry) {
	m.givenUp++
	retry := "run it by hand"
	if e.jid != 0 {
		// The journal keeps the close, so the next start tries again.
		e.jid = 0
		retry = "the next start tries again"
	}
	m.log(slog.LevelError, "giving up on stop command; door may still be open", "door", e.key.door, "src", e.key.src, "cmd", "stop",
		"command", e.stop.String(), "attempts", e.stopFailures, "then", retry)
	m.forget(now, e)
}

// forget drops e from the open set, unless a newer open of the same
// (door, address) has replaced it, and queues the reopen parked on it.
func (m *machine) forget(now time.Time, e *entry) {
	if m.open[e.key] == e {
		delete(m.open, e.key)
	}
	if e.jid != 0 {
		delete(m.extends, e.jid)
		m.doneIDs = append(m.doneIDs, e.jid)
		m.out.journal = true
		e.jid = 0
	}
	j := e.reopen
	if j == nil {
		return
	}
	e.reopen = nil
	// The parked job was counted in inflight when it was parked; once
	// queued it is counted again, so it leaves Drain's count only here.
	defer m.startDone()
	if m.stopped {
		// Shutting down: a door is not opened on the way out.
		m.forget(now, j.e)
		return
	}
	if !m.enqueue(now, j) {
		m.forget(now, j.e)
	}
}

// takeJournal returns the journal writes waiting, and forgets them.
func (m *machine) takeJournal() (ids []uint64, exts map[uint64]extension) {
	ids = m.doneIDs
	m.doneIDs = nil
	if len(m.extends) > 0 {
		exts = m.extends
		m.extends = map[uint64]extension{}
	}
	return ids, exts
}

// restore schedules closes left pending by an earlier run; see
// Runner.Restore.
func (m *machine) restore(now time.Time, recs []journal.Record) {
	overdue := 0
	for _, rec := range recs {
		src := sequence.NormalizeAddr(rec.Src)
		left := rec.Due.Sub(now)
		limit := rec.For
		if d, ok := m.doors[rec.Door]; ok && limit > 0 {
			limit = max(limit, d.CmdTimeout)
		}
		if limit > 0 && left > limit {
			m.warn("pending close due later than its door stays open; the clock was behind; closing within cmd_timeout",
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
			// later start (a rerun dropped at shutdown), this close must
			// still run.
			started: true,
			index:   -1,
			jid:     rec.ID,
		}
		if cur := m.open[e.key]; cur == nil || cur.deadline.Before(e.deadline) {
			m.open[e.key] = e
		}
		heap.Push(&m.due, e)
		late := left <= 0
		if late {
			overdue++
		}
		m.info("pending close restored from journal", "door", rec.Door, "src", src, "due", rec.Due, "overdue", late)
	}
	if len(recs) > 0 {
		m.info("pending closes restored", "count", len(recs), "overdue", overdue)
	}
	m.out.schedule = true
}

// liveElem is a set element still in the kernel at shutdown.
type liveElem struct {
	key openKey
	ref nftset.Ref
	exp time.Time
}

// shutdown stops the machine at now and returns the closes to run before
// exit and the set elements to remove. Starts still queued are not run: a
// door is not opened on the way out. A retry of a failed start goes back
// to the schedule, since the first start may have done part of its work;
// anything else never started has nothing to close. Reopens parked on a
// close are dropped the same way when that close finishes. With keepOpen,
// journaled closes are left to the next start, and set elements to their
// timeout.
func (m *machine) shutdown(now time.Time, keepOpen bool) (pending []*entry, live []liveElem) {
	m.stopped = true
	for {
		j, ok := m.nextStart()
		if !ok {
			break
		}
		m.abandon(now, j)
		m.startDone()
	}
	kept := 0
	for m.due.Len() > 0 {
		e := heap.Pop(&m.due).(*entry)
		if keepOpen && e.jid != 0 {
			// The journal holds it for the next start.
			kept++
			m.info("door left open at exit, closed by the next start", "door", e.key.door, "src", e.key.src, "due", e.deadline)
			continue
		}
		e.state = stateClosing
		pending = append(pending, e)
	}
	if kept > 0 {
		m.info("close_on_exit is off: doors left open for the next start", "count", kept)
	}
	for _, el := range m.elems {
		el.index = -1 // the schedule goes with them
		if el.added && el.expires.After(now) {
			live = append(live, liveElem{el.key, el.ref, el.expires})
		}
	}
	clear(m.elems)
	m.expiry = nil
	if len(live) > 0 && keepOpen {
		m.info("close_on_exit is off: nft set elements left to expire", "count", len(live))
		live = nil
	}
	return pending, live
}

// scheduled is what a schedule orders: a time, and the item's place in
// the heap, kept so that it can be fixed or removed without a search.
type scheduled interface {
	at() time.Time
	setIndex(int)
}

// schedule is a container/heap of items, earliest first. It serves both
// the close schedule (entries by deadline) and set elements (by expiry).
type schedule[T scheduled] []T

func (h schedule[T]) Len() int           { return len(h) }
func (h schedule[T]) Less(i, j int) bool { return h[i].at().Before(h[j].at()) }
func (h schedule[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].setIndex(i)
	h[j].setIndex(j)
}
func (h *schedule[T]) Push(x any) {
	it := x.(T)
	it.setIndex(len(*h))
	*h = append(*h, it)
}
func (h *schedule[T]) Pop() any {
	old := *h
	it := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero
	it.setIndex(-1)
	*h = old[:len(old)-1]
	return it
}

// closeHeap orders entries by close deadline.
type closeHeap = schedule[*entry]

func (e *entry) at() time.Time  { return e.deadline }
func (e *entry) setIndex(i int) { e.index = i }

// elemHeap orders set elements by expiry.
type elemHeap = schedule[*setElem]

func (el *setElem) at() time.Time  { return el.expires }
func (el *setElem) setIndex(i int) { el.index = i }
