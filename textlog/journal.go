package textlog

import (
	"bytes"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"portknock/sequence"
)

// journalImplemented reports that FormatJournal parses.
const journalImplemented = true

// parseJournal parses one entry of journalctl -o json: one JSON object per
// line, whose "MESSAGE" is, for a knock, a kernel LOG line:
//
//	{"_TRANSPORT":"kernel","__REALTIME_TIMESTAMP":"1795316483242291",
//	 "SYSLOG_IDENTIFIER":"kernel","PRIORITY":"4",...,
//	 "MESSAGE":"knock IN=eth0 OUT= MAC=... SRC=192.0.2.7 DST=192.0.2.1 LEN=60
//	 ... PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0 "}
//
// A line is taken for an entry when it starts with "{" and contains the
// literal `"MESSAGE"` or `"_TRANSPORT"` (so that other lines cost a few
// nanoseconds), and is then read as encoding/json would decode it into a
// map: escapes decoded, invalid UTF-8 replaced, the last of duplicate keys
// winning. journalctl writes a value that is not printable UTF-8 as an
// array of byte values; such a MESSAGE is read as those bytes.
//
// Only the kernel's own entries are knocks: "_TRANSPORT" must be the string
// "kernel". Fields starting with "_" are set by journald itself, while any
// local user can log any MESSAGE and any other field (logger, systemd-cat,
// a service's output, sd_journal_send). So:
//
//   - not valid JSON (cut short or corrupt; journalctl writes none):
//     ReasonTruncated;
//   - valid JSON with neither a "MESSAGE" nor a "_TRANSPORT" key (the
//     literals were in values): ReasonUnrecognized, not an entry;
//   - any "_TRANSPORT" other than "kernel", or none: ReasonPrefix, not
//     logged by the knock rule, whatever its fields say;
//   - a kernel entry whose MESSAGE is missing, is neither a string nor a
//     byte array (a field logged several times is an array of values), or
//     is not a packet log: ReasonUnrecognized.
//
// Every line that looks like an entry thus gets a reason from this parser,
// other than ReasonUnrecognized unless it is the kernel's own, so that with
// FormatAuto no format tried later can find kernel-style fields in text a
// user wrote. Reading `journalctl -k -o json` keeps other entries out. The
// entry's wrapper is read by readJournalFrame (frame.go); Parser.Programs
// does not widen it, since journald, not the sender, names the transport.
//
// A kernel entry's MESSAGE is the kernel's message, judged as kernel.go
// judges a bare kernel line: the fields start at the last "IN=" that is
// followed by an " OUT=" word, what comes before is the log prefix (the
// kernel glues it to IN= unless it ends in a blank), which must equal
// Parser.Prefix, blanks around both ignored.
//
// The event's time is "__REALTIME_TIMESTAMP" (microseconds since the
// epoch, as a string of digits), or zero when it is missing or malformed.
func (p *Parser) parseJournal(line []byte, ev *sequence.Event) Reason {
	line = skipJSONSpace(line)
	if len(line) == 0 || line[0] != '{' ||
		indexLit(line, `"MESSAGE"`, 1) < 0 && indexLit(line, `"_TRANSPORT"`, 2) < 0 {
		return ReasonUnrecognized
	}
	var fr frame
	msg, r := readJournalFrame(line, &fr)
	switch {
	case r != ReasonNone:
		return r
	case string(fr.program) != "kernel":
		return ReasonPrefix
	}
	// The usual case: a string without escapes, used in place.
	if msg.kind == jsonString && msg.plain {
		return p.journalEvent(fr.msg, &fr, ev)
	}
	if msg.kind != jsonString && msg.kind != jsonArray {
		return ReasonUnrecognized
	}
	bp := jsonGetBuf()
	defer jsonPutBuf(bp)
	if msg.kind == jsonString {
		*bp = jsonUnquote((*bp)[:0], msg.raw)
	} else {
		var ok bool
		if *bp, ok = jsonByteArray((*bp)[:0], msg.raw); !ok {
			return ReasonUnrecognized
		}
	}
	return p.journalEvent(*bp, &fr, ev)
}

// jsonBufs holds the buffers that JSON strings with escapes are decoded
// into. A buffer on the stack would not do: the decoded addresses go to
// netip.ParseAddr, which makes its input escape (into its error), so the
// compiler would allocate the buffer on every call.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, DefaultMaxLine); return &b }}

func jsonGetBuf() *[]byte { return jsonBufs.Get().(*[]byte) }

func jsonPutBuf(b *[]byte) {
	if cap(*b) <= 4*DefaultMaxLine { // keep no giant buffer alive
		*b = (*b)[:0]
		jsonBufs.Put(b)
	}
}

// journalEvent reads the MESSAGE of a kernel entry.
func (p *Parser) journalEvent(msg []byte, fr *frame, ev *sequence.Event) Reason {
	k, ok := locateKernel(msg)
	if !ok {
		return ReasonUnrecognized
	}
	if !k.prefixMatches(0, p.Prefix) {
		return ReasonPrefix
	}
	if r := k.event(ev); r != ReasonNone {
		return r
	}
	ev.Time = fr.stamp.time(p.Now, p.Location)
	return ReasonNone
}

// kernelTransport is a kernel entry's program.
var kernelTransport = []byte("kernel")

// readJournalFrame reads the wrapper of a journalctl -o json entry into f:
// the program is the entry's _TRANSPORT ("kernel" for the kernel's own,
// which only journald can set), the host its _HOSTNAME, the time its
// __REALTIME_TIMESTAMP. It returns the MESSAGE member as scanned, and sets
// f.msg when that is a string without escapes; decoding others is the
// caller's. r is ReasonTruncated when the line is not valid JSON (cut short
// or corrupt; journalctl writes none) and ReasonUnrecognized when it has
// neither a MESSAGE nor a _TRANSPORT member.
func readJournalFrame(line []byte, f *frame) (msg jsonValue, r Reason) {
	*f = frame{kind: frameJournal}
	var transport, host, when jsonValue
	var it jsonObjectIter
	it.init(line)
	for it.next() {
		k := it.key
		if !it.keyPlain {
			// Escaped keys are decoded; the keys that matter are short,
			// so a longer one is cut, which cannot make it match.
			var kb [jsonKeyMax + utf8.UTFMax]byte
			k = jsonUnquoteMax(kb[:0], k, jsonKeyMax)
		}
		switch string(k) {
		case "MESSAGE":
			msg = it.val
		case "_TRANSPORT":
			transport = it.val
		case "_HOSTNAME":
			host = it.val
		case "__REALTIME_TIMESTAMP":
			when = it.val
		}
	}
	switch {
	case !it.ok():
		return msg, ReasonTruncated
	case msg.kind == jsonNone && transport.kind == jsonNone:
		return msg, ReasonUnrecognized
	}
	if transport.isString("kernel") {
		f.program = kernelTransport
	} else if transport.kind == jsonString {
		f.program = transport.raw // not "kernel", escaped or not
	}
	if host.kind == jsonString && host.plain {
		f.host = host.raw
	}
	if msg.kind == jsonString && msg.plain {
		f.msg = msg.raw
	}
	if when.kind == jsonString {
		digits := when.raw
		if !when.plain {
			var b [jsonKeyMax + utf8.UTFMax]byte
			digits = jsonUnquoteMax(b[:0], digits, jsonKeyMax)
		}
		if us, ok := jsonUintDigits(digits); ok {
			f.stamp = stamp{kind: stampUnix, unix: int64(us / 1e6), ns: int32(us % 1e6 * 1000)}
		}
	}
	return msg, ReasonNone
}

// jsonByteArray decodes journalctl's form of a binary field, an array of
// byte values written as plain decimal integers, appending to dst. raw is
// the array's text, already known to be valid JSON.
func jsonByteArray(dst, raw []byte) ([]byte, bool) {
	n, digits := 0, 0
	for _, c := range raw[1:] {
		switch {
		case c >= '0' && c <= '9':
			n = n*10 + int(c-'0')
			digits++
			if n > 255 {
				return nil, false
			}
		case c == ',' || c == ']':
			if digits == 0 {
				if c == ']' && len(dst) == 0 {
					continue // "[]" is the empty value
				}
				return nil, false
			}
			dst = append(dst, byte(n))
			n, digits = 0, 0
		case isJSONSpace(c):
			// A blank ends a number only before ',' or ']', which JSON
			// validity already ensures.
		default:
			return nil, false // a string, a fraction, a sign...
		}
	}
	return dst, true
}

// The JSON scanner. journalctl and ulogd write one object per line, and only
// a few of its members matter; decoding every line into a map with
// encoding/json costs far more than the rest of the parse and allocates.
// This scanner validates the whole line as encoding/json does (a fuzz test
// holds it to that) and hands out members without allocating.

// jsonKind is the type of a JSON value.
type jsonKind uint8

const (
	jsonNone jsonKind = iota // a missing value
	jsonString
	jsonNumber
	jsonArray
	jsonObject
	jsonLiteral // true, false, null
)

// jsonValue is one scanned value. For a string, raw is the text between the
// quotes, and plain says that it is also the decoded value (no escapes, and
// valid UTF-8). For other kinds raw is the value's text.
type jsonValue struct {
	raw   []byte
	kind  jsonKind
	plain bool
}

// isString reports whether v is the string s.
func (v *jsonValue) isString(s string) bool {
	if v.kind != jsonString {
		return false
	}
	if v.plain {
		return string(v.raw) == s
	}
	var b [jsonKeyMax + utf8.UTFMax]byte
	if len(s) > jsonKeyMax {
		return string(jsonUnquote(nil, v.raw)) == s
	}
	return string(jsonUnquoteMax(b[:0], v.raw, len(s)+1)) == s
}

// jsonKeyMax is more than the length of any key or short value compared:
// decoding stops there, which keeps the decoded text on the stack.
const jsonKeyMax = 32

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipJSONSpace returns b without its leading JSON whitespace.
func skipJSONSpace(b []byte) []byte {
	for len(b) > 0 && isJSONSpace(b[0]) {
		b = b[1:]
	}
	return b
}

// jsonMaxDepth bounds the nesting of arrays and objects inside the top
// object; deeper lines are rejected as invalid.
const jsonMaxDepth = 64 * len(jsonDepthStack{})

// jsonDepthStack records, one bit per level, whether each open container
// is an object.
type jsonDepthStack [16]uint64

// jsonObjectIter walks the members of the JSON object that a line must
// consist of. After next returns false, ok tells whether the whole line was
// one valid object, with only whitespace around it.
type jsonObjectIter struct {
	b        []byte
	i        int
	state    uint8 // 0 before '{', 1 inside, 2 done, 3 invalid
	key      []byte
	keyPlain bool
	val      jsonValue
}

func (it *jsonObjectIter) init(b []byte) { *it = jsonObjectIter{b: b} }

func (it *jsonObjectIter) ok() bool { return it.state == 2 }

func (it *jsonObjectIter) ws() {
	for it.i < len(it.b) && isJSONSpace(it.b[it.i]) {
		it.i++
	}
}

// next moves to the next member, setting key, keyPlain and val.
func (it *jsonObjectIter) next() bool {
	switch it.state {
	case 0:
		it.ws()
		if it.i >= len(it.b) || it.b[it.i] != '{' {
			it.state = 3
			return false
		}
		it.i++
		it.ws()
		if it.i < len(it.b) && it.b[it.i] == '}' {
			it.i++
			return it.end()
		}
		it.state = 1
	case 1:
		it.ws()
		if it.i >= len(it.b) {
			it.state = 3
			return false
		}
		switch it.b[it.i] {
		case '}':
			it.i++
			return it.end()
		case ',':
			it.i++
			it.ws()
		default:
			it.state = 3
			return false
		}
	default:
		return false
	}
	// A member: "key" : value
	if it.i >= len(it.b) || it.b[it.i] != '"' {
		it.state = 3
		return false
	}
	k, plain, ok := it.str()
	if !ok {
		it.state = 3
		return false
	}
	it.ws()
	if it.i >= len(it.b) || it.b[it.i] != ':' {
		it.state = 3
		return false
	}
	it.i++
	it.ws()
	v, ok := it.value()
	if !ok {
		it.state = 3
		return false
	}
	it.key, it.keyPlain, it.val = k, plain, v
	return true
}

// end checks that only whitespace follows the object.
func (it *jsonObjectIter) end() bool {
	it.ws()
	if it.i != len(it.b) {
		it.state = 3
	} else {
		it.state = 2
	}
	return false
}

// str scans a string starting at its opening quote. Most of a line is
// string contents, so the common case, a string without escapes, is found
// with bytes.IndexByte and checked eight bytes at a time.
func (it *jsonObjectIter) str() (raw []byte, plain, ok bool) {
	b := it.b
	start := it.i + 1
	if jq := bytes.IndexByte(b[start:], '"'); jq >= 0 {
		span := b[start : start+jq]
		if bytes.IndexByte(span, '\\') < 0 {
			switch asciiPrintable(span) {
			case spanASCII:
				it.i = start + jq + 1
				return span, true, true
			case spanUTF8:
				it.i = start + jq + 1
				return span, utf8.Valid(span), true
			}
			return nil, false, false // a control character
		}
	}
	return it.strSlow(start)
}

// What asciiPrintable found in a span of a string.
const (
	spanASCII   = iota // printable ASCII only
	spanUTF8           // bytes >= 0x80 too, no control character
	spanControl        // a byte below 0x20, which JSON forbids in strings
)

// asciiPrintable classifies the bytes of a string's contents.
func asciiPrintable(b []byte) int {
	const lo, hi = 0x2020202020202020, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
			uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
		// Non-zero when some byte is below 0x20 or has its top bit set.
		if ((w-lo)&^w|w)&hi != 0 {
			break
		}
	}
	r := spanASCII
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c < 0x20:
			return spanControl
		case c >= 0x80:
			r = spanUTF8
		}
	}
	return r
}

// strSlow scans a string with escapes from start, just after its quote.
func (it *jsonObjectIter) strSlow(start int) (raw []byte, plain, ok bool) {
	b := it.b
	i := start
	plain = true
	ascii := true
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			raw = b[start:i]
			if !ascii && plain {
				plain = utf8.Valid(raw)
			}
			it.i = i + 1
			return raw, plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return nil, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !jsonIsHex(b[i+2]) || !jsonIsHex(b[i+3]) || !jsonIsHex(b[i+4]) || !jsonIsHex(b[i+5]) {
					return nil, false, false
				}
				i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default:
			if c >= 0x80 {
				ascii = false
			}
			i++
		}
	}
	return nil, false, false
}

func jsonIsHex(c byte) bool { return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f' }

// number scans a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (it *jsonObjectIter) number() bool {
	b, i := it.b, it.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && b[i]|0x20 == 'e' {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	it.i = i
	return true
}

// scalar scans a string, number or literal at it.i.
func (it *jsonObjectIter) scalar() (jsonValue, bool) {
	b, start := it.b, it.i
	if start >= len(b) {
		return jsonValue{}, false
	}
	switch c := b[start]; {
	case c == '"':
		raw, plain, ok := it.str()
		return jsonValue{raw: raw, kind: jsonString, plain: plain}, ok
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if kvHasPrefix(b[start:], lit) {
				it.i += len(lit)
				return jsonValue{raw: b[start:it.i], kind: jsonLiteral}, true
			}
		}
		return jsonValue{}, false
	default:
		if !it.number() {
			return jsonValue{}, false
		}
		return jsonValue{raw: b[start:it.i], kind: jsonNumber}, true
	}
}

// value scans any value at it.i. Arrays and objects are walked without
// recursion, their nesting kept as bits.
func (it *jsonObjectIter) value() (jsonValue, bool) {
	b, start := it.b, it.i
	if start >= len(b) || b[start] != '[' && b[start] != '{' {
		return it.scalar()
	}
	kind := jsonArray
	if b[start] == '{' {
		kind = jsonObject
	}
	var stack jsonDepthStack
	depth := 0
	// open pushes the container at it.i and reports whether it is empty
	// (and so already closed).
	open := func() (bool, bool) {
		if depth == jsonMaxDepth {
			return false, false
		}
		isObj := b[it.i] == '{'
		if isObj {
			stack[depth/64] |= 1 << (depth % 64)
		} else {
			stack[depth/64] &^= 1 << (depth % 64)
		}
		depth++
		it.i++
		it.ws()
		if it.i < len(b) && (isObj && b[it.i] == '}' || !isObj && b[it.i] == ']') {
			it.i++
			depth--
			return true, true
		}
		return false, true
	}
	top := func() bool { return stack[(depth-1)/64]>>((depth-1)%64)&1 != 0 }
	// key scans "key": inside an object.
	key := func() bool {
		if it.i >= len(b) || b[it.i] != '"' {
			return false
		}
		if _, _, ok := it.str(); !ok {
			return false
		}
		it.ws()
		if it.i >= len(b) || b[it.i] != ':' {
			return false
		}
		it.i++
		it.ws()
		return true
	}
	closed, ok := open()
	if !ok {
		return jsonValue{}, false
	}
	for !closed || depth > 0 {
		if !closed {
			// Expecting an element or a member of the innermost container.
			if top() && !key() {
				return jsonValue{}, false
			}
			if it.i < len(b) && (b[it.i] == '[' || b[it.i] == '{') {
				if closed, ok = open(); !ok {
					return jsonValue{}, false
				}
				continue
			}
			if _, ok := it.scalar(); !ok {
				return jsonValue{}, false
			}
		}
		// A value is complete; what follows is ',' or the container's end.
		if depth == 0 {
			break
		}
		it.ws()
		if it.i >= len(b) {
			return jsonValue{}, false
		}
		switch c := b[it.i]; {
		case c == ',':
			it.i++
			it.ws()
			closed = false
		case c == '}' && top(), c == ']' && !top():
			it.i++
			depth--
			closed = true
		default:
			return jsonValue{}, false
		}
	}
	return jsonValue{raw: b[start:it.i], kind: kind}, true
}

// jsonUnquote appends the decoded form of a valid JSON string's contents
// (raw, between the quotes) to dst, exactly as encoding/json decodes it:
// invalid UTF-8 bytes and unpaired surrogates become U+FFFD.
func jsonUnquote(dst, raw []byte) []byte { return jsonUnquoteMax(dst, raw, -1) }

// jsonUnquoteMax is jsonUnquote that stops once dst holds max bytes or
// more (max < 0: no limit), for callers that only compare a short head.
func jsonUnquoteMax(dst, raw []byte, max int) []byte {
	for i := 0; i < len(raw) && (max < 0 || len(dst) < max); {
		c := raw[i]
		switch {
		case c == '\\':
			switch e := raw[i+1]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := jsonHex4(raw[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if d := utf16.DecodeRune(r, jsonHex4(raw[i+2:])); d != utf8.RuneError {
							i += 6
							dst = utf8.AppendRune(dst, d)
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst
}

// jsonHex4 reads the four hex digits of a \u escape, already validated.
func jsonHex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
