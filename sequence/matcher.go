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
// enough for any real use, about 12 MB at worst with a few doors.
const DefaultMaxSources = 100000

// Options tune a Matcher.
type Options struct {
	// MaxSources bounds how many source addresses have knocks in progress.
	// When the table is full, a new source evicts the attempt closest to
	// expiry among those that have made the least progress.
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

// progress is one source's attempt at one door. A zero step means idle.
type progress struct {
	start int64  // Event.Mono of the attempt's first knock
	gen   uint32 // door generation the attempt was made under
	step  uint8  // knocks taken so far
}

// source is one tracked address. Its attempts live in Matcher.prog and
// Matcher.sprog.
type source struct {
	key    [16]byte
	expiry int64 // monotonic ns (Event.Mono) after which the earliest attempt has timed out
	hidx   int32 // position in heaps[tier]
	// tier is 0 when no attempt is past its first knock, 1 when one is: a
	// plain door's second step, or a second position in a sealed range.
	tier uint8
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

	index map[[16]byte]int32
	srcs  []source
	prog  []progress       // len(srcs) × len(doors)
	sprog []sealedProgress // len(srcs) × len(ranges)
	free  []int32
	heaps [2]expiryHeap

	scratch  []progress     // attempts of a source not tracked yet
	sscratch sealedProgress // the same for a sealed range
	replay   ReplayCache
	max      int
	now      int64 // latest monotonic time seen (Event.Mono), in ns
	log      *slog.Logger
	stats    Stats
	ctr      counters
}

// New builds a matcher for doors, which must have unique names.
func New(doors []Door, opts Options) (*Matcher, error) {
	m := &Matcher{
		index:  make(map[[16]byte]int32),
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
	for t := range m.heaps {
		m.heaps[t] = expiryHeap{m: m, tier: uint8(t)}
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
	prog := make([]progress, len(m.srcs)*len(ds))
	sprog := make([]sealedProgress, len(m.srcs)*len(rs))
	for s := range m.srcs {
		for i, j := range keep {
			if j >= 0 {
				prog[s*len(ds)+i] = m.prog[s*len(old)+j]
			}
		}
		for i, j := range keepRange {
			if j >= 0 {
				sprog[s*len(rs)+i] = m.sprog[s*len(oldRanges)+j]
			}
		}
	}
	m.doors, m.prog = ds, prog
	m.ranges, m.sprog = rs, sprog
	m.scratch = make([]progress, len(ds))
	m.rebuildSpace()
	// Recompute every tracked source: some lost all their attempts.
	for s := range m.srcs {
		if m.srcs[s].hidx >= 0 {
			m.update(int32(s))
		}
	}
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
	s.Sources = len(m.index)
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
	idx, tracked := m.index[key]
	var p []progress
	if tracked {
		p = m.prog[int(idx)*len(m.doors) : int(idx+1)*len(m.doors)]
	} else {
		p = m.scratch
		clear(p)
	}
	step := ev.Step()
	took := false
	for d := range m.doors {
		ds := &m.doors[d]
		if ds.disabled {
			continue
		}
		if ds.Target.IsValid() && ev.Dst.IsValid() && ev.Dst != ds.Target {
			continue
		}
		if ev.Proto == TCP && !ds.Flags.Accepts(ev.Flags, ev.FlagsKnown) {
			continue
		}
		pr := &p[d]
		if pr.step > 0 && pr.gen != ds.gen {
			*pr = progress{} // its one-time sequence was used meanwhile
		}
		if pr.step > 0 && expired(now, pr.start, ds.timeout) {
			m.timedOut(ds, ev.Src, pr)
		}
		switch {
		case ds.seq[pr.step] == step:
			took = true
			out = m.advance(ds, pr, ev, now, out)
		case pr.step > 0 && slices.Contains(ds.seq[:pr.step], step):
			took = true
			m.stats.Repeats++
		case pr.step > 0:
			// Rule 6. The wrong knock cannot be the door's first step:
			// that step is always among those taken (rule 5), and an idle
			// door takes it by rule 4. So a reset never restarts here.
			took = true
			m.stats.WrongKnocks++
			ds.ctr.WrongKnocks++
			if m.log.Enabled(context.Background(), slog.LevelInfo) {
				m.log.Info("wrong knock; attempt reset", "door", ds.Name, "src", ev.Src,
					"knock", step.String(), "want", ds.seq[pr.step].String(), "step", int(pr.step)+1, "input", ev.Input)
			}
			*pr = progress{}
		}
	}
	if !took {
		m.stats.Ignored++
	}
	if tracked {
		m.update(idx)
	} else if slices.ContainsFunc(p, func(pr progress) bool { return pr.step > 0 }) {
		idx = m.alloc(key)
		copy(m.prog[int(idx)*len(m.doors):], p)
		m.update(idx)
	}
	return out
}

// advance takes the door's next step, matching on the last one.
func (m *Matcher) advance(ds *doorState, pr *progress, ev *Event, now int64, out []Match) []Match {
	if pr.step == 0 {
		pr.start, pr.gen = now, ds.gen
	}
	pr.step++
	m.stats.Advances++
	if int(pr.step) < len(ds.seq) {
		return out
	}
	*pr = progress{}
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

func (m *Matcher) timedOut(ds *doorState, src netip.Addr, pr *progress) {
	m.stats.Timeouts++
	ds.ctr.Timeouts++
	// An attempt that got no further than its first knock is what every
	// spoofed packet to a first port leaves behind: logged at info, a
	// flood would become a flood of log lines. It is counted all the same.
	level := slog.LevelInfo
	if pr.step < 2 {
		level = slog.LevelDebug
	}
	if m.log.Enabled(context.Background(), level) {
		m.log.Log(context.Background(), level, "knock timed out", "door", ds.Name, "src", src, "step", int(pr.step), "of", len(ds.seq))
	}
	*pr = progress{}
}

// alloc starts tracking key, evicting a source if the table is full.
func (m *Matcher) alloc(key [16]byte) int32 {
	if len(m.index) >= m.max {
		m.evict()
	}
	var idx int32
	if n := len(m.free); n > 0 {
		idx, m.free = m.free[n-1], m.free[:n-1]
	} else {
		idx = int32(len(m.srcs))
		m.srcs = append(m.srcs, source{})
		m.prog = append(m.prog, make([]progress, len(m.doors))...)
		m.sprog = append(m.sprog, make([]sealedProgress, len(m.ranges))...)
	}
	m.srcs[idx] = source{key: key, hidx: -1}
	m.index[key] = idx
	m.stats.PeakSources = max(m.stats.PeakSources, len(m.index))
	return idx
}

// evict drops the attempt closest to expiry among the sources that have
// made the least progress, so that a flood of spoofed first knocks cannot
// push out a real knocker who is already further along.
func (m *Matcher) evict() {
	t := 0
	if len(m.heaps[0].items) == 0 {
		t = 1
	}
	idx := m.heaps[t].items[0]
	m.stats.Evictions++
	m.countEviction(idx)
	if m.log.Enabled(context.Background(), slog.LevelDebug) {
		m.log.Debug("source table full; evicting attempt", "src", addrOf(m.srcs[idx].key))
	}
	clear(m.prog[int(idx)*len(m.doors) : int(idx+1)*len(m.doors)])
	clear(m.sprog[int(idx)*len(m.ranges) : int(idx+1)*len(m.ranges)])
	m.update(idx)
}

// update recomputes a source's expiry and tier after its attempts changed,
// and stops tracking it when none is left.
func (m *Matcher) update(idx int32) {
	s := &m.srcs[idx]
	expiry, tier, active := int64(math.MaxInt64), uint8(0), false
	for d, pr := range m.prog[int(idx)*len(m.doors) : int(idx+1)*len(m.doors)] {
		if pr.step == 0 {
			continue
		}
		active = true
		expiry = min(expiry, deadline(pr.start, m.doors[d].timeout))
		if pr.step > 1 {
			tier = 1
		}
	}
	if len(m.ranges) > 0 {
		e, t, a := m.sealedState(idx)
		expiry, tier, active = min(expiry, e), max(tier, t), active || a
	}
	if s.hidx >= 0 && (!active || tier != s.tier) {
		m.heaps[s.tier].remove(int(s.hidx))
	}
	if !active {
		delete(m.index, s.key)
		*s = source{hidx: -1}
		m.free = append(m.free, idx)
		return
	}
	changed := s.expiry != expiry
	s.expiry = expiry
	if s.hidx < 0 {
		m.heaps[tier].push(idx)
	} else if changed {
		m.heaps[tier].fix(int(s.hidx))
	}
}

// NextExpiry returns when the earliest attempt in progress times out, so
// the caller knows when to call Expire; ok is false when nothing is in
// progress.
func (m *Matcher) NextExpiry() (t time.Duration, ok bool) {
	next := int64(math.MaxInt64)
	for i := range m.heaps {
		if h := m.heaps[i].items; len(h) > 0 {
			next = min(next, m.srcs[h[0]].expiry)
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
	for t := range m.heaps {
		h := &m.heaps[t]
		for len(h.items) > 0 && m.srcs[h.items[0]].expiry < n {
			idx := h.items[0]
			p := m.prog[int(idx)*len(m.doors) : int(idx+1)*len(m.doors)]
			src := addrOf(m.srcs[idx].key)
			for d := range p {
				ds := &m.doors[d]
				switch {
				case p[d].step == 0:
				case p[d].gen != ds.gen:
					p[d] = progress{}
				case expired(n, p[d].start, ds.timeout):
					m.timedOut(ds, src, &p[d])
				}
			}
			sp := m.sprog[int(idx)*len(m.ranges) : int(idx+1)*len(m.ranges)]
			for r := range sp {
				if sp[r].active() && expired(n, sp[r].start, m.ranges[r].timeout) {
					m.sealedTimedOut(&m.ranges[r], src, &sp[r])
				}
			}
			m.update(idx)
		}
	}
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

// expiryHeap orders tracked sources of one tier by expiry. It is written
// out rather than built on container/heap because boxing an int32 into an
// interface for every Push would allocate on the hot path.
type expiryHeap struct {
	m     *Matcher
	tier  uint8
	items []int32
}

func (h *expiryHeap) less(i, j int) bool {
	return h.m.srcs[h.items[i]].expiry < h.m.srcs[h.items[j]].expiry
}

func (h *expiryHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.m.srcs[h.items[i]].hidx = int32(i)
	h.m.srcs[h.items[j]].hidx = int32(j)
}

func (h *expiryHeap) push(idx int32) {
	h.m.srcs[idx].hidx = int32(len(h.items))
	h.m.srcs[idx].tier = h.tier
	h.items = append(h.items, idx)
	h.up(len(h.items) - 1)
}

func (h *expiryHeap) remove(i int) {
	n := len(h.items) - 1
	idx := h.items[i]
	if i != n {
		h.swap(i, n)
	}
	h.items = h.items[:n]
	h.m.srcs[idx].hidx = -1
	if i != n {
		h.fix(i)
	}
}

func (h *expiryHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *expiryHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down sifts item i towards the leaves and reports whether it moved.
func (h *expiryHeap) down(i int) bool {
	start, n := i, len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h.less(r, l) {
			c = r
		}
		if !h.less(c, i) {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > start
}
