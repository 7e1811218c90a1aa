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
	"strings"
	"text/tabwriter"
	"time"

	flag "github.com/spf13/pflag"

	"portknock/config"
	"portknock/daemon"
)

// Exit statuses of portknockd status: 3 is what LSB init scripts and
// systemctl say for a service that is not running.
const (
	statusNotRunning = 3
)

// runStatus asks the running daemon for its status over the socket in
// state_dir and prints it, as a table or (--json) as the daemon sent it.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portknockd status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.StringP("config", "c", defaultConfig, "configuration `file` whose state_dir holds the status socket")
	stateDir := fs.StringP("state-dir", "s", "", "ask the daemon using `dir` as its state_dir (overrides the configuration)")
	asJSON := fs.Bool("json", false, "print the status as JSON, for scripts")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: portknockd status [-c FILE] [-s DIR] [--json]\n\nAsks the running portknockd for its open doors, attempts in progress and\ninput counters. Exit status: 0 answered, 1 error, 2 usage, 3 no daemon running.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2
	}
	dir := *stateDir
	if dir == "" {
		// Only state_dir is wanted: status runs nothing from the file.
		cfg, err := config.ReadFile(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
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
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			fmt.Fprintf(stderr, "portknockd status: %v\n", err)
			return 1
		}
		return 0
	}
	writeStatus(stdout, st)
	return 0
}

// writeStatus prints a status for people.
func writeStatus(w io.Writer, st *daemon.Status) {
	fmt.Fprintf(w, "%s, status at %s\n", st.Version, st.Time.Format(time.DateTime+" MST"))

	fmt.Fprintf(w, "\nopen doors: %d%s\n", st.OpenDoorsTotal, listed(len(st.OpenDoors), st.OpenDoorsTotal))
	if len(st.OpenDoors) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  DOOR\tADDRESS\tCLOSES IN\tAT")
		for _, o := range st.OpenDoors {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", o.Door, o.Src, seconds(o.Left), o.Until.In(st.Time.Location()).Format(time.DateTime))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nattempts in progress: %d%s\n", st.AttemptsTotal, listed(len(st.Attempts), st.AttemptsTotal))
	if len(st.Attempts) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  DOOR\tADDRESS\tKNOCKS\tTIME LEFT")
		for _, a := range st.Attempts {
			fmt.Fprintf(tw, "  %s\t%s\t%d of %d\t%s\n", cmp.Or(a.Door, "sealed "+a.Range), a.Src, a.Step, a.Of, seconds(a.Left))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\ninputs:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  INPUT\tTYPE\tEVENTS\tSKIPPED\tCOUNTERS")
	for _, in := range st.Inputs {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", in.Name, in.Type, in.Events, counts(in.Skipped), counts(in.Counters))
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

// counts prints the non-zero counters, by name, or "-".
func counts(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
