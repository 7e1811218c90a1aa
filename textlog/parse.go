package textlog

import (
	"bytes"
	"net/netip"
	"time"
	"unsafe"

	"portknock/sequence"
)

// Parser turns one log line into an event. The zero value parses every
// implemented format without a prefix filter, each format's own programs
// only, and without placing stamps that lack a year. A Parser is not
// modified by Parse, so one value may be shared by goroutines.
type Parser struct {
	// Format pins the line format; FormatAuto tries each implemented one.
	Format Format
	// Prefix, when not empty, keeps only lines logged by the knock rule,
	// because any local user can write a convincing fake line. How the
	// prefix appears depends on the format; for FormatSimple the message
	// must start with Prefix as a field of its own (followed by a blank, or
	// by nothing, which leaves a line without the fields), and blanks
	// around Prefix itself are ignored. The comparison is case-sensitive,
	// like the firewalls' own log prefixes.
	Prefix string
	// Programs, when not empty, are the programs whose messages may carry
	// records, in place of each format's own (DefaultPrograms): for relays
	// that log a firewall under another name. A record counts only where it
	// begins the message of such a program, or of a line that names none
	// (see frame.go). A simple-format line inside a syslog header counts
	// only when Programs names its program. The journal format is not
	// affected: it trusts only entries whose _TRANSPORT is "kernel".
	Programs []string
	// Now is the time against which stamps without a year (RFC 3164,
	// ulogd's LOGEMU, OpenBSD's tcpdump -ttt) are placed in one: the latest
	// year that puts the stamp no more than a week after Now. With Now
	// zero such stamps give no time. A Source needs none, since it stamps
	// events with the time it read them, so parsing reads no clock; a
	// caller that shows the logged time sets Now to the time it read the
	// line, or to a recent time it moves on now and then.
	Now time.Time
	// Location is the zone of stamps without an offset; time.Local if nil.
	Location *time.Location
}

// Parse parses line and, when it is an event, fills ev's Src, Dst, Port,
// Proto, Flags and FlagsKnown, and sets Time to the time the line carries
// (the zero time when it carries none; a Source replaces it with the time
// the line was read). Input is the caller's. ev is written only when the
// reason is ReasonNone.
//
// The returned format is the one that recognised the line, which is what a
// FormatAuto parser learned about the line. It is FormatAuto exactly when no
// format recognised it (ReasonUnrecognized). line is not retained.
func (p *Parser) Parse(line []byte, ev *sequence.Event) (Format, Reason) {
	// The framing is read once, by the first format that needs it: most
	// formats turn most lines down on a marker of their own first.
	var fr frame
	if p.Format != FormatAuto {
		r := p.parseAs(p.Format, line, &fr, ev)
		if r == ReasonUnrecognized {
			return FormatAuto, r
		}
		return p.Format, r
	}
	// A prefix or program mismatch in one format does not settle the
	// line: the simple format, say, calls every line not starting with the
	// prefix a mismatch, and ulogd a kernel line from syslog one of
	// program. It is the answer only if no later format takes the line.
	first, firstReason := FormatAuto, ReasonUnrecognized
	for _, f := range autoOrder {
		if !implemented[f] {
			continue
		}
		switch r := p.parseAs(f, line, &fr, ev); r {
		case ReasonUnrecognized:
		case ReasonPrefix, ReasonProgram:
			if first == FormatAuto {
				first, firstReason = f, r
			}
		default:
			return f, r
		}
	}
	return first, firstReason
}

// parseAs parses line as format f; fr holds the line's framing once read
// (frame.read). Each format's parser sets ev.Time to the time the line
// carries, or to the zero time when it carries none.
func (p *Parser) parseAs(f Format, line []byte, fr *frame, ev *sequence.Event) Reason {
	switch f {
	case FormatSimple:
		return p.parseSimple(line, fr, ev)
	case FormatNetfilter:
		return p.parseNetfilter(line, fr, ev)
	case FormatUlogd:
		return p.parseUlogd(line, fr, ev)
	case FormatJournal:
		return p.parseJournal(line, ev)
	case FormatPflog:
		return p.parsePflog(line, fr, ev)
	case FormatIpfw:
		return p.parseIpfw(line, fr, ev)
	case FormatFilterlog:
		return p.parseFilterlog(line, fr, ev)
	}
	return ReasonUnrecognized
}

// programOK reports whether a record of format f may count in a line with
// framing fr: one without a program (bare, or a stamp alone) when the
// format's records can come that way, or one whose program is the format's
// (Parser.Programs, or DefaultPrograms). Journal entries are the journal
// format's to judge.
func (p *Parser) programOK(f Format, fr *frame) bool {
	switch fr.kind {
	case frameSyslog:
	case frameJournal:
		return false
	default:
		return !needsProgram[f]
	}
	names := p.Programs
	if len(names) == 0 {
		names = defaultPrograms[f]
	}
	for _, n := range names {
		if string(fr.program) == n {
			return true
		}
	}
	return false
}

// isBlank reports whether c separates fields. CR is a blank so that lines
// from CRLF writers parse the same as others wherever they were split.
// Most bytes are above ' ', and leave after one comparison.
func isBlank(c byte) bool { return c <= ' ' && blankSet>>c&1 != 0 }

const blankSet uint64 = 1<<' ' | 1<<'\t' | 1<<'\r'

// blankIndex returns the index of the first blank in b, or len(b).
func blankIndex(b []byte) int {
	for _, c := range [...]byte{' ', '\t', '\r'} {
		if k := bytes.IndexByte(b, c); k >= 0 {
			b = b[:k]
		}
	}
	return len(b)
}

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

// parseSimple parses "[prefix] dport[/proto] srcip". A message is taken to
// be in this format when, after the prefix, it has exactly two fields and
// the first starts with a digit; only then are bad ports and addresses
// reported as such, so that other formats' lines stay "unrecognized".
//
// The format has no program of its own: a bare line counts (Kroon's
// ulogport writes them to a pipe), and a line inside a syslog header or
// after a stamp only when Parser.Programs names its program, so that no
// program's message ("Invalid user 7000 192.0.2.1") is a knock by default.
// Without Programs the line is judged whole, as the bare line it must be:
// a wrapper's stamp or <PRI> never has a port's shape, so a line with one
// is never a simple record, and no framing needs reading. With Programs, a
// framed record of another program is ReasonProgram.
//
// Each byte is looked at once on the way to netip.ParseAddr, which is why
// the fields are not simply split first: this runs for every logged packet.
func (p *Parser) parseSimple(line []byte, fr *frame, ev *sequence.Event) Reason {
	if len(p.Programs) == 0 && !mayStartWrapper(p.Prefix) {
		return p.parseSimpleMessage(line, ev, true)
	}
	switch fr.read(line); {
	case fr.broken != ReasonNone:
		return ReasonUnrecognized
	case fr.kind == frameBare:
		return p.parseSimpleMessage(line, ev, true)
	}
	return p.parseSimpleMessage(fr.msg, ev, p.programOK(FormatSimple, fr))
}

// mayStartWrapper reports whether a line starting with prefix could be
// taken for a wrapped one (a stamp or <PRI> starts with '<', '[', a digit
// or a month's capital): such a simple line is judged by its framing.
func mayStartWrapper(prefix string) bool {
	pfx := trimBlanksString(prefix)
	return pfx != "" && (pfx[0] == '<' || pfx[0] == '[' || isDigit(pfx[0]) || pfx[0] >= 'A' && pfx[0] <= 'Z')
}

// parseSimpleMessage parses a simple record that is all of s; trusted
// tells whether its framing lets it count. ev is written only when it does.
func (p *Parser) parseSimpleMessage(line []byte, ev *sequence.Event, trusted bool) Reason {
	s := trimBlanks(line)
	if pfx := trimBlanksString(p.Prefix); pfx != "" {
		// The string conversion in a comparison does not allocate.
		if len(s) < len(pfx) || string(s[:len(pfx)]) != pfx || len(s) > len(pfx) && !isBlank(s[len(pfx)]) {
			return ReasonPrefix
		}
		s = trimBlanks(s[len(pfx):])
	}
	if len(s) == 0 || s[0] < '0' || s[0] > '9' {
		return ReasonUnrecognized
	}

	// The first field: digits, then possibly "/proto". The port is capped
	// rather than checked here, since a wrong field count decides first.
	port, i := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if port <= 65535 {
			port = port*10 + int(s[i]-'0')
		}
	}
	end := i
	if end < len(s) && !isBlank(s[end]) {
		// Not a port alone: "/proto", or another format's long first
		// field (filterlog's CSV), which is skipped by vectorised search.
		end += blankIndex(s[end:])
	}
	portField := s[:end]

	// The second field, the last since s has no trailing blanks.
	addr := s[end:]
	for len(addr) > 0 && isBlank(addr[0]) {
		addr = addr[1:]
	}
	if len(addr) == 0 {
		return ReasonUnrecognized
	}
	zone, clean := -1, true // where the zone starts; no stray bytes before it
	for k, c := range addr {
		if isAddrChar(c) {
			continue
		}
		switch {
		case isBlank(c):
			return ReasonUnrecognized // a third field
		case c == '%' && zone < 0:
			zone = k
		case zone < 0:
			clean = false
		}
	}

	if !trusted {
		return ReasonProgram
	}
	if i < len(portField) && portField[i] != '/' || port == 0 || port > 65535 {
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
	if !clean {
		return ReasonBadAddress
	}
	src, ok := parseAddr(addr, zone)
	if !ok {
		return ReasonBadAddress
	}
	ev.Src = src
	ev.Dst = netip.Addr{}
	ev.Port = uint16(port)
	ev.Proto = proto
	ev.Flags = 0
	ev.FlagsKnown = false
	ev.Time = time.Time{}
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

// parseAddr parses an IPv4 or IPv6 address into the normalised form
// events use (unmapped, zone dropped). The caller has checked that the
// bytes before zone (the index of the '%' that starts an IPv6 zone, or -1)
// are all isAddrChar.
//
// netip.ParseAddr takes a string, and converting the field allocates because
// the string escapes into the error value. The field is therefore viewed as
// a string in place: ParseAddr keeps nothing of its input on success (an
// Addr holds only the 128-bit value; zones, which would be interned, are cut
// off here first), and on failure the error, the only thing that refers to
// the bytes, is dropped at once. Checking the characters first means most
// garbage is rejected without building that error.
func parseAddr(b []byte, zone int) (netip.Addr, bool) {
	if zone >= 0 {
		if zone+1 == len(b) {
			return netip.Addr{}, false // ParseAddr rejects an empty zone too
		}
		b = b[:zone]
	}
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	if zone >= 0 && !a.Is6() {
		return netip.Addr{}, false // zones exist only on IPv6 addresses
	}
	return sequence.NormalizeAddr(a), true
}

// parseAddrFast is parseAddr (without zones) with fast paths for the
// forms logs print most: IPv4 dotted decimal without leading zeros, and
// IPv6 as eight groups of four hex digits (the kernel's form). Anything
// else, including every error, is parseAddr's to judge, so the results
// are the same.
func parseAddrFast(b []byte) (netip.Addr, bool) {
	if len(b) == len("0000:0000:0000:0000:0000:0000:0000:0000") {
		var a [16]byte
		for g := range 8 {
			o := g * 5
			if g < 7 && b[o+4] != ':' {
				return parseAddr(b, -1)
			}
			hi, ok1 := hexByte(b[o], b[o+1])
			lo, ok2 := hexByte(b[o+2], b[o+3])
			if !ok1 || !ok2 {
				return parseAddr(b, -1)
			}
			a[2*g], a[2*g+1] = hi, lo
		}
		return netip.AddrFrom16(a).Unmap(), true
	}
	var a [4]byte
	n, i := 0, 0
	for ; n < 4; n++ {
		if n > 0 {
			if i >= len(b) || b[i] != '.' {
				return parseAddr(b, -1)
			}
			i++
		}
		start, v := i, 0
		for i < len(b) && i-start < 3 && isDigit(b[i]) {
			v = v*10 + int(b[i]-'0')
			i++
		}
		if i == start || v > 255 || b[start] == '0' && i-start > 1 {
			return parseAddr(b, -1)
		}
		a[n] = byte(v)
	}
	if i != len(b) {
		return parseAddr(b, -1)
	}
	return netip.AddrFrom4(a), true
}

// hexByte reads two hex digits.
func hexByte(h, l byte) (byte, bool) {
	hv, ok1 := hexValue(h)
	lv, ok2 := hexValue(l)
	return hv<<4 | lv, ok1 && ok2
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// addrChars is the set of bytes an address may contain (hex digits, '.'
// and ':'), as a bitmap over the low 128 byte values.
const (
	addrCharsLo = 1<<'.' | 1<<':' | (1<<10-1)<<'0' // bytes 0..63
	addrCharsHi = (1<<6-1)<<('a'-64) | (1<<6-1)<<('A'-64)
)

func isAddrChar(c byte) bool {
	m := uint64(addrCharsLo)
	if c >= 64 {
		m = addrCharsHi
	}
	return c < 128 && m>>(c&63)&1 != 0
}
