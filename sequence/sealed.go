package sequence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"portknock/sealed"
)

// ReplayCache remembers the sealed blocks that opened a door, so that each
// opens once. The matcher consults it only for a block that passed every
// other check, and reports the match only after Use has returned nil: an
// implementation must have made the block durable by then, so that a crash
// right after the door's action cannot let the same knocks open it again.
type ReplayCache interface {
	// Use records ciphertext c as used, to be remembered at least until
	// the wall clock passes until. It returns sealed.ReasonReplay when c
	// was used before, and any other error when c could not be recorded
	// for sure: the block must then not open.
	Use(c [sealed.BlockSize]byte, until time.Time) error
}

// sealedRange is the port range of the sealed doors that share a base: one
// collector per source, one key, and the doors told apart by id.
type sealedRange struct {
	base    uint16
	proto   Proto
	timeout int64
	flags   FlagFilter
	target  netip.Addr
	key     sealed.Key
	opener  *sealed.Opener
	doors   []sealed.Door // in the order of names
	names   []string
	label   string       // "40000-44095/tcp"
	ctr     *DoorStats   // the range's counters
	doorCtr []*DoorStats // its doors', in the order of names
}

// SealedRejects counts complete sets of knocks that opened nothing, by the
// reason (see sealed.Reason) of their first failed check.
type SealedRejects struct {
	Key    uint64 // no valid block under the range's key
	Door   uint64 // a valid block with an id no door on the range has
	Source uint64 // made for another source address, or unbound where the door binds
	Skew   uint64 // the block's time too far from the event's
	Replay uint64 // the block opened a door before
}

func (s *SealedRejects) count(r sealed.Reason) {
	switch r {
	case sealed.ReasonKey:
		s.Key++
	case sealed.ReasonDoor:
		s.Door++
	case sealed.ReasonSource:
		s.Source++
	case sealed.ReasonSkew:
		s.Skew++
	case sealed.ReasonReplay:
		s.Replay++
	}
}

// buildRanges groups the sealed doors by base and checks what doors on one
// range must share.
func buildRanges(doors []Door) ([]sealedRange, error) {
	var ranges []sealedRange
	for i := range doors {
		d := &doors[i]
		s := d.Sealed
		if s == nil {
			continue
		}
		j := slices.IndexFunc(ranges, func(r sealedRange) bool { return r.base == s.Base })
		if j < 0 {
			ranges = append(ranges, sealedRange{
				base: s.Base, proto: s.Proto, timeout: int64(d.Timeout), flags: d.Flags,
				target: d.Target, key: s.Key, label: s.Range(),
			})
			j = len(ranges) - 1
		}
		r := &ranges[j]
		switch {
		case r.proto != s.Proto:
			return nil, fmt.Errorf("door %q: sealed base %d is used with %s by door %q; doors sharing a base share its protocol", d.Name, s.Base, r.proto, r.names[0])
		case r.key != s.Key:
			return nil, fmt.Errorf("door %q: sealed base %d is used with another key by door %q; doors sharing a base share its key", d.Name, s.Base, r.names[0])
		case r.timeout != int64(d.Timeout) || r.flags != d.Flags || r.target != d.Target:
			return nil, fmt.Errorf("door %q: sealed base %d is used by door %q with another seq_timeout, tcpflags or target; doors sharing a base share them", d.Name, s.Base, r.names[0])
		}
		for k, o := range r.doors {
			if o.ID == s.ID {
				return nil, fmt.Errorf("door %q: sealed base %d: id %d is door %q's already", d.Name, s.Base, s.ID, r.names[k])
			}
		}
		r.doors = append(r.doors, sealed.Door{ID: s.ID, Policy: sealed.Policy{BindSource: s.BindSource, MaxSkew: s.MaxSkew}})
		r.names = append(r.names, d.Name)
	}
	for i := range ranges {
		for j := range i {
			a, b := &ranges[i], &ranges[j]
			if a.proto == b.proto && int(a.base) < int(b.base)+sealed.Span && int(b.base) < int(a.base)+sealed.Span {
				return nil, fmt.Errorf("door %q: sealed range %s overlaps door %q's %s", a.names[0], a.label, b.names[0], b.label)
			}
		}
	}
	return ranges, nil
}

// sealedOwner returns the range step lies in, or nil.
func sealedOwner(ranges []sealedRange, st Step) *sealedRange {
	for i := range ranges {
		r := &ranges[i]
		if r.proto == st.Proto && st.Port-r.base < sealed.Span && st.Port >= r.base {
			return r
		}
	}
	return nil
}

// checkOutsideRanges refuses a plain sequence with a knock in a sealed
// range: the range's collector takes every knock there.
func checkOutsideRanges(ranges []sealedRange, name string, steps []Step) error {
	for _, st := range steps {
		if r := sealedOwner(ranges, st); r != nil {
			return fmt.Errorf("door %q: knock %v lies in door %q's sealed range %s", name, st, r.names[0], r.label)
		}
	}
	return nil
}

// sameRange reports whether knocks collected under o are still good under
// r: the same ports and key, and the same matching rules.
func (r *sealedRange) sameRange(o *sealedRange) bool {
	return r.base == o.base && r.proto == o.proto && r.key == o.key &&
		r.timeout == o.timeout && r.flags == o.flags && r.target == o.target
}

// rangeOf returns the index of the sealed range holding (port, proto), or
// -1.
func (m *Matcher) rangeOf(port uint16, proto Proto) int {
	for i := range m.ranges {
		r := &m.ranges[i]
		// Unsigned: a port below base wraps far above the span.
		if r.proto == proto && port-r.base < sealed.Span {
			return i
		}
	}
	return -1
}

// handleSealed runs an event in sealed range ri: the source's collector
// takes the knock's byte, and when that makes a new complete block, the
// block is checked. See Handle.
func (m *Matcher) handleSealed(ev *Event, ri int, now int64, out []Match) []Match {
	r := &m.ranges[ri]
	if (r.target.IsValid() && ev.Dst.IsValid() && ev.Dst != r.target) ||
		(ev.Proto == TCP && !r.flags.Accepts(ev.Flags, ev.FlagsKnown)) {
		m.stats.Ignored++
		return out
	}
	m.stats.SealedKnocks++
	tr := len(m.doors) + ri
	key := ev.Src.As16()
	s := m.tb.lookup(&key)
	if s < 0 {
		s = m.tb.zero()
	}
	c := m.tb.col(s, tr)
	if c.active() && expired(now, c.start, r.timeout) {
		m.sealedTimedOut(r, ev.Src, c)
		m.endTrack(s, tr)
	}
	if !c.active() {
		if s == m.tb.zero() {
			s = m.alloc(&key)
			c = m.tb.col(s, tr)
		}
		m.started(s, tr, &c.link, now)
	}
	i, b, _ := sealed.Position(r.base, ev.Port)
	before := c.knocks()
	complete := c.set.Put(i, b)
	if before == 1 && c.knocks() == 2 {
		m.advanced(s)
	}
	if complete {
		var done bool
		out, done = m.openSealed(r, c, ev, out)
		if done {
			m.endTrack(s, tr)
		}
	}
	m.settle(s)
	return out
}

// openSealed checks the complete block c holds: key, door, source, skew,
// then the replay cache. A valid block matches its door; an invalid one
// is counted, logged once per attempt, and left to be overwritten by the
// knocks of a retry. done reports whether the attempt is over.
func (m *Matcher) openSealed(r *sealedRange, c *collector, ev *Event, out []Match) (_ []Match, done bool) {
	m.stats.SealedChecks++
	ct := c.set.Ciphertext()
	blk, d, err := r.opener.OpenDoors(ct, ev.Src, ev.Time, r.doors)
	if err == nil {
		// Kept until the block can pass no door's skew check, under any
		// max_skew a reload may bring: its own time plus the largest.
		made := time.Unix(ev.Time.Unix(), 0).Add(blk.Skew(ev.Time))
		until := made.Add(MaxSealedSkew)
		if err = m.replay.Use(ct, until); err != nil && !errors.Is(err, sealed.ReasonReplay) {
			m.stats.ReplayErrs++
			m.log.Error("cannot record the sealed block in the replay cache; not opening",
				"door", r.names[d], "src", ev.Src, "input", ev.Input, "err", err)
			return out, true
		}
	}
	if err != nil {
		reason, _ := err.(sealed.Reason)
		m.stats.SealedRejects.count(reason)
		r.countRejection(d, reason)
		if !c.logged {
			c.logged = true
			m.logRejection(r, d, blk, reason, ev)
		}
		return out, false
	}
	m.stats.Matches++
	r.doorCtr[d].Matches++
	return append(out, Match{Door: r.names[d], Src: NormalizeAddr(ev.Src), Dst: ev.Dst, Last: ev.Step(), Time: ev.Time, Input: ev.Input}), true
}

// logRejection writes the one line an attempt's rejection gets. A set that
// does not decrypt is what noise and scans make, so it is logged at info;
// every other reason needs a valid block, so it is a client to fix or a
// replay, and logged as a warning.
func (m *Matcher) logRejection(r *sealedRange, d int, blk sealed.Block, reason sealed.Reason, ev *Event) {
	level := slog.LevelWarn
	if reason == sealed.ReasonKey {
		level = slog.LevelInfo
	}
	ctx := context.Background()
	if !m.log.Enabled(ctx, level) {
		return
	}
	const msg = "sealed knock rejected"
	switch reason {
	case sealed.ReasonKey:
		m.log.Log(ctx, level, msg, "range", r.label, "src", ev.Src, "input", ev.Input, "reason", reason.String())
	case sealed.ReasonDoor:
		m.log.Log(ctx, level, msg, "range", r.label, "src", ev.Src, "input", ev.Input, "reason", reason.String(), "id", int(blk.ID))
	case sealed.ReasonSkew:
		m.log.Log(ctx, level, msg, "door", r.names[d], "src", ev.Src, "input", ev.Input, "reason", reason.String(),
			"offset", int64(blk.Skew(ev.Time)/time.Second))
	default:
		m.log.Log(ctx, level, msg, "door", r.names[d], "src", ev.Src, "input", ev.Input, "reason", reason.String())
	}
}

// sealedTimedOut ends an attempt at a sealed range whose seq_timeout has
// passed; the caller ends it. Only an incomplete attempt with two knocks
// or more is worth an info line (a lost knock?): one knock is what any
// stray packet leaves, and a rejected block has had its line.
func (m *Matcher) sealedTimedOut(r *sealedRange, src netip.Addr, sp *collector) {
	m.stats.Timeouts++
	r.ctr.Timeouts++
	level := slog.LevelInfo
	if sp.knocks() < 2 || sp.logged {
		level = slog.LevelDebug
	}
	if m.log.Enabled(context.Background(), level) {
		m.log.Log(context.Background(), level, "knock timed out", "range", r.label, "doors", r.names, "src", src,
			"knocks", sp.knocks(), "of", sealed.Knocks)
	}
}
