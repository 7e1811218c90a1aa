package actions

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// DoorStats counts what one door's actions did.
type DoorStats struct {
	// Opens counts doors opened: a start command that succeeded, a set
	// element added for a door without a start command, or the open of a
	// door that only has a timed close. Re-knocks that extend an open are
	// not opens.
	Opens uint64
	// Closes counts stop commands that succeeded.
	Closes uint64
	// Failures counts commands that failed (each run of a retried stop
	// command) and set elements that could not be added.
	Failures uint64
}

// DurationBuckets are the upper bounds, in seconds, of the buckets of
// Durations: from a quick nft call to a command near its time limit.
var DurationBuckets = [...]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Durations is a histogram of how long commands ran.
type Durations struct {
	Count uint64
	Sum   time.Duration
	// Buckets counts the commands that took at most DurationBuckets[i]
	// seconds, each counted in every bucket it fits (cumulative, as
	// Prometheus wants it).
	Buckets [len(DurationBuckets)]uint64
}

// OpenDoor is a (door, address) open now, with when it closes.
type OpenDoor struct {
	Door  string
	Src   netip.Addr
	Until time.Time
}

// doorCounters are a Runner's per-door counters and its histogram. They
// have a lock of their own, never held with Runner.mu, so that counting
// never waits for the scheduler.
type doorCounters struct {
	mu    sync.Mutex
	doors map[string]*DoorStats
	dur   Durations
}

func (c *doorCounters) door(name string) *DoorStats {
	if c.doors == nil {
		c.doors = make(map[string]*DoorStats)
	}
	s := c.doors[name]
	if s == nil {
		s = new(DoorStats)
		c.doors[name] = s
	}
	return s
}

func (c *doorCounters) opened(door string) {
	c.mu.Lock()
	c.door(door).Opens++
	c.mu.Unlock()
}

func (c *doorCounters) closed(door string) {
	c.mu.Lock()
	c.door(door).Closes++
	c.mu.Unlock()
}

func (c *doorCounters) failed(door string) {
	c.mu.Lock()
	c.door(door).Failures++
	c.mu.Unlock()
}

// ran records one command's outcome and how long it ran.
func (c *doorCounters) ran(door, which string, ok bool, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.door(door)
	switch {
	case !ok:
		s.Failures++
	case which == "stop":
		s.Closes++
	default:
		s.Opens++
	}
	c.dur.Count++
	c.dur.Sum += took
	secs := took.Seconds()
	for i, le := range DurationBuckets {
		if secs <= le {
			c.dur.Buckets[i]++
		}
	}
}

// DoorStats returns each door's counters, by name. Doors a reload removed
// keep theirs.
func (r *Runner) DoorStats() map[string]DoorStats {
	r.dc.mu.Lock()
	defer r.dc.mu.Unlock()
	m := make(map[string]DoorStats, len(r.dc.doors))
	for name, s := range r.dc.doors {
		m[name] = *s
	}
	return m
}

// CommandDurations returns how long the commands that ran took.
func (r *Runner) CommandDurations() Durations {
	r.dc.mu.Lock()
	defer r.dc.mu.Unlock()
	return r.dc.dur
}

// OpenDoors lists the doors open at now, at most limit of them, those
// closing first first, and how many there are in all: every (door,
// address) whose start has run and whose close is pending, and every set
// element added that has not expired yet.
func (r *Runner) OpenDoors(now time.Time, limit int) (list []OpenDoor, total int) {
	r.mu.Lock()
	m := r.m
	until := make(map[openKey]time.Time, len(m.open)+len(m.elems))
	for k, e := range m.open {
		if e.state == stateOpen && e.started && !e.startFailed {
			until[k] = e.deadline
		}
	}
	for k, el := range m.elems {
		if el.added && el.expires.After(now) && el.expires.After(until[k]) {
			until[k] = el.expires
		}
	}
	r.mu.Unlock()
	for k, t := range until {
		total++
		list = append(list, OpenDoor{Door: k.door, Src: k.src, Until: t})
	}
	slices.SortFunc(list, func(a, b OpenDoor) int {
		return cmp.Or(a.Until.Compare(b.Until), cmp.Compare(a.Door, b.Door), a.Src.Compare(b.Src))
	})
	if len(list) > limit {
		list = list[:limit]
	}
	return list, total
}
