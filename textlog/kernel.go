package textlog

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"

	"portknock/sequence"
)

// The kernel's packet-log text, as net/netfilter/nf_log_syslog.c prints it
// for the iptables LOG target and nft's log statement, and as ulogd's
// printpkt imitates it:
//
//	<prefix>IN=<if> OUT=<if> [PHYSIN=..] [PHYSOUT=..] [MAC=..|MACSRC=.. MACDST=.. MACPROTO=..]
//	SRC=<a> DST=<a> LEN=<n> (TOS=.. PREC=.. TTL=.. ID=.. [CE] [DF] [MF] [FRAG:<n>] [OPT (..)] |
//	TC=.. HOPLIMIT=.. FLOWLBL=.. [extension headers, FRAG:<n> ..])
//	PROTO=TCP SPT=<n> DPT=<n> [SEQ=.. ACK=..] WINDOW=.. RES=.. [flag words] URGP=<n> [OPT (..)] [UID=.. GID=..] [MARK=..]
//	PROTO=UDP SPT=<n> DPT=<n> LEN=<n> [UID=.. GID=..] [MARK=..]
//
// all on one line, each field followed by one space. One reader serves the
// netfilter, ulogd and journal formats, so a kernel line is judged the same
// whatever carried it. It is given a message, the framing already read
// (frame.go), and judges it thus.
//
// Locating the kernel's text. The prefix comes first and is free text: a
// rule may log with a prefix such as "evil SRC=6.6.6.6 DPT=7000 IN=x OUT=y ",
// and the kernel glues the prefix to "IN=" when it does not end in a blank.
// Everything the kernel prints after its own "IN=<if> OUT=" is fixed syntax
// whose only free text is interface names, which contain no blanks. So the
// kernel's text starts at the last "IN=" that is followed by a name without
// blanks and then " OUT=": nothing after the real one can look like that,
// and any look-alike before it is part of the prefix.
//
// Reading it. Fields are read in the kernel's order, never searched for,
// so nothing in a prefix is ever taken for a field. The fields the kernel
// always prints (SRC= DST= LEN= and the rest of the IP header's, SPT= DPT=)
// must come in its order, or the line is not the kernel's; optional ones
// are skipped without judging them. ulogd's dialect differs in ways the
// reader allows: IPv6 addresses compressed, "TOS=00" without 0x, SEQ= and
// ACK= always, no RES=, an IPv6 fragment header as "FRAG: 1232 ID: ..."
// (the offset a word of its own), and "INCOMPLETE" glued to MARK=.
//
// The record ends the message. Whatever follows the ports (for TCP, what
// follows URGP=, which closes the flag words) must have the shape of the
// kernel's own fields (KEY=value with an upper-case key, an
// upper-case word, an "(OPTIONS)" group): a record quoted inside another
// program's message is followed by that program's text (sshd's " from
// 192.0.2.9 port 4242", a web server's ` HTTP/1.1" 404`), which never has
// that shape. With the log prefix free text, this is what keeps a bare line
// from another program out when nothing names the program.
//
// What is an event. A packet that came in on an interface (IN= not empty;
// forwarded packets have both IN= and OUT= set and count), is TCP or UDP,
// is not a non-first fragment, and whose line reaches the destination port
// intact. An ICMP error quotes the packet it answers in "[...]", ports
// included; those are never read, since reading stops at PROTO=ICMP. A
// transport header the kernel could not read ("INCOMPLETE [8 bytes]") is
// ReasonTruncated.
//
// Truncation. A line cut by a syslog size limit ends anywhere; the last
// token may itself be cut ("DPT=70" from "DPT=7000"). So no value is taken
// from the line's last token, and a line that ends before the port is
// ReasonTruncated. A TCP line cut between the port and URGP= (which closes
// the flag words) is still an event, with FlagsKnown false: the flags seen
// may be incomplete, and unknown flags are what the matcher already handles
// for formats without them.

// The markers: every kernel line has " OUT=" after the in-interface, and
// the in-interface after "IN=".
var (
	kernelOutKey = []byte(" OUT=")
	kernelInKey  = []byte("IN=")
)

// kernelText is the kernel's text located in a message.
type kernelText struct {
	msg     []byte // the message without trailing blanks
	in, out int    // where "IN=" and the " OUT=" after its interface are
}

// locateKernel finds the kernel's text in msg; ok is false when msg has
// none. Messages without the marker are most lines of a mixed log; they
// leave after one vectorised search.
func locateKernel(msg []byte) (k kernelText, ok bool) {
	return locateKernelFrom(msg, kernelIndexOut(msg, 0))
}

// locateKernelFrom is locateKernel for a caller that found the first
// " OUT=" of msg already (at first, or -1 when there is none).
func locateKernelFrom(msg []byte, first int) (k kernelText, ok bool) {
	if first < 0 {
		return k, false
	}
	// Without trailing blanks (the kernel's last one, a CR) and newlines
	// (a journal message may keep one), the end of the message is the end
	// of the last token.
	for c := msg[len(msg)-1]; isBlank(c) || c == '\n'; c = msg[len(msg)-1] {
		msg = msg[:len(msg)-1]
	}
	in, out := kernelLocate(msg, first)
	if in < 0 {
		return k, false
	}
	return kernelText{msg: msg, in: in, out: out}, true
}

// prefixMatches reports whether the log prefix, the text before the
// kernel's IN= from start on, is the one the parser wants, blanks around
// both ignored; an empty want takes any. The comparison is case-sensitive,
// like the firewalls' own log prefixes.
func (k *kernelText) prefixMatches(start int, want string) bool {
	if len(want) > 0 && (isBlank(want[0]) || isBlank(want[len(want)-1])) {
		want = trimBlanksString(want)
	}
	// The string conversion in a comparison does not allocate.
	return want == "" || string(trimBlanks(k.msg[start:k.in])) == want
}

var (
	kernelProtoKey = []byte("PROTO=")
	kernelFragKey  = []byte("FRAG:")
	kernelSptKey   = []byte("SPT=")
	kernelDptKey   = []byte("DPT=")
	kernelUrgpKey  = []byte("URGP=")
	kernelIncomp   = []byte("INCOMPLETE")
)

// event reads the kernel's fields into ev's Src, Dst, Port, Proto, Flags
// and FlagsKnown, or returns why they are not an event; ev is written only
// for ReasonNone.
func (k *kernelText) event(ev *sequence.Event) Reason {
	if k.out == k.in+len(kernelInKey) {
		// No input interface: the host itself sent the packet.
		return ReasonOutbound
	}

	l := kernelLexer{s: k.msg, i: k.out + len(kernelOutKey)}
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
			switch string(kernelKey(t)) {
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
	switch string(kernelKey(t)) {
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
		if len(t) == 0 || t[0] == '[' || bytes.HasPrefix(t, kernelProtoKey) {
			break
		}
		if bytes.HasPrefix(t, kernelFragKey) {
			// IPv4 prints the offset only when it is not zero; IPv6
			// prints it for every fragment header, 0 for the first.
			// ulogd writes IPv6's as a word of its own.
			v := t[len(kernelFragKey):]
			if len(v) == 0 {
				if v = l.next(); len(v) == 0 {
					t = nil // the line ends after "FRAG:"
					break
				}
			}
			if !isDigit(v[0]) {
				gaveUp = true // "FRAG:TRUNCATED"
			} else if !kernelAllZero(v) {
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
	switch string(t[len(kernelProtoKey):]) {
	case "TCP":
	case "UDP":
		proto = sequence.UDP
	case "ICMP", "ICMPv6", "AH", "ESP":
		return ReasonNoPorts
	default:
		switch {
		case kernelDigits(t[len(kernelProtoKey):]):
			return ReasonNoPorts // protocols the kernel prints by number
		case l.atEnd():
			return ReasonTruncated // "PROTO=UD", say
		}
		return ReasonBadProto // UDPLITE, SCTP
	}

	t = l.next()
	if !bytes.HasPrefix(t, kernelSptKey) {
		if bytes.HasPrefix(t, kernelIncomp) {
			// The transport header was cut off ("INCOMPLETE [8
			// bytes]", ulogd's "INCOMPLETEMARK=0x0").
			return ReasonTruncated
		}
		return l.unexpected()
	}
	t = l.next()
	if !bytes.HasPrefix(t, kernelDptKey) || l.atEnd() {
		// "DPT=" must be followed by more, or its value may be cut.
		return l.unexpected()
	}
	port, ok := kernelPort(t[len(kernelDptKey):])
	if !ok {
		return ReasonBadPort
	}

	var flags sequence.TCPFlags
	known := false
	tail := l.i // where the text after the port starts
	if proto == sequence.TCP {
		for {
			t = l.next()
			if len(t) == 0 {
				flags = 0 // the line ended inside the flag words
				break
			}
			if bytes.HasPrefix(t, kernelUrgpKey) {
				known, tail = true, l.i
				break
			}
			flags |= tcpFlagWord(t)
		}
	}
	// What follows URGP= (or the port, for UDP or a line cut before
	// URGP=) must be the kernel's: another program's text quoting a
	// record goes on after it. Words before URGP= need no look, since
	// whoever chose them did not choose what follows URGP=.
	for l.i = tail; ; {
		t = l.next()
		if len(t) == 0 {
			break
		}
		if !kernelToken(t) {
			return ReasonUnrecognized // another program's text follows
		}
	}

	ev.Src = src
	ev.Dst = dst
	ev.Port = port
	ev.Proto = proto
	ev.Flags = flags
	ev.FlagsKnown = known
	return ReasonNone
}

// kernelToken reports whether t has the shape of a field the kernel or
// ulogd prints after the ports: "KEY=value" or a word, the key or word in
// upper case, digits and '_', the value letters, digits and "._:-"
// ("URGP=0", "SYN", "MARK=0x1", ulogd's "INCOMPLETEMARK=0x0"), or a group
// of hex digits in parentheses, as in "OPT (020405B4)". A token the line
// was cut in keeps that shape.
func kernelToken(t []byte) bool {
	if t[0] == '(' {
		for _, c := range t[1:] {
			if _, ok := hexValue(c); !ok && c != ')' {
				return false
			}
		}
		return true
	}
	key := true
	for i, c := range t {
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case !key && (c >= 'a' && c <= 'z' || c == '.' || c == ':' || c == '-'):
		case key && c == '=' && i > 0:
			key = false
		default:
			return false
		}
	}
	return true
}

// kernelLocate finds the kernel's text in msg: it returns the index of the
// "IN=" that starts it and the index of the " OUT=" that follows its
// interface name, or -1, -1. first is the index of the first " OUT=".
//
// Each " OUT=" is looked at once, with the blank-free token before it; the
// tokens before successive occurrences do not overlap, so the work is
// linear in the message's length however many look-alikes it holds.
func kernelLocate(msg []byte, first int) (in, out int) {
	in, out = -1, -1
	floor := 0
	for j := first; ; {
		ts := j
		for ts > floor && !isBlank(msg[ts-1]) {
			ts--
		}
		// The last "IN=" of the token: a glued prefix may contain "IN="
		// itself ("x IN=a OUT=IN=eth0 OUT=" is prefix "x IN=a OUT=").
		for k := j - len(kernelInKey); k >= ts; k-- {
			if msg[k] == 'I' && msg[k+1] == 'N' && msg[k+2] == '=' {
				in, out = k, j
				break
			}
		}
		floor = j + 1
		if j = kernelIndexOut(msg, j+len(kernelOutKey)); j < 0 {
			return in, out
		}
	}
}

// kernelIndexOut returns the index of the first " OUT=" in s at or after
// from, or -1. It looks for its 'U', which is rare in log lines and in the
// kernel's fields, with bytes.IndexByte, and checks around each hit: a
// search for " OUT=" would stop at every blank and one for "OUT=" at every
// PROTO and WINDOW, and bytes.Index costs more per hit than the check.
func kernelIndexOut(s []byte, from int) int {
	const u = 2 // the index of 'U' in " OUT="
	for i := from + u; i+len(kernelOutKey)-u <= len(s); i++ {
		k := bytes.IndexByte(s[i:len(s)-(len(kernelOutKey)-u-1)], 'U')
		if k < 0 {
			return -1
		}
		i += k
		if s[i-2] == ' ' && s[i-1] == 'O' && s[i+1] == 'T' && s[i+2] == '=' {
			return i - u
		}
	}
	return -1
}

// kernelLexer walks the blank-separated tokens of a message.
type kernelLexer struct {
	s []byte
	i int
}

// next returns the next token, or an empty one at the end of the message.
// The kernel separates its fields with single blanks, and only with
// blanks: a tab or CR inside its text is part of a token (and so makes
// the token wrong), which keeps this loop, run for every field, short.
func (l *kernelLexer) next() []byte {
	s, i := l.s, l.i
	for i < len(s) && s[i] == ' ' {
		i++
	}
	j := kernelSpace(s, i)
	l.i = j
	return s[i:j]
}

// kernelSpace returns the index of the first blank in s at or after i, or
// len(s). It looks at eight bytes at a time: a byte equal to ' ' becomes
// zero after the XOR, and the borrow trick marks the lowest zero byte.
func kernelSpace(s []byte, i int) int {
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
func (l *kernelLexer) skipToken() { l.i = kernelSpace(l.s, l.i) }

// atEnd reports whether no token is left; the message has no trailing
// blanks, so that is its end.
func (l *kernelLexer) atEnd() bool { return l.i >= len(l.s) }

func (l *kernelLexer) skipBlanks() {
	for l.i < len(l.s) && l.s[l.i] == ' ' {
		l.i++
	}
}

// hasPrefix reports whether the text at the current position starts with
// key.
func (l *kernelLexer) hasPrefix(key string) bool {
	return len(l.s)-l.i >= len(key) && string(l.s[l.i:l.i+len(key)]) == key
}

// addr reads the SRC= or DST= token at the current position, whose key is
// keyLen bytes long. The value is scanned once, both for its end and for
// bytes no address has, which are rejected before netip builds an error.
// The kernel prints IPv4 dotted and IPv6 fully expanded
// ("2001:0db8:0000:..."); both, and the compressed form ulogd prints, give
// the same normalised address. The last token may be cut, so an address
// there is ReasonTruncated.
func (l *kernelLexer) addr(keyLen int) (netip.Addr, Reason) {
	s := l.s
	i := l.i + keyLen
	// The usual case, dotted IPv4 followed by a blank, in one pass: its
	// first dot comes within four bytes, where IPv6 has a colon.
	if len(s)-i > 7 && (s[i+1] == '.' || s[i+2] == '.' || s[i+3] == '.') {
		if a, j := kernelIPv4(s, i); j > 0 {
			l.i = j
			return a, ReasonNone
		}
	}
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
	a, ok := parseAddrFast(s[i:j])
	if !ok {
		return netip.Addr{}, ReasonBadAddress
	}
	return a, ReasonNone
}

// kernelIPv4 reads a dotted IPv4 address without leading zeros at s[i:]
// that is followed by a blank, and returns it and the blank's index, or
// 0 when s[i:] does not start with one; parseAddr judges it then.
func kernelIPv4(s []byte, i int) (netip.Addr, int) {
	// The digits of each part are read one by one, unrolled, which the
	// usual address makes worth it: this runs twice for every line.
	var a [4]byte
	for n := range 4 {
		if n > 0 {
			if i >= len(s) || s[i] != '.' {
				return netip.Addr{}, 0
			}
			i++
		}
		if i >= len(s) || s[i]-'0' > 9 {
			return netip.Addr{}, 0
		}
		v := uint(s[i] - '0')
		i++
		if i < len(s) && s[i]-'0' <= 9 {
			if v == 0 {
				return netip.Addr{}, 0 // a leading zero
			}
			v = v*10 + uint(s[i]-'0')
			i++
			if i < len(s) && s[i]-'0' <= 9 {
				if v = v*10 + uint(s[i]-'0'); v > 255 {
					return netip.Addr{}, 0
				}
				i++
			}
		}
		a[n] = byte(v)
	}
	if i >= len(s) || s[i] != ' ' {
		return netip.Addr{}, 0
	}
	return netip.AddrFrom4(a), i
}

// expect reads the next token and reports whether it starts with key.
func (l *kernelLexer) expect(key string) bool {
	t := l.next()
	return len(t) >= len(key) && string(t[:len(key)]) == key
}

// unexpected is the reason for a token that is not what the kernel prints
// at that place: when it is the last one, the line was probably cut inside
// it (or just before it); otherwise the line is not the kernel's.
func (l *kernelLexer) unexpected() Reason {
	if l.atEnd() {
		return ReasonTruncated
	}
	return ReasonUnrecognized
}

// kernelKey returns the token's "KEY=" part, or nil when it has no '='.
func kernelKey(t []byte) []byte {
	if k := bytes.IndexByte(t, '='); k >= 0 {
		return t[:k+1]
	}
	return nil
}

// kernelPort parses a port number in 1..65535.
func kernelPort(v []byte) (uint16, bool) {
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

// kernelDigits reports whether v is a non-empty run of decimal digits.
func kernelDigits(v []byte) bool {
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(v) > 0
}

// kernelAllZero reports whether the digits of v are all '0' (v starts with
// a digit); bytes after the digits are ignored.
func kernelAllZero(v []byte) bool {
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
