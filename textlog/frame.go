package textlog

import (
	"time"
)

// The framing layer. A firewall's record reaches a log wrapped in whatever
// the path added: a syslog header (RFC 3164 or RFC 5424, from a file or the
// wire), a dmesg, dmesg -T or /dev/kmsg stamp, tcpdump's own clock, or a
// journal entry (journalctl -o json, read by readJournalFrame). readFrame
// reads every such wrapper into one frame: the time it gives, the host and
// program it names, and the message. The formats then judge only the
// message, and a record counts only where it begins the message of the
// program its firewall logs as (see Parser.Programs): text inside another
// program's message (sshd's "Invalid user …", a web server's request line,
// logger -t myapp) is never a knock.
//
// Which wrapper a line has is read from its first bytes, in one pass that
// never looks past the header:
//
//	<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG  RFC 5424; APP is the program
//	[<PRI>]Mmm dd hh:mm:ss[.frac] HEADER           RFC 3164, journalctl, OpenBSD tcpdump -ttt
//	[<PRI>]yyyy-mm-ddThh:mm:ss[.frac]±zz HEADER    rsyslog's high-precision files, journalctl -o short-iso
//	yyyy-mm-ddThh:mm:ss,frac±zz:zz MSG             dmesg --time-format iso
//	[<PRI>][ 12345.678901] HEADER                  dmesg, /proc/kmsg, journalctl -o short-monotonic
//	[Sun Nov 22 12:00:01 2026] MSG                 dmesg -T
//	PRI,SEQ,USEC,FLAGS[,...];MSG                   /dev/kmsg
//	hh:mm:ss.frac MSG, secs.frac MSG,              tcpdump's clock, -tt and -tttt
//	yyyy-mm-dd hh:mm:ss.frac MSG
//	<PRI>HEADER                                    syslog without a stamp
//
// HEADER is "[HOST] TAG: MSG", where TAG is the program ("kernel",
// "filterlog[123]", "sshd[4242]"), or with BusyBox's syslogd
// "HOST FACILITY.LEVEL TAG: MSG". After a dmesg-style uptime stamp only
// journalctl's "HOST TAG: MSG" counts as a header, with TAG "kernel" or
// carrying a [PID], because a bare kernel line's log prefix ("DROP: ") has
// the same shape as a tag. A stamp followed by no tag gives no program: the
// message is what follows the stamp, and may begin with a host name (ulogd's
// LOGEMU files write "stamp host prefix fields"; only the format can tell).
// A line with none of these wrappers is bare: the whole line is the message.
//
// After the header, the message may itself begin with a stamp that belongs
// to the wrapper rather than to the record: the kernel's uptime in lines
// rsyslog took from the kernel, tcpdump's clock in tcpdump output piped to
// logger. Such a stamp is skipped, and gives the time when the header has
// none.
//
// The reader looks at the header only, so nothing in a record can change
// how its line is framed, and nothing in a header (a host name, RFC 5424
// structured data) is ever read as a record. It allocates nothing.

// frameKind says what wrapped a line's message.
type frameKind uint8

const (
	// frameBare: no wrapper; the message is the whole line.
	frameBare frameKind = iota
	// frameStamp: a stamp (or a syslog <PRI>) that names no program.
	frameStamp
	// frameSyslog: a syslog header that names the program.
	frameSyslog
	// frameJournal: a journal entry; the program is its _TRANSPORT, which
	// journald sets itself.
	frameJournal
)

// frame is what a line's wrapper says. Slices point into the line, but for
// a kernel journal entry's program (kernelTransport).
type frame struct {
	stamp stamp
	// host is the sending host the header names, or nil.
	host []byte
	// program is the header's program (RFC 3164 TAG without its [PID],
	// RFC 5424 APP-NAME, a journal entry's _TRANSPORT), or nil.
	program []byte
	// msg is the message: where a record must begin.
	msg []byte
	// afterHost is the text after an RFC 3164 header's host name, tag
	// included, for ulogd's LOGEMU lines whose log prefix looks like a
	// tag; nil when the header has no host.
	afterHost []byte
	kind      frameKind
	// done is set once readFrame has read the line.
	done bool
	// out is the index of the line's first " OUT=" plus one (0: not
	// looked for yet), and kernel says where the kernel's text is in the
	// line, which the kernel formats share: see firstOut and kernelIn.
	// Like the rest of a frame they hold for one line; a frame is made
	// anew for each, and readFrame leaves them alone.
	out    int
	kernel kernelSpot
	// syslogStamp is set when the stamp is a syslog one (RFC 3164 or ISO
	// 8601) with no tag after it, so that the message may begin with a
	// host name.
	syslogStamp bool
	// pri is set when the line starts with a syslog <PRI>.
	pri bool
	// broken is ReasonTruncated when the line ends inside the header
	// (in an RFC 5424 header after its APP-NAME, in a tag's [PID]), or
	// ReasonUnrecognized when an RFC 5424 header is malformed after its
	// APP-NAME, so that where its message starts is unknown. msg is
	// empty then.
	broken Reason
}

// readFrame reads the wrapper of line into f.
func readFrame(line []byte, f *frame) {
	// Field by field: assigning a whole frame goes through a copy on the
	// stack that costs more than the rest of reading a syslog header.
	f.stamp = stamp{}
	f.host, f.program, f.afterHost, f.msg = nil, nil, nil, line
	f.kind, f.done, f.syslogStamp, f.pri, f.broken = frameBare, true, false, false, ReasonNone
	if len(line) == 0 {
		return
	}
	i := 0
	if line[0] == '<' {
		if n := readPRI(line); n > 0 {
			i, f.pri = n, true
			if len(line)-i >= 2 && line[i] == '1' && line[i+1] == ' ' && f.read5424(line, i+2) {
				return
			}
		}
	}
	if i == len(line) {
		return
	}
	b := line[i:]
	switch c := b[0]; {
	case c >= 'A' && c <= 'Z':
		if n := bsdStamp(b, &f.stamp); n > 0 {
			f.readHeader(line, i+n, true)
			return
		}
	case c >= '0' && c <= '9':
		if n, comma := isoStamp(b, &f.stamp); n > 0 {
			if comma && !f.pri {
				// dmesg --time-format iso: the message follows at once.
				f.setStamped(line, i+n)
				return
			}
			f.readHeader(line, i+n, true)
			return
		}
		if f.pri {
			break
		}
		if m := kmsgMsg(b); m > 0 {
			f.setStamped(line, m) // the microseconds are uptime
			return
		}
		if n := tcpdumpStamp(b, &f.stamp); n > 0 {
			f.setStamped(line, n)
			return
		}
	case c == '[':
		if n := uptimeStamp(b); n > 0 {
			f.readUptimeHeader(line, i+n)
			return
		}
		if !f.pri {
			if n := ctimeStamp(b, &f.stamp); n > 0 {
				f.setStamped(line, i+n)
				return
			}
		}
	}
	if f.pri {
		// A <PRI> without a stamp: a tag may follow at once.
		f.readHeader(line, i, false)
	}
}

// read reads line's wrapper into f unless that is done, and returns f.
func (f *frame) read(line []byte) *frame {
	if !f.done {
		readFrame(line, f)
	}
	return f
}

// firstOut returns the index of line's first " OUT=", the kernel text's
// marker, or -1, searching the line once for all the formats that look.
func (f *frame) firstOut(line []byte) int {
	if f.out == 0 {
		f.out = kernelIndexOut(line, 0) + 1
	}
	return f.out - 1
}

// kernelSpot is where the kernel's text lies in a line, found once.
type kernelSpot struct {
	state   uint8 // kernelUnknown, kernelNone or kernelFound
	in, out int   // as kernelText's, in the line
	end     int   // the end of the line without trailing blanks
}

const (
	kernelUnknown = iota
	kernelNone
	kernelFound
)

// kernelIn returns the kernel's text located in line[from:], a message
// that ends the line (or the line itself), as locateKernel(line[from:])
// would. The text is located in the whole line once, for all the formats
// that look, and the answer for a suffix derived from it: the last "IN="
// followed by a name and " OUT=" in the suffix is the line's when that
// lies in the suffix, and there is none in the suffix otherwise, since
// the tokens before successive " OUT=" do not overlap (see kernelLocate).
// A test holds the two equal for every suffix of many lines.
func (f *frame) kernelIn(line []byte, from int) (kernelText, bool) {
	if f.kernel.state == kernelUnknown {
		f.kernel.state = kernelNone
		if k, ok := locateKernelFrom(line, f.firstOut(line)); ok {
			f.kernel = kernelSpot{state: kernelFound, in: k.in, out: k.out, end: len(k.msg)}
		}
	}
	if f.kernel.state != kernelFound || f.kernel.in < from {
		return kernelText{}, false
	}
	return kernelText{msg: line[from:f.kernel.end], in: f.kernel.in - from, out: f.kernel.out - from}, true
}

// setStamped makes f a frame without a program whose message starts at j.
func (f *frame) setStamped(line []byte, j int) {
	f.kind = frameStamp
	f.msg = line[skipBlanks(line, j):]
}

// setMessage sets the message of a header that ended at j, skipping a stamp
// at its start (see the comment at the top of the file).
func (f *frame) setMessage(line []byte, j int) {
	j = skipBlanks(line, j)
	if j < len(line) && (line[j] == '[' || isDigit(line[j]) || line[j] >= 'A' && line[j] <= 'Z') {
		st := &f.stamp
		var scratch stamp
		if st.kind != stampNone {
			st = &scratch
		}
		if n := messageStamp(line[j:], st); n > 0 {
			j = skipBlanks(line, j+n)
		}
	}
	f.msg = line[j:]
}

// readHeader reads "[HOST] TAG: MSG" after a syslog stamp (or a <PRI>) that
// ended at j. withHost allows the host name before the tag; without a stamp
// there is none.
func (f *frame) readHeader(line []byte, j int, withHost bool) {
	t1s := skipBlanks(line, j)
	t1e := tokenEnd(line, t1s)
	if mayBeTag(line, t1s, t1e) && f.tryTag(line, nil, t1s, t1e) {
		return
	}
	if withHost {
		t2s := skipBlanks(line, t1e)
		t2e := tokenEnd(line, t2s)
		host := line[t1s:t1e]
		if mayBeTag(line, t2s, t2e) && f.tryTag(line, host, t2s, t2e) {
			f.afterHost = line[t2s:]
			return
		}
		if isFacilityLevel(line[t2s:t2e]) {
			t3s := skipBlanks(line, t2e)
			if f.tryTag(line, host, t3s, tokenEnd(line, t3s)) {
				f.afterHost = line[t2s:]
				return
			}
		}
		f.syslogStamp = f.stamp.kind != stampNone
	}
	f.setStamped(line, j)
}

// mayBeTag is the cheap test before tryTag: a tag ends in ':', or the
// line in it.
func mayBeTag(line []byte, s, e int) bool {
	return e > s && (line[e-1] == ':' || e == len(line))
}

// tryTag makes f a syslog frame when line[s:e] is a tag. A line that ends
// inside a tag's [PID] is a cut syslog frame.
func (f *frame) tryTag(line, host []byte, s, e int) bool {
	tok := line[s:e]
	name, ok := syslogTag(tok)
	if !ok {
		if e < len(line) {
			return false
		}
		if name, ok = cutTag(tok); !ok {
			return false
		}
		f.broken = ReasonTruncated
	}
	f.kind = frameSyslog
	f.host = host
	f.program = name
	if f.broken != ReasonNone {
		f.msg = nil
		return true
	}
	f.setMessage(line, e)
	return true
}

// readUptimeHeader reads what follows an uptime stamp that ended at j:
// journalctl -o short-monotonic's "HOST TAG: MSG" when TAG is "kernel:" or
// carries a [PID], else the message of a dmesg or /proc/kmsg line.
func (f *frame) readUptimeHeader(line []byte, j int) {
	t1s := skipBlanks(line, j)
	t1e := tokenEnd(line, t1s)
	t2s := skipBlanks(line, t1e)
	t2e := tokenEnd(line, t2s)
	if t1e > t1s && t2e < len(line) {
		if _, ok := syslogTag(line[t1s:t1e]); !ok {
			tag := line[t2s:t2e]
			if name, ok := syslogTag(tag); ok && (string(name) == "kernel" || len(name) < len(tag)-1) {
				f.kind = frameSyslog
				f.host = line[t1s:t1e]
				f.program = name
				f.setMessage(line, t2e)
				return
			}
		}
	}
	f.setStamped(line, j)
}

// read5424 reads an RFC 5424 header after "<PRI>1 ", at j: TIMESTAMP
// HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA, then the message, which
// may start with a byte order mark. It reports false when the line does not
// have such a header up to its APP-NAME; what follows is judged by the
// other shapes then.
func (f *frame) read5424(line []byte, j int) bool {
	var st stamp
	if len(line)-j >= 2 && line[j] == '-' && line[j+1] == ' ' {
		j++
	} else {
		n, _ := isoStamp(line[j:], &st)
		if n == 0 || line[j+n] != ' ' {
			return false
		}
		j += n
	}
	// j is at the blank before HOSTNAME.
	var host, app []byte
	var ok bool
	if host, j, ok = field5424(line, j); !ok {
		return false
	}
	if app, j, ok = field5424(line, j); !ok {
		return false
	}
	f.stamp = st
	f.kind = frameSyslog
	if string(host) != "-" {
		f.host = host
	}
	if string(app) != "-" {
		f.program = app
	}
	f.msg = nil
	for range 2 { // PROCID MSGID
		if _, j, ok = field5424(line, j); !ok {
			f.broken = cutOrBad(line, j)
			return true
		}
	}
	// j is at the blank before STRUCTURED-DATA.
	j++
	switch {
	case j >= len(line):
		f.broken = ReasonTruncated
		return true
	case line[j] == '-':
		j++
	case line[j] == '[':
		// SD-ELEMENTs, "[id k=\"v\" ...]" repeated. Inside quotes, '\'
		// escapes the next byte, so a quoted ']' ends nothing.
		for j < len(line) && line[j] == '[' {
			j++
			quoted := false
			for ; j < len(line); j++ {
				c := line[j]
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
			if j >= len(line) {
				f.broken = ReasonTruncated
				return true
			}
			j++
		}
	default:
		f.broken = ReasonUnrecognized
		return true
	}
	if j >= len(line) {
		f.broken = ReasonTruncated // no message
		return true
	}
	if line[j] != ' ' {
		f.broken = ReasonUnrecognized
		return true
	}
	j++
	if len(line)-j >= 3 && line[j] == 0xEF && line[j+1] == 0xBB && line[j+2] == 0xBF {
		j += 3
	}
	f.setMessage(line, j)
	return true
}

// field5424 reads " FIELD" at j (the blank before it) and returns the field
// and the index of the blank after it. ok is false when no blank and
// non-empty field follow, or the line ends within the field.
func field5424(line []byte, j int) (field []byte, end int, ok bool) {
	if j >= len(line) || line[j] != ' ' {
		return nil, j, false
	}
	s := j + 1
	e := s
	for e < len(line) && line[e] != ' ' {
		e++
	}
	if e == s || e == len(line) {
		return nil, e, false
	}
	return line[s:e], e, true
}

// cutOrBad is the reason for a header field that is missing at j: the line
// was cut when it ends there, else the header is malformed.
func cutOrBad(line []byte, j int) Reason {
	if tokenEnd(line, j+1) >= len(line) {
		return ReasonTruncated
	}
	return ReasonUnrecognized
}

// readPRI returns the length of a leading syslog "<PRI>" (one to three
// digits), or 0.
func readPRI(line []byte) int {
	j := 1
	for j < len(line) && j < 4 && isDigit(line[j]) {
		j++
	}
	if j > 1 && j < len(line) && line[j] == '>' {
		return j + 1
	}
	return 0
}

// syslogTag reports whether tok is a syslog tag, "name:" or "name[pid]:",
// and returns the name. Names and PIDs hold no blank, ':', '[' or ']'.
func syslogTag(tok []byte) ([]byte, bool) {
	if len(tok) < 2 || tok[len(tok)-1] != ':' {
		return nil, false
	}
	body := tok[:len(tok)-1]
	name := body
	if body[len(body)-1] == ']' {
		k := len(body) - 2
		for k >= 0 && body[k] != '[' {
			k--
		}
		if k <= 0 || k == len(body)-2 || !tagChars(body[k+1:len(body)-1]) {
			return nil, false
		}
		name = body[:k]
	}
	return name, tagChars(name)
}

// cutTag reports whether tok, the last token of a line, is a tag cut inside
// its [PID] ("filterlog[123"), and returns the name.
func cutTag(tok []byte) ([]byte, bool) {
	k := 0
	for k < len(tok) && tok[k] != '[' {
		k++
	}
	if k == 0 || k == len(tok) || !tagChars(tok[:k]) {
		return nil, false
	}
	for _, c := range tok[k+1:] {
		if !isDigit(c) {
			return nil, false
		}
	}
	return tok[:k], true
}

// tagChars reports whether b is a non-empty name without ':', '[' or ']'
// (blanks are already excluded by the tokenizer).
func tagChars(b []byte) bool {
	for _, c := range b {
		if c == ':' || c == '[' || c == ']' {
			return false
		}
	}
	return len(b) > 0
}

// isFacilityLevel reports whether tok is "facility.level" ("kern.warn"), as
// BusyBox's syslogd writes it between host and tag.
func isFacilityLevel(tok []byte) bool {
	dot := -1
	for k, c := range tok {
		if c == '.' {
			dot = k
			break
		}
	}
	if dot <= 0 {
		return false
	}
	switch string(tok[:dot]) {
	case "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7":
	default:
		return false
	}
	switch string(tok[dot+1:]) {
	case "emerg", "alert", "crit", "err", "warn", "warning", "notice", "info", "debug":
		return true
	}
	return false
}

// kmsgMsg returns where the message of a /dev/kmsg record starts
// ("PRI,SEQ,USEC,FLAGS[,...];message"), or 0 if b is not one.
func kmsgMsg(b []byte) int {
	j := 0
	for range 3 {
		k := j
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if j == k || j >= len(b) || b[j] != ',' {
			return 0
		}
		j++
	}
	for ; j < len(b); j++ {
		switch c := b[j]; {
		case c == ';':
			return j + 1
		case isBlank(c):
			return 0
		}
	}
	return 0
}

// messageStamp returns the stamp at the start of a message and its length,
// or 0: an uptime stamp, tcpdump's clock, or OpenBSD tcpdump's
// "Mmm dd hh:mm:ss.frac" (a fraction is required, so that a message
// starting with a plain date keeps it).
func messageStamp(b []byte, st *stamp) int {
	if len(b) == 0 {
		return 0
	}
	switch c := b[0]; {
	case c == '[':
		return uptimeStamp(b)
	case c >= '0' && c <= '9':
		return tcpdumpStamp(b, st)
	case c >= 'A' && c <= 'Z':
		var bsd stamp
		if n := bsdStamp(b, &bsd); n > 15 {
			*st = bsd
			return n
		}
	}
	return 0
}

// uptimeStamp returns the length of an uptime stamp "[ 12345.678901]" at
// the start of b that is followed by a blank, or 0.
func uptimeStamp(b []byte) int {
	if len(b) == 0 || b[0] != '[' {
		return 0
	}
	j := skipBlanks(b, 1)
	k := j
	for j < len(b) && isDigit(b[j]) {
		j++
	}
	if j == k || j >= len(b) || b[j] != '.' {
		return 0
	}
	j++
	k = j
	for j < len(b) && isDigit(b[j]) {
		j++
	}
	if j == k || j+1 >= len(b) || b[j] != ']' || !isBlank(b[j+1]) {
		return 0
	}
	return j + 1
}

// tcpdumpStamp reads tcpdump's stamps followed by a blank: "hh:mm:ss.frac"
// (the default, and -ttt's and -ttttt's deltas), "secs.frac" (-tt) and
// "yyyy-mm-dd hh:mm:ss.frac" (-tttt). Only -tt's gives a time: the others
// lack the date, or the zone of the host that ran tcpdump.
func tcpdumpStamp(b []byte, st *stamp) int {
	n := 0
	switch {
	case len(b) > 9 && b[2] == ':':
		n = clockFraction(b)
	case len(b) > 20 && b[4] == '-' && b[7] == '-' && b[10] == ' ':
		if _, ok := num(b[0:4]); !ok {
			return 0
		}
		if _, ok := num(b[5:7]); !ok {
			return 0
		}
		if _, ok := num(b[8:10]); !ok {
			return 0
		}
		if n = clockFraction(b[11:]); n > 0 {
			n += 11
		}
	default:
		// -tt: seconds since 1970 and a fraction.
		dot := 0
		for dot < len(b) && dot <= 10 && isDigit(b[dot]) {
			dot++
		}
		if dot == 0 || dot > 10 || dot >= len(b) || b[dot] != '.' {
			return 0
		}
		e := dot + 1
		for e < len(b) && isDigit(b[e]) {
			e++
		}
		if e == dot+1 || e-dot-1 > 9 || e >= len(b) || !isBlank(b[e]) {
			return 0
		}
		var sec int64
		for _, c := range b[:dot] {
			sec = sec*10 + int64(c-'0')
		}
		ns, _, _ := fraction(b, dot)
		*st = stamp{kind: stampUnix, unix: sec, ns: int32(ns)}
		return e
	}
	if n == 0 || n >= len(b) || !isBlank(b[n]) {
		return 0
	}
	*st = stamp{}
	return n
}

// clockFraction returns the length of "hh:mm:ss.frac" at the start of b, or 0.
func clockFraction(b []byte) int {
	if len(b) < 10 {
		return 0
	}
	if _, _, _, ok := clockTime(b[:8]); !ok || b[8] != '.' || !isDigit(b[9]) {
		return 0
	}
	_, n, _ := fraction(b, 8)
	return n
}

// bsdStamp reads an RFC 3164 stamp, "Nov 22 12:00:01" or "Nov  2 12:00:01",
// with journalctl's and OpenBSD tcpdump's optional fraction
// ("12:00:01.123456"), followed by a blank. n is 0 when b does not start
// with one. Impossible values leave the shape recognised and the time
// unknown.
func bsdStamp(b []byte, st *stamp) int {
	if len(b) < 16 || b[3] != ' ' || b[6] != ' ' {
		return 0
	}
	mon := monthNumber(b[:3])
	if mon == 0 {
		return 0
	}
	var day int
	switch {
	case b[4] == ' ' && isDigit(b[5]):
		day = int(b[5] - '0')
	case isDigit(b[4]) && isDigit(b[5]):
		day = int(b[4]-'0')*10 + int(b[5]-'0')
	default:
		return 0
	}
	hh, mm, ss, ok := clockTime(b[7:15])
	if !ok {
		return 0
	}
	ns, n, _ := fraction(b, 15)
	if n >= len(b) || !isBlank(b[n]) {
		return 0
	}
	st.kind, st.month, st.day = stampNoYear, uint8(mon), uint8(day)
	st.hour, st.min, st.sec, st.ns = uint8(hh), uint8(mm), uint8(ss), int32(ns)
	return n
}

// isoStamp reads an ISO 8601 / RFC 3339 stamp,
// "2026-11-22T12:00:01[.123456](Z|+hh:mm|+hhmm)", followed by a blank;
// comma reports a ',' before the fraction, which only dmesg --time-format
// iso writes. 'T' and 'Z' may be lower case, as RFC 3339 allows.
func isoStamp(b []byte, st *stamp) (n int, comma bool) {
	if len(b) < 21 || b[4] != '-' || b[7] != '-' || b[10]|0x20 != 't' {
		return 0, false
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	hh, mm, ss, ok4 := clockTime(b[11:19])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, false
	}
	ns, n, comma := fraction(b, 19)
	if n < len(b) && (b[n] == '.' || b[n] == ',') {
		return 0, false // a separator without digits
	}
	off := 0
	switch {
	case n < len(b) && b[n]|0x20 == 'z':
		n++
	case n < len(b) && (b[n] == '+' || b[n] == '-'):
		sign := b[n]
		n++
		if len(b)-n < 2 {
			return 0, false
		}
		oh, ok := num(b[n : n+2])
		if !ok {
			return 0, false
		}
		n += 2
		if n < len(b) && b[n] == ':' {
			n++
		}
		if len(b)-n < 2 {
			return 0, false
		}
		om, ok := num(b[n : n+2])
		if !ok || oh > 23 || om > 59 {
			return 0, false
		}
		n += 2
		off = oh*3600 + om*60
		if sign == '-' {
			off = -off
		}
	default:
		return 0, false
	}
	if n >= len(b) || !isBlank(b[n]) {
		return 0, false
	}
	*st = stamp{kind: stampOffset, year: int32(y), month: uint8(mo), day: uint8(d), hour: uint8(hh), min: uint8(mm), sec: uint8(ss), ns: int32(ns), off: int32(off)}
	return n, comma
}

// ctimeStamp reads dmesg -T's stamp, "[Sun Nov 22 12:00:01 2026]" (the day
// padded with a blank), followed by a blank.
func ctimeStamp(b []byte, st *stamp) int {
	const size = len("[Sun Nov 22 12:00:01 2026]")
	if len(b) <= size || b[0] != '[' || b[4] != ' ' || b[8] != ' ' || b[11] != ' ' ||
		b[20] != ' ' || b[25] != ']' || !isBlank(b[26]) {
		return 0
	}
	for _, c := range b[1:4] {
		if c|0x20 < 'a' || c|0x20 > 'z' {
			return 0
		}
	}
	mon := monthNumber(b[5:8])
	var day int
	switch {
	case mon == 0:
		return 0
	case b[9] == ' ' && isDigit(b[10]):
		day = int(b[10] - '0')
	case isDigit(b[9]) && isDigit(b[10]):
		day = int(b[9]-'0')*10 + int(b[10]-'0')
	default:
		return 0
	}
	hh, mm, ss, ok := clockTime(b[12:20])
	y, ok2 := num(b[21:25])
	if !ok || !ok2 {
		return 0
	}
	*st = stamp{kind: stampLocal, year: int32(y), month: uint8(mon), day: uint8(day), hour: uint8(hh), min: uint8(mm), sec: uint8(ss)}
	return size
}

// fraction reads an optional fraction of a second at b[n:], '.' or ',' and
// digits, beyond nanoseconds ignored.
func fraction(b []byte, n int) (ns, end int, comma bool) {
	if n+1 >= len(b) || (b[n] != '.' && b[n] != ',') || !isDigit(b[n+1]) {
		return 0, n, false
	}
	comma = b[n] == ','
	n++
	scale := 100_000_000
	for ; n < len(b) && isDigit(b[n]); n++ {
		ns += int(b[n]-'0') * scale
		scale /= 10
	}
	return ns, n, comma
}

// clockTime reads "hh:mm:ss".
func clockTime(b []byte) (hh, mm, ss int, ok bool) {
	if len(b) != 8 || b[2] != ':' || b[5] != ':' ||
		!isDigit(b[0]) || !isDigit(b[1]) || !isDigit(b[3]) ||
		!isDigit(b[4]) || !isDigit(b[6]) || !isDigit(b[7]) {
		return 0, 0, 0, false
	}
	hh = int(b[0]-'0')*10 + int(b[1]-'0')
	mm = int(b[3]-'0')*10 + int(b[4]-'0')
	ss = int(b[6]-'0')*10 + int(b[7]-'0')
	return hh, mm, ss, true
}

// num reads a short run of decimal digits that is all of b.
func num(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// monthNumber returns 1..12 for an English month abbreviation, or 0.
func monthNumber(b []byte) int {
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

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipBlanks returns the index of the first non-blank at or after j.
func skipBlanks(b []byte, j int) int {
	for j < len(b) && isBlank(b[j]) {
		j++
	}
	return j
}

// tokenEnd returns the index of the first blank at or after j.
func tokenEnd(b []byte, j int) int {
	for j < len(b) && !isBlank(b[j]) {
		j++
	}
	return j
}

// Time. A stamp's fields are kept as read and become a time.Time only for
// lines that are events, and only on request: a Source stamps events with
// the time it read them, since a line's own stamp may lack a year, a zone
// or precision.

// stampKind says how a stamp's fields become a time.
type stampKind uint8

const (
	// stampNone: no stamp, or one that gives no time (an uptime, a
	// tcpdump clock without a date).
	stampNone stampKind = iota
	// stampNoYear: RFC 3164's local time without a year.
	stampNoYear
	// stampLocal: local time with a year (dmesg -T).
	stampLocal
	// stampOffset: ISO 8601 / RFC 3339, with its UTC offset.
	stampOffset
	// stampUnix: seconds since 1970 (tcpdump -tt, a journal entry).
	stampUnix
)

// stamp holds a stamp's fields as read, small so that frames are cheap
// to clear and copy.
type stamp struct {
	kind                       stampKind
	month, day, hour, min, sec uint8
	year, ns                   int32
	off                        int32 // seconds east of UTC, for stampOffset
	unix                       int64 // for stampUnix
}

// yearSlack is how far after the current time a stamp without a year may
// lie and still be this year's: clocks differ, and a sender's local time
// may be a day ahead of the reader's.
const yearSlack = 7 * 24 * time.Hour

// time returns the stamp as a time, or the zero time when there is none
// or its fields are impossible. loc is the zone of local stamps. A stamp
// without a year (RFC 3164) is placed in the latest year that puts it no
// more than yearSlack after now, so it is right for any log less than a
// year old, across New Year in either direction (a December line read in
// January is last year's; a January line read on December 31st by a host
// whose clock is behind is next year's), and February 29th goes back to
// the last leap year; with now zero it gives no time.
func (s *stamp) time(now time.Time, loc *time.Location) time.Time {
	switch s.kind {
	case stampNone:
		return time.Time{}
	case stampUnix:
		return time.Unix(s.unix, int64(s.ns))
	}
	mon, day, year := int(s.month), int(s.day), int(s.year)
	hh, mm, ss, ns := int(s.hour), int(s.min), int(s.sec), int(s.ns)
	if mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}
	}
	if loc == nil {
		loc = time.Local
	}
	switch s.kind {
	case stampOffset:
		if day > daysIn(mon, year) {
			return time.Time{} // November 31st
		}
		secs := civilSeconds(year, mon, day) + int64(hh*3600+mm*60+ss) - int64(s.off)
		return time.Unix(secs, int64(ns)).UTC()
	case stampLocal:
		if day > daysIn(mon, year) {
			return time.Time{}
		}
		return time.Date(year, time.Month(mon), day, hh, mm, ss, ns, loc)
	}
	if now.IsZero() {
		return time.Time{}
	}
	// A year later than the limit's cannot do, so the first year tried
	// is nearly always the answer. Going back reaches the leap year
	// before a Feb 29th, at most eight years (2096 to 2104 has none).
	limit := now.Add(yearSlack)
	last := limit.Year()
	for y := last; y >= last-8; y-- {
		if day > daysIn(mon, y) {
			continue
		}
		if t := time.Date(y, time.Month(mon), day, hh, mm, ss, ns, loc); !t.After(limit) {
			return t
		}
	}
	return time.Time{}
}

// civilSeconds returns the seconds from 1970-01-01 to the start of the
// given day (proleptic Gregorian; the days-from-civil algorithm), which is
// several times cheaper than time.Date and needs no zone.
func civilSeconds(year, month, day int) int64 {
	y, m := year, month
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400 // floor, for the year 0000
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097+doe-719468) * 86400
}

// daysIn returns the number of days of month m in year y.
func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
