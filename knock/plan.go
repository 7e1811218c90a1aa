// Package knock is the client side of port knocking: it turns the command
// line of portknock into a plan (host, knocks, delay, address family),
// resolves the host once and sends each knock as one TCP SYN or one UDP
// datagram.
//
// Resolution and sending sit behind small interfaces so that everything but
// the sockets themselves can be tested without a network, and so that no
// test ever has to send a packet to learn whether a plan is right.
package knock

import (
	"fmt"
	"math"
	"strings"
	"time"

	"portknock/sequence"
)

// Family restricts which address family the host may resolve to.
type Family uint8

// The families a plan can ask for. AnyFamily takes the resolver's first
// answer, whichever family it is.
const (
	AnyFamily Family = iota
	IPv4
	IPv6
)

// String names the family as the flags do.
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "any"
}

// Network is the network name net.Resolver.LookupNetIP expects, so that the
// resolver is asked only for the family we will use: asking for both and
// filtering would wait on a lookup whose answer we throw away.
func (f Family) Network() string {
	switch f {
	case IPv4:
		return "ip4"
	case IPv6:
		return "ip6"
	}
	return "ip"
}

// UsageError reports a command line that cannot be turned into a plan. It is
// a type of its own because the client exits with a different status for
// it (2) than for a knock that could not be sent (1).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// Options are the client's command-line choices as given, before any
// checking; Plan turns them into something that can run.
type Options struct {
	// UDP makes knocks without an explicit protocol UDP instead of TCP
	// (knock's -u).
	UDP bool
	// DelayMS is the wait between knocks in milliseconds (knock's -d).
	DelayMS int
	// IPv4 and IPv6 force the address family (-4, -6).
	IPv4, IPv6 bool
	// Args are the positional arguments: the host, then the knocks.
	Args []string
}

// Plan is a checked, ready-to-run knock sequence. The host is still a name:
// it is resolved once, when the plan runs.
type Plan struct {
	Host   string
	Family Family
	Knocks []sequence.Step
	// Delay is the wait between two knocks; none follows the last one,
	// since nothing comes after it that could need the gap.
	Delay time.Duration
}

// Plan checks the options and builds the plan they describe.
func (o Options) Plan() (Plan, error) {
	var p Plan
	switch {
	case o.IPv4 && o.IPv6:
		return p, usagef("-4 and -6 cannot be used together")
	case o.IPv4:
		p.Family = IPv4
	case o.IPv6:
		p.Family = IPv6
	}
	if o.DelayMS < 0 {
		return p, usagef("delay %d ms is negative", o.DelayMS)
	}
	if int64(o.DelayMS) > math.MaxInt64/int64(time.Millisecond) {
		return p, usagef("delay %d ms is too long", o.DelayMS)
	}
	p.Delay = time.Duration(o.DelayMS) * time.Millisecond
	switch len(o.Args) {
	case 0:
		return p, usagef("missing host and knocks")
	case 1:
		return p, usagef("no knocks given for host %q", o.Args[0])
	}
	p.Host = o.Args[0]
	if strings.TrimSpace(p.Host) == "" {
		return p, usagef("empty host")
	}
	def := sequence.TCP
	if o.UDP {
		def = sequence.UDP
	}
	p.Knocks = make([]sequence.Step, 0, len(o.Args)-1)
	for _, arg := range o.Args[1:] {
		k, err := ParseKnock(arg, def)
		if err != nil {
			return Plan{}, &UsageError{Msg: err.Error()}
		}
		p.Knocks = append(p.Knocks, k)
	}
	return p, nil
}

// ParseKnock parses one knock, "7000", "7000:udp" or "7000/udp", with the
// same rules as a door's sequence in the daemon's configuration, so a
// sequence can be copied from one to the other. A bare port takes the
// protocol def, which is how -u works.
func ParseKnock(s string, def sequence.Proto) (sequence.Step, error) {
	k, err := sequence.ParseStep(s)
	if err != nil {
		return sequence.Step{}, err
	}
	i := strings.IndexAny(s, "/:")
	if i < 0 {
		k.Proto = def
		return k, nil
	}
	// The shared parser reads "7000/" as a bare TCP port; on a command line
	// that is more likely a truncated "7000/udp", and knocking the wrong
	// protocol would fail silently at the server.
	if strings.TrimSpace(s[i+1:]) == "" {
		return sequence.Step{}, fmt.Errorf("bad knock %q: protocol missing after %q", s, s[i])
	}
	return k, nil
}
