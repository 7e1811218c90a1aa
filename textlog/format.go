package textlog

import (
	"fmt"
	"strconv"
)

// Format names a text log dialect. Inputs either pin one format or use
// FormatAuto, which tries every implemented format on each line, because a
// single log stream (syslog, a journal) often mixes dialects.
type Format uint8

// The implemented formats. New formats are appended, so the values are not
// stable across versions and must not be stored; use the names.
const (
	// FormatAuto recognises each line by its shape. As a result of Parse it
	// means that no format recognised the line.
	FormatAuto Format = iota
	// FormatSimple is Kroon's ulogport protocol: "dport srcip" or
	// "dport/proto srcip", one logged packet per line.
	FormatSimple

	formatCount
)

// formatNames lists every name the configuration may use, including
// formats that are planned but not written yet, so that a configuration
// naming one of them gets a clear "not implemented" error instead of
// "unknown format".
var formatNames = [...]struct {
	name string
	f    Format
	impl bool
}{
	{"auto", FormatAuto, true},
	{"simple", FormatSimple, true},
	{"netfilter", 0, false},
	{"ulogd", 0, false},
	{"journal", 0, false},
	{"pflog", 0, false},
	{"ipfw", 0, false},
	{"filterlog", 0, false},
}

// ParseFormat returns the format with the given configuration name. Names
// are exact (lower case) because they come from a strict config file.
func ParseFormat(s string) (Format, error) {
	for _, n := range formatNames {
		if n.name != s {
			continue
		}
		if !n.impl {
			return 0, fmt.Errorf("format %q is not implemented yet", s)
		}
		return n.f, nil
	}
	return 0, fmt.Errorf("unknown format %q (want auto, simple, netfilter, ulogd, journal, pflog, ipfw or filterlog)", s)
}

// String returns the configuration name of the format.
func (f Format) String() string {
	for _, n := range formatNames {
		if n.impl && n.f == f {
			return n.name
		}
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// valid reports whether f is a format this version can parse.
func (f Format) valid() bool { return f < formatCount }

// Reason says why a line is not an event. Skipped lines are counted per
// reason so that an operator can tell a misconfigured prefix or format
// (everything skipped for one reason) from ordinary noise.
type Reason uint8

// Reasons for skipping a line. Reasons are appended as formats need them
// (a packet that is outbound, a fragment, a packet without ports, an ICMP
// error quoting another packet), so the values must not be stored.
const (
	// ReasonNone means the line is an event.
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
	// ReasonPrefix means the line did not carry the input's prefix, so it
	// was not logged by the knock rule (or was written by someone else).
	ReasonPrefix
	// ReasonTooLong means the line exceeded the input's maximum length
	// and was skipped unread.
	ReasonTooLong

	reasonCount
)

var reasonNames = [reasonCount]string{
	ReasonNone:         "none",
	ReasonUnrecognized: "unrecognized",
	ReasonBadAddress:   "bad_address",
	ReasonBadPort:      "bad_port",
	ReasonBadProto:     "bad_proto",
	ReasonPrefix:       "prefix",
	ReasonTooLong:      "too_long",
}

// String returns a short snake_case name, suitable as a log value or a
// metric label.
func (r Reason) String() string {
	if r < reasonCount {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}
