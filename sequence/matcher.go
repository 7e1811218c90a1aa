package sequence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"time"

	"portknock/sealed"
)

// DefaultMaxSources bounds the tracked sources when Options leaves it zero:
// enough for any real use, about 16 MB at worst with a few doors.
const DefaultMaxSources = 100000

// Options tune a Matcher.
type Options struct {
	// MaxSources bounds how many source addresses have knocks in progress.
	// When the table is full, a new source evicts the attempt closest to
	// expiry among those that have made the least progress. (A source
	// whose progress was undone, by a match say, but which still has
	// first knocks counts as if they were made at that moment.)
	MaxSources int
	// Logger receives one line per wrong knock, timeout, one-time sequence
	// event, sealed rejection and eviction. Nil discards them.
	Logger *slog.Logger
	// Replay is the replay cache of sealed doors. It must be set when
	// there are sealed doors, now or after a Reconfigure.
	Replay ReplayCache
}

// Stats counts what the matcher did with the events it was given.
type Stats struct {
	Events      uint64 // events handed to Handle
	Outside     uint64 // events outside the knock space, dropped before any state
	Ignored     uint64 // events in the knock space that changed nothing (target, tcpflags, not a first knock)
	Repeats     uint64 // repeated steps ignored (retransmits)
	Advances    uint64 // steps that moved an attempt forward
	Matches     uint64 // completed sequences
	WrongKnocks uint64 // attempts reset by a wrong knock
	Timeouts    uint64 // attempts reset because seq_timeout passed
	Evictions   uint64 // sources dropped because the table was full
	OneTimeErrs uint64 // one-time sequences that could not be consumed; no match was reported
	Sources     int    // sources tracked now
	PeakSources int    // most sources tracked at once

	SealedKnocks  uint64 // knocks taken by a sealed range's collector
	SealedChecks  uint64 // complete blocks checked
	SealedRejects SealedRejects
	ReplayErrs    uint64 // valid blocks the replay cache could not record; no match was reported
}

// doorState is a door as the matcher uses it.
type doorState struct {
	Door
	seq      []Step // sequence in force (a OneTime door's current one)
	timeout  int64
	gen      uint32 // bumped when a one-time sequence is consumed
	disabled bool   // one-time sequences exhausted
	ctr      *DoorStats
}

// Matcher runs every door's automaton for every source, following the
// matching rules of the design: see Handle. A Matcher is not safe for
// concurrent use; one goroutine feeds it events and calls Expire.
type Matcher struct {
	doors  []doorState // the doors with a sequence
	ranges []sealedRange
	space  []uint64 // bitmap over (port, proto): the knock space

	tb *table // the tracked sources, a slab each
	// lists[l][tr] are the ends of track tr's list l (see listAll).
	lists [2][]ends

	replay ReplayCache
	max    int
	now    int64 // latest monotonic time seen (Event.Mono), in ns
	log    *slog.Logger
	stats  Stats
	ctr    counters
}

// New builds a matcher for doors, which must have unique names.
func New(doors []Door, opts Options) (*Matcher, error) {
	m := &Matcher{
		max:    opts.MaxSources,
		log:    opts.Logger,
		replay: opts.Replay,
	}
	if m.max <= 0 {
		m.max = DefaultMaxSources
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	ds, rs, err := m.buildDoors(doors)
	if err != nil {
		return nil, err
	}
	m.setDoors(ds, rs)
	return m, nil
}

// buildDoors validates doors and splits them into the doors with a
// sequence and the sealed ranges.
func (m *Matcher) buildDoors(doors []Door) ([]doorState, []sealedRange, error) {
	ds := make([]doorState, 0, len(doors))
	seen := make(map[string]bool, len(doors))
	for i := range doors {
		d := &doors[i]
		if err := d.Validate(); err != nil {
			return nil, nil, err
		}
		if seen[d.Name] {
			return nil, nil, fmt.Errorf("door %q defined twice", d.Name)
		}
		seen[d.Name] = true
	}
	rs, err := buildRanges(doors)
	if err != nil {
		return nil, nil, err
	}
	if len(doors) > maxTracks {
		return nil, nil, fmt.Errorf("%d doors; at most %d allowed", len(doors), maxTracks)
	}
	if len(rs) > 0 && m.replay == nil {
		return nil, nil, errors.New("sealed doors need a replay cache")
	}
	for i := range doors {
		d := &doors[i]
		if d.Sealed != nil {
			continue
		}
		st := doorState{Door: *d, seq: d.Sequence, timeout: int64(d.Timeout)}
		if d.OneTime != nil {
			if err := st.loadOneTime(m.log, rs); err != nil {
				return nil, nil, err
			}
		} else if err := checkOutsideRanges(rs, d.Name, d.Sequence); err != nil {
			return nil, nil, err
		}
		ds = append(ds, st)
	}
	for i := range rs {
		rs[i].opener = sealed.NewOpener(rs[i].key)
	}
	return ds, rs, nil
}

// loadOneTime reads the door's current one-time sequence, which must stay
// out of the sealed ranges.
func (d *doorState) loadOneTime(log *slog.Logger, ranges []sealedRange) error {
	steps, ok := d.OneTime.Current()
	if !ok {
		d.disabled, d.seq = true, nil
		log.Warn("one-time sequences exhausted; door disabled until new sequences are added and the config reloaded", "door", d.Name)
		return nil
	}
	if err := validateSteps(d.Name, steps); err != nil {
		return fmt.Errorf("one-time sequence: %w", err)
	}
	if err := checkOutsideRanges(ranges, d.Name, steps); err != nil {
		return fmt.Errorf("one-time sequence: %w", err)
	}
	d.seq = steps
	return nil
}

// setDoors installs ds and rs, keeping the progress of every tracked
// source in doors whose rules did not change, and in sealed ranges whose
// ports, key and rules did not.
func (m *Matcher) setDoors(ds []doorState, rs []sealedRange) {
	m.attachCounters(ds, rs)
	old, oldRanges := m.doors, m.ranges
	keep := make([]int, len(ds)) // new door index → old index, or -1
	for i := range ds {
		keep[i] = -1
		for j := range old {
			if old[j].sameRules(&ds[i].Door) {
				keep[i] = j
				ds[i].gen, ds[i].seq, ds[i].disabled = old[j].gen, old[j].seq, old[j].disabled
			}
		}
	}
	keepRange := make([]int, len(rs)) // new range index → old index, or -1
	for i := range rs {
		keepRange[i] = slices.IndexFunc(oldRanges, func(o sealedRange) bool { return rs[i].sameRange(&o) })
	}
	// Tracks: the doors, then the ranges.
	tracks := append(keep, keepRange...)
	for i := range keepRange {
		if tracks[len(ds)+i] >= 0 {
			tracks[len(ds)+i] += len(old)
		}
	}
	m.doors, m.ranges = ds, rs
	m.rebuildSpace()
	if m.tb == nil {
		m.tb = newTable(min(m.max, 64), m.max, len(ds), len(rs))
		for l := range m.lists {
			m.lists[l] = slices.Repeat([]ends{{-1, -1}}, len(ds)+len(rs))
		}
		return
	}
	// Sources that lost all their attempts are dropped.
	m.rebuild(min(m.tb.count, m.max), len(ds), len(rs), tracks)
}

func (m *Matcher) rebuildSpace() {
	if m.space == nil {
		m.space = make([]uint64, 65536*2/64)
	}
	clear(m.space)
	for i := range m.doors {
		for _, s := range m.doors[i].seq {
			b := spaceBit(s.Port, s.Proto)
			m.space[b/64] |= 1 << (b % 64)
		}
	}
	for i := range m.ranges {
		r := &m.ranges[i]
		for p := range sealed.Span {
			b := spaceBit(r.base+uint16(p), r.proto)
			m.space[b/64] |= 1 << (b % 64)
		}
	}
}

func spaceBit(port uint16, proto Proto) uint32 {
	return uint32(port)<<1 | uint32(proto-1)&1
}

// InSpace reports whether (port, proto) is a knock of some enabled door:
// a step of a sequence, or a port in a sealed range.
func (m *Matcher) InSpace(port uint16, proto Proto) bool {
	if proto != TCP && proto != UDP {
		return false
	}
	b := spaceBit(port, proto)
	return m.space[b/64]&(1<<(b%64)) != 0
}

// KnockSpace lists the (port, proto) pairs of every enabled door with a
// sequence, sorted. Sealed ranges are in the knock space too (see
// InSpace) but not listed: each is 4096 ports.
func (m *Matcher) KnockSpace() []Step {
	var out []Step
	for i := range m.doors {
		out = append(out, m.doors[i].seq...)
	}
	slices.SortFunc(out, func(a, b Step) int {
		if a.Port != b.Port {
			return int(a.Port) - int(b.Port)
		}
		return int(a.Proto) - int(b.Proto)
	})
	return slices.Compact(out)
}

// Reconfigure replaces the doors. Attempts in progress at doors whose
// name and rules are unchanged survive; all others are forgotten.
//
// Sealed knocks collected in a range survive when the range keeps its
// base, protocol, key and rules; a new key starts every collector afresh.
func (m *Matcher) Reconfigure(doors []Door) error {
	ds, rs, err := m.buildDoors(doors)
	if err != nil {
		return err
	}
	m.setDoors(ds, rs)
	return nil
}

// Stats returns the counters so far.
func (m *Matcher) Stats() Stats {
	s := m.stats
	s.Sources = m.tb.count
	return s
}

// Handle runs one event through every door and appends any completed
// sequence to out. For an event from S and each door D:
//
//  1. D has a target and the event's known destination differs: D does not
//     see it.
//  2. A TCP event whose flags fail D's tcpflags: D ignores it.
//  3. D's attempt is older than its timeout: D resets first.
//  4. The event is D's next step: advance; on the last step D matches and
//     resets.
//  5. The event repeats a step already taken in this attempt: ignored.
//  6. Otherwise it is a wrong knock: D resets, and the same event starts a
//     new attempt if it is D's first step.
//
// Events outside the knock space are counted and dropped before any state
// is touched.
//
// A knock in a sealed range concerns that range alone: doors with a
// sequence neither advance nor reset on it. Subject to the range's target
// and tcpflags, as rules 1 and 2, it writes its byte into the source's
// collector for the range (rule 3 first drops a collector older than
// seq_timeout); when that makes a complete block that differs from the
// last one checked, the block is checked, and a valid one unused before
// matches the door whose id it carries. See docs/sealed.md.
//
// Handle does not allocate once the tables have grown, except to log.
func (m *Matcher) Handle(ev *Event, out []Match) []Match {
	m.stats.Events++
	if !m.InSpace(ev.Port, ev.Proto) {
		m.stats.Outside++
		return out
	}
	// Monotonic stamps from several inputs may interleave slightly out of
	// order; time never runs backwards for the matcher.
	now := max(m.now, int64(ev.Mono))
	m.now = now
	if len(m.ranges) > 0 {
		if r := m.rangeOf(ev.Port, ev.Proto); r >= 0 {
			return m.handleSealed(ev, r, now, out)
		}
	}
	key := ev.Src.As16()
	s := m.tb.lookup(&key)
	if s < 0 {
		s = m.tb.zero() // idle attempts; a slab is taken when one starts
	}
	step := ev.Step()
	took, changed := false, false
	hd := m.tb.hdr(s)
	for d := range m.doors {
		ds := &m.doors[d]
		if ds.disabled || (hd.idle(d) && ds.seq[0] != step) {
			continue // no rule has anything to do
		}
		pr := m.tb.att(s, d)
		if ds.Target.IsValid() && ev.Dst.IsValid() && ev.Dst != ds.Target {
			continue
		}
		if ev.Proto == TCP && !ds.Flags.Accepts(ev.Flags, ev.FlagsKnown) {
			continue
		}
		if pr.step > 0 && pr.gen != ds.gen {
			// Its one-time sequence was used meanwhile.
			m.ended(s, d, &pr.link, pr.step > 1)
			*pr = attempt{}
			changed = true
		}
		if pr.step > 0 && expired(now, pr.start, ds.timeout) {
			m.timedOut(ds, ev.Src, pr.step)
			m.ended(s, d, &pr.link, pr.step > 1)
			*pr = attempt{}
			changed = true
		}
		switch {
		case ds.seq[pr.step] == step:
			took, changed = true, true
			m.stats.Advances++
			switch {
			case int(pr.step)+1 == len(ds.seq):
				if pr.step > 0 {
					m.ended(s, d, &pr.link, pr.step > 1)
					*pr = attempt{}
				}
				out = m.matched(ds, ev, out)
			case pr.step == 0:
				if s == m.tb.zero() {
					s = m.alloc(&key)
					pr, hd = m.tb.att(s, d), m.tb.hdr(s)
				}
				pr.gen, pr.step = ds.gen, 1
				m.started(s, d, &pr.link, now)
			default:
				if pr.step++; pr.step == 2 {
					m.advanced(s)
				}
			}
		case pr.step > 0 && slices.Contains(ds.seq[:pr.step], step):
			took = true
			m.stats.Repeats++
		case pr.step > 0:
			// Rule 6. The wrong knock cannot be the door's first step:
			// that step is always among those taken (rule 5), and an idle
			// door takes it by rule 4. So a reset never restarts here.
			took, changed = true, true
			m.stats.WrongKnocks++
			ds.ctr.WrongKnocks++
			if m.log.Enabled(context.Background(), slog.LevelInfo) {
				m.log.Info("wrong knock; attempt reset", "door", ds.Name, "src", ev.Src,
					"knock", step.String(), "want", ds.seq[pr.step].String(), "step", int(pr.step)+1, "input", ev.Input)
			}
			m.ended(s, d, &pr.link, pr.step > 1)
			*pr = attempt{}
		}
	}
	if !took {
		m.stats.Ignored++
	}
	if changed && s != m.tb.zero() {
		m.settle(s)
	}
	return out
}

// matched reports a completed sequence, consuming a one-time door's
// sequence first.
func (m *Matcher) matched(ds *doorState, ev *Event, out []Match) []Match {
	if ds.OneTime != nil && !m.consume(ds, ev.Src) {
		return out
	}
	m.stats.Matches++
	ds.ctr.Matches++
	return append(out, Match{Door: ds.Name, Src: NormalizeAddr(ev.Src), Dst: ev.Dst, Last: ev.Step(), Time: ev.Time, Input: ev.Input})
}

// consume uses up a one-time door's sequence before its match is reported,
// so that a crash can never make it valid again. It reports whether the
// match may go ahead.
func (m *Matcher) consume(ds *doorState, src netip.Addr) bool {
	if err := ds.OneTime.Consume(); err != nil {
		m.stats.OneTimeErrs++
		m.log.Error("cannot mark one-time sequence used; not opening", "door", ds.Name, "src", src, "err", err)
		return false
	}
	ds.gen++
	if err := ds.loadOneTime(m.log, m.ranges); err != nil {
		ds.disabled, ds.seq = true, nil
		m.log.Error("next one-time sequence is invalid; door disabled", "door", ds.Name, "err", err)
	}
	m.rebuildSpace()
	return true
}

// timedOut counts and logs an attempt that was step knocks in when its
// seq_timeout passed; the caller ends it.
func (m *Matcher) timedOut(ds *doorState, src netip.Addr, step uint8) {
	m.stats.Timeouts++
	ds.ctr.Timeouts++
	// An attempt that got no further than its first knock is what every
	// spoofed packet to a first port leaves behind: logged at info, a
	// flood would become a flood of log lines. It is counted all the same.
	level := slog.LevelInfo
	if step < 2 {
		level = slog.LevelDebug
	}
	if m.log.Enabled(context.Background(), level) {
		m.log.Log(context.Background(), level, "knock timed out", "door", ds.Name, "src", src, "step", int(step), "of", len(ds.seq))
	}
}

// alloc starts tracking key, evicting a source if the table is full.
func (m *Matcher) alloc(key *[16]byte) int32 {
	if m.tb.count >= m.max {
		m.evict()
	}
	s := m.tb.insert(key)
	m.stats.PeakSources = max(m.stats.PeakSources, m.tb.count)
	return s
}

// evict drops the source closest to expiry among those that have made the
// least progress, so that a flood of spoofed first knocks cannot push out
// a real knocker who is already further along: the earliest head of the
// listFirst lists, or when those are empty, of the listAll lists.
func (m *Matcher) evict() {
	victim, best := int32(-1), int64(0)
	consider := func(s int32, e int64) {
		if victim < 0 || e < best {
			victim, best = s, e
		}
	}
	for tr, e := range m.lists[listFirst] {
		if e.head >= 0 {
			consider(e.head, deadline(m.tb.link(e.head, tr).start, m.timeout(tr)))
		}
	}
	if victim < 0 {
		// Everyone has made progress.
		for tr, e := range m.lists[listAll] {
			if e.head >= 0 {
				consider(e.head, deadline(m.tb.link(e.head, tr).start, m.timeout(tr)))
			}
		}
	}
	m.stats.Evictions++
	m.countEviction(victim)
	if m.log.Enabled(context.Background(), slog.LevelDebug) {
		m.log.Debug("source table full; evicting attempt", "src", addrOf(m.tb.hdr(victim).key))
	}
	for tr := range m.tb.off {
		if m.activeAt(victim, tr) {
			m.endTrack(victim, tr)
		}
	}
	m.settle(victim)
}

// endTrack ends source s's attempt at track tr, which is in progress.
func (m *Matcher) endTrack(s int32, tr int) {
	m.ended(s, tr, m.tb.link(s, tr), m.pastFirst(s, tr))
	if tr < len(m.doors) {
		*m.tb.att(s, tr) = attempt{}
	} else {
		*m.tb.col(s, tr) = collector{}
	}
}

// NextExpiry returns when the earliest attempt in progress times out, so
// the caller knows when to call Expire; ok is false when nothing is in
// progress.
func (m *Matcher) NextExpiry() (t time.Duration, ok bool) {
	next := int64(math.MaxInt64)
	for tr, e := range m.lists[listAll] {
		if e.head >= 0 {
			next = min(next, deadline(m.tb.link(e.head, tr).start, m.timeout(tr)))
		}
	}
	if next == math.MaxInt64 {
		return 0, false
	}
	// An attempt is alive while its age is at most the timeout.
	return time.Duration(next + 1), true
}

// Expire resets every attempt that has timed out by now, logging each, and
// forgets sources with nothing left in progress. Calling it on time keeps
// memory for abandoned attempts short-lived and the timeout log prompt.
func (m *Matcher) Expire(now time.Duration) {
	n := int64(now)
	for tr := range m.lists[listAll] {
		to := m.timeout(tr)
		for {
			s := m.lists[listAll][tr].head
			if s < 0 || !expired(n, m.tb.link(s, tr).start, to) {
				break
			}
			m.expireSource(s, n)
		}
	}
}

// expireSource ends every attempt of source s that has timed out by n,
// and those whose one-time sequence was used meanwhile.
func (m *Matcher) expireSource(s int32, n int64) {
	src := addrOf(m.tb.hdr(s).key)
	for d := range m.doors {
		ds := &m.doors[d]
		p := m.tb.att(s, d)
		switch {
		case p.step == 0:
			continue
		case p.gen != ds.gen:
		case expired(n, p.start, ds.timeout):
			m.timedOut(ds, src, p.step)
		default:
			continue
		}
		m.endTrack(s, d)
	}
	for r := range m.ranges {
		tr := len(m.doors) + r
		if c := m.tb.col(s, tr); c.active() && expired(n, c.start, m.ranges[r].timeout) {
			m.sealedTimedOut(&m.ranges[r], src, c)
			m.endTrack(s, tr)
		}
	}
	m.settle(s)
}

// deadline is start+timeout, saturating instead of wrapping, so that no
// timeout, however long, can make an attempt look expired long ago.
func deadline(start, timeout int64) int64 {
	if timeout > math.MaxInt64-start {
		return math.MaxInt64
	}
	return start + timeout
}

// expired reports whether an attempt started at start is past its
// timeout at now. It is defined through deadline so that Expire, which
// pops by deadline, and Handle always agree.
func expired(now, start, timeout int64) bool { return now > deadline(start, timeout) }

// addrOf turns a table key back into the event's address form.
func addrOf(key [16]byte) netip.Addr { return netip.AddrFrom16(key).Unmap() }
