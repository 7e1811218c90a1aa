// Package config reads portknockd's configuration into one typed, validated
// Config.
//
// Two file formats are understood. The native one is TOML with [daemon],
// [[input]] and [[door]] tables, checked strictly: an unknown or misspelled
// key is an error, so that a typo can never silently leave a door without
// its timeout or its tcpflags filter. The other is knockd.conf, read as-is,
// so that pointing portknockd at an existing /etc/knockd.conf is a drop-in
// migration. The format is recognised from the content (see DetectFormat),
// not from a flag, because a migrating user should not have to say which
// file they have.
//
// Every problem is reported as "file:line: key: message" and all of them are
// reported at once, sorted by line, so that a broken file can be fixed in
// one pass.
//
// Relative file names inside a configuration (one_time_sequences, state_dir,
// a text input's path, a syslog input's TLS files, logfile, pidfile) are
// taken relative to the directory
// of the configuration file, because a daemon's working directory is rarely
// the one its configuration was written in.
//
// The file names commands the daemon runs, so Load believes it only when
// root or the daemon's user owns it and no one else can write to it or to a
// directory on the way (see CheckFile).
package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"portknock/actions"
	"portknock/command"
	"portknock/internal/filetrust"
	"portknock/nftset"
	"portknock/sequence"
)

// The values of Config.Format.
const (
	FormatTOML   = "toml"
	FormatKnockd = "knockd"
)

// Defaults for settings a file leaves out. The timeouts are knockd's, so that
// a knockd.conf behaves as it did under knockd.
const (
	DefaultStateDir    = "/var/lib/portknockd"
	DefaultMaxSources  = 100000
	DefaultMaxCommands = 8
	DefaultSeqTimeout  = 25 * time.Second
	DefaultCmdTimeout  = 10 * time.Second
	// DefaultCommandTimeLimit is how long a command may run by default.
	DefaultCommandTimeLimit = 30 * time.Second
)

// Upper bounds on settings, so that a typo ("2500000h", a stray zero)
// is an error rather than a door open for years, a timer that overflows,
// or a table that eats the machine's memory.
const (
	MaxSeqTimeout = 24 * time.Hour
	MaxCmdTimeout = 7 * 24 * time.Hour
	// MaxCommandTimeLimit bounds command_time_limit: a command that needs
	// longer belongs in a service, not a door.
	MaxCommandTimeLimit = time.Hour
	MaxMaxSources       = 10_000_000
	MaxMaxCommands      = 1024
	// MaxBatchRate bounds batch_above and batch_below, in log messages per
	// second: far beyond what one NFLOG group can carry.
	MaxBatchRate = 100_000_000
)

// The values of Input.Type.
const (
	InputText   = "text"
	InputNFLOG  = "nflog"
	InputSyslog = "syslog"
)

// DefaultTextFormat is the text input format used when none is given: the
// format is recognised line by line.
const DefaultTextFormat = "auto"

// TextFormats returns the names a text input's format may have. All of them
// are accepted now, even those whose parser comes later, so that a
// configuration written today keeps working unchanged.
func TextFormats() []string {
	return []string{DefaultTextFormat, "simple", "netfilter", "ulogd", "journal", "pflog", "ipfw", "filterlog"}
}

// maxFileSize bounds what Load reads: a configuration is a few kilobytes, and
// a mistyped -c /dev/zero must fail instead of eating memory.
const maxFileSize = 16 << 20

// Config is a complete, validated configuration.
type Config struct {
	// Path is the file the configuration was read from, for messages.
	Path string
	// Format is FormatTOML or FormatKnockd.
	Format string
	Daemon Daemon
	// Inputs may be empty: knockd.conf has none, and the command line can
	// supply them for either format.
	Inputs []Input
	// Doors holds at least one door, in file order, with unique names.
	Doors []Door
	// Warnings are things that are accepted but probably not what the user
	// meant, each as "file:line: key: message".
	Warnings []string
}

// Daemon holds the daemon-wide settings.
type Daemon struct {
	// StateDir holds what must survive a restart: the journal of pending
	// closes.
	StateDir string
	// CloseOnExit runs every pending close when the daemon shuts down
	// cleanly (the default). Off, doors stay open across a restart until
	// their due time, which the next start honours from the journal.
	CloseOnExit bool
	// MaxSources bounds the number of tracked sources, so that a flood of
	// spoofed addresses cannot grow memory without bound. At least 1.
	MaxSources int
	// MaxCommands bounds how many commands run at once. At least 1.
	MaxCommands int
	// CommandTimeLimit is how long one command may run before its whole
	// process group is killed.
	CommandTimeLimit time.Duration
	// LogFile, UseSyslog and PIDFile are knockd's [options] of the same
	// names, kept so that a knockd.conf loses nothing in translation.
	LogFile   string
	UseSyslog bool
	PIDFile   string
	// Metrics is the host:port where /metrics is served for Prometheus;
	// empty (the default) serves nothing. See CheckMetricsAddr.
	Metrics string
}

// Input is one source of logged packets.
type Input struct {
	// Line is where the input is defined, or 0 for one from the command line.
	Line int
	// Type is InputText, InputNFLOG or InputSyslog.
	Type string
	// Path is where a text input reads: "-" for stdin, otherwise a FIFO or a
	// file. Unused for nflog.
	Path string
	// Format is a text or syslog input's line format, one of TextFormats.
	// Unused for nflog.
	Format string
	// Groups are the NFLOG groups an nflog input binds, at least one.
	Groups []uint16
	// Prefix, when set, keeps only packets logged with this prefix, because
	// any local user can write a fake log line.
	Prefix string
	// Programs, when set, are the syslog program names (tags) a text or
	// syslog input's records may come under, in place of each format's own
	// ("kernel", "filterlog", ...): for relays that rename them. A simple
	// line inside a syslog header counts only under a program named here.
	// See CheckProgram for the names allowed.
	Programs []string
	// Listen is where a syslog input listens (DefaultSyslogListen).
	Listen string
	// Network is a syslog input's transport: SyslogUDP (the default),
	// SyslogTCP or SyslogTLS.
	Network string
	// Allow lists the senders a syslog input accepts; empty means loopback
	// only, since anyone who can send to it can forge knocks.
	Allow []netip.Prefix
	// AcceptSpoofable lets a UDP syslog input listen beyond loopback,
	// although anyone can forge its senders' addresses (see Spoofable).
	AcceptSpoofable bool
	// TLSCert and TLSKey are a TLS syslog input's certificate and key
	// files; TLSClientCA, when set, the CA file its senders' certificates
	// must be signed by.
	TLSCert, TLSKey, TLSClientCA string
	// BatchAbove and BatchBelow are, for an nflog input, the log message
	// rates per second and group above which the kernel is asked to send
	// them in batches and below which it goes back to one at a time; zero
	// leaves the input's defaults (20000 and 2000).
	BatchAbove, BatchBelow int
	// MessageTimeLimit and IdleTimeLimit bound, for a TCP or TLS syslog
	// input, how long a message may take from its first byte and how long
	// a connection may be silent between messages; zero leaves the
	// listener's defaults.
	MessageTimeLimit, IdleTimeLimit time.Duration
}

// DefaultSyslogListen is where a syslog input listens unless told: the
// loopback only, so that exposing it to the network is a deliberate act.
const DefaultSyslogListen = "127.0.0.1:514"

// String names the input in logs and events: "text:-", "nflog:5,6".
func (in *Input) String() string {
	switch in.Type {
	case InputNFLOG:
		parts := make([]string, len(in.Groups))
		for i, g := range in.Groups {
			parts[i] = strconv.Itoa(int(g))
		}
		return in.Type + ":" + strings.Join(parts, ",")
	case InputSyslog:
		return in.Type + ":" + in.Network + ":" + in.Listen
	default:
		return in.Type + ":" + in.Path
	}
}

// Validate checks an input on its own. Parse already applies the same rules
// with file positions; this is for inputs built from the command line.
func (in *Input) Validate() error {
	switch in.Type {
	case InputText:
		if in.Path == "" {
			return errors.New("text input needs a path (\"-\" for stdin)")
		}
		if len(in.Groups) > 0 {
			return errors.New("text input cannot have NFLOG groups")
		}
		if in.Format == "" {
			return fmt.Errorf("text input has no format (%q recognises each line)", DefaultTextFormat)
		}
		if !slices.Contains(TextFormats(), in.Format) {
			return fmt.Errorf("unknown text format %q (want %s)", in.Format, strings.Join(TextFormats(), ", "))
		}
	case InputNFLOG:
		if len(in.Groups) == 0 {
			return errors.New("nflog input needs at least one group")
		}
		if in.Path != "" || in.Format != "" {
			return errors.New("nflog input takes neither path nor format")
		}
		if dup, ok := firstDuplicate(in.Groups); ok {
			return fmt.Errorf("nflog group %d listed twice", dup)
		}
	case InputSyslog:
		if err := in.validateSyslog(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown input type %q (want %q, %q or %q)", in.Type, InputText, InputNFLOG, InputSyslog)
	}
	if strings.ContainsAny(in.Prefix, "\x00\n\r") {
		return errors.New("prefix contains a control character")
	}
	if len(in.Programs) > 0 && in.Type == InputNFLOG {
		return errors.New("nflog input takes no programs")
	}
	for _, p := range in.Programs {
		if err := CheckProgram(p); err != nil {
			return err
		}
	}
	return nil
}

// CheckProgram checks a name for an input's programs: a syslog tag's name,
// which is not empty and holds no blank, control character, ':', '[' or
// ']' (the tag "sshd[42]:" has the name "sshd").
func CheckProgram(name string) error {
	if name == "" {
		return errors.New("program name is empty")
	}
	for _, c := range name {
		if c <= ' ' || c == 0x7f || c == ':' || c == '[' || c == ']' {
			return fmt.Errorf("program %q: a syslog tag's name has no blank, control character, ':', '[' or ']'", name)
		}
	}
	return nil
}

// Command is something a door runs; see package command.
type Command = command.Command

// Door is one knock sequence and what it does.
type Door struct {
	// Name is unique among the doors; actions and logs refer to it.
	Name string
	// Line is where the door starts, for messages about it.
	Line int
	// Sequence is the fixed knock sequence. It is empty exactly when
	// OneTimeSequences is set.
	Sequence []sequence.Step
	// OneTimeSequences is the path of a knockd one-time sequences file,
	// which supplies the sequence instead.
	OneTimeSequences string
	// SeqTimeout bounds a whole attempt, from its first knock.
	SeqTimeout time.Duration
	// TCPFlags filters TCP knocks; packets that fail it are ignored.
	TCPFlags sequence.FlagFilter
	// Target, when valid, restricts the door to packets sent to it.
	Target netip.Addr
	// StartCommand runs for IPv4 sources, StartCommand6 for IPv6 ones. As
	// in knockd, a file that does not set the _6 variant gets a copy of the
	// IPv4 command there, and an explicitly empty _6 value leaves it zero:
	// do nothing for IPv6. So callers pick by address family and never fall
	// back themselves.
	StartCommand, StartCommand6 Command
	// StopCommand and StopCommand6 run CmdTimeout after the start, with the
	// same IPv4/IPv6 split and fallback as the start commands.
	StopCommand, StopCommand6 Command
	// CmdTimeout is the delay between start and stop commands.
	CmdTimeout time.Duration
	// Reknock says what a knock does for an address the door is already
	// open for.
	Reknock actions.Reknock
	// NFTSet and NFTSet6 are nftables sets that IPv4 and IPv6 knockers are
	// added to, with CmdTimeout as the element's timeout, so that the
	// kernel closes the door by itself. The zero Ref means none. There is
	// no fallback between them: a set holds one address family.
	NFTSet, NFTSet6 nftset.Ref
	// Sealed, when set, makes the door a sealed door, which has no
	// Sequence and no OneTimeSequences.
	Sealed *Sealed
}

// HasSets reports whether the door adds knockers to an nftables set.
func (d *Door) HasSets() bool { return d.NFTSet != (nftset.Ref{}) || d.NFTSet6 != (nftset.Ref{}) }

// DoorSet is one nftables set a door names, with the key that names it.
type DoorSet struct {
	Key  string // "nft_set" or "nft_set_6"
	Ref  nftset.Ref
	IPv6 bool // holds IPv6 sources
}

// Sets lists the nftables sets the door names, IPv4 first.
func (d *Door) Sets() []DoorSet {
	var out []DoorSet
	if d.NFTSet != (nftset.Ref{}) {
		out = append(out, DoorSet{"nft_set", d.NFTSet, false})
	}
	if d.NFTSet6 != (nftset.Ref{}) {
		out = append(out, DoorSet{"nft_set_6", d.NFTSet6, true})
	}
	return out
}

// Split returns the door as the two halves of the daemon see it: the
// matching rules for sequence.Matcher, and what actions.Runner does on a
// match. It is the one place a configured door is translated, so that a
// new key cannot reach one half and be forgotten by the other. The
// matcher's OneTime is left nil: the caller, which owns files, attaches
// the one-time store.
func (d *Door) Split() (sequence.Door, actions.Door) {
	md := sequence.Door{
		Name:     d.Name,
		Sequence: slices.Clone(d.Sequence),
		Timeout:  d.SeqTimeout,
		Flags:    d.TCPFlags,
		Target:   d.Target,
	}
	if s := d.Sealed; s != nil {
		md.Sealed = &sequence.SealedDoor{Base: s.Base, Proto: s.Proto, ID: s.ID, Key: s.Key, MaxSkew: s.MaxSkew, BindSource: s.BindSource}
	}
	ad := actions.Door{
		Name:       d.Name,
		Start:      d.StartCommand,
		Start6:     d.StartCommand6,
		Stop:       d.StopCommand,
		Stop6:      d.StopCommand6,
		CmdTimeout: d.CmdTimeout,
		Reknock:    d.Reknock,
		Set:        d.NFTSet,
		Set6:       d.NFTSet6,
	}
	if !d.HasStop() && !d.HasSets() {
		// Nothing closes: a cmd_timeout would only make the runner
		// track an open that never ends.
		ad.CmdTimeout = 0
	}
	return md, ad
}

// HasStop reports whether the door has a stop command for either family, and
// so whether CmdTimeout means anything.
func (d *Door) HasStop() bool { return !d.StopCommand.IsZero() || !d.StopCommand6.IsZero() }

// KnockSpace returns the sorted, unique steps of all fixed sequences: with
// SealedRanges, the only (port, protocol) pairs worth any matcher state.
// One-time sequences change at run time, so their steps are the caller's
// to add.
func (c *Config) KnockSpace() []sequence.Step {
	var steps []sequence.Step
	for i := range c.Doors {
		steps = append(steps, c.Doors[i].Sequence...)
	}
	slices.SortFunc(steps, compareSteps)
	return slices.Compact(steps)
}

func compareSteps(a, b sequence.Step) int {
	return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto))
}

// Load judges the file at path as the daemon must (see CheckFile), then
// reads it and parses it with Parse, reads the key of every sealed door
// (see ReadFile) and judges the key files (see CheckKeys). The daemon loads
// its configuration with Load only: the file names commands it runs.
func Load(path string) (*Config, error) {
	uid := uint32(os.Geteuid())
	if err := CheckFile(path, uid); err != nil {
		return nil, err
	}
	c, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := CheckKeys(c, uid); err != nil {
		return nil, err
	}
	return c, nil
}

// CheckFile judges whether a daemon running as uid may believe the
// configuration at path: it must be owned by root or uid and not writable
// by group or others, nor may any directory on the way to it be (see
// package filetrust). A missing file is left to the reading to report.
func CheckFile(path string, uid uint32) error {
	return filetrust.CheckExisting(path, filetrust.Config, uid)
}

// ReadFile reads the file at path and parses it with Parse, then reads the
// key of every sealed door (see ReadKeyFile), reporting a bad key file at
// the line of its key_file. It does not judge who may have written the
// files: portknockd check judges with CheckFile and CheckKeys and reads
// them anyway, to report every problem at once.
func ReadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d MiB, not a configuration file", path, maxFileSize>>20)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if err := readKeys(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse parses a configuration in either format, chosen by DetectFormat. It
// touches no files: path is used for messages and to anchor relative file
// names. On any error the returned error joins every problem found, each an
// *Error, sorted by line, those about the file as a whole last.
func Parse(path string, data []byte) (*Config, error) {
	return parseAs(path, data, DetectFormat(path, data))
}

// parseAs parses data in the given format, whatever it looks like; the
// fuzz targets use it to reach each parser with any input.
func parseAs(path string, data []byte, format string) (*Config, error) {
	c := &Config{
		Path:   path,
		Format: format,
		Daemon: Daemon{
			StateDir:         DefaultStateDir,
			CloseOnExit:      true,
			MaxSources:       DefaultMaxSources,
			MaxCommands:      DefaultMaxCommands,
			CommandTimeLimit: DefaultCommandTimeLimit,
		},
	}
	pr := &problems{path: path}
	var drafts []*doorDraft
	if c.Format == FormatKnockd {
		drafts = parseKnockd(c, data, pr)
	} else {
		drafts = parseTOML(c, data, pr)
	}
	if pr.fatal {
		return nil, pr.err()
	}
	c.Doors = finishDoors(drafts, c.Format, pr)
	checkSealed(drafts, pr)
	warnSweeps(c.Doors, pr)
	warnUnfiltered(c.Inputs, pr)
	warnSpoofable(c.Inputs, c.Doors, pr)
	if len(drafts) == 0 && (!pr.doorSeen || len(pr.errs) == 0) {
		if c.Format == FormatKnockd {
			pr.errorf(0, "", "no door: a knockd.conf needs at least one [name] section with a sequence")
		} else {
			pr.errorf(0, "", "no door: the configuration needs at least one [[door]] table")
		}
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	resolvePaths(c)
	c.Warnings = pr.warningStrings()
	return c, nil
}

// resolvePaths anchors relative file names at the configuration's directory.
func resolvePaths(c *Config) {
	if c.Path == "" {
		return
	}
	dir := filepath.Dir(c.Path)
	rel := func(p string) string {
		if p == "" || p == "-" || filepath.IsAbs(p) || strings.Contains(p, "://") {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.Daemon.StateDir = rel(c.Daemon.StateDir)
	c.Daemon.LogFile = rel(c.Daemon.LogFile)
	c.Daemon.PIDFile = rel(c.Daemon.PIDFile)
	for i := range c.Inputs {
		in := &c.Inputs[i]
		switch in.Type {
		case InputText:
			in.Path = rel(in.Path)
		case InputSyslog:
			in.TLSCert, in.TLSKey, in.TLSClientCA = rel(in.TLSCert), rel(in.TLSKey), rel(in.TLSClientCA)
		}
	}
	for i := range c.Doors {
		c.Doors[i].OneTimeSequences = rel(c.Doors[i].OneTimeSequences)
		if s := c.Doors[i].Sealed; s != nil {
			s.KeyFile = rel(s.KeyFile)
		}
	}
}

// Error is one problem in a configuration file.
type Error struct {
	Path string
	// Line is 1-based, or 0 when the problem concerns the file as a whole.
	Line int
	// Key is the offending key, or "" when no single key is to blame.
	Key string
	Msg string
}

// Error formats the problem as "file:line: key: message".
func (e *Error) Error() string { return formatProblem(e.Path, e.Line, e.Key, e.Msg) }

func formatProblem(path string, line int, key, msg string) string {
	var b strings.Builder
	if path == "" {
		path = "config"
	}
	b.WriteString(path)
	if line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(line))
	}
	b.WriteString(": ")
	if key != "" {
		b.WriteString(key)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	return b.String()
}

// maxErrors keeps the report of a badly broken file readable.
const maxErrors = 50

// problems collects errors and warnings while a file is read, so that all of
// them are reported together.
type problems struct {
	path     string
	errs     []*Error
	warnings []*Error
	// fatal is set when the file could not be read at all, so that checks
	// on the (absent) result would only add noise.
	fatal bool
	// doorSeen is set when the file defines doors, even unusable ones, so
	// that "no door" is not added to the errors about them.
	doorSeen bool
}

func (p *problems) errorf(line int, key, format string, args ...any) {
	p.errs = append(p.errs, &Error{Path: p.path, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) warnf(line int, key, format string, args ...any) {
	p.warnings = append(p.warnings, &Error{Path: p.path, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// sortProblems orders problems by line, with those about the whole file
// last, where they read as a conclusion.
func sortProblems(list []*Error) {
	key := func(e *Error) int {
		if e.Line <= 0 {
			return int(^uint(0) >> 1)
		}
		return e.Line
	}
	slices.SortStableFunc(list, func(a, b *Error) int { return cmp.Compare(key(a), key(b)) })
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	sortProblems(p.errs)
	list := p.errs
	var errs []error
	if len(list) > maxErrors {
		list = list[:maxErrors]
	}
	for _, e := range list {
		errs = append(errs, e)
	}
	if len(p.errs) > maxErrors {
		errs = append(errs, &Error{Path: p.path, Msg: fmt.Sprintf("%d more errors not shown", len(p.errs)-maxErrors)})
	}
	return errors.Join(errs...)
}

func (p *problems) warningStrings() []string {
	sortProblems(p.warnings)
	var out []string
	for _, w := range p.warnings {
		out = append(out, w.Error())
	}
	return out
}

// doorDraft is a door while it is being read: the door plus where each of
// its keys was set, for the checks that involve several keys.
type doorDraft struct {
	Door
	// keyLines maps a canonical key name to the line that set it.
	keyLines map[string]int
	// start6Set and stop6Set record an explicit _6 command, even an empty
	// one, which turns knockd's fallback to the IPv4 command off.
	start6Set, stop6Set bool
}

func newDoorDraft(line int) *doorDraft {
	return &doorDraft{
		Door: Door{
			Line:       line,
			SeqTimeout: DefaultSeqTimeout,
			CmdTimeout: DefaultCmdTimeout,
			Reknock:    actions.ReknockExtend,
		},
		keyLines: make(map[string]int),
	}
}

// claim records that key (under its canonical name) is set on line, and
// reports false after an error if it was set before: a key given twice is
// almost always an edit gone wrong, and silently taking one would hide it.
func (d *doorDraft) claim(pr *problems, canon, key string, line int) bool {
	if prev, ok := d.keyLines[canon]; ok {
		what := "already set"
		if canon != key {
			what = fmt.Sprintf("already set as %s", canon)
		}
		pr.errorf(line, key, "%s at line %d", what, prev)
		return false
	}
	d.keyLines[canon] = line
	return true
}

// canonicalDoorKey maps knockd's alternative key names to the canonical
// ones, so that a key given under both names is caught as set twice.
func canonicalDoorKey(key string) string {
	switch key {
	case "command":
		return "start_command"
	case "command_6":
		return "start_command_6"
	case "timeout":
		return "seq_timeout"
	}
	return key
}

// finishDoors applies the checks that involve several keys or several
// doors, fills in knockd's IPv6 command fallback, and returns the doors.
func finishDoors(drafts []*doorDraft, format string, pr *problems) []Door {
	names := make(map[string]int)
	oneTime := make(map[string]int)
	doors := make([]Door, 0, len(drafts))
	for _, d := range drafts {
		nameLine := d.Line
		if l, ok := d.keyLines["name"]; ok {
			nameLine = l
		}
		switch {
		case d.Name == "":
			if _, ok := d.keyLines["name"]; !ok && format == FormatTOML {
				pr.errorf(d.Line, "name", "missing: every door needs a name")
			}
		case strings.ContainsFunc(d.Name, isControl):
			pr.errorf(nameLine, "name", "door name %q contains a control character", d.Name)
		default:
			if prev, ok := names[d.Name]; ok {
				pr.errorf(nameLine, "name", "door %q already defined at line %d", d.Name, prev)
			} else {
				names[d.Name] = nameLine
			}
		}
		seqLine, hasSeq := d.keyLines["sequence"]
		otsLine, hasOTS := d.keyLines["one_time_sequences"]
		sealedLine, hasSealed := d.keyLines["sealed"]
		switch {
		case hasSealed && (hasSeq || hasOTS):
			l, key := seqLine, "sequence"
			if !hasSeq {
				l, key = otsLine, "one_time_sequences"
			}
			pr.errorf(l, key, "door %q is sealed (line %d): a sealed door has no %s", d.Name, sealedLine, key)
		case hasSeq && hasOTS:
			pr.errorf(max(seqLine, otsLine), "", "a door has either sequence or one_time_sequences, not both (lines %d and %d)", seqLine, otsLine)
		case !hasSeq && !hasOTS && !hasSealed && format == FormatKnockd:
			pr.errorf(d.Line, "sequence", "missing: door %q needs a sequence or one_time_sequences", d.Name)
		case !hasSeq && !hasOTS && !hasSealed:
			pr.errorf(d.Line, "sequence", "missing: door %q needs a sequence, one_time_sequences or sealed", d.Name)
		}
		if !d.start6Set {
			d.StartCommand6 = d.StartCommand.Clone()
		}
		if !d.stop6Set {
			d.StopCommand6 = d.StopCommand.Clone()
		}
		if d.StartCommand.IsZero() && d.StartCommand6.IsZero() && !d.HasStop() && !d.HasSets() {
			pr.errorf(d.Line, "start_command", "missing: door %q would do nothing; give it a start_command, stop_command or nft_set", d.Name)
		}
		// A door with a set for one family only, and no commands for the
		// other, opens nothing for the other family's knockers.
		none := nftset.Ref{}
		if l, ok := d.keyLines["nft_set"]; ok && d.NFTSet6 == none && d.StartCommand6.IsZero() && d.StopCommand6.IsZero() {
			pr.warnf(l, "nft_set", "door %q has no nft_set_6 and no IPv6 commands: a knock from an IPv6 address opens nothing", d.Name)
		}
		if l, ok := d.keyLines["nft_set_6"]; ok && d.NFTSet == none && d.StartCommand.IsZero() && d.StopCommand.IsZero() {
			pr.warnf(l, "nft_set_6", "door %q has no nft_set and no IPv4 commands: a knock from an IPv4 address opens nothing", d.Name)
		}
		if l, ok := d.keyLines["cmd_timeout"]; ok && !d.HasStop() && !d.HasSets() {
			pr.warnf(l, "cmd_timeout", "has no effect without a stop_command or nft_set")
		}
		if l, ok := d.keyLines["reknock"]; ok && !d.HasStop() && !d.HasSets() {
			pr.warnf(l, "reknock", "has no effect without a stop_command or nft_set: every knock runs the start command")
		}
		if l, ok := d.keyLines["seq_timeout"]; ok && d.SeqTimeout > MaxSeqTimeout {
			pr.errorf(l, "seq_timeout", "%v is longer than the %v a knock may take", d.SeqTimeout, MaxSeqTimeout)
		}
		if l, ok := d.keyLines["cmd_timeout"]; ok && d.CmdTimeout > MaxCmdTimeout {
			pr.errorf(l, "cmd_timeout", "%v is longer than the %v a door may stay open", d.CmdTimeout, MaxCmdTimeout)
		}
		if d.OneTimeSequences != "" {
			// Two stores on one file would each accept a sequence the
			// other has used.
			if prev, ok := oneTime[d.OneTimeSequences]; ok {
				pr.errorf(otsLine, "one_time_sequences", "%s is already used by the door at line %d; each door needs its own file", d.OneTimeSequences, prev)
			} else {
				oneTime[d.OneTimeSequences] = otsLine
			}
		}
		doors = append(doors, d.Door)
	}
	return doors
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Checks shared by both formats. Each takes the raw value and returns a
// message fit to follow "file:line: key: ".

func parseSequence(s string) ([]sequence.Step, error) {
	steps, err := sequence.ParseSteps(s)
	if err != nil {
		return nil, err
	}
	if len(steps) > sequence.MaxSteps {
		return nil, fmt.Errorf("%d knocks, at most %d allowed", len(steps), sequence.MaxSteps)
	}
	return steps, nil
}

func parseTarget(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone; logged packets carry none, so it could never match", s)
	}
	return a.Unmap(), nil
}

// maxSeconds keeps a number of seconds inside time.Duration.
const maxSeconds = int64(1<<63-1) / int64(time.Second)

func secondsDuration(n int64) (time.Duration, error) {
	if n <= 0 {
		return 0, errors.New("must be positive")
	}
	if n > maxSeconds {
		return 0, fmt.Errorf("%d seconds is too long", n)
	}
	return time.Duration(n) * time.Second, nil
}

func checkCommandText(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("contains a NUL byte")
	}
	return nil
}

func firstDuplicate[T comparable](list []T) (T, bool) {
	seen := make(map[T]bool, len(list))
	for _, v := range list {
		if seen[v] {
			return v, true
		}
		seen[v] = true
	}
	var zero T
	return zero, false
}

// suggest returns a hint naming the known key closest to an unknown one, or
// "" when none is close enough to be a likely typo.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
		if d := editDistance(strings.ToLower(key), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" || len(key) < 3 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance, capped for long inputs so that
// a hostile key cannot make suggestions expensive.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
