package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	flag "github.com/spf13/pflag"

	"portknock/config"
	"portknock/sequence"
	"portknock/textlog"
)

// parsedEvent is one knock line as `portknockd parse` prints it.
type parsedEvent struct {
	Src    netip.Addr  `json:"src"`
	Dst    *netip.Addr `json:"dst,omitempty"`
	DPort  uint16      `json:"dport"`
	Proto  string      `json:"proto"`
	Flags  *string     `json:"flags,omitempty"`
	Format string      `json:"format"`
	// Time is the time the line carries, when it carries one.
	Time *time.Time `json:"time,omitempty"`
}

// runParse shows what the daemon sees in a log: one JSON object per knock
// line on stdout, and a count of the other lines on stderr.
func runParse(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portknockd parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	formatName := fs.StringP("format", "f", "auto", "line `format` (see Formats below)")
	prefix := fs.String("prefix", "", "keep only lines logged with this `prefix`")
	programs := fs.StringArray("program", nil, "count records under this syslog `program` (tag) instead of each format's own; repeatable")
	debug := fs.BoolP("debug", "D", false, "print each skipped line on stderr with the reason it was skipped")
	if code, done := parseFlags(fs, args, parseHelp, stdout); done {
		return code
	}
	format, err := textlog.ParseFormat(*formatName)
	if err != nil {
		fmt.Fprintf(stderr, "portknockd parse: %v\n", err)
		return 2
	}
	for _, name := range *programs {
		if err := config.CheckProgram(name); err != nil {
			fmt.Fprintf(stderr, "portknockd parse: %v\n", err)
			return 2
		}
	}
	p := textlog.Parser{Format: format, Prefix: *prefix, Programs: *programs}
	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	var (
		lineNo  uint64
		ev      sequence.Event
		events  uint64
		skipped [256]uint64 // by textlog.Reason
		encErr  error
	)
	in := &clockReader{r: stdin}
	st, err := textlog.ReadLines(context.Background(), in, 0, func(line []byte) {
		// Stamps without a year are placed against the time the line
		// was read: a log followed for days moves on with the clock.
		p.Now = in.now
		lineNo++
		f, reason := p.Parse(line, &ev)
		if reason != textlog.ReasonNone {
			skipped[reason]++
			if *debug {
				fmt.Fprintln(stderr, skippedLine(lineNo, reason, line))
			}
			return
		}
		events++
		pe := parsedEvent{Src: ev.Src, DPort: ev.Port, Proto: ev.Proto.String(), Format: f.String()}
		if ev.Dst.IsValid() {
			dst := ev.Dst
			pe.Dst = &dst
		}
		if !ev.Time.IsZero() {
			t := ev.Time
			pe.Time = &t
		}
		if ev.FlagsKnown {
			flags := ev.Flags.String()
			pe.Flags = &flags
		}
		if err := enc.Encode(pe); err != nil && encErr == nil {
			encErr = err
		}
		// Each event goes out at once, so parse can watch a live log.
		if err := out.Flush(); err != nil && encErr == nil {
			encErr = err
		}
	})
	if ferr := out.Flush(); encErr == nil {
		encErr = ferr
	}
	if err == nil {
		err = encErr
	}
	// Overlong lines never reach the parser, so -D cannot show them one by
	// one; they are counted here.
	skipped[textlog.ReasonTooLong] += st.TooLong
	total := st.Lines + st.TooLong
	fmt.Fprintf(stderr, "%d lines: %d knock events", total, events)
	for r, n := range skipped {
		if n > 0 {
			fmt.Fprintf(stderr, ", %d %s", n, textlog.Reason(r))
		}
	}
	fmt.Fprintln(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portknockd parse: %v\n", err)
		return 1
	}
	return 0
}

// skippedLine is how parse -D shows a line it skipped: its number, the
// reason, and the line, quoted and shortened.
func skippedLine(n uint64, r textlog.Reason, line []byte) string {
	const keep = 200
	q := strconv.Quote(string(line))
	if len(line) > keep {
		q = strconv.Quote(string(line[:keep])) + "…"
	}
	return fmt.Sprintf("skipped line %d: %s: %s", n, r, q)
}

// clockReader notes the time of each read from r, the time the lines it
// returns were read: a read brings many lines of a busy log, and a clock
// read per line would cost more than parsing a kernel line.
type clockReader struct {
	r   io.Reader
	now time.Time
}

func (c *clockReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.now = time.Now()
	return n, err
}
