package textlog

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unsafe"

	"portknock/sequence"
)

type frameCase struct {
	name    string
	line    string
	kind    frameKind
	host    string
	program string
	msg     string
	stamp   stampKind
	broken  Reason
	// syslogStamp: a syslog stamp without a tag, so the message may
	// begin with a host name.
	syslogStamp bool
}

var frameCases = []frameCase{
	{name: "bare", line: "knock IN=eth0 OUT=", kind: frameBare, msg: "knock IN=eth0 OUT="},
	{name: "empty", line: "", kind: frameBare},
	{name: "rfc 3164 file", line: "Nov 22 12:00:01 fw kernel: knock", kind: frameSyslog, host: "fw", program: "kernel", msg: "knock", stamp: stampNoYear},
	{name: "rfc 3164 tag with pid", line: "Nov 22 12:00:01 fw sshd[42]: Invalid user x", kind: frameSyslog, host: "fw", program: "sshd", msg: "Invalid user x", stamp: stampNoYear},
	{name: "rfc 3164 path-like tag", line: "Nov 22 12:00:01 fw postfix/smtpd[42]: connect", kind: frameSyslog, host: "fw", program: "postfix/smtpd", msg: "connect", stamp: stampNoYear},
	{name: "rfc 3164 tag alone", line: "Nov 22 12:00:01 kernel: knock", kind: frameSyslog, program: "kernel", msg: "knock", stamp: stampNoYear},
	{name: "rfc 3164 wire", line: "<134>Nov 22 12:00:01 filterlog[1]: 5,,,", kind: frameSyslog, program: "filterlog", msg: "5,,,", stamp: stampNoYear},
	{name: "rfc 3164 padded day", line: "Nov  2 12:00:01 fw kernel: knock", kind: frameSyslog, host: "fw", program: "kernel", msg: "knock", stamp: stampNoYear},
	{name: "rfc 3164 uptime in the message", line: "Nov 22 12:00:01 fw kernel: [ 5836.334631] knock", kind: frameSyslog, host: "fw", program: "kernel", msg: "knock", stamp: stampNoYear},
	{name: "rfc 3164 without a tag", line: "Nov 22 12:00:01 vm knock IN=", kind: frameStamp, msg: "vm knock IN=", stamp: stampNoYear, syslogStamp: true},
	{name: "rfc 3164 busybox", line: "Nov 22 12:00:01 fw kern.warn kernel: knock", kind: frameSyslog, host: "fw", program: "kernel", msg: "knock", stamp: stampNoYear},
	{name: "rfc 3164 not a facility", line: "Nov 22 12:00:01 fw knock.x kernel: knock", kind: frameStamp, msg: "fw knock.x kernel: knock", stamp: stampNoYear, syslogStamp: true},
	{name: "rfc 3164 cut in the pid", line: "Nov 22 12:00:01 fw filterlog[12", kind: frameSyslog, host: "fw", program: "filterlog", stamp: stampNoYear, broken: ReasonTruncated},
	{name: "rfc 3164 tag at the end", line: "Nov 22 12:00:01 fw filterlog[12]:", kind: frameSyslog, host: "fw", program: "filterlog", stamp: stampNoYear},
	{name: "journalctl short-precise", line: "Nov 22 12:00:01.250000 fw kernel: knock", kind: frameSyslog, host: "fw", program: "kernel", msg: "knock", stamp: stampNoYear},
	{name: "iso file", line: "2026-11-22T13:00:01.5+01:00 fw kernel: knock", kind: frameSyslog, host: "fw", program: "kernel", msg: "knock", stamp: stampOffset},
	{name: "iso without a tag", line: "2026-11-22T13:00:01Z knock IN=", kind: frameStamp, msg: "knock IN=", stamp: stampOffset, syslogStamp: true},
	{name: "dmesg iso", line: "2026-11-22T12:00:01,123456+00:00 knock: IN=", kind: frameStamp, msg: "knock: IN=", stamp: stampOffset},
	{name: "rfc 5424", line: "<4>1 2026-11-22T12:00:01Z fw kernel - - - knock", kind: frameSyslog, host: "fw", program: "kernel", msg: "knock", stamp: stampOffset},
	{name: "rfc 5424 nil fields", line: "<4>1 - - - - - - knock", kind: frameSyslog, msg: "knock"},
	{name: "rfc 5424 structured data", line: `<4>1 2026-11-22T12:00:01Z fw kernel 1 m [a b="]\"" c="d"][e] knock`, kind: frameSyslog, host: "fw", program: "kernel", msg: "knock", stamp: stampOffset},
	{name: "rfc 5424 bom", line: "<4>1 - fw kernel - - - \xef\xbb\xbfknock", kind: frameSyslog, host: "fw", program: "kernel", msg: "knock"},
	{name: "rfc 5424 cut in structured data", line: `<4>1 - fw kernel - - [a b="`, kind: frameSyslog, host: "fw", program: "kernel", broken: ReasonTruncated},
	{name: "rfc 5424 cut after the app", line: `<4>1 - fw kernel 1`, kind: frameSyslog, host: "fw", program: "kernel", broken: ReasonTruncated},
	{name: "rfc 5424 malformed", line: `<4>1 - fw kernel knock IN=eth0 OUT= x`, kind: frameSyslog, host: "fw", program: "kernel", broken: ReasonUnrecognized},
	{name: "rfc 5424 cut before the app", line: `<4>1 - fw kern`, kind: frameStamp, msg: "1 - fw kern"},
	{name: "pri without a stamp", line: "<13>myapp: hello", kind: frameSyslog, program: "myapp", msg: "hello"},
	{name: "pri alone", line: "<4>knock IN=", kind: frameStamp, msg: "knock IN="},
	{name: "proc kmsg", line: "<4>[ 12.5] knock IN=", kind: frameStamp, msg: "knock IN="},
	{name: "dmesg", line: "[ 5836.334631] knock IN=", kind: frameStamp, msg: "knock IN="},
	{name: "dmesg with a prefix like a tag", line: "[ 5836.334631] DROP: IN=", kind: frameStamp, msg: "DROP: IN="},
	{name: "dmesg with two words and a colon", line: "[ 5836.334631] fw drop: IN=", kind: frameStamp, msg: "fw drop: IN="},
	{name: "journalctl short-monotonic kernel", line: "[ 5836.334631] fw kernel: knock", kind: frameSyslog, host: "fw", program: "kernel", msg: "knock"},
	{name: "journalctl short-monotonic pid", line: "[ 5836.334631] fw sshd[42]: hello", kind: frameSyslog, host: "fw", program: "sshd", msg: "hello"},
	{name: "dmesg -T", line: "[Sun Nov 22 12:00:01 2026] knock IN=", kind: frameStamp, msg: "knock IN=", stamp: stampLocal},
	{name: "kmsg", line: "4,383,5836334631,-;knock IN=", kind: frameStamp, msg: "knock IN="},
	{name: "kmsg with caller", line: "4,383,5836334631,-,caller=T1;knock", kind: frameStamp, msg: "knock"},
	{name: "tcpdump clock", line: "12:00:01.123456 rule 3/0(match)", kind: frameStamp, msg: "rule 3/0(match)"},
	{name: "tcpdump -tt", line: "1795348801.123456 rule 3/0(match)", kind: frameStamp, msg: "rule 3/0(match)", stamp: stampUnix},
	{name: "tcpdump -tttt", line: "2026-11-22 12:00:01.123456 rule 3/0(match)", kind: frameStamp, msg: "rule 3/0(match)"},
	{name: "openbsd tcpdump -ttt", line: "Nov 22 12:00:01.123456 rule 3/(match) block", kind: frameStamp, msg: "rule 3/(match) block", stamp: stampNoYear, syslogStamp: true},
	{name: "tcpdump output through logger", line: "Nov 22 12:00:01 fw pf: 12:00:01.123456 rule 3/0(match)", kind: frameSyslog, host: "fw", program: "pf", msg: "rule 3/0(match)", stamp: stampNoYear},
	{name: "simple line", line: "7000 192.0.2.7", kind: frameBare, msg: "7000 192.0.2.7"},
	{name: "json", line: `{"MESSAGE":"x"}`, kind: frameBare, msg: `{"MESSAGE":"x"}`},
	{name: "web access log", line: `198.51.100.9 - - [22/Nov/2026:12:00:01 +0000] "GET / HTTP/1.1"`, kind: frameBare, msg: `198.51.100.9 - - [22/Nov/2026:12:00:01 +0000] "GET / HTTP/1.1"`},
	{name: "not a month", line: "Foo 22 12:00:01 fw kernel: knock", kind: frameBare, msg: "Foo 22 12:00:01 fw kernel: knock"},
	{name: "a tag needs a name", line: "Nov 22 12:00:01 fw [42]: x", kind: frameStamp, msg: "fw [42]: x", stamp: stampNoYear, syslogStamp: true},
	{name: "a pid needs brackets closed", line: "Nov 22 12:00:01 fw sshd[42: x", kind: frameStamp, msg: "fw sshd[42: x", stamp: stampNoYear, syslogStamp: true},
}

func TestReadFrame(t *testing.T) {
	for _, tc := range frameCases {
		t.Run(tc.name, func(t *testing.T) {
			var f frame
			readFrame([]byte(tc.line), &f)
			if f.kind != tc.kind || string(f.host) != tc.host || string(f.program) != tc.program ||
				string(f.msg) != tc.msg || f.stamp.kind != tc.stamp || f.broken != tc.broken || f.syslogStamp != tc.syslogStamp {
				t.Errorf("readFrame(%q) = kind %d host %q program %q msg %q stamp %d broken %v syslogStamp %v\n"+
					"want kind %d host %q program %q msg %q stamp %d broken %v syslogStamp %v", tc.line,
					f.kind, f.host, f.program, f.msg, f.stamp.kind, f.broken, f.syslogStamp,
					tc.kind, tc.host, tc.program, tc.msg, tc.stamp, tc.broken, tc.syslogStamp)
			}
			b := []byte(tc.line)
			if n := testing.AllocsPerRun(10, func() { readFrame(b, &f) }); n != 0 {
				t.Errorf("readFrame(%q) allocates %v times", tc.line, n)
			}
		})
	}
}

// TestFrameTimes checks the time each stamp gives.
func TestFrameTimes(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		line string
		want time.Time
	}{
		{"Nov 22 12:00:01 fw kernel: x", time.Date(2026, 11, 22, 12, 0, 1, 0, time.UTC)},
		{"Nov 22 12:00:01.25 fw kernel: x", time.Date(2026, 11, 22, 12, 0, 1, 250_000_000, time.UTC)},
		{"2026-11-22T13:00:01.5+01:00 fw kernel: x", time.Date(2026, 11, 22, 12, 0, 1, 500_000_000, time.UTC)},
		{"2026-11-22T07:00:01-0500 fw kernel: x", time.Date(2026, 11, 22, 12, 0, 1, 0, time.UTC)},
		{"<4>1 2016-12-31T23:59:60Z fw kernel - - - x", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"[Sun Nov 22 12:00:01 2026] x", time.Date(2026, 11, 22, 12, 0, 1, 0, time.UTC)},
		{"1795348801.5 rule", time.Unix(1795348801, 500_000_000)},
		{"Nov 22 12:00:01 fw pf: 1795348801.5 rule", time.Date(2026, 11, 22, 12, 0, 1, 0, time.UTC)},
		{"[ 12.5] fw kernel: 1795348801.5 x", time.Unix(1795348801, 500_000_000)},
		{"12:00:01.123456 rule", time.Time{}},
		{"2026-11-22 12:00:01.123456 rule", time.Time{}},
		{"[ 12.5] x", time.Time{}},
		{"4,1,2,-;x", time.Time{}},
		{"Nov 31 12:00:01 fw kernel: x", time.Time{}},
		{"2026-02-29T12:00:01Z fw kernel: x", time.Time{}},
		{"Nov 22 24:00:01 fw kernel: x", time.Time{}},
	} {
		var f frame
		readFrame([]byte(tc.line), &f)
		if got := f.stamp.time(now, time.UTC); !got.Equal(tc.want) || got.IsZero() != tc.want.IsZero() {
			t.Errorf("readFrame(%q): time %v, want %v", tc.line, got, tc.want)
		}
	}
}

// refTag is syslogTag's rule as a regular expression.
var refTag = regexp.MustCompile(`^([^ \t\r:\[\]]+)(\[[^ \t\r:\[\]]+\])?:$`)

// within reports whether b lies inside line.
func within(b, line []byte) bool {
	if len(b) == 0 || len(line) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(line)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(line))
}

// FuzzReadFrame checks that the framing reader never panics, that what it
// finds lies in the line in order (host and program before the message,
// which ends the line), that tags follow the tag rule, that stamps give a
// time or none without panicking, and that a header is read the same
// whatever message follows it.
func FuzzReadFrame(f *testing.F) {
	for _, tc := range frameCases {
		f.Add(tc.line)
	}
	for _, l := range foreignLines() {
		f.Add(l)
	}
	for _, name := range nfGoldenForms {
		for _, l := range nfReadGolden(f, name) {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		b := []byte(line)
		var fr frame
		readFrame(b, &fr)
		if !fr.done {
			t.Fatalf("readFrame(%q) left the frame unread", line)
		}
		msgAt := len(b) - len(fr.msg)
		switch {
		case fr.kind == frameBare && (string(fr.msg) != line || fr.program != nil || fr.host != nil):
			t.Fatalf("bare readFrame(%q) = %+v", line, fr)
		case fr.broken != ReasonNone && len(fr.msg) != 0:
			t.Fatalf("broken readFrame(%q) has message %q", line, fr.msg)
		case !within(fr.msg, b) || !strings.HasSuffix(line, string(fr.msg)):
			t.Fatalf("readFrame(%q): message %q does not end the line", line, fr.msg)
		case fr.kind == frameStamp && fr.program != nil:
			t.Fatalf("readFrame(%q): a stamp frame with program %q", line, fr.program)
		}
		for _, part := range [][]byte{fr.host, fr.program} {
			if !within(part, b) {
				t.Fatalf("readFrame(%q): %q is not in the line", line, part)
			}
			if len(part) > 0 && fr.broken == ReasonNone {
				end := int(uintptr(unsafe.Pointer(unsafe.SliceData(part)))-uintptr(unsafe.Pointer(unsafe.SliceData(b)))) + len(part)
				if end > msgAt {
					t.Fatalf("readFrame(%q): %q runs into the message %q", line, part, fr.msg)
				}
			}
		}
		if fr.kind == frameSyslog && !fr.pri && fr.broken == ReasonNone && !refTag.MatchString(string(fr.program)+":") {
			t.Fatalf("readFrame(%q): program %q is not a tag's name", line, fr.program)
		}
		fr.stamp.time(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), time.UTC)
		fr.stamp.time(time.Time{}, nil)

		// syslogTag agrees with the regular expression on the line's
		// first token.
		tok := b[:tokenEnd(b, 0)]
		name, ok := syslogTag(tok)
		if m := refTag.FindSubmatch(tok); (m != nil) != ok || ok && string(m[1]) != string(name) {
			t.Fatalf("syslogTag(%q) = %q, %v; the rule says %q", tok, name, ok, m)
		}

		// A header reads the same whatever message follows it: the line,
		// as another program's message, stays that program's message.
		if len(b) > 0 && !isBlank(b[0]) && b[0] != '[' && !isDigit(b[0]) && (b[0] < 'A' || b[0] > 'Z') {
			for _, h := range []string{"Nov 22 12:00:01 fw sshd[42]: ", "<38>1 2026-11-22T12:00:01Z fw sshd 42 - - ", "[ 1.5] fw sshd[42]: "} {
				var g frame
				readFrame([]byte(h+line), &g)
				if g.kind != frameSyslog || string(g.program) != "sshd" || string(g.msg) != line {
					t.Fatalf("readFrame(%q) = program %q, message %q", h+line, g.program, g.msg)
				}
			}
		}
	})
}

// TestTCPFlagReaders checks that the word and letter readers read the same
// flags from the one table.
func TestTCPFlagReaders(t *testing.T) {
	var all sequence.TCPFlags
	for _, n := range tcpFlagNames {
		if got := tcpFlagWord([]byte(n.word)); got != n.flag {
			t.Errorf("tcpFlagWord(%q) = %v, want %v", n.word, got, n.flag)
		}
		if got, ok := tcpFlagLetters([]byte{n.letter}, false); !ok || got != n.flag {
			t.Errorf("tcpFlagLetters(%q) = %v, %v; want %v", n.letter, got, ok, n.flag)
		}
		all |= n.flag
	}
	if all != 0xff {
		t.Errorf("the table covers %v, not every flag", all)
	}
	for _, w := range []string{"AE", "SYNACK", "syn", "SY", ""} {
		if got := tcpFlagWord([]byte(w)); got != 0 {
			t.Errorf("tcpFlagWord(%q) = %v, want none", w, got)
		}
	}
	for _, tc := range []struct {
		in     string
		dotACK bool
		want   sequence.TCPFlags
		ok     bool
	}{
		{"S.", true, sequence.SYN | sequence.ACK, true},
		{"S.", false, 0, false},
		{"Se", true, sequence.SYN, true},
		{"Se", false, 0, false},
		{"FSRPAUEW", false, 0xff, true},
		{"", false, 0, true},
		{"X", true, 0, false},
	} {
		if got, ok := tcpFlagLetters([]byte(tc.in), tc.dotACK); got != tc.want || ok != tc.ok {
			t.Errorf("tcpFlagLetters(%q, %v) = %v, %v; want %v, %v", tc.in, tc.dotACK, got, ok, tc.want, tc.ok)
		}
	}
}
