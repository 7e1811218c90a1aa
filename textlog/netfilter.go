package textlog

import (
	"portknock/sequence"
)

// netfilterImplemented tells the dispatcher that FormatNetfilter is parsed.
const netfilterImplemented = true

// The netfilter format is the text the kernel's packet logger
// (net/netfilter/nf_log_syslog.c) prints for the iptables LOG target and
// for nft's log statement; both share that code, so one parser serves
// both. kernel.go reads the kernel's text; this file says where it may be.
//
// The record. The kernel's message is the log prefix followed by its text
// ("knock IN=eth0 OUT= ..."), and it must be the message of the program the
// kernel logs as: "kernel" in a syslog header (or a name Parser.Programs
// gives), or a line without a program (dmesg, /dev/kmsg, journalctl -k
// piped in, a syslog stamp without a tag). A kernel text inside another
// program's message ("host sshd[42]: Invalid user knock IN=...") is
// ReasonProgram; a bare line whose record is followed by another program's
// text is not the kernel's (see kernel.go). A bare line has no program to
// judge: text before the kernel's is its log prefix, so only Parser.Prefix
// tells "note: knock IN=..." from the kernel's line logged with prefix
// "note: knock", and what writes a bare input (a pipe from dmesg or
// journalctl -k) is what it trusts.
//
// The prefix rule. The prefix is the text between the end of the framing
// and the kernel's "IN=". A line whose text before IN= does not end in the
// prefix wanted is ReasonPrefix before its framing is read, whatever
// program it names: in a busy log most kernel lines are other rules'. When Parser.Prefix is set, that text with blanks
// trimmed at both ends must equal Parser.Prefix with blanks trimmed,
// case-sensitively: log prefix "knock " (printed "knock IN=...") and
// "knock" (glued, "knockIN=...") both match Prefix "knock"; iptables'
// "knock: " needs Prefix "knock:". Framing the reader does not know stays
// part of the prefix, so such lines fail a prefix filter rather than pass
// one by accident. After a syslog stamp without a tag, a first word
// followed by more before the prefix is the host (ulogd's LOGEMU files,
// "stamp host prefix IN=..."). The filter keeps other rules' lines out; it
// cannot keep out a local user who writes the kernel's program name through
// logger(1) or a raw syslog message, since in a syslog file that line looks
// like the kernel's (the journal format can tell them apart by transport).
//
// Time. ev.Time is the framing's time (see frame.go): absolute for RFC 5424
// and ISO 8601 stamps, local time for dmesg -T, RFC 3164 stamps placed in a
// year by Parser.Now, and none for uptime stamps.

// parseNetfilter parses a kernel LOG / nft log line, with or without
// framing. See the comment above for the rules.
func (p *Parser) parseNetfilter(line []byte, fr *frame, ev *sequence.Event) Reason {
	// Lines without the marker are most lines of a mixed log; they leave
	// after one vectorised search, before their framing is read.
	if fr.firstOut(line) < 0 {
		return ReasonUnrecognized
	}
	// The kernel's text is located in the whole line, as in its message:
	// the message ends the line, so the last look-alike is the same
	// unless it lies in the framing, which is checked below.
	k, ok := fr.kernelIn(line, 0)
	if !ok {
		if fr.read(line).broken != ReasonNone && p.programOK(FormatNetfilter, fr) {
			return fr.broken
		}
		return ReasonUnrecognized
	}
	// A JSON record quoting a kernel line (journalctl -o json, ulogd's
	// JSON) is theirs to judge: only they know whether the kernel wrote it.
	if t := skipJSONSpace(line); t[0] == '{' {
		return ReasonUnrecognized
	}
	// The log prefix ends where the kernel's text begins, so a line whose
	// text there is not the prefix wanted is another rule's whatever its
	// framing: the usual line of a busy log leaves here, unframed.
	pfx := trimBlanksString(p.Prefix)
	if t := trimBlanks(line[:k.in]); pfx != "" && (len(t) < len(pfx) || string(t[len(t)-len(pfx):]) != pfx) {
		return ReasonPrefix
	}
	msgAt := len(line) - len(fr.read(line).msg)
	if fr.broken != ReasonNone || k.in < msgAt {
		// The text is in the framing (RFC 5424 structured data, say),
		// or the framing is broken: the message holds no kernel text.
		if fr.broken != ReasonNone && p.programOK(FormatNetfilter, fr) {
			return fr.broken
		}
		return ReasonUnrecognized
	}
	start := msgAt
	if fr.syslogStamp {
		start += skipHostWord(fr.msg, k.in-msgAt)
	}
	if !p.programOK(FormatNetfilter, fr) {
		return ReasonProgram
	}
	if !k.prefixMatches(start, pfx) {
		return ReasonPrefix
	}
	if r := k.event(ev); r != ReasonNone {
		return r
	}
	ev.Time = fr.stamp.time(p.Now, p.Location)
	return ReasonNone
}

// skipHostWord returns where the text after a host name at the start of
// msg begins, when a blank-separated first word comes before more text
// ahead of in; else 0. An uptime stamp after the host is skipped too.
func skipHostWord(msg []byte, in int) int {
	e := tokenEnd(msg, 0)
	if e == 0 || e >= in {
		return 0 // no word, or the word runs into the kernel's text
	}
	j := skipBlanks(msg, e)
	if j == in {
		// One word and the kernel's text: the word is the host and the
		// prefix is empty ("stamp host IN=..."), as ulogd writes it.
		return j
	}
	if n := uptimeStamp(msg[j:]); n > 0 {
		return j + n
	}
	return j
}
