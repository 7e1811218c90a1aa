package textlog

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"

	"portknock/sequence"
)

// netfilterImplemented tells the dispatcher that FormatNetfilter is parsed.
const netfilterImplemented = true

// The netfilter format is the text the kernel's packet logger
// (net/netfilter/nf_log_syslog.c) prints for the iptables LOG target and
// for nft's log statement; both share that code, so one parser serves both:
//
//	<prefix>IN=<if> OUT=<if> [PHYSIN=..] [PHYSOUT=..] [MAC=..|MACSRC=.. MACDST=.. MACPROTO=..]
//	SRC=<a> DST=<a> LEN=<n> (TOS=.. PREC=.. TTL=.. ID=.. [CE] [DF] [MF] [FRAG:<n>] [OPT (..)] |
//	TC=.. HOPLIMIT=.. FLOWLBL=.. [extension headers, FRAG:<n> ..])
//	PROTO=TCP SPT=<n> DPT=<n> [SEQ=.. ACK=..] WINDOW=.. RES=.. [flag words] URGP=<n> ...
//	PROTO=UDP SPT=<n> DPT=<n> LEN=<n> ...
//
// all on one line, each field followed by one space, wrapped in whatever
// framing the log's path added (syslog, dmesg, /dev/kmsg, journalctl).
//
// Locating the kernel's text. The prefix comes first and is free text: a
// rule may log with a prefix such as "evil SRC=6.6.6.6 DPT=7000 IN=x OUT=y ",
// and the kernel glues the prefix to "IN=" when it does not end in a blank.
// Everything the kernel prints after its own "IN=<if> OUT=" is fixed syntax
// whose only free text is interface names, which contain no blanks. So the
// kernel's text starts at the last "IN=" that is followed by a name without
// blanks and then " OUT=": nothing after the real one can look like that,
// and any look-alike before it is part of the prefix (or of the framing).
// Fields are then read in the kernel's order from there, never searched for,
// so nothing in a prefix is ever taken for a field. The fields the kernel
// always prints (SRC= DST= LEN= and the rest of the IP header's, SPT= DPT=)
// must come in its order, or the line is not the kernel's; optional ones
// are skipped without judging them.
//
// The prefix rule. The prefix is the text between the end of the framing
// (the syslog header up to and including the tag's ':', a dmesg or kmsg
// stamp, a "[12345.678901]" uptime stamp) and the kernel's "IN=". When
// Parser.Prefix is set, that text with blanks trimmed at both ends must
// equal Parser.Prefix with blanks trimmed, case-sensitively: log prefix
// "knock " (printed "knock IN=...") and "knock" (glued, "knockIN=...") both
// match Prefix "knock"; iptables' "knock: " needs Prefix "knock:". Framing
// this parser does not know stays part of the prefix, so such lines fail a
// prefix filter rather than pass one by accident. The filter keeps other
// rules' lines out; it cannot keep out a local user who writes the same
// prefix through logger(1), since in a syslog file that line looks like
// the kernel's (the journal format can tell them apart by transport).
//
// What is an event. A packet that came in on an interface (IN= not empty;
// forwarded packets have both IN= and OUT= set and count), is TCP or UDP,
// is not a non-first fragment, and whose line reaches the destination port
// intact. An ICMP error quotes the packet it answers in "[...]", ports
// included; those are never read, since parsing stops at PROTO=ICMP.
//
// Truncation. A line cut by a syslog size limit ends anywhere; the last
// token may itself be cut ("DPT=70" from "DPT=7000"). So no value is taken
// from the line's last token, and a line that ends before the port is
// ReasonTruncated. A TCP line cut between the port and URGP= (which closes
// the flag words) is still an event, with FlagsKnown false: the flags seen
// may be incomplete, and unknown flags are what the matcher already handles
// for formats without them.
//
// Time. ev.Time is the framing's absolute time when it has one, else zero:
// RFC 5424 and ISO 8601 stamps (rsyslog's high-precision format, journalctl
// -o short-iso, dmesg --time-format iso) carry their offset; dmesg -T stamps
// are local time; RFC 3164 stamps ("Nov 22 12:00:01") are local time
// without a year, and get the latest year that does not put them more than
// a day after the current time (a day of slack for clocks and time zones of
// remote senders): a December line read in January is last year's, a
// January line read on December 31st by a host behind its sender is next
// year's, and February 29th goes back to the last leap year. Uptime stamps
// ("[12345.678901]", /dev/kmsg's microseconds) are not absolute: zero.

// nfClock and nfZone are the current time and the local time zone used to
// read stamps that lack a year or an offset; tests replace them.
var (
	nfClock = time.Now
	nfZone  = time.Local
)

// The markers: every kernel line has " OUT=" after the in-interface, and
// the in-interface after "IN=".
var (
	nfOutKey = []byte(" OUT=")
	nfInKey  = []byte("IN=")
)

// parseNetfilter parses a kernel LOG / nft log line, with or without
// framing. See the comment above for the rules.
func (p *Parser) parseNetfilter(line []byte, ev *sequence.Event) Reason {
	// Lines without the marker are most lines of a mixed log; they leave
	// after one vectorised search.
	first := nfIndexOut(line, 0)
	if first < 0 {
		return ReasonUnrecognized
	}
	// A JSON record quoting a kernel line (journalctl -o json, ulogd's
	// JSON) is theirs to judge: only they know whether the kernel wrote it.
	if t := trimBlanks(line); len(t) > 0 && t[0] == '{' {
		return ReasonUnrecognized
	}
	// Without trailing blanks (the kernel's last one, a CR), the end of
	// the line is the end of the last token.
	for isBlank(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	in, out := nfLocate(line, first)
	if in < 0 {
		return ReasonUnrecognized
	}
	fr := nfParseFrame(line[:in])
	if pfx := trimBlanksString(p.Prefix); pfx != "" {
		// The string conversion in a comparison does not allocate.
		if string(trimBlanks(line[fr.msg:in])) != pfx {
			return ReasonPrefix
		}
	}
	if out == in+len(nfInKey) {
		// No input interface: the host itself sent the packet.
		return ReasonOutbound
	}

	l := nfLexer{s: line, i: out + len(nfOutKey)}
	l.skipToken() // the output interface, empty or not

	// Link-layer fields, up to SRC=.
	for {
		l.skipBlanks()
		switch {
		case l.atEnd():
			return ReasonTruncated
		case l.hasPrefix("SRC="):
		case l.hasPrefix("MAC="):
			l.skipToken() // the usual field before SRC=
			continue
		default:
			t := l.next()
			switch string(nfKey(t)) {
			case "PHYSIN=", "PHYSOUT=", "TUNNEL=", "MACSRC=", "MACDST=", "VPROTO=", "VID=", "MACPROTO=":
				continue
			}
			switch string(t) {
			case "ARP", "TRUNCATED":
				// An ARP packet, or an IP header too short to read.
				return ReasonNoPorts
			}
			return l.unexpected()
		}
		break
	}
	src, r := l.addr(len("SRC="))
	if r != ReasonNone {
		return r
	}
	l.skipBlanks()
	if !l.hasPrefix("DST=") {
		l.next()
		return l.unexpected()
	}
	dst, r := l.addr(len("DST="))
	if r != ReasonNone {
		return r
	}
	if !l.expect("LEN=") {
		return l.unexpected()
	}

	// The rest of the IP header, up to PROTO=. Its optional part is read
	// leniently; what matters is whether the packet is a fragment and
	// whether the kernel gave up on it.
	frag, gaveUp := false, false
	t := l.next()
	switch string(nfKey(t)) {
	case "TOS=":
		if !l.expect("PREC=") || !l.expect("TTL=") || !l.expect("ID=") {
			return l.unexpected()
		}
	case "TC=":
		if !l.expect("HOPLIMIT=") || !l.expect("FLOWLBL=") {
			return l.unexpected()
		}
	default:
		return l.unexpected()
	}
	for {
		t = l.next()
		if len(t) == 0 || t[0] == '[' || bytes.HasPrefix(t, nfProtoKey) {
			break
		}
		if bytes.HasPrefix(t, nfFragKey) {
			// IPv4 prints the offset only when it is not zero; IPv6
			// prints it for every fragment header, 0 for the first.
			v := t[len(nfFragKey):]
			if len(v) == 0 || v[0] < '0' || v[0] > '9' {
				gaveUp = true // "FRAG:TRUNCATED"
			} else if !nfAllZero(v) {
				frag = true
			}
			continue
		}
		switch string(t) {
		case "TRUNCATED", "Unknown", "ESP":
			// A header the kernel could not read ("TRUNCATED",
			// "Unknown Ext Hdr 143"), or IPv6 ESP: it prints nothing
			// more, or only the closing of "OPT ( ... )".
			gaveUp = true
		}
	}
	switch {
	case frag:
		// Non-first fragments carry no transport header, whatever
		// PROTO= says; the kernel prints nothing after it, and for
		// some protocols not even PROTO=.
		return ReasonFragment
	case gaveUp || len(t) > 0 && t[0] == '[':
		// "[" is an extension header cut short ("INCOMPLETE [8
		// bytes] )"); a quoted packet only ever follows PROTO=ICMP.
		return ReasonNoPorts
	case len(t) == 0:
		return ReasonTruncated
	}
	proto := sequence.TCP
	switch string(t[len(nfProtoKey):]) {
	case "TCP":
	case "UDP":
		proto = sequence.UDP
	case "ICMP", "ICMPv6", "AH", "ESP":
		return ReasonNoPorts
	default:
		switch {
		case nfDigits(t[len(nfProtoKey):]):
			return ReasonNoPorts // protocols the kernel prints by number
		case l.atEnd():
			return ReasonTruncated // "PROTO=UD", say
		}
		return ReasonBadProto // UDPLITE
	}

	t = l.next()
	if !bytes.HasPrefix(t, nfSptKey) {
		if string(t) == "INCOMPLETE" {
			return ReasonNoPorts // the transport header was cut off
		}
		return l.unexpected()
	}
	t = l.next()
	if !bytes.HasPrefix(t, nfDptKey) || l.atEnd() {
		// "DPT=" must be followed by more, or its value may be cut.
		return l.unexpected()
	}
	port, ok := nfPort(t[len(nfDptKey):])
	if !ok {
		return ReasonBadPort
	}

	var flags sequence.TCPFlags
	known := false
	if proto == sequence.TCP {
		for {
			t = l.next()
			if len(t) == 0 {
				flags = 0 // the line ended inside the flag words
				break
			}
			if bytes.HasPrefix(t, nfUrgpKey) {
				known = true
				break
			}
			flags |= nfFlag(t)
		}
	}

	ev.Src = src
	ev.Dst = dst
	ev.Port = port
	ev.Proto = proto
	ev.Flags = flags
	ev.FlagsKnown = known
	ev.Time = fr.stamp.time()
	return ReasonNone
}

var (
	nfProtoKey = []byte("PROTO=")
	nfFragKey  = []byte("FRAG:")
	nfSptKey   = []byte("SPT=")
	nfDptKey   = []byte("DPT=")
	nfUrgpKey  = []byte("URGP=")
)

// nfLocate finds the kernel's text in line: it returns the index of the
// "IN=" that starts it and the index of the " OUT=" that follows its
// interface name, or -1, -1. first is the index of the first " OUT=".
//
// Each " OUT=" is looked at once, with the blank-free token before it; the
// tokens before successive occurrences do not overlap, so the work is
// linear in the line's length however many look-alikes it holds.
func nfLocate(line []byte, first int) (in, out int) {
	in, out = -1, -1
	floor := 0
	for j := first; ; {
		ts := j
		for ts > floor && !isBlank(line[ts-1]) {
			ts--
		}
		// The last "IN=" of the token: a glued prefix may contain "IN="
		// itself ("x IN=a OUT=IN=eth0 OUT=" is prefix "x IN=a OUT=").
		for k := j - len(nfInKey); k >= ts; k-- {
			if line[k] == 'I' && line[k+1] == 'N' && line[k+2] == '=' {
				in, out = k, j
				break
			}
		}
		floor = j + 1
		if j = nfIndexOut(line, j+len(nfOutKey)); j < 0 {
			return in, out
		}
	}
}

// nfIndexOut returns the index of the first " OUT=" in line at or after
// from, or -1. It searches for "UT=", whose first byte is rare in log
// lines and in the kernel's fields, where a search for " OUT=" would stop
// at every blank and one for "OUT=" at every PROTO and WINDOW.
func nfIndexOut(line []byte, from int) int {
	for from+len(nfOutKey) <= len(line) {
		k := bytes.Index(line[from+2:], nfOutKey[2:])
		if k < 0 {
			return -1
		}
		if j := from + k; line[j] == ' ' && line[j+1] == 'O' {
			return j
		}
		from += k + 1
	}
	return -1
}

// nfLexer walks the blank-separated tokens of a line.
type nfLexer struct {
	s []byte
	i int
}

// next returns the next token, or an empty one at the end of the line.
// The kernel separates its fields with single blanks, and only with
// blanks: a tab or CR inside its text is part of a token (and so makes
// the token wrong), which keeps this loop, run for every field, short.
func (l *nfLexer) next() []byte {
	s, i := l.s, l.i
	for i < len(s) && s[i] == ' ' {
		i++
	}
	j := nfSpace(s, i)
	l.i = j
	return s[i:j]
}

// nfSpace returns the index of the first blank in s at or after i, or
// len(s). It looks at eight bytes at a time: a byte equal to ' ' becomes
// zero after the XOR, and the borrow trick marks the lowest zero byte.
func nfSpace(s []byte, i int) int {
	const ones, highs, spaces = 0x0101010101010101, 0x8080808080808080, 0x2020202020202020
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:]) ^ spaces
		if t := (x - ones) &^ x & highs; t != 0 {
			return i + bits.TrailingZeros64(t)>>3
		}
	}
	for i < len(s) && s[i] != ' ' {
		i++
	}
	return i
}

// skipToken moves past the token that starts at the current position, if
// any, without skipping blanks first (an empty OUT= is followed by one).
func (l *nfLexer) skipToken() { l.i = nfSpace(l.s, l.i) }

// atEnd reports whether no token is left; the line has no trailing
// blanks, so that is the end of the line.
func (l *nfLexer) atEnd() bool { return l.i >= len(l.s) }

func (l *nfLexer) skipBlanks() {
	for l.i < len(l.s) && l.s[l.i] == ' ' {
		l.i++
	}
}

// hasPrefix reports whether the text at the current position starts with
// key.
func (l *nfLexer) hasPrefix(key string) bool {
	return len(l.s)-l.i >= len(key) && string(l.s[l.i:l.i+len(key)]) == key
}

// addr reads the SRC= or DST= token at the current position, whose key is
// keyLen bytes long. The value is scanned once, both for its end and for
// bytes no address has, which are rejected before netip builds an error.
// The kernel prints IPv4 dotted and IPv6 fully expanded
// ("2001:0db8:0000:..."); both, and the compressed form other tools print,
// give the same normalised address. The line's last token may be cut, so
// an address there is ReasonTruncated.
func (l *nfLexer) addr(keyLen int) (netip.Addr, Reason) {
	s := l.s
	i := l.i + keyLen
	j, clean := i, true
	for ; j < len(s) && s[j] != ' '; j++ {
		if !isAddrChar(s[j]) {
			clean = false
		}
	}
	l.i = j
	switch {
	case l.atEnd():
		return netip.Addr{}, ReasonTruncated
	case !clean:
		return netip.Addr{}, ReasonBadAddress
	}
	a, ok := nfParseAddr(s[i:j])
	if !ok {
		return netip.Addr{}, ReasonBadAddress
	}
	return a, ReasonNone
}

// nfParseAddr is parseAddr (without zones) with fast paths for the forms
// the kernel prints: IPv4 dotted decimal without leading zeros, and IPv6
// as eight groups of four hex digits. Anything else, including every
// error, is parseAddr's to judge, so the results are the same.
func nfParseAddr(b []byte) (netip.Addr, bool) {
	if len(b) == len("0000:0000:0000:0000:0000:0000:0000:0000") {
		var a [16]byte
		for g := range 8 {
			o := g * 5
			if g < 7 && b[o+4] != ':' {
				return parseAddr(b, -1)
			}
			hi, ok1 := nfHexByte(b[o], b[o+1])
			lo, ok2 := nfHexByte(b[o+2], b[o+3])
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
		for i < len(b) && i-start < 3 && nfIsDigit(b[i]) {
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

// nfHexByte reads two hex digits.
func nfHexByte(h, l byte) (byte, bool) {
	hv, ok1 := nfHex(h)
	lv, ok2 := nfHex(l)
	return hv<<4 | lv, ok1 && ok2
}

func nfHex(c byte) (byte, bool) {
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

// expect reads the next token and reports whether it starts with key.
func (l *nfLexer) expect(key string) bool {
	t := l.next()
	return len(t) >= len(key) && string(t[:len(key)]) == key
}

// unexpected is the reason for a token that is not what the kernel prints
// at that place: when it is the last one, the line was probably cut inside
// it (or just before it); otherwise the line is not the kernel's.
func (l *nfLexer) unexpected() Reason {
	if l.atEnd() {
		return ReasonTruncated
	}
	return ReasonUnrecognized
}

// nfKey returns the token's "KEY=" part, or nil when it has no '='.
func nfKey(t []byte) []byte {
	if k := bytes.IndexByte(t, '='); k >= 0 {
		return t[:k+1]
	}
	return nil
}

// nfPort parses a port number in 1..65535.
func nfPort(v []byte) (uint16, bool) {
	if len(v) == 0 || len(v) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// nfDigits reports whether v is a non-empty run of decimal digits.
func nfDigits(v []byte) bool {
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(v) > 0
}

// nfAllZero reports whether the digits of v are all '0' (v starts with a
// digit); bytes after the digits are ignored.
func nfAllZero(v []byte) bool {
	for _, c := range v {
		if c < '0' || c > '9' {
			break
		}
		if c != '0' {
			return false
		}
	}
	return true
}

// nfFlag returns the TCP flag a flag word names, or 0. The kernel prints
// the words in upper case; "AE" (accurate ECN) has no place in TCPFlags.
func nfFlag(t []byte) sequence.TCPFlags {
	switch string(t) {
	case "FIN":
		return sequence.FIN
	case "SYN":
		return sequence.SYN
	case "RST":
		return sequence.RST
	case "PSH":
		return sequence.PSH
	case "ACK":
		return sequence.ACK
	case "URG":
		return sequence.URG
	case "ECE":
		return sequence.ECE
	case "CWR":
		return sequence.CWR
	}
	return 0
}

// nfFrame is what a line's framing tells: where the message (the prefix
// and the kernel's text) starts, and the stamp.
type nfFrame struct {
	msg   int
	stamp nfStamp
}

// nfStampKind says how a stamp's fields become a time.
type nfStampKind uint8

const (
	nfNoTime      nfStampKind = iota // no stamp, an uptime stamp, or a bad one
	nfLocalNoYear                    // RFC 3164: local time, no year
	nfLocal                          // dmesg -T: local time with a year
	nfOffset                         // ISO 8601 / RFC 3339: with its UTC offset
)

// nfStamp holds a stamp's fields as read; they become a time.Time only for
// lines that are events.
type nfStamp struct {
	kind                                 nfStampKind
	year, month, day, hour, min, sec, ns int
	off                                  int // seconds east of UTC, for nfOffset
}

// nfParseFrame reads the framing at the start of h, the part of the line
// before the kernel's "IN=". Because h ends there, no framing field can
// reach into the kernel's text. Shapes it does not know leave msg at the
// start (after a syslog <PRI>), so the unknown framing counts as prefix.
func nfParseFrame(h []byte) nfFrame {
	i := 0
	pri := false
	if len(h) > 0 && h[0] == '<' {
		j := 1
		for j < len(h) && j < 5 && nfIsDigit(h[j]) {
			j++
		}
		if j > 1 && j < len(h) && h[j] == '>' {
			i, pri = j+1, true
		}
	}
	if pri && len(h)-i >= 2 && h[i] == '1' && h[i+1] == ' ' {
		return nf5424(h, i+2)
	}
	if !pri {
		if m := nfKmsg(h); m > 0 {
			return nfFrame{msg: m} // the microseconds are uptime
		}
	}
	b := h[i:]
	if st, n := nfBSD(b); n > 0 {
		return nfFrame{msg: nfHostTag(h, i+n), stamp: st}
	}
	if st, n, comma := nfISO(b); n > 0 {
		if comma {
			// dmesg --time-format iso: the message follows at once.
			return nfFrame{msg: i + n, stamp: st}
		}
		return nfFrame{msg: nfHostTag(h, i+n), stamp: st}
	}
	if n := nfMono(b); n > 0 {
		// dmesg, /proc/kmsg, or journalctl -o short-monotonic, which
		// adds "host kernel:" after the uptime.
		j := i + n
		t1s := nfSkipBlanks(h, j)
		t1e := nfTokenEnd(h, t1s)
		t2s := nfSkipBlanks(h, t1e)
		t2e := nfTokenEnd(h, t2s)
		if t1e > t1s && t2e < len(h) && string(h[t2s:t2e]) == "kernel:" {
			j = t2e
		}
		return nfFrame{msg: j}
	}
	if st, n := nfCtime(b); n > 0 {
		return nfFrame{msg: i + n, stamp: st}
	}
	return nfFrame{msg: i}
}

// nfHostTag skips what follows a syslog stamp: a host name and a tag
// ending in ':' ("host kernel:", "host ulogd[42]:"), a tag alone (senders
// that leave out the host), or a host alone (ulogd's LOGEMU files), then
// the uptime stamp rsyslog's kernel input may leave in the message. Only
// tokens followed by a blank count: one glued to "IN=" is the prefix.
func nfHostTag(h []byte, j int) int {
	t1s := nfSkipBlanks(h, j)
	t1e := nfTokenEnd(h, t1s)
	if t1e == t1s || t1e == len(h) {
		return j
	}
	if h[t1e-1] == ':' {
		return nfSkipMono(h, t1e)
	}
	t2s := nfSkipBlanks(h, t1e)
	t2e := nfTokenEnd(h, t2s)
	if t2e > t2s && t2e < len(h) && h[t2e-1] == ':' {
		return nfSkipMono(h, t2e)
	}
	return nfSkipMono(h, t1e)
}

// nfSkipMono skips an uptime stamp ("[12345.678901]") followed by a blank
// at or after j's blanks, or returns j.
func nfSkipMono(h []byte, j int) int {
	k := nfSkipBlanks(h, j)
	if n := nfMono(h[k:]); n > 0 {
		return k + n
	}
	return j
}

// nf5424 reads an RFC 5424 header after "<PRI>1 ": TIMESTAMP HOSTNAME
// APP-NAME PROCID MSGID STRUCTURED-DATA, then the message, which may start
// with a byte order mark. A malformed header is no framing at all.
func nf5424(h []byte, j int) nfFrame {
	var f nfFrame
	if len(h)-j >= 2 && h[j] == '-' && h[j+1] == ' ' {
		j += 2
	} else {
		st, n, _ := nfISO(h[j:])
		if n == 0 {
			return nfFrame{}
		}
		f.stamp = st
		j += n + 1
	}
	for range 4 { // HOSTNAME APP-NAME PROCID MSGID, "-" when absent
		e := nfTokenEnd(h, j)
		if e == j || e == len(h) || h[e] != ' ' {
			return nfFrame{}
		}
		j = e + 1
	}
	if j >= len(h) {
		return nfFrame{}
	}
	if h[j] == '-' {
		j++
	} else {
		// SD-ELEMENTs: "[id k=\"v\" ...]", repeated. Inside quotes,
		// '\' escapes the next byte, so a quoted ']' ends nothing.
		if h[j] != '[' {
			return nfFrame{}
		}
		for j < len(h) && h[j] == '[' {
			j++
			quoted := false
			for ; j < len(h); j++ {
				c := h[j]
				if quoted {
					if c == '\\' {
						j++
					} else if c == '"' {
						quoted = false
					}
					continue
				}
				if c == '"' {
					quoted = true
				} else if c == ']' {
					break
				}
			}
			if j >= len(h) {
				return nfFrame{}
			}
			j++
		}
	}
	if j >= len(h) || h[j] != ' ' {
		return nfFrame{}
	}
	j++
	if len(h)-j >= 3 && h[j] == 0xEF && h[j+1] == 0xBB && h[j+2] == 0xBF {
		j += 3
	}
	f.msg = j
	return f
}

// nfKmsg returns where the message of a /dev/kmsg record starts
// ("PRI,SEQ,USEC,FLAGS[,...];message"), or 0 if h is not one.
func nfKmsg(h []byte) int {
	j := 0
	for range 3 {
		k := j
		for j < len(h) && nfIsDigit(h[j]) {
			j++
		}
		if j == k || j >= len(h) || h[j] != ',' {
			return 0
		}
		j++
	}
	for ; j < len(h); j++ {
		switch c := h[j]; {
		case c == ';':
			return j + 1
		case isBlank(c):
			return 0
		}
	}
	return 0
}

// nfMono returns the length of an uptime stamp "[ 12345.678901]" at the
// start of b that is followed by a blank, or 0.
func nfMono(b []byte) int {
	if len(b) == 0 || b[0] != '[' {
		return 0
	}
	j := nfSkipBlanks(b, 1)
	k := j
	for j < len(b) && nfIsDigit(b[j]) {
		j++
	}
	if j == k || j >= len(b) || b[j] != '.' {
		return 0
	}
	j++
	k = j
	for j < len(b) && nfIsDigit(b[j]) {
		j++
	}
	if j == k || j+1 >= len(b) || b[j] != ']' || !isBlank(b[j+1]) {
		return 0
	}
	return j + 1
}

// nfBSD reads an RFC 3164 stamp, "Nov 22 12:00:01" or "Nov  2 12:00:01",
// with journalctl's optional fraction ("12:00:01.123456"), followed by a
// blank. n is 0 when b does not start with one. Impossible values leave
// the shape recognised and the time unknown.
func nfBSD(b []byte) (st nfStamp, n int) {
	if len(b) < 16 || b[3] != ' ' || b[6] != ' ' {
		return st, 0
	}
	mon := nfMonth(b[:3])
	if mon == 0 {
		return st, 0
	}
	var day int
	switch {
	case b[4] == ' ' && nfIsDigit(b[5]):
		day = int(b[5] - '0')
	case nfIsDigit(b[4]) && nfIsDigit(b[5]):
		day = int(b[4]-'0')*10 + int(b[5]-'0')
	default:
		return st, 0
	}
	hh, mm, ss, ok := nfClockTime(b[7:15])
	if !ok {
		return st, 0
	}
	ns, n, _ := nfFraction(b, 15)
	if n >= len(b) || !isBlank(b[n]) {
		return nfStamp{}, 0
	}
	return nfStamp{kind: nfLocalNoYear, month: mon, day: day, hour: hh, min: mm, sec: ss, ns: ns}, n
}

// nfISO reads an ISO 8601 stamp, "2026-11-22T12:00:01[.123456](Z|+hh:mm|+hhmm)",
// followed by a blank; comma reports a ',' before the fraction, which
// only dmesg --time-format iso writes.
func nfISO(b []byte) (st nfStamp, n int, comma bool) {
	if len(b) < 21 || b[4] != '-' || b[7] != '-' || b[10] != 'T' {
		return st, 0, false
	}
	y, ok1 := nfNum(b[0:4])
	mo, ok2 := nfNum(b[5:7])
	d, ok3 := nfNum(b[8:10])
	hh, mm, ss, ok4 := nfClockTime(b[11:19])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return st, 0, false
	}
	ns, n, comma := nfFraction(b, 19)
	off := 0
	switch {
	case n < len(b) && b[n] == 'Z':
		n++
	case n < len(b) && (b[n] == '+' || b[n] == '-'):
		sign := b[n]
		n++
		oh, ok := nfNum(b[n:min(n+2, len(b))])
		if !ok || len(b)-n < 2 {
			return nfStamp{}, 0, false
		}
		n += 2
		if n < len(b) && b[n] == ':' {
			n++
		}
		if len(b)-n < 2 {
			return nfStamp{}, 0, false
		}
		om, ok := nfNum(b[n : n+2])
		if !ok || oh > 23 || om > 59 {
			return nfStamp{}, 0, false
		}
		n += 2
		off = oh*3600 + om*60
		if sign == '-' {
			off = -off
		}
	default:
		return nfStamp{}, 0, false
	}
	if n >= len(b) || !isBlank(b[n]) {
		return nfStamp{}, 0, false
	}
	return nfStamp{kind: nfOffset, year: y, month: mo, day: d, hour: hh, min: mm, sec: ss, ns: ns, off: off}, n, comma
}

// nfCtime reads dmesg -T's stamp, "[Sun Nov 22 12:00:01 2026]" (the day
// padded with a blank), followed by a blank.
func nfCtime(b []byte) (st nfStamp, n int) {
	const size = len("[Sun Nov 22 12:00:01 2026]")
	if len(b) <= size || b[0] != '[' || b[4] != ' ' || b[8] != ' ' || b[11] != ' ' ||
		b[20] != ' ' || b[25] != ']' || !isBlank(b[26]) {
		return st, 0
	}
	for _, c := range b[1:4] {
		if c|0x20 < 'a' || c|0x20 > 'z' {
			return st, 0
		}
	}
	mon := nfMonth(b[5:8])
	var day int
	switch {
	case mon == 0:
		return st, 0
	case b[9] == ' ' && nfIsDigit(b[10]):
		day = int(b[10] - '0')
	case nfIsDigit(b[9]) && nfIsDigit(b[10]):
		day = int(b[9]-'0')*10 + int(b[10]-'0')
	default:
		return st, 0
	}
	hh, mm, ss, ok := nfClockTime(b[12:20])
	y, ok2 := nfNum(b[21:25])
	if !ok || !ok2 {
		return st, 0
	}
	return nfStamp{kind: nfLocal, year: y, month: mon, day: day, hour: hh, min: mm, sec: ss}, size
}

// nfFraction reads an optional fraction of a second at b[n:], '.' or ','
// and digits, beyond nanoseconds ignored.
func nfFraction(b []byte, n int) (ns, end int, comma bool) {
	if n+1 >= len(b) || (b[n] != '.' && b[n] != ',') || !nfIsDigit(b[n+1]) {
		return 0, n, false
	}
	comma = b[n] == ','
	n++
	scale := 100_000_000
	for ; n < len(b) && nfIsDigit(b[n]); n++ {
		ns += int(b[n]-'0') * scale
		scale /= 10
	}
	return ns, n, comma
}

// nfClockTime reads "hh:mm:ss".
func nfClockTime(b []byte) (hh, mm, ss int, ok bool) {
	if len(b) != 8 || b[2] != ':' || b[5] != ':' ||
		!nfIsDigit(b[0]) || !nfIsDigit(b[1]) || !nfIsDigit(b[3]) ||
		!nfIsDigit(b[4]) || !nfIsDigit(b[6]) || !nfIsDigit(b[7]) {
		return 0, 0, 0, false
	}
	hh = int(b[0]-'0')*10 + int(b[1]-'0')
	mm = int(b[3]-'0')*10 + int(b[4]-'0')
	ss = int(b[6]-'0')*10 + int(b[7]-'0')
	return hh, mm, ss, true
}

// nfNum reads a short run of decimal digits that is all of b.
func nfNum(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !nfIsDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// nfMonth returns 1..12 for an English month abbreviation, or 0.
func nfMonth(b []byte) int {
	switch string(b) {
	case "Jan":
		return 1
	case "Feb":
		return 2
	case "Mar":
		return 3
	case "Apr":
		return 4
	case "May":
		return 5
	case "Jun":
		return 6
	case "Jul":
		return 7
	case "Aug":
		return 8
	case "Sep":
		return 9
	case "Oct":
		return 10
	case "Nov":
		return 11
	case "Dec":
		return 12
	}
	return 0
}

// time returns the stamp as a time, or the zero time when there is none
// or its fields are impossible. See the comment at the top of the file for
// the year of a stamp without one.
func (s *nfStamp) time() time.Time {
	if s.kind == nfNoTime || s.month < 1 || s.month > 12 || s.day < 1 || s.day > 31 ||
		s.hour > 23 || s.min > 59 || s.sec > 60 {
		return time.Time{}
	}
	mon := time.Month(s.month)
	switch s.kind {
	case nfOffset:
		if s.day > nfDaysIn(mon, s.year) {
			return time.Time{} // November 31st
		}
		t := time.Date(s.year, mon, s.day, s.hour, s.min, s.sec, s.ns, time.UTC)
		return t.Add(-time.Duration(s.off) * time.Second).In(nfZone)
	case nfLocal:
		if s.day > nfDaysIn(mon, s.year) {
			return time.Time{}
		}
		return time.Date(s.year, mon, s.day, s.hour, s.min, s.sec, s.ns, nfZone)
	}
	// A year later than the limit's cannot do, so the first year tried
	// is nearly always the answer. Going back reaches the leap year
	// before a Feb 29th, at most eight years (2096 to 2104 has none).
	limit := nfClock().Add(24 * time.Hour)
	for y := limit.Year(); y >= limit.Year()-8; y-- {
		if s.day > nfDaysIn(mon, y) {
			continue
		}
		if t := time.Date(y, mon, s.day, s.hour, s.min, s.sec, s.ns, nfZone); !t.After(limit) {
			return t
		}
	}
	return time.Time{}
}

// nfDaysIn returns the number of days of month m in year y.
func nfDaysIn(m time.Month, y int) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

func nfIsDigit(c byte) bool { return c >= '0' && c <= '9' }

// nfSkipBlanks returns the index of the first non-blank at or after j.
func nfSkipBlanks(b []byte, j int) int {
	for j < len(b) && isBlank(b[j]) {
		j++
	}
	return j
}

// nfTokenEnd returns the index of the first blank at or after j.
func nfTokenEnd(b []byte, j int) int {
	for j < len(b) && !isBlank(b[j]) {
		j++
	}
	return j
}
