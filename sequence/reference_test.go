package sequence

import (
	"net/netip"
	"slices"
	"time"
)

// refMatcher is the matching rules written as plainly as possible, with no
// regard for speed or memory: the fast Matcher must agree with it.
type refMatcher struct {
	doors    []Door
	attempts map[netip.Addr]map[string]*refAttempt
	wrong    int
	timeouts int
}

type refAttempt struct {
	taken []Step
	start time.Duration
}

func newRef(doors []Door) *refMatcher {
	return &refMatcher{doors: doors, attempts: map[netip.Addr]map[string]*refAttempt{}}
}

func (r *refMatcher) inSpace(s Step) bool {
	for _, d := range r.doors {
		if slices.Contains(d.Sequence, s) {
			return true
		}
	}
	return false
}

func (r *refMatcher) handle(ev Event) []Match {
	step := Step{ev.Port, ev.Proto}
	if !r.inSpace(step) {
		return nil
	}
	var out []Match
	src := NormalizeAddr(ev.Src)
	for _, d := range r.doors {
		if d.Target.IsValid() && ev.Dst.IsValid() && d.Target != ev.Dst {
			continue
		}
		if ev.Proto == TCP && ev.FlagsKnown {
			if ev.Flags&d.Flags.Set != d.Flags.Set || ev.Flags&d.Flags.Clear != 0 {
				continue
			}
		}
		if r.attempts[src] == nil {
			r.attempts[src] = map[string]*refAttempt{}
		}
		a := r.attempts[src][d.Name]
		if a != nil && ev.Mono-a.start > d.Timeout {
			r.timeouts++
			a = nil
		}
		var next Step
		if a == nil {
			next = d.Sequence[0]
		} else {
			next = d.Sequence[len(a.taken)]
		}
		switch {
		case step == next:
		case a != nil && slices.Contains(a.taken, step):
			r.attempts[src][d.Name] = a
			continue
		default:
			if a != nil {
				r.wrong++
				a = nil
			}
			if step != d.Sequence[0] {
				delete(r.attempts[src], d.Name)
				continue
			}
		}
		if a == nil {
			a = &refAttempt{start: ev.Mono}
		}
		a.taken = append(a.taken, step)
		if len(a.taken) == len(d.Sequence) {
			out = append(out, Match{Door: d.Name, Src: src, Dst: ev.Dst, Last: step, Time: ev.Time, Input: ev.Input})
			a = nil
		}
		if a == nil {
			delete(r.attempts[src], d.Name)
		} else {
			r.attempts[src][d.Name] = a
		}
	}
	if len(r.attempts[src]) == 0 {
		delete(r.attempts, src)
	}
	return out
}

func (r *refMatcher) expire(now time.Duration) {
	for src, doors := range r.attempts {
		for _, d := range r.doors {
			if a := doors[d.Name]; a != nil && now-a.start > d.Timeout {
				r.timeouts++
				delete(doors, d.Name)
			}
		}
		if len(doors) == 0 {
			delete(r.attempts, src)
		}
	}
}
