package sequence

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"portknock/sealed"
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
	// Sealed, when set, makes this a sealed door: it opens for one
	// encrypted block sent as sixteen knocks in its port range, not for a
	// sequence (see package sealed). Sequence and OneTime must be empty.
	// Timeout then bounds the collection of the sixteen knocks.
	Sealed *SealedDoor
}

// MaxSealedSkew is the largest max_skew a sealed door may have. The replay
// cache keeps every accepted block until its own time plus this much, not
// plus its door's max_skew: a reload that raises a door's max_skew can then
// never make a block accepted under the smaller one acceptable again.
const MaxSealedSkew = 10 * time.Minute

// SealedDoor is what makes a door sealed. Doors may share a base (and so a
// port range) when they share the key, the protocol and every matching rule
// (Timeout, Flags, Target), and differ by ID: one block then opens the door
// whose ID it carries.
type SealedDoor struct {
	// Base is the first port of the door's range, Base … Base+4095.
	Base  uint16
	Proto Proto
	// ID is the door id the block must carry.
	ID  byte
	Key sealed.Key
	// MaxSkew bounds |block time − event time|; at most MaxSealedSkew.
	MaxSkew time.Duration
	// BindSource refuses blocks that carry no source tag. A tag, when
	// present, must always be the sender's.
	BindSource bool
}

// Range returns the door's ports as "40000-44095/tcp", for messages.
func (s *SealedDoor) Range() string { return rangeLabel(s.Base, s.Proto) }

func rangeLabel(base uint16, proto Proto) string {
	return fmt.Sprintf("%d-%d/%s", base, int(base)+sealed.Span-1, proto)
}

// contains reports whether step lies in the door's range.
func (s *SealedDoor) contains(st Step) bool {
	return st.Proto == s.Proto && st.Port >= s.Base && int(st.Port) < int(s.Base)+sealed.Span
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
	if s := d.Sealed; s != nil {
		if len(d.Sequence) > 0 || d.OneTime != nil {
			return fmt.Errorf("door %q: a sealed door has no sequence", d.Name)
		}
		if err := sealed.CheckBase(int(s.Base)); err != nil {
			return fmt.Errorf("door %q: %w", d.Name, err)
		}
		if s.Proto != TCP && s.Proto != UDP {
			return fmt.Errorf("door %q: sealed door has no protocol", d.Name)
		}
		if s.MaxSkew <= 0 || s.MaxSkew > MaxSealedSkew {
			return fmt.Errorf("door %q: max_skew %v out of range (0, %v]", d.Name, s.MaxSkew, MaxSealedSkew)
		}
		if s.Key == (sealed.Key{}) {
			return fmt.Errorf("door %q: sealed door has no key", d.Name)
		}
		return nil
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
		(d.OneTime != nil || slices.Equal(d.Sequence, o.Sequence)) &&
		(d.Sealed == nil) == (o.Sealed == nil) && (d.Sealed == nil || *d.Sealed == *o.Sealed)
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
