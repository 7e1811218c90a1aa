// Package input is the contract every knock input keeps with the daemon:
// how an event is handed on (Emit), why what was read is not an event
// (Reason), and how the counters are read (Stats). Text sources, syslog
// listeners and NFLOG groups differ in what they read and whether they may
// wait; the daemon, its logs and a metrics exporter see them all alike.
package input

import (
	"context"
	"strconv"

	"portknock/sequence"
)

// Input is a source of knock events.
type Input interface {
	// Run reads until ctx ends (or the input does, as stdin may), calling
	// emit for every event. It returns nil when ctx ended, and an error
	// that names the input when it cannot go on.
	Run(ctx context.Context, emit Emit) error
	// Stats returns the counters so far; it is safe while Run runs.
	Stats() Stats
}

// Mode says what Emit does when the consumer has no room for an event.
type Mode uint8

const (
	// Wait waits for room until the consumer stops. An input that can be
	// slowed down (a pipe, a file, a TCP sender) waits, and nothing it
	// read is lost.
	Wait Mode = iota
	// NoWait returns at once. An input whose reader must never block
	// (NFLOG: the kernel drops what the socket cannot hold) counts the
	// event as dropped instead.
	NoWait
)

// Emit hands an event on and reports whether it was taken; an event not
// taken is the input's to count as dropped. ev stays the input's, which
// reuses it for the next event, so Emit copies what it keeps. Emit is safe
// for concurrent use: an input may call it from several goroutines.
type Emit func(ev *sequence.Event, mode Mode) bool

// Reason says why something an input read is not an event. Skipped input
// is counted per reason so that an operator can tell a misconfigured
// prefix or format (everything skipped for one reason) from ordinary
// noise.
type Reason uint8

// Reasons for skipping a line or a packet. Reasons are appended as inputs
// need them, so the values must not be stored: use String.
const (
	// ReasonNone means it is an event.
	ReasonNone Reason = iota
	// ReasonUnrecognized means no format recognised the line's shape.
	ReasonUnrecognized
	// ReasonBadAddress means the line has the shape of a format but its
	// source address is not an IP address.
	ReasonBadAddress
	// ReasonBadPort means the port is not a number in 1..65535.
	ReasonBadPort
	// ReasonBadProto means the protocol is neither tcp nor udp.
	ReasonBadProto
	// ReasonPrefix means the line or packet did not carry the input's
	// prefix, so it was not logged by the knock rule (or was written by
	// someone else).
	ReasonPrefix
	// ReasonTooLong means the line or message exceeded the input's
	// maximum length and was skipped unread.
	ReasonTooLong
	// ReasonOutbound means the packet was leaving the host (an OUTPUT or
	// POSTROUTING rule, or a log line with an output interface but no
	// input one).
	ReasonOutbound
	// ReasonFragment means a non-first fragment: it carries no ports.
	ReasonFragment
	// ReasonNoPorts means a protocol without ports (ICMP, ESP, ...). The
	// ports an ICMP error quotes from another packet are never a knock.
	ReasonNoPorts
	// ReasonTruncated means the line or packet was cut short (by syslog's
	// size limit or the snap length, say) before the fields a knock needs.
	ReasonTruncated
	// ReasonProgram means the record is in the message of a program other
	// than the one its firewall logs as: another program's text, or a
	// relay that renames the firewall.
	ReasonProgram
	// ReasonNotIP means a logged packet that is neither IPv4 nor IPv6.
	ReasonNotIP

	// NumReasons is the number of reasons, ReasonNone included: the
	// length of Stats.Skipped.
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonNone:         "none",
	ReasonUnrecognized: "unrecognized",
	ReasonBadAddress:   "bad_address",
	ReasonBadPort:      "bad_port",
	ReasonBadProto:     "bad_proto",
	ReasonPrefix:       "prefix",
	ReasonTooLong:      "too_long",
	ReasonOutbound:     "outbound",
	ReasonFragment:     "fragment",
	ReasonNoPorts:      "no_ports",
	ReasonTruncated:    "truncated",
	ReasonProgram:      "program",
	ReasonNotIP:        "not_ip",
}

// String returns a short snake_case name, suitable as a log value or a
// metric label.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Stats is a snapshot of an input's counters, the same shape for every
// kind of input. Read == Events + Dropped + the sum of Skipped, give or
// take what is in flight.
type Stats struct {
	// Unit names what Read counts, in the plural ("lines", "packets"),
	// fit for a log key.
	Unit string
	// Read counts what the input read and judged: lines for a text
	// source or a syslog listener (an oversize message counts as one line
	// skipped with ReasonTooLong), logged packets for NFLOG.
	Read uint64
	// Events counts events handed on and taken.
	Events uint64
	// Dropped counts events Emit did not take: the queue was full for an
	// input that does not wait, or the daemon was stopping.
	Dropped uint64
	// Skipped counts what was read but is not an event, indexed by Reason.
	Skipped [NumReasons]uint64
	// Counters are the kind's own counters (a listener's denied senders,
	// NFLOG's kernel drops), in an order fixed per kind.
	Counters []Counter
}

// Counter is one of an input kind's own counters.
type Counter struct {
	// Name is snake_case, fit for a log key or a metric name.
	Name string
	// Value is the count, or the level for a gauge.
	Value uint64
	// Gauge marks a level that goes down as well as up (connections
	// open now) rather than a count since start.
	Gauge bool
}

// SkippedTotal is the sum of Skipped.
func (s Stats) SkippedTotal() uint64 {
	var n uint64
	for _, c := range s.Skipped {
		n += c
	}
	return n
}

// Counter returns the value of the named kind's own counter, and 0 when
// the input has none of that name.
func (s Stats) Counter(name string) uint64 {
	for _, c := range s.Counters {
		if c.Name == name {
			return c.Value
		}
	}
	return 0
}

// Has reports whether the input has a counter of that name, so that a
// caller reading by name can tell a zero from a misspelling.
func (s Stats) Has(name string) bool {
	for _, c := range s.Counters {
		if c.Name == name {
			return true
		}
	}
	return false
}
