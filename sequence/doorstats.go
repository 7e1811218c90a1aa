package sequence

import (
	"cmp"
	"container/heap"
	"net/netip"
	"slices"
	"time"

	"portknock/sealed"
)

// DoorStats counts what happened at one door, or at one sealed range for
// what concerns a range rather than one of its doors (timeouts, evictions,
// and blocks rejected before their door is known). The counters of a door
// outlive a reload that changes or removes it: they only ever grow, as a
// monitoring system expects of a counter.
type DoorStats struct {
	Matches     uint64 // completed sequences or valid sealed blocks
	WrongKnocks uint64 // attempts reset by a wrong knock
	Timeouts    uint64 // attempts reset because seq_timeout passed
	Evictions   uint64 // attempts dropped because the source table was full
	// SealedRejects counts complete sealed blocks that opened nothing. A
	// range counts those with no door (Key, Door); a door those made for
	// it (Source, Skew, Replay).
	SealedRejects SealedRejects
}

// counters are the matcher's per-door and per-range counters, by name and
// by range label; doorState and sealedRange point into them, so that the
// matcher counts without a map lookup.
type counters struct {
	doors  map[string]*DoorStats
	ranges map[string]*DoorStats
}

func (c *counters) of(m *map[string]*DoorStats, name string) *DoorStats {
	if *m == nil {
		*m = make(map[string]*DoorStats)
	}
	s := (*m)[name]
	if s == nil {
		s = new(DoorStats)
		(*m)[name] = s
	}
	return s
}

// attachCounters points the doors and ranges about to be installed at
// their counters, made on first use.
func (m *Matcher) attachCounters(ds []doorState, rs []sealedRange) {
	for i := range ds {
		ds[i].ctr = m.ctr.of(&m.ctr.doors, ds[i].Name)
	}
	for i := range rs {
		r := &rs[i]
		r.ctr = m.ctr.of(&m.ctr.ranges, r.label)
		r.doorCtr = make([]*DoorStats, len(r.names))
		for j, name := range r.names {
			r.doorCtr[j] = m.ctr.of(&m.ctr.doors, name)
		}
	}
}

// countEviction counts an eviction against every door and range where the
// evicted source s had an attempt in progress.
func (m *Matcher) countEviction(s int32) {
	for tr := range m.tb.off {
		if !m.activeAt(s, tr) {
			continue
		}
		if tr < len(m.doors) {
			m.doors[tr].ctr.Evictions++
		} else {
			m.ranges[tr-len(m.doors)].ctr.Evictions++
		}
	}
}

// countRejection counts a rejected sealed block against the range or, when
// the block named one of its doors, that door.
func (r *sealedRange) countRejection(d int, reason sealed.Reason) {
	switch reason {
	case sealed.ReasonKey, sealed.ReasonDoor:
		r.ctr.SealedRejects.count(reason)
	default:
		r.doorCtr[d].SealedRejects.count(reason)
	}
}

// DoorStats returns copies of the per-door counters, by door name, and of
// the per-range ones, by range ("40000-44095/tcp"). Like every Matcher
// method it must be called on the goroutine that feeds the matcher.
func (m *Matcher) DoorStats() (doors, ranges map[string]DoorStats) {
	doors = make(map[string]DoorStats, len(m.ctr.doors))
	for name, s := range m.ctr.doors {
		doors[name] = *s
	}
	ranges = make(map[string]DoorStats, len(m.ctr.ranges))
	for label, s := range m.ctr.ranges {
		ranges[label] = *s
	}
	return doors, ranges
}

// Attempt is one source's knock in progress at a door or sealed range.
type Attempt struct {
	Door  string // the door; empty for a sealed range
	Range string // the sealed range ("40000-44095/tcp"); empty for a door
	Src   netip.Addr
	Step  int           // knocks taken (positions filled, for a sealed range)
	Of    int           // knocks the sequence has
	Left  time.Duration // until seq_timeout ends the attempt
}

// Attempts lists the attempts in progress at monotonic time now (as
// Event.Mono), at most limit of them, those closest to their timeout
// first, and how many there are in all. It visits every tracked source, so
// it is for an operator's question, not for every event.
func (m *Matcher) Attempts(now time.Duration, limit int) (list []Attempt, total int) {
	n := int64(now)
	// The limit attempts with the least time left so far, the one with
	// the most on top, so that a closer one replaces it.
	var top attemptHeap
	add := func(idx int32, a Attempt) {
		total++
		if len(top) == limit && (limit == 0 || a.Left >= top[0].Left) {
			return
		}
		a.Src = addrOf(m.tb.hdr(idx).key)
		if len(top) < limit {
			heap.Push(&top, a)
			return
		}
		top[0] = a
		heap.Fix(&top, 0)
	}
	nd := len(m.doors)
	m.tb.used(func(s int32) {
		for d := range nd {
			ds := &m.doors[d]
			p := m.tb.att(s, d)
			if p.step == 0 || p.gen != ds.gen || ds.disabled || expired(n, p.start, ds.timeout) {
				continue
			}
			add(s, Attempt{Door: ds.Name, Step: int(p.step), Of: len(ds.seq),
				Left: time.Duration(deadline(p.start, ds.timeout) - n)})
		}
		for r := range m.ranges {
			rg := &m.ranges[r]
			c := m.tb.col(s, nd+r)
			if !c.active() || expired(n, c.start, rg.timeout) {
				continue
			}
			add(s, Attempt{Range: rg.label, Step: c.knocks(), Of: sealed.Knocks,
				Left: time.Duration(deadline(c.start, rg.timeout) - n)})
		}
	})
	list = []Attempt(top)
	slices.SortFunc(list, func(a, b Attempt) int {
		return cmp.Or(cmp.Compare(a.Left, b.Left), a.Src.Compare(b.Src), cmp.Compare(a.Door+a.Range, b.Door+b.Range))
	})
	return list, total
}

// attemptHeap is a max-heap of attempts by time left.
type attemptHeap []Attempt

func (h attemptHeap) Len() int           { return len(h) }
func (h attemptHeap) Less(i, j int) bool { return h[i].Left > h[j].Left }
func (h attemptHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *attemptHeap) Push(x any)        { *h = append(*h, x.(Attempt)) }
func (h *attemptHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
