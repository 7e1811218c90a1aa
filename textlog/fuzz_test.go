package textlog

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"portknock/sequence"
)

// refSimple is a slow, obvious reading of the simple format built from the
// standard library, to check the fast parser against. Without
// Parser.Programs a line is judged whole, unless the prefix could start a
// wrapper; then the wrapper is readFrame's (FuzzReadFrame checks it): a bare
// line is judged whole, and in a framed line a message with the record's
// shape (two fields, the first starting with a digit) is ReasonProgram.
func refSimple(line, prefix string, ev *sequence.Event) Reason {
	if p := strings.TrimFunc(prefix, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' }); p == "" || !strings.ContainsAny(p[:1], "<[0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		// The parser judges the line whole: no line with a wrapper has a
		// simple record's shape.
		return refSimpleMessage(line, prefix, ev)
	}
	var fr frame
	readFrame([]byte(line), &fr)
	switch {
	case fr.kind == frameBare:
		return refSimpleMessage(line, prefix, ev)
	case fr.broken != ReasonNone:
		return ReasonUnrecognized
	}
	var scratch sequence.Event
	switch r := refSimpleMessage(string(fr.msg), prefix, &scratch); r {
	case ReasonNone, ReasonBadPort, ReasonBadProto, ReasonBadAddress:
		return ReasonProgram
	default:
		return r
	}
}

// refSimpleMessage judges a simple record that is all of line.
func refSimpleMessage(line, prefix string, ev *sequence.Event) Reason {
	isBlank := func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' }
	fields := strings.FieldsFunc(line, isBlank)
	if pfx := strings.FieldsFunc(prefix, isBlank); len(pfx) > 0 {
		// The prefix matches whole fields, except that blanks inside it
		// must match exactly.
		want := strings.TrimFunc(prefix, isBlank)
		s := strings.TrimLeftFunc(line, isBlank)
		rest, ok := strings.CutPrefix(s, want)
		if !ok || rest != "" && !isBlank(rune(rest[0])) {
			return ReasonPrefix
		}
		fields = strings.FieldsFunc(rest, isBlank)
	}
	if len(fields) != 2 || fields[0][0] < '0' || fields[0][0] > '9' {
		return ReasonUnrecognized
	}
	portStr, protoStr, hasProto := strings.Cut(fields[0], "/")
	for _, c := range portStr {
		if c < '0' || c > '9' {
			return ReasonBadPort
		}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return ReasonBadPort
	}
	proto := sequence.TCP
	if hasProto {
		// Not sequence.ParseProto: strings.ToLower maps some non-ASCII
		// runes to ASCII letters, and only ASCII is the protocol.
		switch {
		case strings.EqualFold(protoStr, "tcp") && isASCII(protoStr):
		case strings.EqualFold(protoStr, "udp") && isASCII(protoStr):
			proto = sequence.UDP
		default:
			return ReasonBadProto
		}
	}
	addr, err := netip.ParseAddr(fields[1])
	if err != nil {
		return ReasonBadAddress
	}
	*ev = sequence.Event{Src: sequence.NormalizeAddr(addr), Port: uint16(port), Proto: proto}
	return ReasonNone
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestRefSimpleAgreesOnCases(t *testing.T) {
	for _, tc := range simpleCases {
		if tc.format != FormatAuto && tc.format != FormatSimple {
			continue
		}
		var ev sequence.Event
		if r := refSimple(tc.line, tc.prefix, &ev); r != tc.reason {
			t.Errorf("%s: reference gives %v, want %v", tc.name, r, tc.reason)
		}
	}
}

// FuzzParseSimple checks the simple parser against the reference: same
// reason, same event, no panics, and events that are well formed.
func FuzzParseSimple(f *testing.F) {
	// Records in other programs' messages (see foreign_test.go).
	for _, l := range foreignLines() {
		f.Add(l, "")
	}
	for _, tc := range simpleCases {
		f.Add(tc.line, tc.prefix)
	}
	f.Add("7000 1.2.3.4%", "")
	f.Add("7000 ::%a", "")
	f.Add("1 ::ffff:0.0.0.0%\xff", "x")
	f.Fuzz(func(t *testing.T, line, prefix string) {
		p := Parser{Format: FormatSimple, Prefix: prefix}
		var got, want sequence.Event
		_, r := p.Parse([]byte(line), &got)
		wantR := refSimple(line, prefix, &want)
		if r != wantR {
			t.Fatalf("Parse(%q, prefix %q) = %v, reference %v", line, prefix, r, wantR)
		}
		if r != ReasonNone {
			return
		}
		if got != want {
			t.Fatalf("Parse(%q, prefix %q) = %+v, reference %+v", line, prefix, got, want)
		}
		if !got.Src.IsValid() || got.Src != sequence.NormalizeAddr(got.Src) || got.Port == 0 ||
			(got.Proto != sequence.TCP && got.Proto != sequence.UDP) || got.FlagsKnown {
			t.Fatalf("Parse(%q) gave a malformed event %+v", line, got)
		}
		// What the parser accepts, it accepts again once formatted.
		again := sequence.Event{}
		canon := strconv.Itoa(int(got.Port)) + "/" + got.Proto.String() + " " + got.Src.String()
		if _, r := (&Parser{}).Parse([]byte(canon), &again); r != ReasonNone || again != got {
			t.Fatalf("canonical %q parses as %+v, %v; want %+v", canon, again, r, got)
		}
	})
}
