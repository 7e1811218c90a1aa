// Package knock is the client side of port knocking: it turns the command
// line of portknock into a plan (host, knocks, delay, address family),
// resolves the host once and sends each knock as one TCP SYN or one UDP
// datagram. A plan may instead knock on a sealed door: then the knocks are
// one block sealed with the door's key (package sealed), made once the host
// is resolved, because the block is bound to the address the daemon will
// see. Key files are package keyfile's.
//
// Resolution and sending sit behind small interfaces so that everything but
// the sockets themselves can be tested without a network, and so that no
// test ever has to send a packet to learn whether a plan is right.
package knock

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"portknock/sealed"
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

// maxDelayMS is the longest delay between knocks -d takes: a day.
const maxDelayMS = 24 * 60 * 60 * 1000

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
	// Args are the positional arguments: the host, then the knocks; for a
	// sealed knock, the host and the door's base port.
	Args []string

	// KeyFile names a sealed door's key file (--key). It makes the knock a
	// sealed one; ID and Source are only meaningful with it.
	KeyFile string
	// ID is the sealed door's id as given (--id), "" for the default 0.
	ID string
	// Source is the address to bind the block to as given (--source): an
	// address, "none" for an unbound block, or "" to ask the kernel.
	Source string
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
	// Sealed, when not nil, makes this a sealed knock: Knocks is empty,
	// and the knocks are made from Sealed once the host is resolved.
	Sealed *Sealed
}

// Sealed is the sealed-door part of a plan.
type Sealed struct {
	// Base is the door's base port: it owns Base .. Base+4095.
	Base uint16
	// Proto is the door's protocol: every knock uses it.
	Proto sequence.Proto
	// ID is the door id the block carries.
	ID byte
	// KeyFile is where the key comes from; Key is filled in by whoever
	// reads it (ReadKeyFile), since a plan is made without touching files.
	KeyFile string
	Key     sealed.Key
	// Source is the address the block is bound to. The zero Addr, with
	// Unbound false, means the address the kernel picks to reach the host;
	// Unbound makes a block with no source tag (--source none).
	Source  netip.Addr
	Unbound bool
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
	// A day between knocks outlasts any seq_timeout; the bound also keeps
	// the delay a valid Duration wherever int is 32 or 64 bits.
	if o.DelayMS > maxDelayMS {
		return p, usagef("delay %d ms is too long", o.DelayMS)
	}
	p.Delay = time.Duration(o.DelayMS) * time.Millisecond
	if o.KeyFile != "" {
		return o.sealedPlan(p)
	}
	if o.ID != "" || o.Source != "" {
		return p, usagef("--id and --source are for sealed doors and need --key")
	}
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

// sealedPlan finishes p, already holding the family and delay, as a sealed
// knock: the arguments are the host and the base port.
func (o Options) sealedPlan(p Plan) (Plan, error) {
	switch len(o.Args) {
	case 0:
		return p, usagef("missing host and BASE")
	case 1:
		return p, usagef("no BASE given for host %q: a sealed knock needs the door's base port", o.Args[0])
	case 2:
	default:
		return p, usagef("a sealed knock takes host and BASE only, not the knocks: %q", o.Args[2:])
	}
	p.Host = o.Args[0]
	if strings.TrimSpace(p.Host) == "" {
		return p, usagef("empty host")
	}
	s := &Sealed{KeyFile: o.KeyFile, Proto: sequence.TCP}
	if o.UDP {
		s.Proto = sequence.UDP
	}
	var err error
	if s.Base, err = ParseBase(o.Args[1]); err != nil {
		return p, err
	}
	if s.ID, err = ParseID(o.ID); err != nil {
		return p, err
	}
	if s.Source, s.Unbound, err = ParseSource(o.Source); err != nil {
		return p, err
	}
	p.Sealed = s
	return p, nil
}

// ParseBase reads a sealed door's base port: a decimal number from 1 to
// 61440, so that the door's 4096 ports fit below 65536. The protocol is not
// part of it; a "40000:udp" gets a hint to use -u instead.
func ParseBase(s string) (uint16, error) {
	if i := strings.IndexAny(s, "/:"); i >= 0 {
		return 0, usagef("bad BASE %q: a sealed door's protocol is chosen with -u (UDP) or left to the default (TCP), not written after the port", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || sealed.CheckBase(int(n)) != nil {
		return 0, usagef("bad BASE %q: want the door's base port, 1-%d (the door owns BASE..BASE+%d)", s, sealed.MaxBase, sealed.Span-1)
	}
	return uint16(n), nil
}

// ParseID reads a door id, 0 to 255; "" is 0.
func ParseID(s string) (byte, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, usagef("bad --id %q: want a door id, 0-255", s)
	}
	return byte(n), nil
}

// ParseSource reads --source: "" (the kernel's choice, returned as the
// zero Addr), "none" (unbound) or an address, bracketed or not. An
// IPv4-mapped IPv6 address is unmapped and a zone dropped, as the source
// tag does (docs/sealed.md). Addresses a packet can never come from are
// refused: the daemon would never see them.
func ParseSource(s string) (src netip.Addr, unbound bool, err error) {
	switch s {
	case "":
		return netip.Addr{}, false, nil
	case "none":
		return netip.Addr{}, true, nil
	}
	name := s
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		name = name[1 : len(name)-1]
	}
	a, perr := netip.ParseAddr(name)
	if perr != nil {
		return netip.Addr{}, false, usagef("bad --source %q: want an IP address, or none for an unbound block", s)
	}
	a = a.Unmap().WithZone("")
	if a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, false, usagef("bad --source %q: no packet comes from that address; give the address the daemon sees, or none", s)
	}
	return a, false, nil
}
