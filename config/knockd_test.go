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

func TestKnockdValid(t *testing.T) {
	src := "# knockd.conf\r\n" + `[Options]
	UseSyslog
	LOGFILE = /var/log/knockd.log
	PidFile=/run/knockd.pid

[openSSH]
	SEQUENCE    = 7000:udp, 8000/udp ,9000,10000:TCP
	Seq_Timeout = 5
	TCPFlags    = syn,!ack
	Command     = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT # not a comment
	Target      = 192.0.2.1
	cmd_timeout = 20
	stop_command = echo a=b

[ closeSSH ]
	sequence      = 9000,8000,7000
	timeout       = 8
	start_command = /bin/close %IP%
	command_6     =
	stop_command_6 = /bin/close6 %IP%
`
	c, err := parseAs("/etc/knockd.conf", []byte(src), FormatKnockd)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, c)
	wantWarnings := []string{`/etc/knockd.conf:16: sequence: door "closeSSH" (9000/tcp 8000/tcp 7000/tcp) is opened by a falling TCP port sweep from any address; put its ports out of order, or use a sealed door`}
	if !slices.Equal(c.Warnings, wantWarnings) {
		t.Errorf("warnings %q, want %q", c.Warnings, wantWarnings)
	}
	wantDaemon := Daemon{
		StateDir: DefaultStateDir, CloseOnExit: true, MaxSources: DefaultMaxSources, MaxCommands: DefaultMaxCommands,
		CommandTimeLimit: DefaultCommandTimeLimit,
		LogFile:          "/var/log/knockd.log", UseSyslog: true, PIDFile: "/run/knockd.pid",
	}
	if c.Daemon != wantDaemon {
		t.Errorf("daemon %+v", c.Daemon)
	}
	open := Command{Shell: "/sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT # not a comment"}
	stop := Command{Shell: "echo a=b"}
	want := []Door{{
		Name: "openSSH",
		Line: 7,
		Sequence: []sequence.Step{
			{Port: 7000, Proto: sequence.UDP}, {Port: 8000, Proto: sequence.UDP},
			{Port: 9000, Proto: sequence.TCP}, {Port: 10000, Proto: sequence.TCP},
		},
		SeqTimeout:    5 * time.Second,
		TCPFlags:      sequence.FlagFilter{Set: sequence.SYN, Clear: sequence.ACK},
		Target:        netip.MustParseAddr("192.0.2.1"),
		StartCommand:  open,
		StartCommand6: open,
		StopCommand:   stop,
		StopCommand6:  stop,
		CmdTimeout:    20 * time.Second,
		Reknock:       actions.ReknockExtend,
	}, {
		Name:         "closeSSH",
		Line:         16,
		Sequence:     []sequence.Step{{Port: 9000, Proto: sequence.TCP}, {Port: 8000, Proto: sequence.TCP}, {Port: 7000, Proto: sequence.TCP}},
		SeqTimeout:   8 * time.Second,
		StartCommand: Command{Shell: "/bin/close %IP%"},
		StopCommand6: Command{Shell: "/bin/close6 %IP%"},
		CmdTimeout:   DefaultCmdTimeout,
		Reknock:      actions.ReknockExtend,
	}}
	if !reflect.DeepEqual(c.Doors, want) {
		t.Errorf("doors\n%+v\nwant\n%+v", c.Doors, want)
	}
}

func TestKnockdInterfaceWarns(t *testing.T) {
	src := "[options]\n\tInterface = eth0\n[a]\nsequence = 2,1,3\ncommand = x\n"
	c, err := Parse("/etc/knockd.conf", []byte(src))
	if err != nil {
		t.Fatalf("interface must not be an error: %v", err)
	}
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "/etc/knockd.conf:2: Interface: has no meaning for portknockd") ||
		!strings.Contains(c.Warnings[0], "nflog:GROUP") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

func TestKnockdWarnings(t *testing.T) {
	src := "[a]\nsequence = 2,1,3\ncommand = x\ncmd_timeout = 5\nUseSyslog\n"
	c, err := Parse("k.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"k.conf:4: cmd_timeout: has no effect without a stop_command or nft_set",
		"k.conf:5: UseSyslog: is a global option; it belongs in [options]",
	}
	if !slices.Equal(c.Warnings, want) || !c.Daemon.UseSyslog {
		t.Errorf("warnings %q, usesyslog %v", c.Warnings, c.Daemon.UseSyslog)
	}
}

func TestKnockdErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown keys name their line",
			src: `[options]
	LogFil = /x
	verbose = 1
[a]
	sequence = 1
	command = x
	Sequnce = 2
	comand = y
`,
			want: []string{
				`k.conf:2: LogFil: unknown option in [options] (did you mean "logfile"?)`,
				`k.conf:3: verbose: unknown option in [options]`,
				`k.conf:7: Sequnce: unknown key in door [a] (did you mean "sequence"?)`,
				`k.conf:8: comand: unknown key in door [a] (did you mean "command"?)`,
			},
		},
		{
			name: "structure",
			src: `sequence = 1
[]
	command = x
[a]
	sequence = 1
	command = x
	Verbose
[a]
	sequence = 2
	command = y
`,
			want: []string{
				`k.conf:1: sequence: outside any section`,
				`k.conf:2: empty section name`,
				`k.conf:3: command: outside any section`,
				`k.conf:7: Verbose: has no value; only UseSyslog stands alone`,
				`k.conf:8: name: door "a" already defined at line 4`,
			},
		},
		{
			name: "bad values",
			src: `[options]
	usesyslog = maybe
[a]
	sequence = 7000,0,8000:icmp
	seq_timeout = 5s
	cmd_timeout = 0
	tcpflags = syn,fin,foo
	target = not.an.ip
	one_time_sequences =
	command = x
[b]
	sequence =
	seq_timeout = -1
	cmd_timeout = 99999999999999999999
	command = x
	start_command = y
	timeout = 3
[c]
	command_6 =
[d]
	sequence = 1,2
	one_time_sequences = /x
	command = x
`,
			want: []string{
				`k.conf:2: usesyslog: want the bare flag UseSyslog, or true or false, got "maybe"`,
				`k.conf:4: sequence: bad knock "0": port must be 1-65535`,
				`k.conf:5: seq_timeout: "5s" is not a whole number of seconds`,
				`k.conf:6: cmd_timeout: must be positive`,
				`k.conf:7: tcpflags: unknown TCP flag "foo"`,
				`k.conf:8: target: "not.an.ip" is not an IP address`,
				`k.conf:9: one_time_sequences: needs the path of a one-time sequences file`,
				`k.conf:9: a door has either sequence or one_time_sequences, not both (lines 4 and 9)`,
				`k.conf:12: sequence: empty sequence ""`,
				`k.conf:13: seq_timeout: must be positive`,
				`k.conf:14: cmd_timeout: "99999999999999999999" is not a whole number of seconds`,
				`k.conf:16: start_command: already set at line 15`,
				`k.conf:17: timeout: already set as seq_timeout at line 13`,
				`k.conf:18: sequence: missing: door "c" needs a sequence or one_time_sequences`,
				`k.conf:18: start_command: missing: door "c" would do nothing`,
				`k.conf:22: a door has either sequence or one_time_sequences, not both (lines 21 and 22)`,
			},
		},
		{
			name: "sequence too long",
			src:  "[a]\nsequence = " + strings.Repeat("1,", sequence.MaxSteps+1) + "\ncommand = x\n",
			want: []string{`k.conf:2: sequence: 256 knocks, at most 255 allowed`},
		},
		{
			name: "options set twice",
			src:  "[options]\nlogfile = /a\n[options]\nLogFile = /b\n[a]\nsequence=1\ncommand=x\n",
			want: []string{`k.conf:4: logfile: already set at line 2`},
		},
		{
			name: "no door",
			src:  "[options]\nUseSyslog\n",
			want: []string{`k.conf: no door: a knockd.conf needs at least one [name] section`},
		},
		{
			name: "NUL byte",
			src:  "[a]\nsequence = 2,1,3\ncommand = x\x00y\n",
			want: []string{
				`k.conf:1: start_command: missing: door "a" would do nothing`,
				`k.conf:3: contains a NUL byte`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseAs("k.conf", []byte(tt.src), FormatKnockd)
			if err == nil {
				t.Fatalf("no error; got %+v", c)
			}
			checkProblems(t, problemList(t, err), tt.want)
		})
	}
}

// TestStepForms checks that both knockd's "7000:udp" and the native
// "7000/udp" are understood in both formats.
func TestStepForms(t *testing.T) {
	want := []sequence.Step{{Port: 7000, Proto: sequence.UDP}, {Port: 8000, Proto: sequence.UDP}, {Port: 9000, Proto: sequence.TCP}}
	for _, tt := range []struct{ name, src string }{
		{"knockd", "[a]\nsequence = 7000:udp,8000/udp,9000\ncommand = x\n"},
		{"toml", "[[door]]\nname = \"a\"\nsequence = [\"7000:udp\", \"8000/udp\", \"9000\"]\ncommand = \"x\"\n"},
	} {
		c, err := Parse("", []byte(tt.src))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if c.Format != tt.name || !slices.Equal(c.Doors[0].Sequence, want) {
			t.Errorf("%s: format %s, sequence %v", tt.name, c.Format, c.Doors[0].Sequence)
		}
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name, path, src, want string
	}{
		{"empty", "x", "", FormatTOML},
		{"empty .conf", "/etc/knockd.conf", "", FormatKnockd},
		{"options header", "x", "# c\n\n[options]\nlogfile = /x\n", FormatKnockd},
		{"Options header", "x", "[Options]\n", FormatKnockd},
		{"array of tables", "x.conf", "[[door]]\n", FormatTOML},
		{"header with comment", "x.conf", "[daemon] # settings\n", FormatTOML},
		{"quoted value", "x.conf", "[daemon]\nstate_dir = \"/x\"\n", FormatTOML},
		{"literal value", "x.conf", "[x]\nstate_dir = '/x'\n", FormatTOML},
		{"array value", "x", "[open]\nsequence = [\"1\"]\n", FormatTOML},
		{"bare flag", "x.toml", "[a]\nUseSyslog\n", FormatKnockd},
		{"knockd sequence", "x.toml", "[a]\nsequence = 7000,8000\n", FormatKnockd},
		{"knockd tcpflags", "x.toml", "[a]\ntcpflags = syn\n", FormatKnockd},
		{"knockd command", "x.toml", "[a]\nseq_timeout = 5\ncommand = /bin/true\n", FormatKnockd},
		{"knockd empty value", "x.toml", "[a]\ncommand_6 =\n", FormatKnockd},
		{"knockd door named door", "x.toml", "[door]\nsequence = 7000\ncommand = /bin/true\n", FormatKnockd},
		{"numbers fit both, TOML table names", "x", "[daemon]\nmax_sources = 5\n", FormatTOML},
		{"numbers fit both, other header", "x", "[open]\nsequence = 7000\nseq_timeout = 5\n", FormatKnockd},
		{"numbers fit both, .conf", "x.conf", "[daemon]\nmax_sources = 5\n", FormatKnockd},
		{"TOML scalars", "x", "[daemon]\na = true\nb = -1_000\nc = 0x1F\nd = 1979-05-27 07:32:00Z\ne = +inf\nf = 6.02e+23\n", FormatTOML},
		{"IPv4 target fits both", "x", "[daemon]\ntarget = 192.0.2.1\n", FormatTOML},
		{"BOM", "x", "\xef\xbb\xbf[options]\n", FormatKnockd},
		{"knockd quickly decided despite later TOML", "x", "[a]\nsequence = 1,2\n[[door]]\n", FormatKnockd},
	}
	for _, tt := range tests {
		if got := DetectFormat(tt.path, []byte(tt.src)); got != tt.want {
			t.Errorf("%s: DetectFormat(%q, %q) = %q, want %q", tt.name, tt.path, tt.src, got, tt.want)
		}
	}
}
