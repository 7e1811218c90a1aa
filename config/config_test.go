package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"portknock/actions"
	"portknock/nftset"
	"portknock/sealed"
	"portknock/sequence"
)

// problemList returns the individual problems of an error from Parse.
func problemList(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]string, len(list))
	for i, e := range list {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Errorf("problem %q is a %T, not an *Error", e, e)
		}
		out[i] = e.Error()
	}
	return out
}

// checkProblems fails unless the problems are exactly want, in order, each
// given as a prefix (file:line: key: and the start of the message).
func checkProblems(t *testing.T, got []string, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Errorf("problems:\n\t%s\nwant (as prefixes):\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestExamplesLoad(t *testing.T) {
	var files []string
	for _, pat := range []string{"*.toml", "*.conf"} {
		m, err := filepath.Glob(filepath.Join("..", "examples", pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 3 {
		t.Fatalf("found only %d example configurations: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := loadExample(t, f)
			if err != nil {
				t.Fatalf("does not load:\n%v", err)
			}
			// knockd.conf is knockd(1)'s own example, kept verbatim: check
			// must show that a sweep opens two of its doors.
			var want []string
			if filepath.Base(f) == "knockd.conf" {
				want = []string{
					`../examples/knockd.conf:10: sequence: door "openSSH" (7000/tcp 8000/tcp 9000/tcp) is opened by a rising TCP port sweep from any address; put its ports out of order, or use a sealed door`,
					`../examples/knockd.conf:16: sequence: door "closeSSH" (9000/tcp 8000/tcp 7000/tcp) is opened by a falling TCP port sweep from any address; put its ports out of order, or use a sealed door`,
				}
			}
			if !slices.Equal(c.Warnings, want) {
				t.Errorf("warnings: %q, want %q", c.Warnings, want)
			}
			wantFormat := FormatTOML
			if strings.HasSuffix(f, ".conf") {
				wantFormat = FormatKnockd
			}
			if c.Format != wantFormat {
				t.Errorf("format %q, want %q", c.Format, wantFormat)
			}
			checkInvariants(t, c)
			// A one-time door is only as good as its file: it must exist
			// and hold a usable sequence.
			for _, d := range c.Doors {
				if d.OneTimeSequences == "" {
					continue
				}
				if _, err := firstOneTimeSequence(d.OneTimeSequences); err != nil {
					t.Errorf("door %q: %v", d.Name, err)
				}
			}
		})
	}
}

// exampleKeyFile is where the examples keep their sealed doors' keys.
var exampleKeyFile = regexp.MustCompile(`"/etc/portknockd/([a-z0-9-]+\.key)"`)

// loadExample loads an example configuration. The key files of its sealed
// doors are made afresh in a directory of the test's, where a copy of the
// example names them.
func loadExample(t *testing.T, path string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !exampleKeyFile.Match(data) {
		return Load(path)
	}
	dir := t.TempDir()
	data = exampleKeyFile.ReplaceAllFunc(data, func(m []byte) []byte {
		name := filepath.Join(dir, string(exampleKeyFile.FindSubmatch(m)[1]))
		if _, err := os.Stat(name); err != nil {
			writeKey(t, name, 0o600)
		}
		return []byte(strconv.Quote(name))
	})
	copyPath := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(copyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(copyPath)
}

// firstOneTimeSequence reads a knockd one-time sequences file as knockd
// does: the first line that is neither blank, a comment nor invalid.
func firstOneTimeSequence(path string) ([]sequence.Step, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if steps, err := sequence.ParseSteps(line); err == nil {
			return steps, nil
		}
	}
	return nil, errors.New(path + ": no usable sequence")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nopReplay is a replay cache that accepts every block.
type nopReplay struct{}

func (nopReplay) Use([sealed.BlockSize]byte, time.Time) error { return nil }

// checkInvariants checks what every successfully parsed Config promises.
func checkInvariants(t *testing.T, c *Config) {
	t.Helper()
	if c.Format != FormatTOML && c.Format != FormatKnockd {
		t.Errorf("format %q", c.Format)
	}
	if c.Daemon.MaxSources < 1 || c.Daemon.MaxCommands < 1 || c.Daemon.StateDir == "" {
		t.Errorf("bad daemon settings %+v", c.Daemon)
	}
	for i := range c.Inputs {
		if err := c.Inputs[i].Validate(); err != nil {
			t.Errorf("input %d: %v", i, err)
		}
	}
	if len(c.Doors) == 0 {
		t.Error("no doors")
	}
	names := map[string]bool{}
	var mdoors []sequence.Door
	for i := range c.Doors {
		d := &c.Doors[i]
		if d.Name == "" || names[d.Name] {
			t.Errorf("door name %q empty or repeated", d.Name)
		}
		names[d.Name] = true
		if n := btoi(len(d.Sequence) > 0) + btoi(d.OneTimeSequences != "") + btoi(d.Sealed != nil); n != 1 {
			t.Errorf("door %q: sequence %v, one_time_sequences %q and sealed %v", d.Name, d.Sequence, d.OneTimeSequences, d.Sealed)
		}
		if len(d.Sequence) > sequence.MaxSteps {
			t.Errorf("door %q: %d steps", d.Name, len(d.Sequence))
		}
		if d.SeqTimeout <= 0 || d.CmdTimeout <= 0 {
			t.Errorf("door %q: timeouts %v, %v", d.Name, d.SeqTimeout, d.CmdTimeout)
		}
		if d.StartCommand.IsZero() && d.StartCommand6.IsZero() && !d.HasStop() && !d.HasSets() {
			t.Errorf("door %q does nothing", d.Name)
		}
		md := matcherDoor(d)
		if md.Sealed != nil && md.Sealed.Key == (sealed.Key{}) {
			md.Sealed.Key = sealed.Key{1} // Parse reads no key
		}
		if d.OneTimeSequences == "" {
			if err := md.Validate(); err != nil {
				t.Errorf("door %q: matcher rejects it: %v", d.Name, err)
			}
			mdoors = append(mdoors, md)
		}
	}
	// What the configuration accepts, the matcher must accept too.
	if _, err := sequence.New(mdoors, sequence.Options{Replay: nopReplay{}}); err != nil {
		t.Errorf("the matcher refuses the doors: %v", err)
	}
	ks := c.KnockSpace()
	if !slices.IsSortedFunc(ks, compareSteps) || len(slices.Compact(slices.Clone(ks))) != len(ks) {
		t.Errorf("knock space not sorted and unique: %v", ks)
	}
}

func TestQuickstart(t *testing.T) {
	c, err := Load(filepath.Join("..", "examples", "quickstart.toml"))
	if err != nil {
		t.Fatal(err)
	}
	wantIn := []Input{{Line: c.Inputs[0].Line, Type: InputText, Path: "-", Format: "simple"}}
	if !reflect.DeepEqual(c.Inputs, wantIn) {
		t.Errorf("inputs %+v, want %+v", c.Inputs, wantIn)
	}
	if len(c.Doors) != 1 {
		t.Fatalf("%d doors", len(c.Doors))
	}
	d := c.Doors[0]
	want := []sequence.Step{{Port: 7000, Proto: sequence.TCP}, {Port: 9000, Proto: sequence.UDP}, {Port: 8000, Proto: sequence.TCP}}
	if d.Name != "ssh" || !slices.Equal(d.Sequence, want) || d.SeqTimeout != 5*time.Second || d.CmdTimeout != 10*time.Second {
		t.Errorf("door %+v", d)
	}
	if !strings.HasPrefix(d.StartCommand.Shell, "echo ") || !strings.Contains(d.StartCommand.Shell, "%IP%") ||
		!strings.HasPrefix(d.StopCommand.Shell, "echo ") {
		t.Errorf("commands %q, %q", d.StartCommand, d.StopCommand)
	}
	if space := []sequence.Step{want[0], want[2], want[1]}; !slices.Equal(c.KnockSpace(), space) {
		t.Errorf("knock space %v", c.KnockSpace())
	}
}

func TestKnockdExample(t *testing.T) {
	path := filepath.Join("..", "examples", "knockd.conf")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range c.Doors {
		names = append(names, d.Name)
	}
	if want := []string{"openSSH", "closeSSH", "opencloseSSH", "openHTTPS", "opencloseSMTP"}; !slices.Equal(names, want) {
		t.Errorf("doors %q, want %q", names, want)
	}
	if c.Daemon.LogFile != "/var/log/knockd.log" || len(c.Inputs) != 0 {
		t.Errorf("daemon %+v, inputs %+v", c.Daemon, c.Inputs)
	}
	smtp := c.Doors[4]
	if smtp.OneTimeSequences != filepath.Join("..", "examples", "smtp_sequences") {
		t.Errorf("one_time_sequences = %q, want it next to the configuration", smtp.OneTimeSequences)
	}
	if smtp.TCPFlags != (sequence.FlagFilter{Set: sequence.FIN, Clear: sequence.ACK}) {
		t.Errorf("tcpflags %v", smtp.TCPFlags)
	}
	if !strings.Contains(smtp.StartCommand6.Shell, "ip6tables") || !strings.Contains(smtp.StopCommand6.Shell, "ip6tables") {
		t.Errorf("IPv6 commands %q, %q", smtp.StartCommand6, smtp.StopCommand6)
	}
	ssh := c.Doors[0]
	if ssh.StartCommand6.Shell != ssh.StartCommand.Shell || !ssh.StopCommand.IsZero() || ssh.SeqTimeout != 10*time.Second {
		t.Errorf("openSSH %+v", ssh)
	}
	https := c.Doors[3]
	if https.CmdTimeout != 10*time.Second || https.StopCommand.IsZero() {
		t.Errorf("openHTTPS %+v", https)
	}
}

func TestKnockSpace(t *testing.T) {
	c := &Config{Doors: []Door{
		{Sequence: []sequence.Step{{Port: 9000, Proto: sequence.UDP}, {Port: 7000, Proto: sequence.TCP}}},
		{OneTimeSequences: "x"},
		{Sequence: []sequence.Step{{Port: 7000, Proto: sequence.UDP}, {Port: 7000, Proto: sequence.TCP}, {Port: 9000, Proto: sequence.UDP}}},
	}}
	want := []sequence.Step{{Port: 7000, Proto: sequence.TCP}, {Port: 7000, Proto: sequence.UDP}, {Port: 9000, Proto: sequence.UDP}}
	if got := c.KnockSpace(); !slices.Equal(got, want) {
		t.Errorf("KnockSpace() = %v, want %v", got, want)
	}
	if got := (&Config{}).KnockSpace(); len(got) != 0 {
		t.Errorf("empty config: %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "not a configuration file") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestRelativePaths(t *testing.T) {
	src := `
[daemon]
state_dir = "state"
logfile = "/abs/log"
pidfile = "run/pid"

[[input]]
type = "text"
path = "kern.log"

[[input]]
type = "text"
path = "-"

[[door]]
name = "a"
one_time_sequences = "seqs"
command = "true"
`
	c, err := Parse("/etc/pk/portknockd.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Daemon.StateDir, c.Daemon.LogFile, c.Daemon.PIDFile, c.Inputs[0].Path, c.Inputs[1].Path, c.Doors[0].OneTimeSequences}
	want := []string{"/etc/pk/state", "/abs/log", "/etc/pk/run/pid", "/etc/pk/kern.log", "-", "/etc/pk/seqs"}
	if !slices.Equal(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
	// Without a file name there is nothing to anchor to.
	c, err = Parse("", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Daemon.StateDir != "state" || c.Doors[0].OneTimeSequences != "seqs" {
		t.Errorf("unanchored paths changed: %q, %q", c.Daemon.StateDir, c.Doors[0].OneTimeSequences)
	}
}

func TestInputValidate(t *testing.T) {
	tests := []struct {
		in   Input
		want string // "" for valid
	}{
		{Input{Type: InputText, Path: "-", Format: "auto"}, ""},
		{Input{Type: InputText, Path: "/var/log/kern.log", Format: "filterlog"}, ""},
		{Input{Type: InputNFLOG, Groups: []uint16{0, 65535}, Prefix: "knock"}, ""},
		{Input{Type: InputText, Format: "auto"}, "needs a path"},
		{Input{Type: InputText, Path: "-", Format: ""}, "has no format"},
		{Input{Type: InputText, Path: "-", Format: "xml"}, "unknown text format"},
		{Input{Type: InputText, Path: "-", Format: "auto", Groups: []uint16{1}}, "cannot have NFLOG groups"},
		{Input{Type: InputNFLOG}, "at least one group"},
		{Input{Type: InputNFLOG, Groups: []uint16{5, 5}}, "listed twice"},
		{Input{Type: InputNFLOG, Groups: []uint16{5}, Path: "-"}, "neither path nor format"},
		{Input{Type: "pcap"}, "unknown input type"},
		{Input{Type: InputNFLOG, Groups: []uint16{5}, Prefix: "a\nb"}, "control character"},
	}
	for _, tt := range tests {
		err := tt.in.Validate()
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: Validate() = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestInputString(t *testing.T) {
	for _, tt := range []struct {
		in   Input
		want string
	}{
		{Input{Type: InputText, Path: "-"}, "text:-"},
		{Input{Type: InputNFLOG, Groups: []uint16{5, 6}}, "nflog:5,6"},
	} {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCommand(t *testing.T) {
	if !(Command{}).IsZero() || (Command{Shell: "x"}).IsZero() || (Command{Argv: []string{"x"}}).IsZero() {
		t.Error("IsZero wrong")
	}
	got := Command{Argv: []string{"/usr/sbin/nft", "add", "element", "{ %IP% }", ""}}.String()
	if want := `/usr/sbin/nft add element "{ %IP% }" ""`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{Path: "a.toml", Line: 3, Key: "name", Msg: "bad"}, "a.toml:3: name: bad"},
		{Error{Path: "a.toml", Msg: "no door"}, "a.toml: no door"},
		{Error{Line: 2, Msg: "x"}, "config:2: x"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("[[door]]\nname = \"a\"\nsequence = [\"1\"]\ncommand = \"x\"\n")
	for i := range 2 * maxErrors {
		b.WriteString("bogus" + strings.Repeat("x", i) + " = 1\n")
	}
	_, err := Parse("t.toml", []byte(b.String()))
	got := problemList(t, err)
	if len(got) != maxErrors+1 || !strings.Contains(got[maxErrors], "more errors not shown") {
		t.Errorf("%d problems, last %q", len(got), got[len(got)-1])
	}
}

// matcherDoor is the matcher's half of d.
func matcherDoor(d *Door) sequence.Door {
	md, _ := d.Split()
	return md
}

func TestSplit(t *testing.T) {
	set4, set6 := nftset.Ref{Family: nftset.FamilyInet, Table: "fw", Set: "k4"}, nftset.Ref{Family: nftset.FamilyInet, Table: "fw", Set: "k6"}
	d := Door{
		Name:          "x",
		Sequence:      []sequence.Step{{Port: 1, Proto: sequence.TCP}},
		SeqTimeout:    time.Second,
		TCPFlags:      sequence.FlagFilter{Set: sequence.SYN},
		Target:        netip.MustParseAddr("192.0.2.1"),
		StartCommand:  Command{Shell: "start4"},
		StartCommand6: Command{Shell: "start6"},
		StopCommand:   Command{Argv: []string{"stop4"}},
		StopCommand6:  Command{Argv: []string{"stop6"}},
		CmdTimeout:    time.Minute,
		Reknock:       actions.ReknockRerun,
		NFTSet:        set4,
		NFTSet6:       set6,
	}
	md, ad := d.Split()
	if md.Name != d.Name || !slices.Equal(md.Sequence, d.Sequence) || md.Timeout != d.SeqTimeout ||
		md.Flags != d.TCPFlags || md.Target != d.Target || md.OneTime != nil {
		t.Errorf("matcher door %+v", md)
	}
	md.Sequence[0].Port = 2
	if d.Sequence[0].Port != 1 {
		t.Error("Split shares the sequence with the config")
	}
	if ad.Name != "x" || ad.Start.Shell != "start4" || ad.Start6.Shell != "start6" || ad.Stop.String() != "stop4" ||
		ad.Stop6.String() != "stop6" || ad.CmdTimeout != time.Minute || ad.Reknock != actions.ReknockRerun ||
		ad.Set != set4 || ad.Set6 != set6 {
		t.Errorf("runner door %+v", ad)
	}

	// Without a stop command or a set nothing closes, so the runner is
	// not told of a cmd_timeout.
	startOnly := Door{Name: "y", StartCommand: Command{Shell: "s"}, CmdTimeout: time.Minute}
	if _, ad := startOnly.Split(); ad.CmdTimeout != 0 {
		t.Errorf("start-only door: runner CmdTimeout %v, want 0", ad.CmdTimeout)
	}
	setOnly := Door{Name: "z", NFTSet: set4, CmdTimeout: time.Minute}
	if _, ad := setOnly.Split(); ad.CmdTimeout != time.Minute {
		t.Errorf("set-only door: runner CmdTimeout %v, want 1m", ad.CmdTimeout)
	}
}

func TestParseInputSpec(t *testing.T) {
	tests := []struct {
		spec string
		want Input
		err  string
	}{
		{"nflog:5", Input{Type: InputNFLOG, Groups: []uint16{5}}, ""},
		{"nflog:5, 6", Input{Type: InputNFLOG, Groups: []uint16{5, 6}}, ""},
		{"text:-", Input{Type: InputText, Path: "-", Format: "auto"}, ""},
		{"text:netfilter:/var/log/kern.log", Input{Type: InputText, Path: "/var/log/kern.log", Format: "netfilter"}, ""},
		{"text:/tmp/a:b", Input{Type: InputText, Path: "/tmp/a:b", Format: "auto"}, ""},
		{"-", Input{Type: InputText, Path: "-", Format: "auto"}, ""},
		{"/run/knock.fifo", Input{Type: InputText, Path: "/run/knock.fifo", Format: "auto"}, ""},
		{"text:simple:-", Input{Type: InputText, Path: "-", Format: "simple"}, ""},
		{"nflog:", Input{}, "bad NFLOG group"},
		{"nflog:70000", Input{}, "bad NFLOG group"},
		{"nflog:1,1", Input{}, "listed twice"},
		{"text:", Input{}, "needs a path"},
		{"", Input{}, "needs a path"},
		{"text:auto:a:b", Input{Type: InputText, Path: "a:b", Format: "auto"}, ""},
		{"text:./a:b", Input{Type: InputText, Path: "./a:b", Format: "auto"}, ""},
		{"text:netfliter:/var/log/kern.log", Input{}, `unknown format "netfliter" (want one of auto, simple,`},
		{"syslog:udp:127.0.0.1:514", Input{}, `unknown input type "syslog"`},
		{"nflog:5,", Input{}, `bad NFLOG group "" (want 0-65535)`},
		{"nflog:x", Input{}, `bad NFLOG group "x" (want 0-65535)`},
	}
	for _, tt := range tests {
		got, err := ParseInputSpec(tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseInputSpec(%q) error %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseInputSpec(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
}

// TestParseInputSpecs: every bad spec is reported at once, each once with
// its -i, and never with the spec a second time.
func TestParseInputSpecs(t *testing.T) {
	_, err := ParseInputSpecs([]string{"nflog:x", "-", "text:bogus:/x"})
	want := "-i nflog:x: bad NFLOG group \"x\" (want 0-65535)\n" +
		"-i text:bogus:/x: unknown format \"bogus\" (want one of " + strings.Join(TextFormats(), ", ") + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("ParseInputSpecs error\n%v\nwant\n%s", err, want)
	}
	ins, err := ParseInputSpecs([]string{"-", "nflog:5"})
	if err != nil || len(ins) != 2 {
		t.Fatalf("ParseInputSpecs = %v, %v", ins, err)
	}
}

func TestEmptyDoorArray(t *testing.T) {
	_, err := Parse("t.toml", []byte("door = []\n"))
	checkProblems(t, problemList(t, err), []string{"t.toml: no door"})
}
