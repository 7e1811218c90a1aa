package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"portknock/actions"
	"portknock/nftset"
	"portknock/sequence"
)

// The keys each native table accepts. Anything else is an error: strictness
// is the point of the native format.

func tomlTopKeys() []string { return []string{"daemon", "input", "door"} }

func tomlDaemonKeys() []string {
	return []string{"state_dir", "close_on_exit", "max_sources", "max_commands", "command_time_limit", "logfile", "usesyslog", "pidfile", "metrics"}
}

func tomlInputKeys() []string {
	return append([]string{"type", "path", "format", "groups", "prefix", "programs", "batch_above", "batch_below", "listen", "network", "allow"}, tomlSyslogKeys()...)
}

func tomlDoorKeys() []string {
	return []string{
		"name", "sequence", "one_time_sequences", "seq_timeout", "tcpflags", "target",
		"start_command", "command", "start_command_6", "command_6",
		"stop_command", "stop_command_6", "cmd_timeout", "reknock", "nft_set", "nft_set_6", "sealed",
	}
}

// tomlReader turns the decoded document into a Config, reporting each
// problem at the line of the key it concerns.
type tomlReader struct {
	c     *Config
	pr    *problems
	lines keyLines
}

func parseTOML(c *Config, data []byte, pr *problems) []*doorDraft {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		pr.fatal = true
		var pe toml.ParseError
		if errors.As(err, &pe) {
			pr.errorf(pe.Position.Line, "", "TOML syntax: %s", pe.Message)
		} else {
			pr.errorf(0, "", "%v", err)
		}
		return nil
	}
	r := &tomlReader{c: c, pr: pr, lines: scanKeyLines(string(data))}
	var drafts []*doorDraft
	for _, key := range r.keysInOrder(doc) {
		v := doc[key]
		line := r.lines.lookup(key)
		switch key {
		case "daemon":
			tbl, ok := v.(map[string]any)
			if !ok {
				pr.errorf(line, key, "want a table ([daemon]), got %s", typeName(v))
				continue
			}
			r.daemon(tbl)
		case "input":
			tbls, ok := tables(v)
			if !ok {
				pr.errorf(line, key, "want an array of tables ([[input]]), got %s", typeName(v))
				continue
			}
			for i, tbl := range tbls {
				r.input(tbl, key, elem(i))
			}
		case "door":
			pr.doorSeen = true
			tbls, ok := tables(v)
			if !ok {
				pr.errorf(line, key, "want an array of tables ([[door]]), got %s", typeName(v))
				continue
			}
			for i, tbl := range tbls {
				drafts = append(drafts, r.door(tbl, key, elem(i)))
			}
		default:
			r.unknown(line, key, tomlTopKeys(), "")
		}
	}
	return drafts
}

// keysInOrder returns the keys of tbl (found at path) in file order, so
// that the first of two conflicting keys is the one kept.
func (r *tomlReader) keysInOrder(tbl map[string]any, path ...string) []string {
	keys := make([]string, 0, len(tbl))
	for k := range tbl {
		keys = append(keys, k)
	}
	line := func(k string) int { return r.lines.lookup(append(slices.Clip(path), k)...) }
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(line(a), line(b)), strings.Compare(a, b)) })
	return keys
}

func (r *tomlReader) unknown(line int, key string, known []string, where string) {
	r.pr.errorf(line, key, "unknown key%s%s", where, suggest(key, known))
}

func (r *tomlReader) daemon(tbl map[string]any) {
	d := &r.c.Daemon
	for _, key := range r.keysInOrder(tbl, "daemon") {
		v := tbl[key]
		line := r.lines.lookup("daemon", key)
		bad := func(format string, args ...any) { r.pr.errorf(line, key, format, args...) }
		switch key {
		case "state_dir":
			if s, ok := r.str(v, line, key); ok {
				if s == "" {
					bad("must not be empty")
				}
				d.StateDir = s
			}
		case "max_sources":
			if n, ok := r.count(v, line, key, MaxMaxSources); ok {
				d.MaxSources = n
			}
		case "command_time_limit":
			if t, ok := r.duration(v, line, key); ok {
				if t > MaxCommandTimeLimit {
					bad("%v is longer than the %v a command may run", t, MaxCommandTimeLimit)
				} else {
					d.CommandTimeLimit = t
				}
			}
		case "max_commands":
			if n, ok := r.count(v, line, key, MaxMaxCommands); ok {
				d.MaxCommands = n
			}
		case "logfile":
			d.LogFile, _ = r.str(v, line, key)
		case "pidfile":
			d.PIDFile, _ = r.str(v, line, key)
		case "metrics":
			if s, ok := r.str(v, line, key); ok {
				if warn, err := CheckMetricsAddr(s); err != nil {
					bad("%v", err)
				} else {
					d.Metrics = s
					if warn != "" {
						r.pr.warnf(line, key, "%s", warn)
					}
				}
			}
		case "usesyslog", "close_on_exit":
			b, ok := v.(bool)
			if !ok {
				bad("want true or false, got %s", typeName(v))
			} else if key == "usesyslog" {
				d.UseSyslog = b
			} else {
				d.CloseOnExit = b
			}
		default:
			r.unknown(line, key, tomlDaemonKeys(), " in [daemon]")
		}
	}
}

func (r *tomlReader) input(tbl map[string]any, path ...string) {
	in := Input{Line: r.lines.lookup(path...)}
	keyLine := func(key string) int { return r.lines.lookup(append(slices.Clip(path), key)...) }
	if v, ok := tbl["type"]; ok {
		if s, ok := r.str(v, keyLine("type"), "type"); ok {
			if s == InputText || s == InputNFLOG || s == InputSyslog {
				in.Type = s
			} else {
				r.pr.errorf(keyLine("type"), "type", "unknown input type %q (want %q, %q or %q)", s, InputText, InputNFLOG, InputSyslog)
			}
		}
	} else {
		r.pr.errorf(in.Line, "type", "missing: every input needs a type (%q, %q or %q)", InputText, InputNFLOG, InputSyslog)
	}
	// onlyFor reports a key that does not apply to this input's type; when
	// the type itself is bad, that has been reported and this would be noise.
	onlyFor := func(key string, types ...string) bool {
		if in.Type != "" && !slices.Contains(types, in.Type) {
			r.pr.errorf(keyLine(key), key, "only %s inputs take this key", strings.Join(types, " and "))
			return false
		}
		return true
	}
	for _, key := range r.keysInOrder(tbl, path...) {
		v, line := tbl[key], keyLine(key)
		switch key {
		case "type":
		case "path":
			if s, ok := r.str(v, line, key); ok && onlyFor(key, InputText) {
				if s == "" {
					r.pr.errorf(line, key, "must not be empty (\"-\" reads stdin)")
				}
				in.Path = s
			}
		case "format":
			if s, ok := r.str(v, line, key); ok && onlyFor(key, InputText, InputSyslog) {
				if !slices.Contains(TextFormats(), s) {
					r.pr.errorf(line, key, "unknown text format %q (want %s)", s, strings.Join(TextFormats(), ", "))
				}
				in.Format = s
			}
		case "groups":
			if onlyFor(key, InputNFLOG) {
				in.Groups = r.groups(v, line, key, path)
			}
		case "batch_above", "batch_below":
			if n, ok := r.count(v, line, key, MaxBatchRate); ok && onlyFor(key, InputNFLOG) {
				if key == "batch_above" {
					in.BatchAbove = n
				} else {
					in.BatchBelow = n
				}
			}
		case "listen":
			if s, ok := r.str(v, line, key); ok && onlyFor(key, InputSyslog) {
				if _, _, err := net.SplitHostPort(s); err != nil {
					r.pr.errorf(line, key, "want host:port such as \"127.0.0.1:514\": %v", err)
				}
				in.Listen = s
			}
		case "network":
			if s, ok := r.str(v, line, key); ok && onlyFor(key, InputSyslog) {
				if !slices.Contains(syslogNetworks(), s) {
					r.pr.errorf(line, key, "want %s, got %q", joinQuoted(syslogNetworks()), s)
				}
				in.Network = s
			}
		case "allow":
			if onlyFor(key, InputSyslog) {
				in.Allow = r.prefixes(v, line, key)
			}
		case "prefix":
			if s, ok := r.str(v, line, key); ok {
				if strings.ContainsAny(s, "\x00\n\r") {
					r.pr.errorf(line, key, "contains a control character")
				}
				in.Prefix = s
			}
		case "programs":
			if onlyFor(key, InputText, InputSyslog) {
				in.Programs = r.programs(v, line, key)
			}
		default:
			if !r.syslogKey(&in, key, v, line, onlyFor) {
				r.unknown(line, key, tomlInputKeys(), " in [[input]]")
			}
		}
	}
	if in.Format == "journal" && len(in.Programs) > 0 {
		r.pr.errorf(keyLine("programs"), "programs", "the journal format trusts only entries whose _TRANSPORT is \"kernel\"; programs does not apply")
	}
	switch in.Type {
	case InputText:
		if _, ok := tbl["path"]; !ok {
			r.pr.errorf(in.Line, "path", "missing: a text input needs a path (\"-\" for stdin)")
		}
		if in.Format == "" {
			in.Format = DefaultTextFormat
		}
	case InputNFLOG:
		if _, ok := tbl["groups"]; !ok {
			r.pr.errorf(in.Line, "groups", "missing: an nflog input needs groups, such as [5]")
		}
		if in.BatchAbove > 0 && in.BatchBelow >= in.BatchAbove {
			r.pr.errorf(keyLine("batch_below"), "batch_below", "%d must be below batch_above (%d)", in.BatchBelow, in.BatchAbove)
		}
	case InputSyslog:
		if in.Format == "" {
			in.Format = DefaultTextFormat
		}
		r.finishSyslog(&in, func(key string) int {
			if _, ok := tbl[key]; !ok {
				return 0
			}
			return keyLine(key)
		})
	}
	r.c.Inputs = append(r.c.Inputs, in)
}

// programs reads a list of syslog program names.
func (r *tomlReader) programs(v any, line int, key string) []string {
	list, ok := v.([]any)
	if !ok {
		r.pr.errorf(line, key, "want an array of program names such as [\"kernel\"], got %s", typeName(v))
		return nil
	}
	var out []string
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			r.pr.errorf(line, key, "want strings, got %s", typeName(e))
			continue
		}
		if err := CheckProgram(s); err != nil {
			r.pr.errorf(line, key, "%v", err)
			continue
		}
		if slices.Contains(out, s) {
			r.pr.errorf(line, key, "%q listed twice", s)
			continue
		}
		out = append(out, s)
	}
	if len(list) == 0 {
		r.pr.errorf(line, key, "empty: leave the key out for each format's own programs")
	}
	return out
}

// prefixes reads a list of addresses or CIDR prefixes.
func (r *tomlReader) prefixes(v any, line int, key string) []netip.Prefix {
	list, ok := v.([]any)
	if !ok {
		r.pr.errorf(line, key, "want an array of addresses or prefixes such as [\"192.0.2.1\", \"2001:db8::/32\"], got %s", typeName(v))
		return nil
	}
	var out []netip.Prefix
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			r.pr.errorf(line, key, "want strings, got %s", typeName(e))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				r.pr.errorf(line, key, "%q is neither an address nor a prefix", s)
				continue
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

func (r *tomlReader) groups(v any, line int, key string, path []string) []uint16 {
	list, ok := v.([]any)
	if !ok {
		r.pr.errorf(line, key, "want an array of NFLOG group numbers such as [5], got %s", typeName(v))
		return nil
	}
	if len(list) == 0 {
		r.pr.errorf(line, key, "must list at least one NFLOG group")
		return nil
	}
	groups := make([]uint16, 0, len(list))
	for i, e := range list {
		eline := r.lines.lookup(append(slices.Clip(path), key, elem(i))...)
		n, ok := e.(int64)
		if !ok {
			r.pr.errorf(eline, key, "element %d: want an integer, got %s", i+1, typeName(e))
			continue
		}
		if n < 0 || n > math.MaxUint16 {
			r.pr.errorf(eline, key, "group %d out of range 0-65535", n)
			continue
		}
		if slices.Contains(groups, uint16(n)) {
			r.pr.errorf(eline, key, "group %d listed twice", n)
			continue
		}
		groups = append(groups, uint16(n))
	}
	return groups
}

func (r *tomlReader) door(tbl map[string]any, path ...string) *doorDraft {
	d := newDoorDraft(r.lines.lookup(path...))
	for _, key := range r.keysInOrder(tbl, path...) {
		v := tbl[key]
		line := r.lines.lookup(append(slices.Clip(path), key)...)
		if !slices.Contains(tomlDoorKeys(), key) {
			r.unknown(line, key, tomlDoorKeys(), " in [[door]]")
			continue
		}
		if !d.claim(r.pr, canonicalDoorKey(key), key, line) {
			continue
		}
		bad := func(format string, args ...any) { r.pr.errorf(line, key, format, args...) }
		switch key {
		case "name":
			if s, ok := r.str(v, line, key); ok {
				if s == "" {
					bad("must not be empty")
				}
				d.Name = s
			}
		case "sequence":
			d.Sequence = r.knocks(v, line, key, path)
		case "sealed":
			d.Sealed = r.sealed(d, v, line, key, path)
		case "one_time_sequences":
			if s, ok := r.str(v, line, key); ok {
				if s == "" {
					bad("must not be empty")
				}
				d.OneTimeSequences = s
			}
		case "seq_timeout":
			if t, ok := r.duration(v, line, key); ok {
				d.SeqTimeout = t
			}
		case "cmd_timeout":
			if t, ok := r.duration(v, line, key); ok {
				d.CmdTimeout = t
			}
		case "tcpflags":
			if s, ok := r.str(v, line, key); ok {
				f, err := sequence.ParseFlagFilter(s)
				if err != nil {
					bad("%v", err)
				}
				d.TCPFlags = f
			}
		case "target":
			if s, ok := r.str(v, line, key); ok {
				a, err := parseTarget(s)
				if err != nil {
					bad("%v", err)
				}
				d.Target = a
			}
		case "start_command", "command":
			d.StartCommand = r.command(v, line, key, path)
		case "start_command_6", "command_6":
			d.StartCommand6 = r.command(v, line, key, path)
			d.start6Set = true
		case "stop_command":
			d.StopCommand = r.command(v, line, key, path)
		case "stop_command_6":
			d.StopCommand6 = r.command(v, line, key, path)
			d.stop6Set = true
		case "nft_set", "nft_set_6":
			if s, ok := r.str(v, line, key); ok {
				ref, err := nftset.ParseRef(s)
				if err != nil {
					bad("%v", err)
				} else if key == "nft_set" {
					d.NFTSet = ref
				} else {
					d.NFTSet6 = ref
				}
			}
		case "reknock":
			if s, ok := r.str(v, line, key); ok {
				if !slices.Contains(actions.Reknocks(), actions.Reknock(s)) {
					bad("%q: want one of %s", s, joinQuoted(actions.Reknocks()))
				} else {
					d.Reknock = actions.Reknock(s)
				}
			}
		}
	}
	return d
}

// knocks reads a sequence: an array of "7000/tcp", "7000:udp" or "7000".
func (r *tomlReader) knocks(v any, line int, key string, path []string) []sequence.Step {
	list, ok := v.([]any)
	if !ok {
		hint := ""
		if _, isStr := v.(string); isStr {
			hint = ` (write ["7000/tcp", "8000/udp"], not knockd's "7000,8000:udp")`
		}
		r.pr.errorf(line, key, "want an array of knocks such as [\"7000/tcp\", \"8000/udp\"], got %s%s", typeName(v), hint)
		return nil
	}
	if len(list) == 0 {
		r.pr.errorf(line, key, "empty sequence")
		return nil
	}
	if len(list) > sequence.MaxSteps {
		r.pr.errorf(line, key, "%d knocks, at most %d allowed", len(list), sequence.MaxSteps)
		return nil
	}
	steps := make([]sequence.Step, 0, len(list))
	for i, e := range list {
		eline := r.lines.lookup(append(slices.Clip(path), key, elem(i))...)
		s, ok := e.(string)
		if !ok {
			r.pr.errorf(eline, key, "knock %d: want a string such as \"7000/tcp\", got %s", i+1, typeName(e))
			continue
		}
		st, err := sequence.ParseStep(s)
		if err != nil {
			r.pr.errorf(eline, key, "knock %d: %v", i+1, err)
			continue
		}
		steps = append(steps, st)
	}
	return steps
}

// command reads a string (run by the shell) or an array of strings (run
// directly).
func (r *tomlReader) command(v any, line int, key string, path []string) Command {
	switch v := v.(type) {
	case string:
		if err := checkCommandText(v); err != nil {
			r.pr.errorf(line, key, "%v", err)
		}
		return Command{Shell: v}
	case []any:
		if len(v) == 0 {
			r.pr.errorf(line, key, "empty argument list; use \"\" to run nothing")
			return Command{}
		}
		argv := make([]string, 0, len(v))
		for i, e := range v {
			eline := r.lines.lookup(append(slices.Clip(path), key, elem(i))...)
			s, ok := e.(string)
			if !ok {
				r.pr.errorf(eline, key, "argument %d: want a string, got %s", i+1, typeName(e))
				continue
			}
			if err := checkCommandText(s); err != nil {
				r.pr.errorf(eline, key, "argument %d: %v", i+1, err)
			}
			argv = append(argv, s)
		}
		if len(argv) > 0 && argv[0] == "" {
			r.pr.errorf(line, key, "the program name (first element) is empty")
		}
		return Command{Argv: argv}
	}
	r.pr.errorf(line, key, "want a string (run by /bin/sh -c) or an array of strings (run directly), got %s", typeName(v))
	return Command{}
}

// duration reads a Go duration string ("5s", "1m30s") or a whole number of
// seconds, as knockd counts them.
func (r *tomlReader) duration(v any, line int, key string) (time.Duration, bool) {
	switch v := v.(type) {
	case int64:
		t, err := secondsDuration(v)
		if err != nil {
			r.pr.errorf(line, key, "%v", err)
			return 0, false
		}
		return t, true
	case string:
		t, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			r.pr.errorf(line, key, "%q is not a duration (want e.g. \"5s\", \"1m30s\" or a number of seconds)", v)
			return 0, false
		}
		if t <= 0 {
			r.pr.errorf(line, key, "must be positive")
			return 0, false
		}
		return t, true
	}
	r.pr.errorf(line, key, "want a duration such as \"5s\" or a number of seconds, got %s", typeName(v))
	return 0, false
}

func (r *tomlReader) str(v any, line int, key string) (string, bool) {
	s, ok := v.(string)
	if !ok {
		r.pr.errorf(line, key, "want a string, got %s", typeName(v))
	}
	return s, ok
}

// count reads a positive integer setting of at most limit.
func (r *tomlReader) count(v any, line int, key string, limit int) (int, bool) {
	n, ok := v.(int64)
	if !ok {
		r.pr.errorf(line, key, "want an integer, got %s", typeName(v))
		return 0, false
	}
	if n < 1 || n > int64(limit) {
		r.pr.errorf(line, key, "%d out of range 1-%d", n, limit)
		return 0, false
	}
	return int(n), true
}

// tables returns v as a list of tables, whether it was written as [[name]]
// or as an inline array of inline tables.
func tables(v any) ([]map[string]any, bool) {
	switch v := v.(type) {
	case []map[string]any:
		return v, true
	case []any:
		out := make([]map[string]any, 0, len(v))
		for _, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			out = append(out, m)
		}
		return out, true
	}
	return nil, false
}

// typeName names a decoded value's TOML type for messages.
func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case time.Time:
		return "a date/time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

func joinQuoted[T ~string](list []T) string {
	q := make([]string, len(list))
	for i, v := range list {
		q[i] = strconv.Quote(string(v))
	}
	return strings.Join(q, ", ")
}
