package textlog

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"portknock/sequence"
)

var (
	jGw4    = netip.MustParseAddr("192.0.2.1")
	jGw6    = netip.MustParseAddr("2001:db8::1")
	jFwd4   = netip.MustParseAddr("198.51.100.20")
	synFlag = sequence.SYN
)

// goldenJournal is what each entry of testdata/journal/journal.json is, in
// the order gen/journal.sh writes them.
var goldenJournal = []kvGolden{
	{src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag},                               // prefix "knock "
	{src: kvDoc4, dst: jGw4, port: 8000, proto: sequence.TCP, flags: synFlag},                               // prefix glued to IN=
	{src: kvDoc4, dst: jGw4, port: 9000, proto: sequence.UDP},                                               // udp
	{src: kvDoc6, dst: jGw6, port: 7000, proto: sequence.TCP, flags: synFlag},                               // IPv6, expanded
	{src: kvDoc6, dst: jGw6, port: 9000, proto: sequence.UDP},                                               // IPv6 udp
	{src: kvDoc4, dst: jGw6, port: 7000, proto: sequence.TCP, flags: synFlag},                               // IPv4-mapped source
	{src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag | sequence.ECE | sequence.CWR}, // ECN flags, MARK
	{src: kvDoc4, dst: jFwd4, port: 7000, proto: sequence.TCP, flags: synFlag},                              // forwarded
	{reason: ReasonOutbound},
	{reason: ReasonNoPorts},                                   // ICMP error quoting DPT=7000
	{reason: ReasonNoPorts},                                   // ICMPv6 error quoting DPT=7000
	{src: kvDoc4, dst: jGw4, port: 9100, proto: sequence.UDP}, // first fragment
	{reason: ReasonFragment},
	{src: kvDoc6, dst: jGw6, port: 9100, proto: sequence.UDP}, // first fragment, "FRAG:0 INCOMPLETE"
	{reason: ReasonFragment},
	{reason: ReasonTruncated}, // "INCOMPLETE [8 bytes]"
	{src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, otherPrefix: true}, // [UFW BLOCK]
	{src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, otherPrefix: true}, // prefix with fields
	{src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, otherPrefix: true}, // escaped quote and backslash
	{src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, otherPrefix: true}, // byte array: invalid UTF-8
	{src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, otherPrefix: true}, // byte array: control character
	{reason: ReasonUnrecognized}, // other kernel messages
	{reason: ReasonUnrecognized},
	{reason: ReasonUnrecognized},
	{reason: ReasonPrefix}, // logger
	{reason: ReasonPrefix}, // logger -t kernel
	{reason: ReasonPrefix}, // a service's stdout
	{reason: ReasonPrefix}, // systemd-cat -t kernel
	{reason: ReasonPrefix}, // sshd
	{reason: ReasonPrefix}, // journald itself
}

func TestJournalGolden(t *testing.T) {
	lines := readTestLines(t, "testdata/journal/journal.json")
	if len(lines) != len(goldenJournal) {
		t.Fatalf("%d journal entries, want %d", len(lines), len(goldenJournal))
	}
	for i, line := range lines {
		var e struct {
			Stamp string `json:"__REALTIME_TIMESTAMP"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		us, err := strconv.ParseInt(e.Stamp, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		want := time.UnixMicro(us)
		goldenJournal[i].check(t, FormatJournal, FormatJournal, line, want)
		goldenJournal[i].check(t, FormatAuto, FormatJournal, line, want)
	}
}

// journalKernelEntry is a kernel entry with the given MESSAGE, already JSON-quoted.
func journalKernelEntry(quotedMsg string) string {
	return `{"__REALTIME_TIMESTAMP":"1795316483001000","_TRANSPORT":"kernel","SYSLOG_IDENTIFIER":"kernel","PRIORITY":"4","MESSAGE":` + quotedMsg + `}`
}

const (
	jmsg   = `knock IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0 `
	jmsg6  = `knock IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:86:dd SRC=2001:0db8:0000:0000:0000:0000:0000:0007 DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=TCP SPT=40003 DPT=7000 WINDOW=64800 RES=0x00 SYN URGP=0 `
	jstamp = 1795316483001000
)

var jTime = time.UnixMicro(jstamp)

// jq quotes s as JSON the way journalctl does for printable text.
func jq(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// journalByteArray writes s as journalctl's array of byte values.
func journalByteArray(s string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < len(s); i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(s[i])))
	}
	b.WriteByte(']')
	return b.String()
}

var journalCases = []kvTrapCase{
	{name: "kernel knock", line: journalKernelEntry(jq(jmsg)), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "prefix filter", prefix: "knock", line: journalKernelEntry(jq(jmsg)), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "glued prefix", prefix: "knock", line: journalKernelEntry(jq(strings.Replace(jmsg, "knock ", "knock", 1))), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "other prefix", prefix: "knock", line: journalKernelEntry(jq(strings.Replace(jmsg, "knock ", "knocker ", 1))), reason: ReasonPrefix},
	{name: "no prefix", prefix: "knock", line: journalKernelEntry(jq(strings.TrimPrefix(jmsg, "knock "))), reason: ReasonPrefix},
	{name: "no prefix unfiltered", line: journalKernelEntry(jq(strings.TrimPrefix(jmsg, "knock "))), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "ipv6 expanded", line: journalKernelEntry(jq(jmsg6)), src: kvDoc6, dst: jGw6, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "ipv6 compressed", line: journalKernelEntry(jq(strings.Replace(jmsg6, "2001:0db8:0000:0000:0000:0000:0000:0007", "2001:db8::7", 1))), src: kvDoc6, dst: jGw6, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "ipv4-mapped", line: journalKernelEntry(jq(strings.Replace(jmsg6, "2001:0db8:0000:0000:0000:0000:0000:0007", "0000:0000:0000:0000:0000:ffff:c000:0207", 1))), src: kvDoc4, dst: jGw6, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "syslog transport", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"kernel","SYSLOG`, `"syslog","SYSLOG`, 1), reason: ReasonPrefix},
	{name: "stdout transport", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"kernel","SYSLOG`, `"stdout","SYSLOG`, 1), reason: ReasonPrefix},
	{name: "no transport", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"_TRANSPORT":"kernel",`, ``, 1), reason: ReasonPrefix},
	{name: "transport twice, last wins", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"_TRANSPORT":"kernel",`, `"_TRANSPORT":"kernel","_TRANSPORT":"syslog",`, 1), reason: ReasonPrefix},
	{name: "transport twice, kernel last", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"_TRANSPORT":"kernel",`, `"_TRANSPORT":"syslog","_TRANSPORT":"kernel",`, 1), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "transport as array", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"_TRANSPORT":"kernel"`, `"_TRANSPORT":["kernel","syslog"]`, 1), reason: ReasonPrefix},
	{name: "transport escaped", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"_TRANSPORT":"kernel"`, `"_TRANSPORT":"k\u0065rnel"`, 1), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "transport kernel plus NUL", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"_TRANSPORT":"kernel"`, `"_TRANSPORT":"kernel\u0000"`, 1), reason: ReasonPrefix},
	{name: "syslog line that is not a knock", line: `{"_TRANSPORT":"syslog","MESSAGE":"Connection closed by 192.0.2.7 port 40000 [preauth]"}`, reason: ReasonPrefix},
	{name: "user entry without MESSAGE", line: `{"_TRANSPORT":"journal","KNOCK":` + jq(jmsg) + `}`, reason: ReasonPrefix},
	{name: "kernel line that is not a knock", line: journalKernelEntry(`"e1000e: eth0 NIC Link is Up"`), reason: ReasonUnrecognized},
	{name: "outbound", line: journalKernelEntry(jq(strings.Replace(jmsg, "IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00", "IN= OUT=eth0", 1))), reason: ReasonOutbound},
	{name: "icmp error", line: journalKernelEntry(jq(`knock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=61 TOS=0x00 PREC=0xC0 TTL=64 ID=1 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.1 DST=192.0.2.7 LEN=33 TOS=0x00 PREC=0x00 TTL=64 ID=2 PROTO=UDP SPT=40000 DPT=7000 LEN=13 ] `)), reason: ReasonNoPorts},
	{name: "icmp error nested", line: journalKernelEntry(jq(`knock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.1 DST=192.0.2.7 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.7 PROTO=TCP SPT=1 DPT=7000 ] ] `)), reason: ReasonNoPorts},
	{name: "fragment", line: journalKernelEntry(jq(`knock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=772 TOS=0x00 PREC=0x00 TTL=64 ID=4242 FRAG:157 PROTO=UDP `)), reason: ReasonFragment},
	{name: "ipv6 fragment", line: journalKernelEntry(jq(`knock IN=eth0 OUT= SRC=2001:db8::7 DST=2001:db8::1 LEN=824 TC=0 HOPLIMIT=64 FLOWLBL=0 FRAG:1232 ID:caba19ee PROTO=UDP `)), reason: ReasonFragment},
	{name: "incomplete", line: journalKernelEntry(jq(`knock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP INCOMPLETE [8 bytes] `)), reason: ReasonTruncated},
	{name: "cut message", line: journalKernelEntry(jq(jmsg[:strings.Index(jmsg, "DPT=")+6])), reason: ReasonTruncated},
	{name: "UDP-Lite", line: journalKernelEntry(jq(`knock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=UDPLITE SPT=1 DPT=7000 LEN=8 `)), reason: ReasonBadProto},
	{name: "byte array", line: journalKernelEntry(journalByteArray(jmsg)), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "byte array invalid UTF-8", prefix: "kn\xffock", line: journalKernelEntry(journalByteArray(strings.Replace(jmsg, "knock", "kn\xffock", 1))), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "byte array with NUL", prefix: "knock", line: journalKernelEntry(journalByteArray(strings.Replace(jmsg, "knock", "knock\x00", 1))), reason: ReasonPrefix},
	{name: "empty byte array", line: journalKernelEntry(`[]`), reason: ReasonUnrecognized},
	{name: "byte array with 256", line: journalKernelEntry(`[256,73,78,61]`), reason: ReasonUnrecognized},
	{name: "byte array with string", line: journalKernelEntry(`[107,"IN=eth0 OUT= SRC=192.0.2.7 PROTO=TCP SPT=1 DPT=7000 "]`), reason: ReasonUnrecognized},
	{name: "message twice as array", line: journalKernelEntry(`["` + jmsg + `","x"]`), reason: ReasonUnrecognized},
	{name: "message as number", line: journalKernelEntry(`7000`), reason: ReasonUnrecognized},
	{name: "message null", line: journalKernelEntry(`null`), reason: ReasonUnrecognized},
	{name: "escapes in message", line: journalKernelEntry(jq(strings.Replace(jmsg, "knock", "kn\"o\\ck\u00e9", 1))), prefix: "kn\"o\\ck\u00e9", src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "unicode escapes in message", line: journalKernelEntry(`"\u006bnock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP SPT=1 DPT=7000\u0020SYN URGP=0 "`), prefix: "knock", src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "NUL escape in message", line: journalKernelEntry(`"knock\u0000 IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 PROTO=TCP SPT=1 DPT=7000 SYN "`), prefix: "knock", reason: ReasonPrefix},
	{name: "NUL escape in address", line: journalKernelEntry(`"knock IN=eth0 OUT= SRC=192.0.2.7\u0000 DST=192.0.2.1 PROTO=TCP SPT=1 DPT=7000 SYN "`), reason: ReasonBadAddress},
	{name: "raw NUL", line: journalKernelEntry("\"knock\x00 IN=eth0 OUT= SRC=192.0.2.7 PROTO=TCP SPT=1 DPT=7000 \""), reason: ReasonTruncated},
	{name: "raw invalid UTF-8", line: journalKernelEntry("\"kn\xffock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP SPT=1 DPT=7000 SYN URGP=0 \""), prefix: "kn\uFFFDock", src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "surrogate pair", line: journalKernelEntry(`"kn\ud83d\udd11ock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP SPT=1 DPT=7000 SYN URGP=0 "`), prefix: "kn\U0001F511ock", src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "lone surrogate", line: journalKernelEntry(`"kn\ud83dock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP SPT=1 DPT=7000 SYN URGP=0 "`), prefix: "kn\uFFFDock", src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "escaped duplicate key wins", line: strings.TrimSuffix(journalKernelEntry(jq(jmsg)), "}") + `,"M\u0045SSAGE":"x"}`, reason: ReasonUnrecognized},
	{name: "escaped MESSAGE key, literal elsewhere", line: `{"_TRANSPORT":"kernel","M\u0045SSAGE":` + jq(jmsg) + `,"x":"MESSAGE"}`, src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag},
	{name: "escaped MESSAGE key, transport literal", line: `{"_TRANSPORT":"kernel","M\u0045SSAGE":` + jq(jmsg) + `}`, src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag},
	{name: "escaped keys, no literal", line: `{"_TR\u0041NSPORT":"kernel","M\u0045SSAGE":` + jq(jmsg) + `}`, reason: ReasonUnrecognized},
	{name: "MESSAGE only as a value", line: `{"_TRANSPORT":"kernel","X":"MESSAGE","Y":` + jq(jmsg) + `}`, reason: ReasonUnrecognized},
	{name: "no time", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"__REALTIME_TIMESTAMP":"1795316483001000",`, ``, 1), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag},
	{name: "time as number", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"1795316483001000"`, `1795316483001000`, 1), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag},
	{name: "bad time", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"1795316483001000"`, `"17953x"`, 1), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag},
	{name: "escaped time", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"1795316483001000"`, `"\u00317953164830010\u0030\u0030"`, 1), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "CRLF", line: journalKernelEntry(jq(jmsg)) + "\r", src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "CRLF inside message", line: journalKernelEntry(jq(jmsg + "\r\n")), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "cut line", line: journalKernelEntry(jq(jmsg))[:300], reason: ReasonTruncated},
	{name: "trailing garbage", line: journalKernelEntry(jq(jmsg)) + "}", reason: ReasonTruncated},
	{name: "single quotes", line: strings.ReplaceAll(journalKernelEntry(jq(jmsg)), `"`, `'`), reason: ReasonUnrecognized},
	{name: "not an object", line: `["MESSAGE"]`, reason: ReasonUnrecognized},
	{name: "empty object", line: `{}`, reason: ReasonUnrecognized},
	{name: "ulogd record", line: ujTCP, reason: ReasonUnrecognized},
	{name: "simple line", line: "7000 192.0.2.7", reason: ReasonUnrecognized},
	{name: "4 KiB message", line: journalKernelEntry(jq(strings.Repeat("x", 3500) + " " + jmsg)), src: kvDoc4, dst: jGw4, port: 7000, proto: sequence.TCP, flags: synFlag, time: jTime},
	{name: "4 KiB of IN=", prefix: "knock", line: journalKernelEntry(jq(strings.Repeat("IN=", 1300) + " OUT= SRC=192.0.2.7 DST=192.0.2.1 PROTO=TCP SPT=1 DPT=7000 SYN ")), reason: ReasonPrefix},
	{name: "4 KiB of OUT=", line: journalKernelEntry(jq(strings.Repeat(" OUT=", 800))), reason: ReasonUnrecognized},
	{name: "4 KiB of escapes", line: journalKernelEntry(jq(strings.Repeat("\x01", 650) + " " + jmsg)), reason: ReasonPrefix, prefix: "knock"},
	{name: "4 KiB byte array", line: journalKernelEntry(journalByteArray(strings.Repeat("\x01", 800) + " " + jmsg)), reason: ReasonPrefix, prefix: "knock"},
	{name: "deep nesting", line: strings.Replace(journalKernelEntry(jq(jmsg)), `"PRIORITY":"4"`, `"PRIORITY":`+strings.Repeat("[", 2000)+strings.Repeat("]", 2000), 1), reason: ReasonTruncated},
}

func TestParseJournal(t *testing.T) {
	for _, tc := range journalCases {
		t.Run(tc.name, func(t *testing.T) { checkKVTrap(t, FormatJournal, tc) })
	}
}

// TestJournalAutoNeverTrustsUsers runs entries that only a local user could
// have written, or lines that are not valid entries but carry a kernel
// packet log inside, through FormatAuto and the JSON formats: none may
// become an event. With FormatAuto this holds only while the journal parser
// claims every such line, since a format tried after it (netfilter) may
// find kernel-style fields anywhere in a line.
func TestJournalAutoNeverTrustsUsers(t *testing.T) {
	fake := jmsg
	lines := []string{
		`{"_TRANSPORT":"syslog","SYSLOG_IDENTIFIER":"kernel","MESSAGE":` + jq(fake) + `}`,
		`{"_TRANSPORT":"stdout","MESSAGE":` + jq(fake) + `}`,
		`{"_TRANSPORT":"journal","MESSAGE":"hello","KNOCK":` + jq(fake) + `}`,
		`{"_TRANSPORT":"journal","KNOCK":` + jq(fake) + `,"X":"MESSAGE"}`,
		`{"_TRANSPORT":"journal","MESSAGE":[` + jq(fake) + `,` + jq(fake) + `]}`,
		`{"_TRANSPORT":"journal","MESSAGE":` + jq(fake),
		`{"_TRANSPORT":"kernel","MESSAGE":"x"} {"_TRANSPORT":"syslog","MESSAGE":` + jq(fake) + `}`,
		`{"_TRANSPORT":"syslog","MESSAGE":"` + fake + `\"}`,
	}
	for _, prefix := range []string{"", "knock"} {
		for _, line := range lines {
			for _, f := range []Format{FormatAuto, FormatJournal, FormatUlogd} {
				p := Parser{Format: f, Prefix: prefix}
				var ev sequence.Event
				if got, r := p.Parse([]byte(line), &ev); r == ReasonNone {
					t.Errorf("format %v, prefix %q: %v made an event %+v of %.150q", f, prefix, got, ev, line)
				}
			}
		}
	}
}

func TestJournalNoAllocs(t *testing.T) {
	lines := readTestLines(t, "testdata/journal/journal.json")
	for _, tc := range journalCases {
		if tc.reason != ReasonBadAddress {
			lines = append(lines, tc.line)
		}
	}
	for _, prefix := range []string{"", "knock"} {
		p := Parser{Format: FormatJournal, Prefix: prefix}
		for _, line := range lines {
			if jsonRaceEnabled && jsonDecodesEscapes(FormatJournal, line) {
				continue
			}
			b := []byte(line)
			var ev sequence.Event
			if n := testing.AllocsPerRun(50, func() { p.Parse(b, &ev) }); n != 0 {
				t.Errorf("Parse(%.100q) allocates %v times", line, n)
			}
		}
	}
}

// refJSONObject decodes line with encoding/json as the parsers read it: a
// map (numbers as json.Number) when the line is one JSON object nested no
// deeper than the scanner allows, else nil.
func refJSONObject(line string) map[string]any {
	if !json.Valid([]byte(line)) || refJSONDepth(line) > jsonMaxDepth+1 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil
	}
	return m
}

// refJSONDepth is the deepest nesting of arrays and objects in valid JSON.
func refJSONDepth(s string) int {
	depth, max, inStr := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '[' || c == '{':
			depth++
			if depth > max {
				max = depth
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return max
}

var jsonRefStamp = regexp.MustCompile(`^[0-9]{1,18}$`)

// refJournal is parseJournal's rules written out over encoding/json.
func refJournal(line, prefix string) (Reason, sequence.Event) {
	none := sequence.Event{}
	if s := strings.TrimLeft(line, " \t\r\n"); !strings.HasPrefix(s, "{") ||
		!strings.Contains(line, `"MESSAGE"`) && !strings.Contains(line, `"_TRANSPORT"`) {
		return ReasonUnrecognized, none
	}
	m := refJSONObject(line)
	if m == nil {
		return ReasonTruncated, none
	}
	_, hasMsg := m["MESSAGE"]
	_, hasTransport := m["_TRANSPORT"]
	if !hasMsg && !hasTransport {
		return ReasonUnrecognized, none
	}
	if m["_TRANSPORT"] != "kernel" {
		return ReasonPrefix, none
	}
	var msg string
	switch v := m["MESSAGE"].(type) {
	case string:
		msg = v
	case []any:
		b := make([]byte, 0, len(v))
		for _, e := range v {
			n, ok := e.(json.Number)
			if !ok || !kvRefDigits.MatchString(string(n)) {
				return ReasonUnrecognized, none
			}
			x, err := strconv.ParseUint(string(n), 10, 8)
			if err != nil {
				return ReasonUnrecognized, none
			}
			b = append(b, byte(x))
		}
		msg = string(b)
	default:
		return ReasonUnrecognized, none
	}
	r, ev := refKernel(msg, prefix)
	if r != ReasonNone {
		return r, none
	}
	if s, ok := m["__REALTIME_TIMESTAMP"].(string); ok && jsonRefStamp.MatchString(s) {
		us, _ := strconv.ParseInt(s, 10, 64)
		ev.Time = time.UnixMicro(us)
	}
	return ReasonNone, ev
}

func TestRefJournalAgreesOnCases(t *testing.T) {
	for _, tc := range journalCases {
		if r, _ := refJournal(tc.line, tc.prefix); r != tc.reason {
			t.Errorf("%s: reference gives %v, want %v", tc.name, r, tc.reason)
		}
	}
}

// checkKVAgainstRef compares a parse with the reference's, and checks what
// any event must be.
func checkKVAgainstRef(t *testing.T, line, prefix string, r Reason, got sequence.Event, wantR Reason, want sequence.Event) {
	t.Helper()
	if r != wantR {
		t.Fatalf("Parse(%q, prefix %q) = %v, reference %v", line, prefix, r, wantR)
	}
	if r != ReasonNone {
		return
	}
	if !got.Time.Equal(want.Time) {
		t.Fatalf("Parse(%q) time %v, reference %v", line, got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if got != want {
		t.Fatalf("Parse(%q, prefix %q) = %+v, reference %+v", line, prefix, got, want)
	}
	if !got.Src.IsValid() || got.Src != sequence.NormalizeAddr(got.Src) || got.Port == 0 ||
		(got.Proto != sequence.TCP && got.Proto != sequence.UDP) || got.FlagsKnown != (got.Proto == sequence.TCP) {
		t.Fatalf("Parse(%q) gave a malformed event %+v", line, got)
	}
}

// FuzzParseJournal checks the journal parser against refJournal (the same
// rules over encoding/json): same reason, same event, no panics.
func FuzzParseJournal(f *testing.F) {
	// Records in other programs' messages (see foreign_test.go).
	for _, l := range foreignLines() {
		f.Add(l, "")
	}
	for _, line := range readTestLines(f, "testdata/journal/journal.json") {
		f.Add(line, "")
		f.Add(line, "knock")
	}
	for _, tc := range journalCases {
		f.Add(tc.line, tc.prefix)
	}
	f.Fuzz(func(t *testing.T, line, prefix string) {
		p := Parser{Format: FormatJournal, Prefix: prefix}
		var got sequence.Event
		_, r := p.Parse([]byte(line), &got)
		wantR, want := refJournal(line, prefix)
		checkKVAgainstRef(t, line, prefix, r, got, wantR, want)
	})
}

// FuzzJSONObject checks the JSON scanner against encoding/json: the same
// lines are valid objects, with the same members and string values.
func FuzzJSONObject(f *testing.F) {
	for _, line := range readTestLines(f, "testdata/journal/journal.json") {
		f.Add(line)
	}
	for _, line := range readTestLines(f, "testdata/ulogd/ulogd.json") {
		f.Add(line)
	}
	for _, tc := range journalCases {
		f.Add(tc.line)
	}
	for _, s := range []string{`{}`, ` {"a":[1,2.5e-3,{"b":null}],"c":true} `, `{"a":"\ud800\udc00\ud800"}`, `{"a":-0}`, `{"a":01}`, `{"a":"\x7f"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var it jsonObjectIter
		it.init([]byte(line))
		got := map[string]jsonValue{}
		for it.next() {
			k := string(jsonUnquote(nil, it.key))
			if it.keyPlain && k != string(it.key) {
				t.Fatalf("key %q marked plain but decodes to %q", it.key, k)
			}
			got[k] = it.val
		}
		want := refJSONObject(line)
		if it.ok() != (want != nil) {
			t.Fatalf("%q: scanner valid=%v, encoding/json valid=%v", line, it.ok(), want != nil)
		}
		if want == nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, encoding/json %d", line, len(got), len(want))
		}
		for k, w := range want {
			v, ok := got[k]
			if !ok {
				t.Fatalf("%q: member %q missing", line, k)
			}
			switch w := w.(type) {
			case string:
				s := string(jsonUnquote(nil, v.raw))
				if v.kind != jsonString || s != w || v.plain && s != string(v.raw) {
					t.Fatalf("%q: member %q = %q (kind %d), encoding/json %q", line, k, s, v.kind, w)
				}
			case json.Number:
				if v.kind != jsonNumber || string(v.raw) != string(w) {
					t.Fatalf("%q: member %q = %q, encoding/json %v", line, k, v.raw, w)
				}
			case []any:
				if v.kind != jsonArray {
					t.Fatalf("%q: member %q kind %d, want array", line, k, v.kind)
				}
			case map[string]any:
				if v.kind != jsonObject {
					t.Fatalf("%q: member %q kind %d, want object", line, k, v.kind)
				}
			default:
				if v.kind != jsonLiteral {
					t.Fatalf("%q: member %q kind %d, want literal", line, k, v.kind)
				}
			}
		}
	})
}

func BenchmarkParseJournal(b *testing.B) {
	golden := readTestLines(b, "testdata/journal/journal.json")
	for _, bc := range []struct {
		name, line, prefix string
		format             Format
	}{
		{"kernel-tcp4", golden[0], "knock", FormatJournal},
		{"kernel-tcp6", golden[3], "knock", FormatJournal},
		{"kernel-tcp4-auto", golden[0], "", FormatAuto},
		{"kernel-escaped", golden[18], "", FormatJournal},
		{"kernel-byte-array", golden[19], "", FormatJournal},
		{"kernel-other", golden[21], "knock", FormatJournal},
		{"user-fake", golden[24], "knock", FormatJournal},
		{"user-other", golden[28], "knock", FormatJournal},
		{"reject-syslog-line", "Nov 22 03:01:42 gw sshd[4242]: Connection closed by 192.0.2.7 port 40000 [preauth]", "", FormatJournal},
		{"reject-ulogd-json", readTestLines(b, "testdata/ulogd/ulogd.json")[0], "", FormatJournal},
		{"4KiB-of-IN", journalCases[len(journalCases)-5].line, "knock", FormatJournal},
		{"4KiB-nesting", journalCases[len(journalCases)-1].line, "knock", FormatJournal},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := Parser{Format: bc.format, Prefix: bc.prefix}
			line := []byte(bc.line)
			var ev sequence.Event
			b.SetBytes(int64(len(line) + 1))
			b.ReportAllocs()
			for b.Loop() {
				p.Parse(line, &ev)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkJSONWithEncodingJSON measures what decoding the same lines into
// a map with encoding/json would cost, the alternative to the scanner.
func BenchmarkJSONWithEncodingJSON(b *testing.B) {
	for _, bc := range []struct{ name, file string }{
		{"journal-kernel-tcp4", "testdata/journal/journal.json"},
		{"ulogd-tcp4", "testdata/ulogd/ulogd.json"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			line := []byte(readTestLines(b, bc.file)[0])
			b.SetBytes(int64(len(line) + 1))
			b.ReportAllocs()
			for b.Loop() {
				var m map[string]any
				if err := json.Unmarshal(line, &m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
