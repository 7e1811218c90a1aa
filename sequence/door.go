package sequence

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// MaxSteps is the longest sequence a door may have. It keeps per-source
// progress in one byte.
const MaxSteps = 255

// Door is one knock sequence and the rules for matching it. What happens
// when it matches is not the matcher's business: actions are looked up by
// the door's name.
type Door struct {
	Name string
	// Sequence is the knock sequence. It is ignored when OneTime is set.
	Sequence []Step
	// Timeout bounds a whole attempt, measured from its first knock.
	Timeout time.Duration
	// Flags filters TCP events; events that fail it are ignored, not wrong.
	Flags FlagFilter
	// Target, when valid, restricts the door to packets sent to this
	// address. Events whose destination is unknown still reach the door.
	Target netip.Addr
	// OneTime, when set, supplies the sequence instead of Sequence and is
	// told durably when it has been used.
	OneTime OneTimeSequences
}

// OneTimeSequences is a list of sequences each usable once, such as
// knockd's one_time_sequences file. The matcher reads the current sequence
// and, when a source completes it, consumes it before reporting the match:
// an implementation must make the consumption durable before returning, so
// that a crash can never make a used sequence valid again.
type OneTimeSequences interface {
	// Current returns the sequence in force, or ok=false when every
	// sequence has been used.
	Current() (steps []Step, ok bool)
	// Consume marks the current sequence used and durable, and moves on to
	// the next one.
	Consume() error
}

// Validate checks a door on its own. A OneTime door's sequence is checked
// when the matcher reads it.
func (d *Door) Validate() error {
	if d.Name == "" {
		return errors.New("door has no name")
	}
	if d.Timeout <= 0 {
		return fmt.Errorf("door %q: seq_timeout must be positive", d.Name)
	}
	if d.OneTime != nil {
		return nil
	}
	return validateSteps(d.Name, d.Sequence)
}

func validateSteps(name string, steps []Step) error {
	if len(steps) == 0 {
		return fmt.Errorf("door %q: empty sequence", name)
	}
	if len(steps) > MaxSteps {
		return fmt.Errorf("door %q: sequence has %d knocks, at most %d allowed", name, len(steps), MaxSteps)
	}
	for _, s := range steps {
		if s.Port == 0 || (s.Proto != TCP && s.Proto != UDP) {
			return fmt.Errorf("door %q: bad knock %v", name, s)
		}
	}
	return nil
}

// sameRules reports whether two doors match the same packets in the same
// way, so that progress made under one is valid under the other.
func (d *Door) sameRules(o *Door) bool {
	return d.Name == o.Name && d.Timeout == o.Timeout && d.Flags == o.Flags &&
		d.Target == o.Target && d.OneTime == o.OneTime &&
		(d.OneTime != nil || slices.Equal(d.Sequence, o.Sequence))
}

// Match reports that a source completed a door's sequence.
type Match struct {
	Door string
	Src  netip.Addr
	// Dst is the last knock's destination, when known.
	Dst netip.Addr
	// Last is the step that completed the sequence.
	Last Step
	// Time is the completing event's time.
	Time time.Time
	// Input names the input that saw the completing knock.
	Input string
}
