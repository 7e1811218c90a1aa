// Package sequence turns logged packets into knocks.
//
// It knows nothing of sockets, files or processes: inputs hand it Events,
// it keeps one small automaton per (source address, door) and reports a Match
// when a source completes a door's sequence. Time comes only from the events'
// monotonic stamps and from the caller of Expire, so every rule can be tested
// with a fake clock.
package sequence

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Proto is the transport protocol of a knock.
type Proto uint8

// The protocols a knock can use. The zero value is not a valid protocol so
// that a forgotten field is caught by validation instead of meaning TCP.
const (
	TCP Proto = iota + 1
	UDP
)

// String returns "tcp" or "udp".
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// ParseProto parses "tcp" or "udp", case-insensitively.
func ParseProto(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp or udp)", s)
}

// TCPFlags is a set of TCP header flags, using the header's own bit layout.
type TCPFlags uint8

// The TCP flags, in the order and bit positions of the TCP header.
const (
	FIN TCPFlags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

var flagNames = [...]string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"}

// String lists the set flags as "syn,ack"; the empty set is "".
func (f TCPFlags) String() string {
	var b strings.Builder
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(name)
		}
	}
	return b.String()
}

// parseFlag returns the flag called name (case-insensitive).
func parseFlag(name string) (TCPFlags, bool) {
	for i, n := range flagNames {
		if strings.EqualFold(name, n) {
			return 1 << i, true
		}
	}
	return 0, false
}

// FlagFilter is a door's tcpflags setting: flags that must be set and flags
// that must be clear. The zero value accepts every packet.
type FlagFilter struct {
	Set   TCPFlags
	Clear TCPFlags
}

// ParseFlagFilter parses knockd's tcpflags syntax: a comma-separated list of
// flag names, each optionally negated with "!", such as "syn,!ack".
func ParseFlagFilter(s string) (FlagFilter, error) {
	var f FlagFilter
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		neg := strings.HasPrefix(part, "!")
		name := strings.TrimSpace(strings.TrimPrefix(part, "!"))
		flag, ok := parseFlag(name)
		if !ok {
			return FlagFilter{}, fmt.Errorf("unknown TCP flag %q (want fin, syn, rst, psh, ack, urg, ece or cwr, optionally with !)", part)
		}
		if neg {
			f.Clear |= flag
		} else {
			f.Set |= flag
		}
	}
	if f.Set&f.Clear != 0 {
		return FlagFilter{}, fmt.Errorf("tcpflags %q both requires and forbids %s", s, f.Set&f.Clear)
	}
	return f, nil
}

// IsZero reports whether the filter accepts every packet.
func (f FlagFilter) IsZero() bool { return f.Set == 0 && f.Clear == 0 }

// Accepts reports whether a packet with the given flags passes the filter.
// Flags that are not known (formats without them) pass any filter, because
// rejecting them would make those formats useless with a filtered door.
func (f FlagFilter) Accepts(flags TCPFlags, known bool) bool {
	if !known {
		return true
	}
	return flags&f.Set == f.Set && flags&f.Clear == 0
}

// String formats the filter in knockd's syntax, "syn,!ack".
func (f FlagFilter) String() string {
	s := f.Set.String()
	for i, name := range flagNames {
		if f.Clear&(1<<i) != 0 {
			if s != "" {
				s += ","
			}
			s += "!" + name
		}
	}
	return s
}

// Step is one knock of a sequence: a destination port and protocol.
type Step struct {
	Port  uint16
	Proto Proto
}

// String formats the step as "7000/tcp".
func (s Step) String() string { return strconv.Itoa(int(s.Port)) + "/" + s.Proto.String() }

// ParseStep parses "7000", "7000/udp" or knockd's "7000:udp". A bare port is
// TCP, as in knockd.
func ParseStep(s string) (Step, error) {
	s = strings.TrimSpace(s)
	portStr, protoStr := s, ""
	if i := strings.IndexAny(s, "/:"); i >= 0 {
		portStr, protoStr = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return Step{}, fmt.Errorf("bad knock %q: port must be 1-65535", s)
	}
	proto := TCP
	if protoStr != "" {
		if proto, err = ParseProto(protoStr); err != nil {
			return Step{}, fmt.Errorf("bad knock %q: %v", s, err)
		}
	}
	return Step{Port: uint16(port), Proto: proto}, nil
}

// ParseSteps parses a knockd sequence line such as "7000,8000:udp,9000".
func ParseSteps(s string) ([]Step, error) {
	var steps []Step
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		st, err := ParseStep(part)
		if err != nil {
			return nil, err
		}
		steps = append(steps, st)
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("empty sequence %q", s)
	}
	return steps, nil
}

// Event is one logged packet, as an input saw it.
type Event struct {
	// Src is the packet's source address: IPv4-mapped IPv6 addresses are
	// unmapped and zones removed, so one host has one key.
	Src netip.Addr
	// Dst is the destination address, or the zero Addr when the input's
	// format does not carry it.
	Dst   netip.Addr
	Port  uint16
	Proto Proto
	// Flags holds the TCP flags when FlagsKnown is set. Formats without
	// flags (ipfw, the simple line) leave FlagsKnown false.
	Flags      TCPFlags
	FlagsKnown bool
	// Time is when the packet was seen, on the wall clock: the kernel's
	// timestamp or the time the input received it. It is for logs only.
	Time time.Time
	// Mono is when the event was received, on the receiver's monotonic
	// clock (any fixed origin). Timeouts are measured on it alone, so that a
	// step of the wall clock (NTP, an admin, a forged log stamp) neither
	// extends nor cuts an attempt.
	Mono time.Duration
	// Input names the input the event came from, for logs.
	Input string
}

// Step returns the event's (port, protocol) pair.
func (e *Event) Step() Step { return Step{Port: e.Port, Proto: e.Proto} }

// NormalizeAddr returns a in the form events use: IPv4-mapped IPv6 unmapped
// and any zone removed.
func NormalizeAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }
