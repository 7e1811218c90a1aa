package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	flag "github.com/spf13/pflag"

	"portknock/config"
	"portknock/daemon"
)

// statusNotRunning is portknockd status's exit status when no daemon
// answers: what LSB init scripts and systemctl say for a service that is
// not running.
const statusNotRunning = 3

var statusHelp = help{
	head: `Usage: portknockd status [-c FILE] [-s DIR] [--json]

Asks the running portknockd, over the socket portknockd.sock in its state_dir,
for the doors open now (address, time left), the knock attempts in progress and
each input's counters. The socket is mode 0600: run it as root or as the
daemon's user. A dry run serves no socket.
`,
	sections: []string{`Exit status:
  0   the daemon answered
  1   an error (an unreadable configuration, a broken answer)
  2   a bad command line
  3   no daemon is running (the socket is missing or refuses connections)
`},
}

// runStatus asks the running daemon for its status over the socket in
// state_dir and prints it, as a table or (--json) as the daemon sent it.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portknockd status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.StringP("config", "c", defaultConfig, "configuration `file` whose state_dir holds the status socket")
	stateDir := fs.StringP("state-dir", "s", "", "ask the daemon using `dir` as its state_dir (overrides the configuration)")
	asJSON := fs.Bool("json", false, "print the status as JSON, for scripts")
	if code, done := parseFlags(fs, args, statusHelp, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (see %s --help)\n", fs.Name(), fs.Arg(0), fs.Name())
		return exitUsage
	}
	dir := *stateDir
	if dir == "" {
		// Only state_dir is wanted: status runs nothing from the file.
		cfg, err := config.ReadFile(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		dir = cfg.Daemon.StateDir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := daemon.QueryStatus(ctx, dir)
	if errors.Is(err, daemon.ErrNotRunning) {
		fmt.Fprintf(stderr, "portknockd status: %v\n", err)
		return statusNotRunning
	}
	if err != nil {
		fmt.Fprintf(stderr, "portknockd status: %v\n", err)
		return exitFail
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			fmt.Fprintf(stderr, "portknockd status: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	writeStatus(stdout, st)
	return exitOK
}

// writeStatus prints a status for people.
func writeStatus(w io.Writer, st *daemon.Status) {
	fmt.Fprintf(w, "%s, status at %s\n", safe(st.Version), st.Time.Format(time.DateTime+" MST"))

	fmt.Fprintf(w, "\nopen doors: %d%s\n", st.OpenDoorsTotal, listed(len(st.OpenDoors), st.OpenDoorsTotal))
	if len(st.OpenDoors) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  DOOR\tADDRESS\tCLOSES IN\tAT")
		for _, o := range st.OpenDoors {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", safe(o.Door), safe(o.Src), seconds(o.Left), o.Until.In(st.Time.Location()).Format(time.DateTime))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nattempts in progress: %d%s\n", st.AttemptsTotal, listed(len(st.Attempts), st.AttemptsTotal))
	if len(st.Attempts) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  DOOR\tADDRESS\tKNOCKS\tTIME LEFT")
		for _, a := range st.Attempts {
			fmt.Fprintf(tw, "  %s\t%s\t%d of %d\t%s\n", safe(cmp.Or(a.Door, "sealed "+a.Range)), safe(a.Src), a.Step, a.Of, seconds(a.Left))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\ninputs:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  INPUT\tTYPE\tEVENTS\tSKIPPED\tCOUNTERS")
	for _, in := range st.Inputs {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", safe(in.Name), safe(in.Type), in.Events, counts(in.Skipped), counts(in.Counters))
	}
	tw.Flush()

	m := st.Matcher
	fmt.Fprintf(w, "\nmatcher: %d events (%d outside the knock space), %d matches, %d wrong knocks, %d timeouts, %d evictions, %d sources tracked\n",
		m.Events, m.Outside, m.Matches, m.WrongKnocks, m.Timeouts, m.Evictions, m.Sources)
	c := st.Commands
	fmt.Fprintf(w, "commands: %d started, %d failed, %d closes pending\n", c.Started, c.Failed, c.PendingCloses)
}

func listed(n, total int) string {
	if n < total {
		return fmt.Sprintf(" (%d listed)", n)
	}
	return ""
}

// seconds prints a time left to the second.
func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// safe returns s as it is when it prints as itself, and quoted with
// escapes otherwise, so that no answer can move the cursor or retitle the
// terminal it is printed on.
func safe(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// counts prints the non-zero counters, by name, or "-".
func counts(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", safe(k), m[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
