package textlog

import (
	"bytes"
	"net/netip"

	"portknock/sequence"
)

// pflogImplemented: tcpdump's pflog0 output is parsed.
const pflogImplemented = true

// pf logs packets to the pflog0 interface, and "tcpdump -n -e -l -i
// pflog0" prints each as a line: a time stamp, the pflog header, and the
// packet. Two printers are in use:
//
// upstream tcpdump (FreeBSD, Linux, macOS):
//
//	12:00:01.123456 rule 3/0(match): block in on em0: 192.0.2.7.40000 > 192.0.2.1.7000: Flags [S], seq 1, win 65535, options [mss 1460], length 0
//	12:00:01.123456 rule 0.knock.2/0(match): block in on em0: 2001:db8::7.40000 > 2001:db8::1.9000: UDP, length 1
//
// OpenBSD's tcpdump (-ttt stamps, flags as letters, the ACK in "ack N"):
//
//	Nov 22 12:00:01.123456 rule 3/(match) block in on em0: 192.0.2.7.40000 > 192.0.2.1.7000: S 1:1(0) win 16384 <mss 1460> (DF)
//	Nov 22 12:00:01.123456 rule 3/(match) block in on em0: 192.0.2.7.40000 > 192.0.2.1.9000: udp 1
//
// Addresses and ports are joined by a dot, IPv6 ones too
// ("2001:db8::7.40000"); -n is required, since names are not addresses.
// -q ("tcp 0", TCP flags unknown) and the -tt, -ttt and -tttt stamps are
// understood (frame.go reads them), and so is syslog framing around the
// line. The header ("rule ...") must begin the message: tcpdump's own
// output, or the message of a program tcpdump's output is logged as ("pf",
// as OpenBSD's FAQ pipes it through logger, "pflog", "tcpdump", or a name
// Parser.Programs gives). Upstream's -v spreads a packet over two lines
// and is not understood.
//
// Rules:
//   - Knocks are "block" (pf's drop, with or without "return") and "match"
//     (a "match log" rule observes without deciding; OpenBSD prints it,
//     other tcpdumps print "unkn(12)"). "pass" and the other actions are
//     not knocks: a port passed to everyone proves nothing, and logged
//     pass rules would make every visitor of a service a knocker. Such
//     lines are ReasonPrefix, as they were not logged by the knock rule.
//   - "out" is ReasonOutbound.
//   - Prefix, when set, must equal the rule identifier printed between
//     "rule " and "/" ("3", "def", "0.knock.2"), or the anchor named in it
//     ("knock" matches "rule 0.knock.2/"). Putting the knock rules in an
//     anchor gives them a name that survives edits of the main rule set;
//     rule numbers change whenever rules are added above them. pflog
//     carries no rule label, so labels cannot be matched.
//   - A later fragment is ReasonFragment: tcpdump prints no ports for it
//     ("192.0.2.7 > 192.0.2.1: ip-proto-6", OpenBSD "(frag 1:16@1480)",
//     IPv6 "frag (1480|16)"). A first fragment has its ports and is an
//     event.
//   - A UDP packet to a port tcpdump decodes (DNS, NTP, AFS...) is printed
//     as that protocol, not as "UDP, length N". A packet with ports that
//     is not TCP (which tcpdump always prints with its flags) and not
//     SCTP or DCCP is therefore taken as UDP.
//   - ev.Time is the framing's: -tt stamps (seconds since 1970), the
//     time of a syslog header around the line, or OpenBSD's "Nov 22
//     12:00:01.123456" placed in a year by Parser.Now; the other stamps
//     lack the date or the zone and leave it zero.

// pfRuleMarker starts the pflog header; pfArrow separates the addresses.
var (
	pfRuleMarker = []byte("rule ")
	pfArrow      = []byte(" > ")
)

// pfHeader is the pflog header as tcpdump printed it.
type pfHeader struct {
	id     []byte // "3", "def", "0.knock.2"
	anchor []byte // "knock" in "0.knock.2", else empty
	action []byte
	dir    []byte
	packet int // where the packet's text starts in the message
}

// parsePflog parses tcpdump output for pflog0.
func (p *Parser) parsePflog(line []byte, fr *frame, ev *sequence.Event) Reason {
	// Most lines of a mixed log leave at once: without the marker, or,
	// when another format has read the framing, without it starting the
	// message, which is what is judged below.
	if fr.done && fr.broken == ReasonNone {
		if !bytes.HasPrefix(fr.msg, pfRuleMarker) {
			return ReasonUnrecognized
		}
	} else if bytes.Index(line, pfRuleMarker) < 0 {
		return ReasonUnrecognized
	}
	if fr.read(line).broken != ReasonNone {
		if p.programOK(FormatPflog, fr) {
			return fr.broken
		}
		return ReasonUnrecognized
	}
	msg := fr.msg
	if !bytes.HasPrefix(msg, pfRuleMarker) {
		return ReasonUnrecognized
	}
	h, r := pfParseHeader(msg, 0)
	if r == ReasonUnrecognized {
		return r
	}
	if !p.programOK(FormatPflog, fr) {
		return ReasonProgram
	}
	if r != ReasonNone {
		return r
	}

	if pfx := trimBlanksString(p.Prefix); pfx != "" && string(h.id) != pfx && (len(h.anchor) == 0 || string(h.anchor) != pfx) {
		return ReasonPrefix
	}
	switch string(h.action) {
	case "block", "match":
	default:
		return ReasonPrefix
	}
	switch string(h.dir) {
	case "in":
	case "out":
		return ReasonOutbound
	default:
		return ReasonUnrecognized // "in/out" or unknown: never a logged packet's
	}

	var pk pfPacket
	if r := pk.parse(msg[h.packet:]); r != ReasonNone {
		return r
	}
	ev.Src = pk.src
	ev.Dst = pk.dst
	ev.Port = pk.port
	ev.Proto = pk.proto
	ev.Flags = pk.flags
	ev.FlagsKnown = pk.flagsKnown
	ev.Time = fr.stamp.time(p.Now, p.Location)
	return ReasonNone
}

// Bounds on the header's parts: far above what pf and tcpdump print
// (interface names have 16 bytes, anchor names 16 in the header), and
// low enough that a header's work stays bounded.
const (
	pfMaxID     = 64
	pfMaxReason = 32
	pfMaxWord   = 24
	pfMaxIface  = 64
	pfMaxVerb   = 192
	pfMaxGroups = 3
)

// pfParseHeader parses the pflog header that starts with "rule " at i.
// It returns ReasonUnrecognized when this is not one, and
// ReasonTruncated when the line ends inside what can only be one.
func pfParseHeader(line []byte, i int) (h pfHeader, r Reason) {
	j := i + len(pfRuleMarker)
	// The rule identifier and, upstream, the reason number, up to the
	// reason's "(": "3/0(", "0.knock.2/0(", "def/(", "3/unkn(".
	k := j
	for k < len(line) && line[k] != '(' && !isBlank(line[k]) && k-j <= pfMaxID {
		k++
	}
	if k == len(line) {
		if k > j && (line[j] >= '0' && line[j] <= '9' || bytes.HasPrefix(line[j:], []byte("def"))) && bytes.IndexByte(line[j:], '/') > 0 {
			return h, ReasonTruncated
		}
		return h, ReasonUnrecognized
	}
	if line[k] != '(' {
		return h, ReasonUnrecognized
	}
	tok := line[j:k]
	slash := bytes.LastIndexByte(tok, '/')
	if slash <= 0 {
		return h, ReasonUnrecognized
	}
	h.id = tok[:slash]
	if num := tok[slash+1:]; len(num) > 0 && !bsdUintOK(num) && string(num) != "unkn" {
		return h, ReasonUnrecognized
	}
	if !pfValidID(h.id, &h.anchor) {
		return h, ReasonUnrecognized
	}

	// From here on the line is a pflog header; running out of it means
	// it was cut.
	e := bytes.IndexByte(line[k:min(len(line), k+pfMaxReason)], ')')
	if e < 0 {
		return h, pfCutOr(line, k+pfMaxReason)
	}
	m := k + e + 1
	if m >= len(line) {
		return h, ReasonTruncated
	}
	switch line[m] {
	case ':', ' ':
		// Upstream ends the header's first part with ":", OpenBSD with a
		// blank. An old FreeBSD tcpdump prints " [uid N]" first.
		if line[m] == ' ' && m+1 < len(line) && line[m+1] == '[' && !pfOpenBSDUIDs(line[m+1:]) {
			e := bytes.IndexByte(line[m:min(len(line), m+pfMaxWord)], ']')
			if e < 0 {
				return h, pfCutOr(line, m+pfMaxWord)
			}
			m += e + 1
			if m >= len(line) {
				return h, ReasonTruncated
			}
			if line[m] != ':' {
				return h, ReasonUnrecognized
			}
		}
		if line[m] == ':' {
			m++
		}
		if m >= len(line) {
			return h, ReasonTruncated
		}
		if line[m] != ' ' {
			return h, ReasonUnrecognized
		}
		m++
	default:
		return h, ReasonUnrecognized
	}
	// OpenBSD -v: "[uid 0, pid 123] " before the action.
	if m, r = pfSkipBrackets(line, m); r != ReasonNone {
		return h, r
	}

	// "ACTION DIR on IFACE: ".
	if h.action, m, r = pfWord(line, m, pfMaxWord); r != ReasonNone {
		return h, r
	}
	if h.dir, m, r = pfWord(line, m, pfMaxWord); r != ReasonNone {
		return h, r
	}
	var on []byte
	if on, m, r = pfWord(line, m, 2); r != ReasonNone {
		return h, r
	}
	if string(on) != "on" {
		return h, ReasonUnrecognized
	}
	e = bytes.Index(line[m:min(len(line), m+pfMaxIface)], []byte(": "))
	if e <= 0 {
		if e == 0 {
			return h, ReasonUnrecognized
		}
		return h, pfCutOr(line, m+pfMaxIface)
	}
	for _, c := range line[m : m+e] {
		if isBlank(c) {
			return h, ReasonUnrecognized
		}
	}
	m += e + 2
	// OpenBSD -v: "[uid 0, pid 123] [orig src ..., dst ...] " after it.
	if m, r = pfSkipBrackets(line, m); r != ReasonNone {
		return h, r
	}
	h.packet = m
	return h, ReasonNone
}

// pfValidID checks a rule identifier: "N" or "def", optionally followed
// by ".ANCHOR.N" or ".ANCHOR.def", and returns the anchor.
func pfValidID(id []byte, anchor *[]byte) bool {
	num := func(b []byte) bool { return string(b) == "def" || bsdUintOK(b) }
	first := bytes.IndexByte(id, '.')
	if first < 0 {
		return num(id)
	}
	last := bytes.LastIndexByte(id, '.')
	if last == first || !num(id[:first]) || !num(id[last+1:]) {
		return false
	}
	*anchor = id[first+1 : last]
	return true
}

// pfOpenBSDUIDs reports whether b starts with OpenBSD's "[uid N, pid N]",
// which, unlike old FreeBSD's "[uid N]", comes after the blank that ends
// the reason.
func pfOpenBSDUIDs(b []byte) bool {
	e := bytes.IndexByte(b[:min(len(b), pfMaxWord+8)], ']')
	return e > 0 && bytes.Contains(b[:e], []byte(", pid "))
}

// pfSkipBrackets skips "[...] " groups at m: OpenBSD's -v prints up to
// two in a row. Skipping no more than pfMaxGroups keeps the work per
// "rule " bounded, and so a line with many of them linear.
func pfSkipBrackets(line []byte, m int) (int, Reason) {
	for g := 0; m < len(line) && line[m] == '['; g++ {
		if g == pfMaxGroups {
			return m, ReasonUnrecognized
		}
		e := bytes.Index(line[m:min(len(line), m+pfMaxVerb)], []byte("] "))
		if e < 0 {
			return m, pfCutOr(line, m+pfMaxVerb)
		}
		m += e + 2
	}
	return m, ReasonNone
}

// pfWord returns the word at m, at most max bytes long and followed by a
// blank, and the index after that blank.
func pfWord(line []byte, m, max int) ([]byte, int, Reason) {
	for k := m; k < len(line) && k-m <= max; k++ {
		if isBlank(line[k]) {
			if k == m {
				return nil, m, ReasonUnrecognized
			}
			return line[m:k], k + 1, ReasonNone
		}
	}
	return nil, m, pfCutOr(line, m+max+1)
}

// pfCutOr is the reason for a bounded search that failed: the line was cut
// if it ended before the bound, else the text is not what was expected.
func pfCutOr(line []byte, bound int) Reason {
	if bound >= len(line) {
		return ReasonTruncated
	}
	return ReasonUnrecognized
}

// pfPacket is what a knock needs from the packet's text.
type pfPacket struct {
	src, dst   netip.Addr
	port       uint16
	proto      sequence.Proto
	flags      sequence.TCPFlags
	flagsKnown bool
}

// parse reads "SRC > DST: REST" as tcpdump prints an IP packet.
func (pk *pfPacket) parse(s []byte) Reason {
	a, b, after, r := pfPair(s)
	if r != ReasonNone {
		return r
	}
	srcAddr, srcPort, ok := pfSplit(a)
	if !ok {
		return ReasonBadAddress
	}
	dstAddr, dstPort, ok := pfSplit(b)
	if !ok {
		return ReasonBadAddress
	}
	if srcPort == nil {
		if dstPort != nil {
			return ReasonUnrecognized
		}
		switch {
		case bytes.HasPrefix(after, []byte("frag (")):
			// Upstream prints an IPv6 fragment header as "frag
			// (OFFSET|LEN)", or "(0xID:OFFSET|LEN)" with -v, and a
			// first fragment's ports after it, without the addresses
			// ("frag (0|9) 40000 > 9000: UDP, length 1").
			var off int
			if off, after, r = pfFrag6(after); r != ReasonNone {
				return r
			}
			if off != 0 {
				return ReasonFragment
			}
			a2, b2, after2, r := pfPair(after)
			if r == ReasonUnrecognized {
				return ReasonNoPorts // ICMPv6 and the like
			}
			if r != ReasonNone {
				return r
			}
			if bsdUintOK(a2) && bsdUintOK(b2) {
				srcPort, dstPort = a2, b2
			} else {
				if srcAddr, srcPort, ok = pfSplit(a2); !ok {
					return ReasonBadAddress
				}
				if dstAddr, dstPort, ok = pfSplit(b2); !ok {
					return ReasonBadAddress
				}
				if srcPort == nil || dstPort == nil {
					return ReasonNoPorts
				}
			}
			after = after2
		case bytes.HasPrefix(after, []byte("(frag ")), // OpenBSD
			pfWordIs(after, "ip-proto-6"), pfWordIs(after, "ip-proto-17"): // upstream
			return ReasonFragment
		default:
			return ReasonNoPorts
		}
	} else if dstPort == nil {
		return ReasonUnrecognized
	}

	if r := pk.transport(after); r != ReasonNone {
		return r
	}
	if pk.src, ok = bsdAddr(srcAddr); !ok {
		return ReasonBadAddress
	}
	if pk.dst, ok = bsdAddr(dstAddr); !ok {
		return ReasonBadAddress
	}
	if pk.port, ok = bsdPort(dstPort); !ok {
		return ReasonBadPort
	}
	return ReasonNone
}

// transport decides the protocol, and the TCP flags, from what tcpdump
// printed after the addresses.
func (pk *pfPacket) transport(after []byte) Reason {
	switch {
	case len(after) == 0:
		return ReasonTruncated
	case bytes.HasPrefix(after, []byte("Flags [")):
		e := bytes.IndexByte(after[:min(len(after), 7+16)], ']')
		if e < 0 {
			return pfCutOr(after, 7+16)
		}
		f, ok := pfUpstreamFlags(after[7:e])
		if !ok {
			return ReasonBadProto
		}
		pk.proto, pk.flags, pk.flagsKnown = sequence.TCP, f, true
		return ReasonNone
	case bytes.HasPrefix(after, []byte("[|tcp]")):
		return ReasonTruncated
	case pfCutKeyword(after):
		return ReasonTruncated
	case pfWordIs(after, "tcp"):
		// -q: "tcp 0", no flags printed.
		pk.proto, pk.flags, pk.flagsKnown = sequence.TCP, 0, false
		return ReasonNone
	case pfWordIs(after, "sctp"), bytes.HasPrefix(after, []byte("DCCP")), bytes.HasPrefix(after, []byte("UDPLITE")), bytes.HasPrefix(after, []byte("udplite")):
		return ReasonBadProto
	}
	if f, r, ok := pfOpenBSDTCP(after); ok {
		if r != ReasonNone {
			return r
		}
		pk.proto, pk.flags, pk.flagsKnown = sequence.TCP, f, true
		return ReasonNone
	}
	// "UDP, length 1", OpenBSD's "udp 1", or a payload tcpdump decoded
	// because of the port: TCP is always printed with its flags, so what
	// remains is UDP.
	pk.proto, pk.flags, pk.flagsKnown = sequence.UDP, 0, false
	return ReasonNone
}

// pfKeywords are the words that decide the protocol. A line that ends
// inside one of them was cut, and must not be read as UDP, which is what
// is left when none of them matches.
var pfKeywords = [...]string{"Flags [", "tcp ", "[|tcp]", "sctp", "DCCP", "UDPLITE", "udplite"}

// pfCutKeyword reports whether after is a proper beginning of a keyword.
func pfCutKeyword(after []byte) bool {
	for _, k := range pfKeywords {
		if len(after) < len(k) && string(after) == k[:len(after)] {
			return true
		}
	}
	return false
}

// pfPair splits "A > B: REST" into A, B and REST.
func pfPair(s []byte) (a, b, after []byte, r Reason) {
	sp := pfBlank(s)
	if sp < 0 {
		return nil, nil, nil, ReasonTruncated
	}
	if sp == 0 {
		return nil, nil, nil, ReasonUnrecognized
	}
	a, s = s[:sp], s[sp:]
	if !bytes.HasPrefix(s, pfArrow) {
		if bytes.HasPrefix(pfArrow, s) {
			return nil, nil, nil, ReasonTruncated
		}
		return nil, nil, nil, ReasonUnrecognized
	}
	s = s[len(pfArrow):]
	e := pfBlank(s)
	if e < 0 {
		b = s
	} else {
		b, after = s[:e], s[e+1:]
	}
	// B ends with ":"; without it, the line was cut inside B (possibly
	// inside its port), or this is not a packet.
	if len(b) < 2 || b[len(b)-1] != ':' {
		if e < 0 {
			return nil, nil, nil, ReasonTruncated
		}
		return nil, nil, nil, ReasonUnrecognized
	}
	// Some printers start with a blank of their own ("  [|tcp]").
	for len(after) > 0 && isBlank(after[0]) {
		after = after[1:]
	}
	return a, b[:len(b)-1], after, ReasonNone
}

// pfBlank returns the index of the first blank in s, or -1.
func pfBlank(s []byte) int {
	for k, c := range s {
		if isBlank(c) {
			return k
		}
	}
	return -1
}

// pfWordIs reports whether s starts with the word w, followed by a blank
// or nothing.
func pfWordIs(s []byte, w string) bool {
	return len(s) >= len(w) && string(s[:len(w)]) == w && (len(s) == len(w) || isBlank(s[len(w)]))
}

// pfSplit splits tcpdump's "ADDRESS.PORT" or "ADDRESS". The dot before
// the port is told from the dots of an address by counting: an IPv4
// address has three, an IPv6 one none or, with an embedded IPv4 address
// ("::ffff:192.0.2.7"), three.
func pfSplit(tok []byte) (addr, port []byte, ok bool) {
	dots, last, colon := 0, -1, false
	for k, c := range tok {
		switch c {
		case '.':
			dots++
			last = k
		case ':':
			colon = true
		}
	}
	switch {
	case dots == 4, colon && dots == 1:
		return tok[:last], tok[last+1:], true
	case dots == 3, colon && dots == 0:
		return tok, nil, true
	}
	return nil, nil, false
}

// pfFrag6 parses upstream's IPv6 fragment header, "frag (OFFSET|LEN) " or
// "frag (0xID:OFFSET|LEN) ", and returns the offset and what follows.
func pfFrag6(s []byte) (int, []byte, Reason) {
	s = s[len("frag ("):]
	e := bytes.IndexByte(s[:min(len(s), 32)], ')')
	if e < 0 {
		return 0, nil, pfCutOr(s, 32)
	}
	in := s[:e]
	if c := bytes.IndexByte(in, ':'); c >= 0 {
		in = in[c+1:]
	}
	bar := bytes.IndexByte(in, '|')
	if bar < 0 {
		return 0, nil, ReasonUnrecognized
	}
	off, ok := bsdUint(in[:bar], 1<<20)
	if !ok {
		return 0, nil, ReasonUnrecognized
	}
	rest := s[e+1:]
	if len(rest) > 0 && isBlank(rest[0]) {
		rest = rest[1:]
	}
	return off, rest, ReasonNone
}

// pfUpstreamFlags reads the letters in "Flags [S.]": upstream prints ACK
// as "." and a packet without flags as "none".
func pfUpstreamFlags(b []byte) (sequence.TCPFlags, bool) {
	if string(b) == "none" {
		return 0, true
	}
	return tcpFlagLetters(b, true)
}

// pfOpenBSDTCP reads OpenBSD's TCP line, "S 1:1(0) win 16384 <mss 1460>",
// ". ack 1 win 16384", "SE 1:1(0) ack 1 win 16384 urg 1": the flags other
// than ACK and URG as letters ("." when there are none), then the
// sequence numbers when the packet has data or SYN, FIN or RST, then
// "ack N" when ACK is set, "win N", and "urg N" when URG is set. ok is
// false when after does not look like this at all.
func pfOpenBSDTCP(after []byte) (f sequence.TCPFlags, r Reason, ok bool) {
	sp := pfBlank(after)
	tok := after
	if sp >= 0 {
		tok = after[:sp]
	}
	if len(tok) == 0 || len(tok) > 6 {
		return 0, ReasonNone, false
	}
	if string(tok) != "." {
		// ACK and URG are not letters here: they show as "ack N" and
		// "urg N".
		var ok bool
		if f, ok = tcpFlagLetters(tok, false); !ok || f&(sequence.ACK|sequence.URG) != 0 {
			return 0, ReasonNone, false
		}
	}
	if sp < 0 {
		return 0, ReasonTruncated, true
	}
	rest := after[sp+1:]
	seen := false
	if len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' {
		// "SEQ:END(LEN)"
		e := pfBlank(rest)
		if e < 0 {
			return 0, ReasonTruncated, true
		}
		seq := rest[:e]
		if bytes.IndexByte(seq, ':') < 0 || seq[len(seq)-1] != ')' {
			return 0, ReasonNone, false
		}
		rest, seen = rest[e+1:], true
	}
	if bytes.HasPrefix(rest, []byte("ack ")) {
		e := pfBlank(rest[4:])
		if e < 0 {
			return 0, ReasonTruncated, true
		}
		f |= sequence.ACK
		rest, seen = rest[4+e+1:], true
	}
	switch {
	case bytes.HasPrefix(rest, []byte("win ")):
	case bytes.HasPrefix([]byte("win "), rest), bytes.HasPrefix([]byte("ack "), rest):
		return 0, ReasonTruncated, true
	case seen:
		return 0, ReasonBadProto, true
	default:
		return 0, ReasonNone, false
	}
	rest = rest[4:]
	if e := pfBlank(rest); e >= 0 && bytes.HasPrefix(rest[e+1:], []byte("urg ")) {
		f |= sequence.URG
	}
	return f, ReasonNone, true
}

// The helpers below are shared with the other BSD formats (ipfw,
// filterlog).

// bsdUint parses a decimal number of at most ten digits that is no larger
// than max (at most 1<<20). The value stops growing once past max, so that
// it cannot overflow where int has 32 bits.
func bsdUint(b []byte, max int) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v <= max {
			v = v*10 + int(c-'0')
		}
	}
	return v, v <= max
}

// bsdUintOK reports whether b is a plain decimal number of at most ten
// digits.
func bsdUintOK(b []byte) bool {
	if len(b) == 0 || len(b) > 10 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// bsdPort parses a port in 1..65535. Leading zeros are allowed, signs and
// blanks are not.
func bsdPort(b []byte) (uint16, bool) {
	if len(b) > 5 {
		// Leading zeros may make a valid port longer; skip them.
		for len(b) > 1 && b[0] == '0' {
			b = b[1:]
		}
	}
	v, ok := bsdUint(b, 65535)
	if !ok || v == 0 {
		return 0, false
	}
	return uint16(v), true
}

// bsdAddr parses an IP address without a zone. The characters are checked
// first, so that most garbage never reaches netip.ParseAddr, whose error
// allocates.
func bsdAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 45 {
		return netip.Addr{}, false
	}
	for _, c := range b {
		if !isAddrChar(c) {
			return netip.Addr{}, false
		}
	}
	return parseAddrFast(b)
}
