package main

import (
	"fmt"
	"io"
	"strings"

	flag "github.com/spf13/pflag"

	"portknock/config"
	"portknock/textlog"
)

// help is one program's --help around its options: what comes before
// them, and the sections after. portknockd(8) says the same at length; a
// test in docs/man keeps the two in step.
type help struct {
	head     string
	sections []string
}

// printUsage writes h with fs's options between its head and sections.
func printUsage(w io.Writer, h help, fs *flag.FlagSet) {
	fmt.Fprint(w, h.head, "\nOptions:\n", fs.FlagUsages())
	for _, s := range h.sections {
		fmt.Fprint(w, "\n", s)
	}
}

const synopsis = `Usage: portknockd [-c FILE] [-i INPUT]... [-s DIR] [-D] [-v] [--dry-run] [-p PIDFILE] [-g LOGFILE]
       portknockd check [-u USER] [-i INPUT]... [-c] FILE
       portknockd parse [-f FORMAT] [--prefix PREFIX] [--program NAME]... [-D] < lines
       portknockd status [-c FILE] [-s DIR] [--json]
       portknockd --version
`

// inputsSection lists the -i forms.
var inputsSection = "Inputs (-i), besides those of the configuration; a knockd.conf has none and needs one:\n" +
	indent(config.InputSpecForms)

// formatsSection lists the text formats, auto first.
const formatsSection = `Formats (text:FORMAT:PATH, parse -f, format = in the configuration):
  auto        recognise each line's format (the default)
  simple      "dport srcip" or "dport/proto srcip" (ulogport)
  netfilter   Linux LOG and nft log lines: bare, syslog, dmesg, /dev/kmsg, journalctl -k
  ulogd       ulogd2 LOGEMU text and JSON, and its syslog output
  journal     journalctl -o json, kernel entries only
  pflog       tcpdump -n -e -l -i pflog0 (OpenBSD and upstream dialects)
  ipfw        FreeBSD ipfw kernel log lines
  filterlog   pfSense and OPNsense filterlog CSV
`

const signalsSection = `Signals:
  SIGHUP            reload the configuration; a broken file is logged and the running one stays
  SIGINT, SIGTERM   logged, then a clean stop: running commands finish, open doors are closed
`

var daemonHelp = help{
	head: synopsis + `
Reads the firewall's log of dropped knock packets (NFLOG or text) and opens a
door for each source that completes its knock sequence. The configuration
(TOML or a knockd.conf, recognised by content; default ` + defaultConfig + `)
and every file the daemon reads must be owned by root or the daemon's user and
not writable by others. "portknockd started" is logged once every input is open.
Subcommands: check (validate a configuration), parse (show what the daemon sees
in log lines), status (ask the running daemon what is open); each has --help.
`,
	sections: []string{inputsSection, formatsSection, signalsSection, `Exit status:
  0   a clean stop (or --help, --version)
  1   an invalid or untrusted configuration, a failed start (an input that cannot
      open or bind, a missing nftables set, a state_dir in use), or an error that
      stopped the daemon
  2   a bad command line (an unknown option, an argument, a bad -i)
`},
}

var checkHelp = help{
	head: `Usage: portknockd check [-u USER] [-i INPUT]... [-c] FILE

Validates a configuration and prints what the daemon would do: the doors, the
inputs, the knock space the firewall must log and drop, the state kept. It
judges every file the daemon would believe, as the daemon will, and lists every
one it would refuse with the command that fixes it; warns about doors that never
close, a configuration without inputs, files not there yet, a state_dir that
does not exist or that the daemon's user cannot write, and doors a port sweep
opens.
`,
	sections: []string{inputsSection, formatsSection, `Exit status:
  0   the configuration is valid and every file is trusted (warnings allowed)
  1   it is not, or a TLS file or an nftables set is unusable
  2   a bad command line, a bad -i or an unknown --user
`},
}

var parseHelp = help{
	head: `Usage: portknockd parse [-f FORMAT] [--prefix PREFIX] [--program NAME]... [-D] < lines

Reads log lines on stdin and prints one JSON object per knock line as it reads
it (src, dst, dport, proto, flags, format, time). At the end it prints on stderr
how many lines were skipped for each reason; with -D each skipped line, with its
reason, as it is read.
`,
	sections: []string{formatsSection, `Reasons a line is skipped:
  ` + reasonList() + `
`, `Exit status:
  0   the end of the input was reached
  1   reading or writing failed
  2   a bad command line or an unknown format
`},
}

// reasonList names every reason a text line is skipped for.
func reasonList() string {
	var names []string
	for r := textlog.Reason(1); !strings.HasPrefix(r.String(), "reason("); r++ {
		names = append(names, r.String())
	}
	return strings.Join(names, ", ")
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("  " + line)
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}
