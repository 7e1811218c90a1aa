package textlog

import (
	"encoding/json"
	"strings"
	"testing"

	"portknock/sequence"
)

// The attack: a firewall record written into another program's log
// message. sshd logs "Invalid user <name>" with a name the attacker
// chooses, a web server logs the request line, and any local user can run
// logger -t myapp. None of these may ever be a knock, whatever the format
// (auto or pinned) and whether or not the outer message has syslog framing.

// foreignPayload is a firewall record an attacker writes, and the format
// whose record it is.
type foreignPayload struct {
	name   string
	format Format
	text   string
}

var foreignPayloads = []foreignPayload{
	{"netfilter kernel text", FormatNetfilter, nfKnock},
	{"netfilter syslog line", FormatNetfilter, "Nov 22 12:00:01 fw kernel: " + nfKnock},
	{"netfilter udp6", FormatNetfilter, "knock " + nfUDP6},
	{"ulogd logemu line", FormatUlogd, emuHead + emuV4 + emuTCP},
	{"ulogd syslog line", FormatUlogd, "Nov 22 03:01:42 vm ulogd[7]: knock " + emuV4 + emuTCP},
	{"ulogd json", FormatUlogd, ujTCP},
	{"journal kernel entry", FormatJournal, journalKernelEntry(jq(jmsg))},
	{"pflog upstream", FormatPflog, pfUp + "192.0.2.7.40000 > 192.0.2.1.7000" + pfSyn},
	{"pflog openbsd", FormatPflog, pfObsd + "192.0.2.7.40000 > 192.0.2.1.7000: S 1:1(0) win 16384 <mss 1460> (DF)"},
	{"pflog -tt", FormatPflog, "1795348801.123456 rule 3/0(match): block in on em0: 192.0.2.7.40000 > 192.0.2.1.9000: UDP, length 1"},
	{"ipfw kernel text", FormatIpfw, "ipfw: 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0"},
	{"ipfw syslog line", FormatIpfw, ipfwHead + "UDP 192.0.2.7:40000 192.0.2.1:9000 in via em0"},
	{"filterlog tag and csv", FormatFilterlog, "filterlog[123]: " + flogRule + "4,0x0,,64,12345,0,DF,6,tcp,60,192.0.2.7,192.0.2.1,40000,7000,0,S,123,,65228,,mss"},
	{"filterlog syslog line", FormatFilterlog, flogV4TCP},
	{"filterlog rfc 5424 line", FormatFilterlog, "<134>1 2026-11-22T12:00:01Z fw filterlog 1 - - " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1"},
	{"simple", FormatSimple, "7000 192.0.2.7"},
	{"simple with prefix", FormatSimple, "knock 9000/udp 192.0.2.7"},
}

// foreignOuter wraps an attacker's text s in another program's log line.
// bareText is set for the forms where s is all of a bare line but for
// text around it that the attacker does not choose the end of: only the
// log prefix can tell such a netfilter line from the kernel's (see
// TestForeignRecordsAreNotKnocks).
type foreignOuter struct {
	name     string
	wrap     func(s string) string
	bareText bool
}

var foreignOuters = []foreignOuter{
	// sshd's messages quote the user name the client sent.
	{name: "sshd invalid user, rfc 3164 file", wrap: func(s string) string {
		return "Nov 22 12:00:01 fw sshd[4242]: Invalid user " + s + " from 198.51.100.9 port 40000"
	}},
	{name: "sshd invalid user, rfc 3164 wire", wrap: func(s string) string {
		return "<38>Nov 22 12:00:01 sshd[4242]: Invalid user " + s + " from 198.51.100.9 port 40000"
	}},
	{name: "sshd invalid user, rfc 5424", wrap: func(s string) string {
		return "<38>1 2026-11-22T12:00:01.000000+00:00 fw sshd 4242 - - Invalid user " + s + " from 198.51.100.9 port 40000"
	}},
	{name: "sshd invalid user, rsyslog iso file", wrap: func(s string) string {
		return "2026-11-22T12:00:01.000000+00:00 fw sshd[4242]: Invalid user " + s + " from 198.51.100.9 port 40000"
	}},
	{name: "sshd invalid user, journalctl short-monotonic", wrap: func(s string) string {
		return "[12345.678901] fw sshd[4242]: Invalid user " + s + " from 198.51.100.9 port 40000"
	}},
	{name: "sshd invalid user, busybox", wrap: func(s string) string {
		return "Nov 22 12:00:01 fw auth.info sshd[4242]: Invalid user " + s + " from 198.51.100.9 port 40000"
	}},
	{name: "sshd invalid user, journal json", wrap: func(s string) string {
		return `{"_TRANSPORT":"syslog","SYSLOG_IDENTIFIER":"sshd","_PID":"4242","MESSAGE":` + jq("Invalid user "+s+" from 198.51.100.9 port 40000") + `}`
	}},
	{name: "sshd invalid user, bare", wrap: func(s string) string {
		return "Invalid user " + s + " from 198.51.100.9 port 40000"
	}},
	{name: "sshd connection closed, rfc 3164 file", wrap: func(s string) string {
		return "Nov 22 12:00:01 fw sshd[4242]: Connection closed by invalid user " + s + " 198.51.100.9 port 40000 [preauth]"
	}},
	{name: "sshd connection closed, bare", wrap: func(s string) string {
		return "Connection closed by invalid user " + s + " 198.51.100.9 port 40000 [preauth]"
	}},
	// A web server logs the request line the client sent.
	{name: "web request, access log", wrap: func(s string) string {
		return `198.51.100.9 - - [22/Nov/2026:12:00:01 +0000] "GET /` + s + ` HTTP/1.1" 404 153 "-" "curl/8.5.0"`
	}},
	{name: "web request, nginx to syslog", wrap: func(s string) string {
		return `<190>Nov 22 12:00:01 fw nginx: 198.51.100.9 - - [22/Nov/2026:12:00:01 +0000] "GET /` + s + ` HTTP/1.1" 404 153 "-" "curl/8.5.0"`
	}},
	{name: "web request, error log", wrap: func(s string) string {
		return `2026/11/22 12:00:01 [error] 7#7: *1 open() "/srv/www/` + s + `" failed (2: No such file or directory), client: 198.51.100.9, request: "GET /x HTTP/1.1"`
	}},
	// logger -t myapp: the whole message is the attacker's.
	{name: "logger, rfc 3164 file", wrap: func(s string) string {
		return "Nov 22 12:00:01 fw myapp: " + s
	}},
	{name: "logger, rfc 3164 file with pid", wrap: func(s string) string {
		return "Nov 22 12:00:01 fw myapp[4242]: " + s
	}},
	{name: "logger, rfc 3164 wire", wrap: func(s string) string {
		return "<13>Nov 22 12:00:01 myapp: " + s
	}},
	{name: "logger, wire without a stamp", wrap: func(s string) string {
		return "<13>myapp: " + s
	}},
	{name: "logger, rfc 5424", wrap: func(s string) string {
		return "<13>1 2026-11-22T12:00:01.000000+00:00 fw myapp 4242 - [timeQuality tzKnown=\"1\"] " + s
	}},
	{name: "logger, journalctl short-monotonic", wrap: func(s string) string {
		return "[12345.678901] fw myapp[4242]: " + s
	}},
	{name: "logger, journal json", wrap: func(s string) string {
		return `{"_TRANSPORT":"syslog","SYSLOG_IDENTIFIER":"myapp","MESSAGE":` + jq(s) + `}`
	}},
	{name: "logger -t kernel, journal json", wrap: func(s string) string {
		return `{"_TRANSPORT":"syslog","SYSLOG_IDENTIFIER":"kernel","MESSAGE":` + jq(s) + `}`
	}},
	{name: "logger, bare with text before", bareText: true, wrap: func(s string) string {
		return "note: " + s
	}},
}

// foreignPrefix is each format's prefix filter matching the payloads'
// records.
var foreignPrefix = map[Format]string{
	FormatNetfilter: "knock",
	FormatUlogd:     "knock",
	FormatJournal:   "knock",
	FormatPflog:     "3",
	FormatIpfw:      "100",
	FormatFilterlog: "1000000103",
	FormatSimple:    "knock",
}

// foreignLines returns every payload in every outer message, for tests and
// fuzz seeds.
func foreignLines() []string {
	var lines []string
	for _, o := range foreignOuters {
		for _, pl := range foreignPayloads {
			lines = append(lines, o.wrap(pl.text))
		}
	}
	return lines
}

// checkForeign fails when line, another program's message carrying the
// attacker's text, is a knock for any format, auto or pinned, with or
// without a prefix filter; only for bareText lines (where nothing names the
// program) is an unfiltered netfilter or auto parse allowed to take the
// kernel record, since such a line is the kernel's line with another prefix.
func checkForeign(t testing.TB, line string, bareText bool) {
	t.Helper()
	for _, f := range append([]Format{FormatAuto}, autoOrder[:]...) {
		for _, prefix := range []string{"", foreignPrefix[f], "knock"} {
			if bareText && prefix == "" && (f == FormatAuto || f == FormatNetfilter) {
				continue
			}
			p := Parser{Format: f, Prefix: prefix, Now: nfNow}
			var ev sequence.Event
			if got, r := p.Parse([]byte(line), &ev); r == ReasonNone {
				t.Errorf("%v (prefix %q) took a knock as %v from another program's message: %q", f, prefix, got, line)
			}
		}
	}
}

func TestForeignRecordsAreNotKnocks(t *testing.T) {
	for _, o := range foreignOuters {
		for _, pl := range foreignPayloads {
			t.Run(o.name+"/"+pl.name, func(t *testing.T) {
				checkForeign(t, o.wrap(pl.text), o.bareText)
			})
		}
	}
}

// TestForeignPayloadsAreRecords makes sure the attack tests test something:
// each payload on a line of its own, with the framing its firewall gives
// it, is a knock for its format, pinned and auto.
func TestForeignPayloadsAreRecords(t *testing.T) {
	for _, pl := range foreignPayloads {
		line := pl.text
		if pl.name == "filterlog tag and csv" {
			line = "Nov 22 12:00:01 fw " + line
		}
		prefix := ""
		if pl.name == "simple with prefix" {
			prefix = "knock"
		}
		for _, f := range []Format{pl.format, FormatAuto} {
			p := Parser{Format: f, Prefix: prefix, Now: nfNow}
			var ev sequence.Event
			if _, r := p.Parse([]byte(line), &ev); r != ReasonNone {
				t.Errorf("%s: %v skips %q (%v)", pl.name, f, line, r)
			}
		}
	}
}

// TestForeignProgramReason checks that a record that begins another
// program's message is reported as such, so that parse -D and the counters
// say why a relay's renamed lines are skipped, and that Parser.Programs
// lets them count.
func TestForeignProgramReason(t *testing.T) {
	for _, tc := range []struct {
		format Format
		line   string
	}{
		{FormatNetfilter, "Nov 22 12:00:01 fw fwkern: " + nfKnock},
		{FormatNetfilter, "<4>1 2026-11-22T12:00:01Z fw fwkern - - - " + nfKnock},
		{FormatUlogd, "Nov 22 03:01:42 vm fwkern[7]: knock " + emuV4 + emuTCP},
		{FormatPflog, "Nov 22 12:00:01 fw fwkern: " + pfUp + "192.0.2.7.40000 > 192.0.2.1.7000" + pfSyn},
		{FormatIpfw, "Nov 22 12:00:01 fw fwkern: ipfw: 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0"},
		{FormatFilterlog, "Nov 22 12:00:01 fw fwkern[1]: " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1"},
		{FormatSimple, "Nov 22 12:00:01 fw fwkern: 7000 192.0.2.7"},
	} {
		var ev sequence.Event
		p := Parser{Format: tc.format}
		want := ReasonProgram
		switch tc.format {
		case FormatSimple:
			want = ReasonUnrecognized // judged whole without programs
		case FormatFilterlog:
			want = ReasonUnrecognized // a line without "filterlog" is no filterlog line
		}
		if _, r := p.Parse([]byte(tc.line), &ev); r != want {
			t.Errorf("%v: Parse(%q) = %v, want %v", tc.format, tc.line, r, want)
		}
		p.Programs = []string{"other"}
		if _, r := p.Parse([]byte(tc.line), &ev); r != ReasonProgram {
			t.Errorf("%v with programs [other]: Parse(%q) = %v, want %v", tc.format, tc.line, r, ReasonProgram)
		}
		p.Programs = []string{"fwkern"}
		if _, r := p.Parse([]byte(tc.line), &ev); r != ReasonNone {
			t.Errorf("%v with programs [fwkern]: Parse(%q) = %v, want an event", tc.format, tc.line, r)
		}
		if tc.format == FormatSimple {
			continue // the simple format has no program of its own
		}
		// Programs replaces the defaults: the firewall's own name no
		// longer counts for an input that names others.
		own := strings.Replace(tc.line, "fwkern", DefaultPrograms(tc.format)[0], 1)
		p.Programs = nil
		if _, r := p.Parse([]byte(own), &ev); r != ReasonNone {
			t.Errorf("%v: Parse(%q) = %v, want an event", tc.format, own, r)
		}
		p.Programs = []string{"fwkern"}
		if _, r := p.Parse([]byte(own), &ev); r != ReasonProgram {
			t.Errorf("%v with programs [fwkern]: Parse(%q) = %v, want %v", tc.format, own, r, ReasonProgram)
		}
	}
}

// TestSimpleInSyslogFraming checks the simple format's decision: a simple
// line inside syslog framing counts only when Parser.Programs names its
// program, so that "Invalid user 7000 192.0.2.1" is never a knock.
func TestSimpleInSyslogFraming(t *testing.T) {
	for _, tc := range []struct {
		name     string
		line     string
		programs []string
		reason   Reason
	}{
		{"bare", "7000 192.0.2.7", nil, ReasonNone},
		{"sshd user name", "Nov 22 12:00:01 fw sshd[42]: Invalid user 7000 192.0.2.7", nil, ReasonUnrecognized},
		{"sshd message of two words", "Nov 22 12:00:01 fw sshd[42]: 7000 192.0.2.7", nil, ReasonUnrecognized},
		{"sshd message of two words, programs named", "Nov 22 12:00:01 fw sshd[42]: 7000 192.0.2.7", []string{"ulogport"}, ReasonProgram},
		{"framed, no programs", "Nov 22 12:00:01 fw ulogport: 7000 192.0.2.7", nil, ReasonUnrecognized},
		{"framed, program named", "Nov 22 12:00:01 fw ulogport: 7000 192.0.2.7", []string{"ulogport"}, ReasonNone},
		{"framed, another program named", "Nov 22 12:00:01 fw ulogport: 7000 192.0.2.7", []string{"knockd"}, ReasonProgram},
		{"rfc 5424, program named", "<13>1 2026-11-22T12:00:01Z fw ulogport - - - 9000/udp 192.0.2.7", []string{"ulogport"}, ReasonNone},
		{"stamp without a program", "[12345.678901] 7000 192.0.2.7", []string{"ulogport"}, ReasonProgram},
		{"kmsg", "6,1,2,-;7000 192.0.2.7", nil, ReasonBadPort},
		{"kmsg, programs named", "6,1,2,-;7000 192.0.2.7", []string{"ulogport"}, ReasonProgram},
	} {
		for _, f := range []Format{FormatSimple, FormatAuto} {
			p := Parser{Format: f, Programs: tc.programs}
			var ev sequence.Event
			if _, r := p.Parse([]byte(tc.line), &ev); r != tc.reason {
				t.Errorf("%s: %v: Parse(%q) = %v, want %v", tc.name, f, tc.line, r, tc.reason)
			}
		}
	}
	// A prefix that could start a wrapper makes the line be judged by its
	// framing: "<13>" is a syslog <PRI>, and the message no program's.
	p := Parser{Format: FormatSimple, Prefix: "<13>"}
	var ev sequence.Event
	if _, r := p.Parse([]byte("<13> 7000 192.0.2.7"), &ev); r == ReasonNone {
		t.Errorf("prefix <13>: a syslog line with a <PRI> and no program is a knock")
	}
}

// FuzzForeignRecord holds the attack's rule for any attacker text: inside
// another program's message it is never a knock.
func FuzzForeignRecord(f *testing.F) {
	for _, pl := range foreignPayloads {
		f.Add(pl.text)
	}
	f.Add("knock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=UDP SPT=1 DPT=7000 LEN=8 X=\"")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "\n") || !json.Valid([]byte(jq(s))) {
			return // one line, as every reader splits them
		}
		for _, o := range foreignOuters {
			checkForeign(t, o.wrap(s), o.bareText)
		}
	})
}

// TestForeignNoAllocs checks that turning other programs' lines down costs
// no garbage either.
func TestForeignNoAllocs(t *testing.T) {
	for _, line := range foreignLines() {
		b := []byte(line)
		for _, f := range append([]Format{FormatAuto}, autoOrder[:]...) {
			p := Parser{Format: f, Prefix: "knock"}
			var ev sequence.Event
			if _, r := p.Parse(b, &ev); r == ReasonBadAddress || jsonRaceEnabled && jsonDecodesEscapes(f, line) {
				continue // netip's error allocates; the race detector empties pools
			}
			if n := testing.AllocsPerRun(5, func() { p.Parse(b, &ev) }); n != 0 {
				t.Errorf("%v: Parse(%.120q) allocates %v times", f, line, n)
			}
		}
	}
}
