package textlog

import (
	"net/netip"
	"unsafe"

	"portknock/sequence"
)

// Parser turns one log line into an event. The zero value parses every
// implemented format without a prefix filter. A Parser is not modified by
// Parse, so one value may be shared by goroutines.
type Parser struct {
	// Format pins the line format; FormatAuto tries each implemented one.
	Format Format
	// Prefix, when not empty, keeps only lines logged by the knock rule,
	// because any local user can write a convincing fake line. How the
	// prefix appears depends on the format; for FormatSimple the line must
	// start with Prefix as a field of its own (followed by a blank, or by
	// nothing, which leaves a line without the fields), and blanks around
	// Prefix itself are ignored. The comparison is case-sensitive, like the
	// firewalls' own log prefixes.
	Prefix string
}

// Parse parses line and, when it is an event, fills ev's Src, Dst, Port,
// Proto, Flags and FlagsKnown; Time and Input are the caller's. ev is
// written only when the reason is ReasonNone.
//
// The returned format is the one that recognised the line, which is what a
// FormatAuto parser learned about the line. It is FormatAuto exactly when no
// format recognised it (ReasonUnrecognized). line is not retained.
func (p *Parser) Parse(line []byte, ev *sequence.Event) (Format, Reason) {
	switch p.Format {
	case FormatAuto, FormatSimple:
		r := p.parseSimple(line, ev)
		if r == ReasonUnrecognized {
			return FormatAuto, r
		}
		return FormatSimple, r
	}
	return FormatAuto, ReasonUnrecognized
}

// isBlank reports whether c separates fields. CR is a blank so that lines
// from CRLF writers parse the same as others wherever they were split.
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

func trimBlanks(b []byte) []byte {
	for len(b) > 0 && isBlank(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isBlank(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func trimBlanksString(s string) string {
	for len(s) > 0 && isBlank(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// cutField splits b, which has no leading blanks, at its first run of
// blanks.
func cutField(b []byte) (field, rest []byte) {
	for i, c := range b {
		if isBlank(c) {
			rest = b[i+1:]
			for len(rest) > 0 && isBlank(rest[0]) {
				rest = rest[1:]
			}
			return b[:i], rest
		}
	}
	return b, nil
}

// parseSimple parses "[prefix] dport[/proto] srcip". A line is taken to be
// in this format when, after the prefix, it has exactly two fields and the
// first starts with a digit; only then are bad ports and addresses reported
// as such, so that other formats' lines stay "unrecognized".
func (p *Parser) parseSimple(line []byte, ev *sequence.Event) Reason {
	s := trimBlanks(line)
	if pfx := trimBlanksString(p.Prefix); pfx != "" {
		// The string conversion in a comparison does not allocate.
		if len(s) < len(pfx) || string(s[:len(pfx)]) != pfx || len(s) > len(pfx) && !isBlank(s[len(pfx)]) {
			return ReasonPrefix
		}
		s = trimBlanks(s[len(pfx):])
	}
	portField, rest := cutField(s)
	addrField, extra := cutField(rest)
	if len(portField) == 0 || len(addrField) == 0 || len(extra) != 0 {
		return ReasonUnrecognized
	}
	if c := portField[0]; c < '0' || c > '9' {
		return ReasonUnrecognized
	}

	port := 0
	i := 0
	for ; i < len(portField) && portField[i] != '/'; i++ {
		c := portField[i]
		if c < '0' || c > '9' {
			return ReasonBadPort
		}
		port = port*10 + int(c-'0')
		if port > 65535 {
			return ReasonBadPort
		}
	}
	if port == 0 {
		return ReasonBadPort
	}
	proto := sequence.TCP
	if i < len(portField) {
		switch name := portField[i+1:]; {
		case equalFoldASCII(name, "tcp"):
		case equalFoldASCII(name, "udp"):
			proto = sequence.UDP
		default:
			return ReasonBadProto
		}
	}

	src, ok := parseAddr(addrField)
	if !ok {
		return ReasonBadAddress
	}
	ev.Src = src
	ev.Dst = netip.Addr{}
	ev.Port = uint16(port)
	ev.Proto = proto
	ev.Flags = 0
	ev.FlagsKnown = false
	return ReasonNone
}

// equalFoldASCII reports whether b equals the lower-case ASCII word lower,
// ignoring case.
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// parseAddr parses an IPv4 or IPv6 address, with an optional IPv6 zone,
// into the normalised form events use (unmapped, zone dropped).
//
// netip.ParseAddr takes a string, and converting the field allocates because
// the string escapes into the error value. The field is therefore viewed as
// a string in place: ParseAddr keeps nothing of its input on success (an
// Addr holds only the 128-bit value; zones, which would be interned, are cut
// off here first), and on failure the error, the only thing that refers to
// the bytes, is dropped at once. Characters are checked first so that most
// garbage is rejected without building that error.
func parseAddr(b []byte) (netip.Addr, bool) {
	hasZone := false
	for i, c := range b {
		if c == '%' {
			if i+1 == len(b) {
				return netip.Addr{}, false // ParseAddr rejects an empty zone too
			}
			b, hasZone = b[:i], true
			break
		}
		if !isAddrChar(c) {
			return netip.Addr{}, false
		}
	}
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	if hasZone && !a.Is6() {
		return netip.Addr{}, false // zones exist only on IPv6 addresses
	}
	return sequence.NormalizeAddr(a), true
}

// addrChars is the set of bytes an address may contain (hex digits, '.'
// and ':'), as a bitmap over the low 128 byte values.
const (
	addrCharsLo = 1<<'.' | 1<<':' | (1<<10-1)<<'0' // bytes 0..63
	addrCharsHi = (1<<6-1)<<('a'-64) | (1<<6-1)<<('A'-64)
)

func isAddrChar(c byte) bool {
	switch {
	case c < 64:
		return addrCharsLo>>c&1 != 0
	case c < 128:
		return addrCharsHi>>(c-64)&1 != 0
	}
	return false
}
