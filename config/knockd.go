package config

import (
	"bytes"
	"strconv"
	"strings"

	"portknock/sequence"
)

// knockd.conf, as knockd(1) reads it: "[options]" and "[doorname]" sections;
// "key = value" lines whose value runs, unquoted, to the end of the line
// (commands may contain '=' and '#'); keys in any case; whole-line '#'
// comments; and the bare flag UseSyslog. It has no inputs: those come from
// the command line.

func knockdOptionKeys() []string { return []string{"logfile", "usesyslog", "pidfile", "interface"} }

func knockdDoorKeys() []string {
	return []string{
		"sequence", "one_time_sequences", "seq_timeout", "timeout", "tcpflags", "target",
		"start_command", "command", "start_command_6", "command_6",
		"stop_command", "stop_command_6", "cmd_timeout",
	}
}

func parseKnockd(c *Config, data []byte, pr *problems) []*doorDraft {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var (
		drafts    []*doorDraft
		door      *doorDraft // nil in [options] and before any section
		inOptions bool
		optLines  = make(map[string]int)
	)
	for n := 1; len(data) > 0; n++ {
		var raw []byte
		raw, data, _ = bytes.Cut(data, []byte("\n"))
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.IndexByte(line, 0) >= 0 {
			pr.errorf(n, "", "contains a NUL byte; is this a text file?")
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			name := strings.TrimSpace(line[1 : len(line)-1])
			door, inOptions = nil, false
			switch {
			case name == "":
				pr.errorf(n, "", "empty section name")
			case strings.EqualFold(name, "options"):
				inOptions = true
			default:
				door = newDoorDraft(n)
				door.Name = name
				drafts = append(drafts, door)
			}
			continue
		}
		rawKey, value, hasValue := strings.Cut(line, "=")
		rawKey = strings.TrimSpace(rawKey)
		key := strings.ToLower(rawKey)
		value = strings.TrimSpace(value)
		if !inOptions && door == nil {
			pr.errorf(n, rawKey, "outside any section; start one with [options] or [doorname]")
			continue
		}
		if !hasValue {
			switch {
			case key == "usesyslog" && inOptions:
				if claimOption(pr, optLines, key, n) {
					c.Daemon.UseSyslog = true
				}
			case key == "usesyslog":
				// knockd takes the flag in any section; it was always global.
				if claimOption(pr, optLines, key, n) {
					c.Daemon.UseSyslog = true
				}
				pr.warnf(n, rawKey, "is a global option; it belongs in [options]")
			default:
				pr.errorf(n, rawKey, "has no value; only UseSyslog stands alone (want key = value)")
			}
			continue
		}
		if inOptions {
			knockdOption(c, pr, optLines, n, key, rawKey, value)
		} else {
			knockdDoorKey(door, pr, n, key, rawKey, value)
		}
	}
	return drafts
}

// claimOption is doorDraft.claim for [options], which may be split over
// several sections.
func claimOption(pr *problems, seen map[string]int, key string, line int) bool {
	if prev, ok := seen[key]; ok {
		pr.errorf(line, key, "already set at line %d", prev)
		return false
	}
	seen[key] = line
	return true
}

func knockdOption(c *Config, pr *problems, seen map[string]int, n int, key, rawKey, value string) {
	switch key {
	case "logfile", "pidfile", "interface", "usesyslog":
	default:
		pr.errorf(n, rawKey, "unknown option in [options]%s", suggest(key, knockdOptionKeys()))
		return
	}
	if !claimOption(pr, seen, key, n) {
		return
	}
	switch key {
	case "logfile":
		c.Daemon.LogFile = value
	case "pidfile":
		c.Daemon.PIDFile = value
	case "usesyslog":
		// knockd only knows the bare flag; a value is accepted when it is
		// plainly a boolean, since that can only mean one thing.
		b, err := strconv.ParseBool(value)
		if err != nil {
			pr.errorf(n, rawKey, "want the bare flag UseSyslog, or true or false, got %q", value)
			return
		}
		c.Daemon.UseSyslog = b
	case "interface":
		pr.warnf(n, rawKey, "has no meaning for portknockd, which reads the firewall's log instead of sniffing an interface; ignored (give an input such as -i nflog:GROUP)")
	}
}

func knockdDoorKey(d *doorDraft, pr *problems, n int, key, rawKey, value string) {
	canon := canonicalDoorKey(key)
	known := false
	for _, k := range knockdDoorKeys() {
		known = known || k == key
	}
	if !known {
		pr.errorf(n, rawKey, "unknown key in door [%s]%s", d.Name, suggest(key, knockdDoorKeys()))
		return
	}
	if !d.claim(pr, canon, key, n) {
		return
	}
	bad := func(format string, args ...any) { pr.errorf(n, rawKey, format, args...) }
	switch canon {
	case "sequence":
		steps, err := parseSequence(value)
		if err != nil {
			bad("%v", err)
			return
		}
		d.Sequence = steps
	case "one_time_sequences":
		if value == "" {
			bad("needs the path of a one-time sequences file")
			return
		}
		d.OneTimeSequences = value
	case "seq_timeout", "cmd_timeout":
		secs, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			bad("%q is not a whole number of seconds", value)
			return
		}
		t, err := secondsDuration(secs)
		if err != nil {
			bad("%v", err)
			return
		}
		if canon == "seq_timeout" {
			d.SeqTimeout = t
		} else {
			d.CmdTimeout = t
		}
	case "tcpflags":
		f, err := sequence.ParseFlagFilter(value)
		if err != nil {
			bad("%v", err)
			return
		}
		d.TCPFlags = f
	case "target":
		a, err := parseTarget(value)
		if err != nil {
			bad("%v", err)
			return
		}
		d.Target = a
	case "start_command", "start_command_6", "stop_command", "stop_command_6":
		// knockd.conf commands are always shell lines. An empty one is
		// knockd's way to say "nothing", which matters for the _6 forms.
		cmd := Command{Shell: value}
		switch canon {
		case "start_command":
			d.StartCommand = cmd
		case "start_command_6":
			d.StartCommand6, d.start6Set = cmd, true
		case "stop_command":
			d.StopCommand = cmd
		case "stop_command_6":
			d.StopCommand6, d.stop6Set = cmd, true
		}
	}
}
