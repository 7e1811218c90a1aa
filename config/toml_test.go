package config

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"portknock/actions"
	"portknock/sequence"
)

// okDoor is a minimal valid door, for cases that are about something else.
const okDoor = `
[[door]]
name = "ok"
sequence = ["2", "1", "3"]
command = "true"
`

func TestTOMLErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // prefixes of the problems, in order
	}{
		{
			name: "misspelled door key names its line",
			src: `[[door]]
name = "ssh"
sequnce = ["7000"]
command = "true"
`,
			want: []string{
				`t.toml:1: sequence: missing: door "ssh" needs a sequence, one_time_sequences or sealed`,
				`t.toml:3: sequnce: unknown key in [[door]] (did you mean "sequence"?)`,
			},
		},
		{
			name: "misspelled key in the second door",
			src: okDoor + `
[[door]]
name = "b"
sequence = ["2", "1", "3"]
comand = "true"
start_command = "x"
`,
			want: []string{`t.toml:10: comand: unknown key in [[door]] (did you mean "command"?)`},
		},
		{
			name: "bad reknock and close_on_exit",
			src:  "[daemon]\nclose_on_exit = \"yes\"\n" + okDoor + "reknock = \"again\"\n",
			want: []string{
				`t.toml:2: close_on_exit: want true or false, got string`,
				`t.toml:8: reknock: "again": want one of "extend", "rerun", "ignore"`,
			},
		},
		{
			name: "key in wrong case is unknown",
			src:  okDoor + "Seq_Timeout = 5\n",
			want: []string{`t.toml:6: Seq_Timeout: unknown key in [[door]] (did you mean "seq_timeout"?)`},
		},
		{
			name: "quoted misspelled key",
			src:  okDoor + `"cmd timeout" = 5` + "\n",
			want: []string{`t.toml:6: cmd timeout: unknown key in [[door]] (did you mean "cmd_timeout"?)`},
		},
		{
			name: "unknown top-level key and table",
			src:  "verbose = true\n[dameon]\nstate_dir = \"/x\"\n" + okDoor,
			want: []string{
				`t.toml:1: verbose: unknown key`,
				`t.toml:2: dameon: unknown key (did you mean "daemon"?)`,
			},
		},
		{
			name: "unknown daemon and input keys",
			src:  "[daemon]\nmax_source = 5\n[[input]]\ntype = \"nflog\"\ngroups = [1]\ngroup = 2\n" + okDoor,
			want: []string{
				`t.toml:2: max_source: unknown key in [daemon] (did you mean "max_sources"?)`,
				`t.toml:6: group: unknown key in [[input]] (did you mean "groups"?)`,
			},
		},
		{
			name: "subtable of a door",
			src:  okDoor + "[door.extra]\nx = 1\n",
			want: []string{`t.toml:6: extra: unknown key in [[door]]`},
		},
		{
			name: "wrong types",
			src: `[daemon]
state_dir = 5
max_sources = "many"
usesyslog = "yes"
[[door]]
name = 7
sequence = "7000,8000:udp"
seq_timeout = true
tcpflags = ["syn"]
target = 1
start_command = 5
cmd_timeout = 1.5
stop_command = ["ls", 5]
`,
			want: []string{
				`t.toml:2: state_dir: want a string, got integer 5`,
				`t.toml:3: max_sources: want an integer, got string "many"`,
				`t.toml:4: usesyslog: want true or false, got string "yes"`,
				`t.toml:6: name: want a string, got integer 7`,
				`t.toml:7: sequence: want an array of knocks such as ["7000/tcp", "8000/udp"], got string "7000,8000:udp" (write [`,
				`t.toml:8: seq_timeout: want a duration such as "5s" or a number of seconds, got boolean true`,
				`t.toml:9: tcpflags: want a string, got an array`,
				`t.toml:10: target: want a string, got integer 1`,
				`t.toml:11: start_command: want a string (run by /bin/sh -c) or an array of strings (run directly), got integer 5`,
				`t.toml:12: cmd_timeout: want a duration`,
				`t.toml:13: stop_command: argument 2: want a string, got integer 5`,
			},
		},
		{
			name: "bad values",
			src: `[daemon]
state_dir = ""
max_sources = 0
max_commands = -1
[[door]]
name = "a"
sequence = ["7000", "0", "70000/tcp", "7000/icmp", 9]
seq_timeout = "0s"
tcpflags = "syn,!syn"
target = "fe80::1%eth0"
start_command = []
cmd_timeout = "soon"
[[door]]
name = "b"
sequence = []
seq_timeout = -3
tcpflags = "psh,bogus"
target = "example.com"
stop_command = ["", "x"]
`,
			want: []string{
				`t.toml:2: state_dir: must not be empty`,
				`t.toml:3: max_sources: 0 out of range`,
				`t.toml:4: max_commands: -1 out of range`,
				`t.toml:5: start_command: missing: door "a" would do nothing`,
				`t.toml:7: sequence: knock 2: bad knock "0": port must be 1-65535`,
				`t.toml:7: sequence: knock 3: bad knock "70000/tcp"`,
				`t.toml:7: sequence: knock 4: bad knock "7000/icmp": unknown protocol`,
				`t.toml:7: sequence: knock 5: want a string such as "7000/tcp", got integer 9`,
				`t.toml:8: seq_timeout: must be positive`,
				`t.toml:9: tcpflags: tcpflags "syn,!syn" both requires and forbids syn`,
				`t.toml:10: target: "fe80::1%eth0" has a zone`,
				`t.toml:11: start_command: empty argument list`,
				`t.toml:12: cmd_timeout: "soon" is not a duration`,
				`t.toml:15: sequence: empty sequence`,
				`t.toml:16: seq_timeout: must be positive`,
				`t.toml:17: tcpflags: unknown TCP flag "bogus"`,
				`t.toml:18: target: "example.com" is not an IP address`,
				`t.toml:19: stop_command: the program name (first element) is empty`,
			},
		},
		{
			name: "batch rates",
			src: `[[input]]
type = "nflog"
groups = [5]
batch_above = 1000
batch_below = 1000
[[input]]
type = "nflog"
groups = [6]
batch_above = 0
batch_below = "fast"
[[input]]
type = "text"
path = "-"
batch_above = 5
` + okDoor,
			want: []string{
				`t.toml:5: batch_below: 1000 must be below batch_above (1000)`,
				`t.toml:9: batch_above: 0 out of range 1-100000000`,
				`t.toml:10: batch_below: want an integer, got string "fast"`,
				`t.toml:14: batch_above: only nflog inputs take this key`,
			},
		},
		{
			name: "sequence too long",
			src:  "[[door]]\nname = \"x\"\ncommand = \"x\"\nsequence = [" + strings.Repeat(`"1",`, sequence.MaxSteps+1) + "]\n",
			want: []string{`t.toml:4: sequence: 256 knocks, at most 255 allowed`},
		},
		{
			name: "elements of a multi-line array name their own line",
			src: `[[door]]
name = "x"
command = "x"
sequence = [
  "7000",
  "8000/tcp",
  "99999",   # too big
]
`,
			want: []string{`t.toml:7: sequence: knock 3: bad knock "99999"`},
		},
		{
			name: "duplicate door names",
			src:  okDoor + okDoor,
			want: []string{`t.toml:8: name: door "ok" already defined at line 3`},
		},
		{
			name: "door cross checks",
			src: `[[door]]
command = "x"
sequence = ["2", "1", "3"]
[[door]]
name = "both"
sequence = ["2", "1", "3"]
one_time_sequences = "/x"
command = "x"
[[door]]
name = "neither"
command = "x"
[[door]]
name = "idle"
sequence = ["2", "1", "3"]
start_command_6 = ""
[[door]]
name = "alias"
sequence = ["2", "1", "3"]
start_command = "a"
command = "b"
[[door]]
name = ""
sequence = ["2", "1", "3"]
command = "x"
[[door]]
name = "tab\there"
sequence = ["2", "1", "3"]
command = "x"
`,
			want: []string{
				`t.toml:1: name: missing: every door needs a name`,
				`t.toml:7: a door has either sequence or one_time_sequences, not both (lines 6 and 7)`,
				`t.toml:9: sequence: missing: door "neither" needs a sequence, one_time_sequences or sealed`,
				`t.toml:12: start_command: missing: door "idle" would do nothing`,
				`t.toml:20: command: already set as start_command at line 19`,
				`t.toml:22: name: must not be empty`,
				`t.toml:26: name: door name "tab\there" contains a control character`,
			},
		},
		{
			name: "inputs",
			src: `[[input]]
path = "-"
[[input]]
type = "udp"
[[input]]
type = "text"
format = "xml"
[[input]]
type = "text"
path = "-"
groups = [1]
[[input]]
type = "nflog"
path = "/x"
format = "auto"
[[input]]
type = "nflog"
groups = []
[[input]]
type = "nflog"
groups = [
  70000,
  -1,
  3,
  3,
  "4",
]
[[input]]
type = "nflog"
groups = 5
prefix = "a\nb"
[[input]]
type = "text"
path = ""
[input.extra]
` + okDoor,
			want: []string{
				`t.toml:1: type: missing: every input needs a type`,
				`t.toml:4: type: unknown input type "udp" (want "text", "nflog" or "syslog")`,
				`t.toml:5: path: missing: a text input needs a path`,
				`t.toml:7: format: unknown text format "xml" (want auto, simple, netfilter, ulogd, journal, pflog, ipfw, filterlog)`,
				`t.toml:11: groups: only nflog inputs take this key`,
				`t.toml:12: groups: missing: an nflog input needs groups, such as [5]`,
				`t.toml:14: path: only text inputs take this key`,
				`t.toml:15: format: only text and syslog inputs take this key`,
				`t.toml:18: groups: must list at least one NFLOG group`,
				`t.toml:22: groups: group 70000 out of range 0-65535`,
				`t.toml:23: groups: group -1 out of range 0-65535`,
				`t.toml:25: groups: group 3 listed twice`,
				`t.toml:26: groups: element 5: want an integer, got string "4"`,
				`t.toml:30: groups: want an array of NFLOG group numbers such as [5], got integer 5`,
				`t.toml:31: prefix: contains a control character`,
				`t.toml:34: path: must not be empty`,
				`t.toml:35: extra: unknown key in [[input]]`,
			},
		},
		{
			name: "tables of the wrong kind",
			src:  "daemon = 5\n[input]\ntype = \"text\"\n[door]\nname = \"x\"\n",
			want: []string{
				`t.toml:1: daemon: want a table ([daemon]), got integer 5`,
				`t.toml:2: input: want an array of tables ([[input]]), got a table`,
				`t.toml:4: door: want an array of tables ([[door]]), got a table`,
			},
		},
		{
			name: "no door",
			src:  "[daemon]\nmax_sources = 10\n",
			want: []string{`t.toml: no door: the configuration needs at least one [[door]] table`},
		},
		{
			name: "syntax error names its line",
			src:  okDoor + "seq_timeout = 5s\n",
			want: []string{`t.toml:6: `},
		},
		{
			name: "key defined twice is a syntax error",
			src:  okDoor + "name = \"again\"\n",
			want: []string{`t.toml:6: `},
		},
		{
			name: "NUL byte",
			src:  "\x00\x00" + okDoor,
			want: []string{`t.toml:1: `},
		},
		{
			name: "inline door tables",
			src: `door = [
  { name = "a", sequence = ["2", "1", "3"], command = "x" },
  { name = "b", sequence = ["2", "1", "3"], command = "x",
    tcpflag = "syn" },
]
`,
			want: []string{`t.toml:4: tcpflag: unknown key in [[door]] (did you mean "tcpflags"?)`},
		},
		{
			name: "absurd timeouts are errors, not overflows",
			src:  okDoor + "seq_timeout = \"2500000h\"\ncmd_timeout = 999999999\nstop_command = \"true\"\n",
			want: []string{
				`t.toml:6: seq_timeout: 2500000h0m0s is longer than the 24h0m0s a knock may take`,
				`t.toml:7: cmd_timeout: 277777h46m39s is longer than the 168h0m0s a door may stay open`,
			},
		},
		{
			name: "daemon limits",
			src:  "[daemon]\nmax_sources = 100000000\nmax_commands = 5000\n" + okDoor,
			want: []string{
				`t.toml:2: max_sources: 100000000 out of range 1-10000000`,
				`t.toml:3: max_commands: 5000 out of range 1-1024`,
			},
		},
		{
			name: "two doors on one one-time file",
			src: `[[door]]
name = "a"
one_time_sequences = "/etc/seqs"
command = "true"
[[door]]
name = "b"
one_time_sequences = "/etc/seqs"
command = "true"
`,
			want: []string{`t.toml:7: one_time_sequences: /etc/seqs is already used by the door at line 3; each door needs its own file`},
		},
		{
			name: "multi-line strings do not confuse line numbers",
			src: `[[door]]
name = "x"
sequence = ["2", "1", "3"]
command = """
sequnce = 1
[[door]]
"""
seq_timeout = "x"
`,
			want: []string{`t.toml:8: seq_timeout: "x" is not a duration`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseAs("t.toml", []byte(tt.src), FormatTOML)
			if err == nil {
				t.Fatalf("no error; got %+v", c)
			}
			if c != nil {
				t.Errorf("config returned with an error")
			}
			checkProblems(t, problemList(t, err), tt.want)
		})
	}
}

func TestTOMLValid(t *testing.T) {
	src := `
[daemon]
state_dir = "/srv/pk"
max_sources = 50
max_commands = 2
logfile = "/var/log/pk.log"
usesyslog = true
pidfile = "/run/pk.pid"
close_on_exit = false
command_time_limit = "2m"

[[input]]
type = "nflog"
groups = [5, 0, 65535]
prefix = "knock "

[[input]]
type = "text"
path = "/var/log/kern.log"

[[door]]
name = "a"
sequence = ["7000", "8000:udp", "9000/TCP", " 10000 / udp "]
seq_timeout = 30
tcpflags = "SYN,!ack"
target = "::ffff:192.0.2.1"
command = ["/usr/sbin/nft", "add", "element", "inet", "fw", "s", "{ %IP% }"]
stop_command = "nft delete element inet fw s { %IP% }"
cmd_timeout = "1m30s"
reknock = "ignore"

[[door]]
name = "b"
one_time_sequences = "/etc/pk/b"
start_command = "open4"
start_command_6 = ""
stop_command_6 = "close6"
`
	c, err := Parse("/etc/pk/t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, c)
	// What check says of this file: its text input keeps every line, and
	// door a's ports rise.
	wantWarnings := []string{
		"/etc/pk/t.toml:17: prefix: input text:/var/log/kern.log has no prefix: a packet any rule logs there is a knock; give the knock rule a log prefix and set prefix to it",
		`/etc/pk/t.toml:21: sequence: door "a" (7000/tcp 8000/udp 9000/tcp 10000/udp) is opened by a rising TCP+UDP port sweep from any address; put its ports out of order, or use a sealed door`,
	}
	if !slices.Equal(c.Warnings, wantWarnings) {
		t.Errorf("warnings %q, want %q", c.Warnings, wantWarnings)
	}
	wantDaemon := Daemon{StateDir: "/srv/pk", CloseOnExit: false, MaxSources: 50, MaxCommands: 2, CommandTimeLimit: 2 * time.Minute, LogFile: "/var/log/pk.log", UseSyslog: true, PIDFile: "/run/pk.pid"}
	if c.Daemon != wantDaemon {
		t.Errorf("daemon %+v", c.Daemon)
	}
	wantIn := []Input{
		{Line: 12, Type: InputNFLOG, Groups: []uint16{5, 0, 65535}, Prefix: "knock "},
		{Line: 17, Type: InputText, Path: "/var/log/kern.log", Format: "auto"},
	}
	if !reflect.DeepEqual(c.Inputs, wantIn) {
		t.Errorf("inputs %+v\nwant %+v", c.Inputs, wantIn)
	}
	nft := []string{"/usr/sbin/nft", "add", "element", "inet", "fw", "s", "{ %IP% }"}
	stop := Command{Shell: "nft delete element inet fw s { %IP% }"}
	wantDoors := []Door{{
		Name: "a",
		Line: 21,
		Sequence: []sequence.Step{
			{Port: 7000, Proto: sequence.TCP}, {Port: 8000, Proto: sequence.UDP},
			{Port: 9000, Proto: sequence.TCP}, {Port: 10000, Proto: sequence.UDP},
		},
		SeqTimeout:    30 * time.Second,
		TCPFlags:      sequence.FlagFilter{Set: sequence.SYN, Clear: sequence.ACK},
		Target:        netip.MustParseAddr("192.0.2.1"),
		StartCommand:  Command{Argv: nft},
		StartCommand6: Command{Argv: nft},
		StopCommand:   stop,
		StopCommand6:  stop,
		CmdTimeout:    90 * time.Second,
		Reknock:       actions.ReknockIgnore,
	}, {
		Name:             "b",
		Line:             32,
		OneTimeSequences: "/etc/pk/b",
		SeqTimeout:       DefaultSeqTimeout,
		StartCommand:     Command{Shell: "open4"},
		StopCommand6:     Command{Shell: "close6"},
		CmdTimeout:       DefaultCmdTimeout,
		Reknock:          actions.ReknockExtend,
	}}
	if !reflect.DeepEqual(c.Doors, wantDoors) {
		t.Errorf("doors\n%+v\nwant\n%+v", c.Doors, wantDoors)
	}
	// The IPv6 copy must not share the argv with the IPv4 command.
	c.Doors[0].StartCommand6.Argv[0] = "changed"
	if c.Doors[0].StartCommand.Argv[0] != "/usr/sbin/nft" {
		t.Error("StartCommand6 shares its argv with StartCommand")
	}
}

func TestTOMLBatch(t *testing.T) {
	c, err := Parse("t.toml", []byte("[[input]]\ntype = \"nflog\"\ngroups = [5]\nbatch_above = 50000\nbatch_below = 500\n"+
		"[[input]]\ntype = \"nflog\"\ngroups = [6]\nbatch_below = 100\n"+okDoor))
	if err != nil {
		t.Fatal(err)
	}
	got := [][2]int{{c.Inputs[0].BatchAbove, c.Inputs[0].BatchBelow}, {c.Inputs[1].BatchAbove, c.Inputs[1].BatchBelow}}
	if want := [][2]int{{50000, 500}, {0, 100}}; !reflect.DeepEqual(got, want) {
		t.Errorf("batch rates %v, want %v (0: the input's default)", got, want)
	}
}

func TestTOMLDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(okDoor))
	if err != nil {
		t.Fatal(err)
	}
	want := Daemon{StateDir: DefaultStateDir, CloseOnExit: true, MaxSources: DefaultMaxSources, MaxCommands: DefaultMaxCommands, CommandTimeLimit: DefaultCommandTimeLimit}
	if c.Daemon != want || c.Inputs != nil {
		t.Errorf("daemon %+v, inputs %+v", c.Daemon, c.Inputs)
	}
	d := c.Doors[0]
	if d.SeqTimeout != 25*time.Second || d.CmdTimeout != 10*time.Second || !d.TCPFlags.IsZero() || d.Target.IsValid() || d.Reknock != actions.ReknockExtend {
		t.Errorf("door defaults %+v", d)
	}
}

func TestTOMLWarnings(t *testing.T) {
	for _, c := range []struct {
		src  string
		want []string
	}{
		{okDoor + "cmd_timeout = 5\n", []string{"t.toml:6: cmd_timeout: has no effect without a stop_command or nft_set"}},
		{okDoor + "reknock = \"ignore\"\n", []string{"t.toml:6: reknock: has no effect without a stop_command or nft_set: every knock runs the start command"}},
		// A set's element is refreshed by a re-knock: both keys matter.
		{"[[door]]\nname = \"s\"\nsequence = [\"2\", \"1\", \"3\"]\nnft_set = \"inet fw knock4\"\nnft_set_6 = \"inet fw knock6\"\ncmd_timeout = 5\nreknock = \"ignore\"\n", nil},
		// One family only: the other family's knocks open nothing.
		{"[[door]]\nname = \"s\"\nsequence = [\"2\", \"1\", \"3\"]\nnft_set = \"inet fw knock4\"\n", []string{"t.toml:4: nft_set: door \"s\" has no nft_set_6 and no IPv6 commands: a knock from an IPv6 address opens nothing"}},
		{"[[door]]\nname = \"s\"\nsequence = [\"2\", \"1\", \"3\"]\nnft_set_6 = \"inet fw knock6\"\n", []string{"t.toml:4: nft_set_6: door \"s\" has no nft_set and no IPv4 commands: a knock from an IPv4 address opens nothing"}},
		// Commands for the other family: fine.
		{"[[door]]\nname = \"s\"\nsequence = [\"2\", \"1\", \"3\"]\nnft_set = \"inet fw knock4\"\nstart_command_6 = \"open6 %IP%\"\n", nil},
	} {
		cfg, err := Parse("t.toml", []byte(c.src))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Warnings, c.want) {
			t.Errorf("%s\nwarnings %q, want %q", c.src, cfg.Warnings, c.want)
		}
	}
}

func TestKeyLines(t *testing.T) {
	src := `# comment
top = 1
a.b = 2          # dotted
[tbl]
"quoted key" = 'x'
'lit' = """
multi
line"""
arr = [
  1,
  [2, 3],
  { k = 4 },
]
[[aot]]
x = 1
[aot.sub]
y = 2
[[aot]]
x = {
  z = 3 }
`
	kl := scanKeyLines(src)
	tests := []struct {
		path []string
		want int
	}{
		{[]string{"top"}, 2},
		{[]string{"a"}, 3},
		{[]string{"a", "b"}, 3},
		{[]string{"tbl"}, 4},
		{[]string{"tbl", "quoted key"}, 5},
		{[]string{"tbl", "lit"}, 6},
		{[]string{"tbl", "arr"}, 9},
		{[]string{"tbl", "arr", elem(0)}, 10},
		{[]string{"tbl", "arr", elem(1), elem(1)}, 11},
		{[]string{"tbl", "arr", elem(2), "k"}, 12},
		{[]string{"aot"}, 14},
		{[]string{"aot", elem(0)}, 14},
		{[]string{"aot", elem(0), "x"}, 15},
		{[]string{"aot", elem(0), "sub", "y"}, 17},
		{[]string{"aot", elem(1)}, 18},
		{[]string{"aot", elem(1), "x"}, 19},
		{[]string{"aot", elem(1), "x", "z"}, 20},
		{[]string{"aot", elem(1), "missing"}, 18},
		{[]string{"nothing"}, 0},
	}
	for _, tt := range tests {
		if got := kl.lookup(tt.path...); got != tt.want {
			t.Errorf("line of %q = %d, want %d", tt.path, got, tt.want)
		}
	}
}

func TestTOMLSyslogInput(t *testing.T) {
	c, err := parseAs("t.toml", []byte(`[[input]]
type = "syslog"
allow = ["192.0.2.1", "2001:db8::/32", "::ffff:198.51.100.7"]
format = "filterlog"
`+okDoor), FormatTOML)
	if err != nil {
		t.Fatal(err)
	}
	in := c.Inputs[0]
	if in.Listen != DefaultSyslogListen || in.Network != "udp" || in.Format != "filterlog" {
		t.Errorf("input = %+v; want defaults listen %s, network udp", in, DefaultSyslogListen)
	}
	want := []string{"192.0.2.1/32", "2001:db8::/32", "198.51.100.7/32"}
	if len(in.Allow) != len(want) {
		t.Fatalf("allow = %v, want %v", in.Allow, want)
	}
	for i, p := range in.Allow {
		if p.String() != want[i] {
			t.Errorf("allow[%d] = %v, want %s", i, p, want[i])
		}
	}
	if got := in.String(); got != "syslog:udp:127.0.0.1:514" {
		t.Errorf("String() = %q", got)
	}
	if err := in.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	_, err = parseAs("t.toml", []byte(`[[input]]
type = "syslog"
listen = "nowhere"
network = "sctp"
allow = ["not an address"]
path = "/x"
`+okDoor), FormatTOML)
	checkProblems(t, problemList(t, err), []string{
		`t.toml:3: listen: want host:port`,
		`t.toml:4: network: want "udp", "tcp", "tls", got "sctp"`,
		`t.toml:5: allow: "not an address" is neither an address nor a prefix`,
		`t.toml:6: path: only text inputs take this key`,
	})
}

func TestTOMLInputPrograms(t *testing.T) {
	c, err := parseAs("t.toml", []byte(`[[input]]
type = "syslog"
format = "netfilter"
programs = ["fw-kernel", "kernel"]

[[input]]
type = "text"
path = "-"
format = "simple"
programs = ["ulogport"]
`+okDoor), FormatTOML)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Inputs[0].Programs; len(got) != 2 || got[0] != "fw-kernel" || got[1] != "kernel" {
		t.Errorf("programs = %q", got)
	}
	if got := c.Inputs[1].Programs; len(got) != 1 || got[0] != "ulogport" {
		t.Errorf("programs = %q", got)
	}
	for _, in := range c.Inputs {
		if err := in.Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
	}

	_, err = parseAs("t.toml", []byte(`[[input]]
type = "syslog"
programs = ["", "a b", "sshd[1]", "x:", "k", "k", 7]

[[input]]
type = "nflog"
groups = [5]
programs = ["kernel"]

[[input]]
type = "text"
path = "-"
programs = "kernel"

[[input]]
type = "text"
path = "-"
programs = []

[[input]]
type = "text"
path = "-"
format = "journal"
programs = ["kernel"]
`+okDoor), FormatTOML)
	checkProblems(t, problemList(t, err), []string{
		`t.toml:3: programs: program name is empty`,
		`t.toml:3: programs: program "a b": a syslog tag's name has no blank`,
		`t.toml:3: programs: program "sshd[1]": a syslog tag's name`,
		`t.toml:3: programs: program "x:": a syslog tag's name`,
		`t.toml:3: programs: "k" listed twice`,
		`t.toml:3: programs: want strings, got integer`,
		`t.toml:8: programs: only text and syslog inputs take this key`,
		`t.toml:13: programs: want an array of program names`,
		`t.toml:18: programs: empty: leave the key out`,
		`t.toml:24: programs: the journal format trusts only entries`,
	})
	in := Input{Type: InputText, Path: "-", Format: "auto", Programs: []string{"a\tb"}}
	if err := in.Validate(); err == nil {
		t.Error("Validate accepted a program name with a tab")
	}
}

func TestTOMLNFTSets(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[[door]]
name = "ssh"
sequence = ["2", "1", "3"]
nft_set = "inet fw knock4"
nft_set_6 = "ip6 filter knock6"
cmd_timeout = "30s"
`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Doors[0]
	if d.NFTSet.String() != "inet fw knock4" || d.NFTSet6.String() != "ip6 filter knock6" || !d.HasSets() || d.CmdTimeout != 30*time.Second {
		t.Errorf("door %+v", d)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %q: cmd_timeout is the element timeout", c.Warnings)
	}
	_, err = Parse("t.toml", []byte(okDoor+`nft_set = "fw knock4"`+"\n"))
	want := `t.toml:6: nft_set: nft set "fw knock4": the family is missing`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want it to start with %q", err, want)
	}
}
