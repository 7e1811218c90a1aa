//go:build linux

// Command knocklat measures how long portknockd takes from the last packet
// of a knock sequence to the door's command running.
//
// It starts portknockd itself, so that it can read the daemon's log as it
// is written, and sends knock sequences one at a time, each from its own
// 127.x.y.z source (so no knock is a re-knock of an open door). For each
// it takes the time just before the last knock packet is sent and the
// times at which it sees
//
//   - the "knock sequence complete" log line (NFLOG delivery, parsing, the
//     queue and the matcher, plus the log write and the pipe to us),
//   - the door's start command writing the source address to a FIFO
//     (all of the above plus fork and exec of the command and its own
//     start-up; the door should run something like "echo %IP% > FIFO"),
//   - the "opened" log line (the command has exited and been reaped).
//
// The next sequence is sent only when the daemon has logged "opened", so
// every knock finds it idle: this is latency, not throughput.
//
// With -external it starts no daemon and reads no log: whatever daemon the
// caller started (portknockd, knockd) opens a door whose command writes
// the source address to the FIFO, and only that write is timed. The next
// sequence is sent when it has arrived.
//
// It must run inside the benchmark's own network namespace, where a
// ruleset logs the knock ports to the daemon's NFLOG group.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"portknock/bench/netbench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "knocklat:", err)
		os.Exit(1)
	}
}

type options struct {
	daemon, config, fifo, logPath, samples string
	seq                                    []netbench.Step
	dst                                    netip.Addr
	srcNet                                 netip.Prefix
	n, warmup                              int
	dryRun, spawn, external                bool
	gap, timeout                           time.Duration
}

func run() error {
	var o options
	var seq, dst, srcNet string
	flag.StringVar(&o.daemon, "daemon", "portknockd", "portknockd `binary`")
	flag.StringVar(&o.config, "config", "", "portknockd configuration `file` (an nflog input; a door whose start command writes %IP% to -fifo)")
	flag.StringVar(&o.fifo, "fifo", "", "`FIFO` the door's start command writes the source address to (created if missing)")
	flag.StringVar(&o.logPath, "log", "", "copy the daemon's log to `file`")
	flag.StringVar(&o.samples, "samples", "", "write every measurement (microseconds) to `file` as CSV")
	flag.StringVar(&seq, "seq", "7000,8000,9000/udp", "the door's knock `sequence`")
	flag.StringVar(&dst, "dst", "127.0.0.1", "knock destination `address` (loopback only)")
	flag.StringVar(&srcNet, "src-net", "127.1.0.0/16", "knock sources are taken one by one from this loopback `prefix`")
	flag.BoolVar(&o.dryRun, "dry-run", false, "run the daemon with --dry-run: it logs instead of running the command, so only the log lines are timed, without a fork competing for the CPUs")
	flag.BoolVar(&o.external, "external", false, "start no daemon: the one already running opens a door whose command writes %IP% to -fifo, and only that write is timed")
	flag.BoolVar(&o.spawn, "spawn-only", false, "no daemon and no knocks: start `/bin/sh -c \"echo ADDR > FIFO\"` directly, the way portknockd starts a door's command, and time it (what process creation alone costs here)")
	flag.IntVar(&o.n, "n", 1000, "measured knock sequences")
	flag.IntVar(&o.warmup, "warmup", 20, "knock sequences sent first and not measured")
	flag.DurationVar(&o.gap, "gap", 2*time.Millisecond, "pause between one door opening and the next sequence")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Second, "give up on one sequence after this long")
	flag.Parse()

	var err error
	if o.fifo == "" || (o.config == "" && !o.spawn && !o.external) {
		return errors.New("-config and -fifo are required (-fifo alone with -external or -spawn-only)")
	}
	if o.seq, err = netbench.ParseSequence(seq); err != nil {
		return err
	}
	if o.dst, err = netip.ParseAddr(dst); err != nil {
		return err
	}
	if o.srcNet, err = netip.ParsePrefix(srcNet); err != nil {
		return err
	}
	o.srcNet = o.srcNet.Masked()
	if err := netbench.CheckLoopback(o.dst, o.srcNet.Addr()); err != nil {
		return err
	}
	if o.srcNet.Bits() < 8 || o.srcNet.Contains(o.dst) {
		return fmt.Errorf("-src-net %s must lie inside 127.0.0.0/8 and not contain the destination", o.srcNet)
	}
	if o.n < 1 || o.warmup < 0 || o.n+o.warmup > 1<<(32-o.srcNet.Bits())-2 {
		return fmt.Errorf("-n %d -warmup %d: need at least 1 and at most as many as -src-net has addresses", o.n, o.warmup)
	}
	if o.spawn {
		return spawnOnly(&o)
	}
	if err := netbench.RequirePrivateNetNS(); err != nil {
		return err
	}
	if o.external {
		return measureExternal(&o)
	}
	return measure(&o)
}

// arrival is one line we waited for, and when it arrived.
type arrival struct {
	kind string // "log", "cmd" or "opened"
	src  string
	at   time.Time
}

func measure(o *options) error {
	if err := unix.Mkfifo(o.fifo, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkfifo: %w", err)
	}
	// Opened read-write, the FIFO never reports end of file when a command
	// closes it, and opening it never waits for a writer.
	fifo, err := os.OpenFile(o.fifo, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fifo.Close()

	var logCopy io.Writer = io.Discard
	if o.logPath != "" {
		f, err := os.Create(o.logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		logCopy = f
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	args := []string{"-c", o.config}
	want := []string{"log", "cmd", "opened"}
	if o.dryRun {
		args = append(args, "--dry-run")
		want = []string{"log", "opened"}
	}
	cmd := exec.CommandContext(ctx, o.daemon, args...)
	// The daemon must not outlive us, whatever way we end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}

	arrivals := make(chan arrival, 64)
	ready := make(chan struct{})
	logDone := make(chan []string, 1)
	go readLog(stderr, logCopy, arrivals, ready, logDone)
	go readFIFO(fifo, arrivals)

	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		cancel()
		return fmt.Errorf("portknockd did not report reading its NFLOG group within 10s (log: %s)", o.logPath)
	case totals := <-logDone:
		cmd.Wait()
		return fmt.Errorf("portknockd exited at start: %s", strings.Join(totals, "\n"))
	}

	var toLog, toCmd, toOpened []time.Duration
	missing := 0
	last := o.seq[len(o.seq)-1]
	src := o.srcNet.Addr()
	for i := range o.warmup + o.n {
		src = nextSource(src, o.srcNet)
		for _, st := range o.seq[:len(o.seq)-1] {
			if err := st.Send(src, o.dst); err != nil {
				return err
			}
		}
		t0 := time.Now()
		if err := last.Send(src, o.dst); err != nil {
			return err
		}
		got := waitFor(arrivals, src.String(), len(want), o.timeout)
		if len(got) < len(want) {
			missing++
			fmt.Fprintf(os.Stderr, "knocklat: knock from %s: only saw %v within %v\n", src, keys(got), o.timeout)
			continue
		}
		if i >= o.warmup {
			toLog = append(toLog, got["log"].Sub(t0))
			if !o.dryRun {
				toCmd = append(toCmd, got["cmd"].Sub(t0))
			}
			toOpened = append(toOpened, got["opened"].Sub(t0))
		}
		time.Sleep(o.gap)
	}

	// Nothing waits for arrivals any more; keep the readers from blocking.
	go func() {
		for range arrivals {
		}
	}()
	cancel() // SIGTERM: the daemon logs its totals and exits
	totals := <-logDone
	werr := cmd.Wait()

	fmt.Printf("%d knock sequences measured (%d warm-up not counted), %d without an answer within %v\n",
		len(toLog), o.warmup, missing, o.timeout)
	fmt.Printf("%-34s %9s %9s %9s %9s\n", "from sending the last knock to", "p50", "p90", "p99", "max")
	report("\"knock sequence complete\" logged", toLog)
	if o.dryRun {
		report("dry run: \"opened\" logged", toOpened)
	} else {
		report("start command running (FIFO)", toCmd)
		report("command exited, \"opened\" logged", toOpened)
	}
	for _, l := range totals {
		fmt.Println("portknockd:", l)
	}
	if o.samples != "" {
		if err := writeSamples(o.samples, toLog, toCmd, toOpened); err != nil {
			return err
		}
	}
	// Stopped by our SIGTERM, the daemon exits 0 and Wait reports the
	// cancelled context; anything else is worth a look at its log.
	if werr != nil && !errors.Is(werr, context.Canceled) {
		return fmt.Errorf("portknockd: %w", werr)
	}
	if missing > 0 {
		return fmt.Errorf("%d knock sequences got no answer", missing)
	}
	return nil
}

// measureExternal times knocks on a daemon someone else started, from the
// last knock packet to the door's command writing to the FIFO.
func measureExternal(o *options) error {
	if err := unix.Mkfifo(o.fifo, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkfifo: %w", err)
	}
	fifo, err := os.OpenFile(o.fifo, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fifo.Close()
	arrivals := make(chan arrival, 64)
	go readFIFO(fifo, arrivals)

	var toCmd []time.Duration
	missing := 0
	last := o.seq[len(o.seq)-1]
	src := o.srcNet.Addr()
	for i := range o.warmup + o.n {
		src = nextSource(src, o.srcNet)
		for _, st := range o.seq[:len(o.seq)-1] {
			if err := st.Send(src, o.dst); err != nil {
				return err
			}
		}
		t0 := time.Now()
		if err := last.Send(src, o.dst); err != nil {
			return err
		}
		got := waitFor(arrivals, src.String(), 1, o.timeout)
		if len(got) == 0 {
			missing++
			fmt.Fprintf(os.Stderr, "knocklat: knock from %s: the command wrote nothing within %v\n", src, o.timeout)
			continue
		}
		if i >= o.warmup {
			toCmd = append(toCmd, got["cmd"].Sub(t0))
		}
		time.Sleep(o.gap)
	}
	fmt.Printf("%d knock sequences measured (%d warm-up not counted), %d without an answer within %v\n",
		len(toCmd), o.warmup, missing, o.timeout)
	fmt.Printf("%-34s %9s %9s %9s %9s\n", "from sending the last knock to", "p50", "p90", "p99", "max")
	report("start command running (FIFO)", toCmd)
	if o.samples != "" {
		var b bytes.Buffer
		b.WriteString("cmd_us\n")
		for _, d := range toCmd {
			fmt.Fprintf(&b, "%d\n", d.Microseconds())
		}
		if err := os.WriteFile(o.samples, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d knock sequences got no answer", missing)
	}
	return nil
}

// nextSource steps to the next address in p, skipping the .0 and .255 host
// parts so that no source looks like a network or broadcast address.
func nextSource(a netip.Addr, p netip.Prefix) netip.Addr {
	for {
		a = a.Next()
		if !p.Contains(a) {
			a = p.Addr()
			continue
		}
		if b := a.As4(); b[3] != 0 && b[3] != 255 {
			return a
		}
	}
}

// waitFor collects n arrivals for src, skipping any left over from an
// earlier sequence that timed out.
func waitFor(arrivals <-chan arrival, src string, n int, timeout time.Duration) map[string]time.Time {
	got := make(map[string]time.Time, n)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(got) < n {
		select {
		case a := <-arrivals:
			if a.src == src {
				got[a.kind] = a.at
			}
		case <-deadline.C:
			return got
		}
	}
	return got
}

func keys(m map[string]time.Time) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

// readLog copies the daemon's log, timestamps the lines we wait for as
// they arrive, and at the end hands over the totals the daemon logged.
func readLog(r io.Reader, copyTo io.Writer, arrivals chan<- arrival, ready chan<- struct{}, done chan<- []string) {
	sc := bufio.NewScanner(r)
	var totals []string
	isReady := false
	for sc.Scan() {
		at := time.Now()
		line := sc.Text()
		fmt.Fprintln(copyTo, line)
		switch {
		case strings.Contains(line, `msg="knock sequence complete"`):
			arrivals <- arrival{"log", field(line, "src"), at}
		case strings.Contains(line, "msg=opened "):
			arrivals <- arrival{"opened", field(line, "src"), at}
		case !isReady && strings.Contains(line, `msg="reading NFLOG group"`):
			isReady = true
			close(ready)
		case strings.Contains(line, "totals "), strings.Contains(line, "level=ERROR"), strings.Contains(line, "level=WARN"):
			totals = append(totals, line)
		}
	}
	done <- totals
}

// field returns the value of key=value in a slog text line.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

// readFIFO timestamps each line the door's command writes, at the read
// that returned it.
func readFIFO(f *os.File, arrivals chan<- arrival) {
	buf := make([]byte, 4096)
	var pending []byte
	for {
		n, err := f.Read(buf)
		at := time.Now()
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			arrivals <- arrival{"cmd", strings.TrimSpace(string(pending[:i])), at}
			pending = pending[i+1:]
		}
		if err != nil {
			return
		}
	}
}

func report(what string, d []time.Duration) {
	if len(d) == 0 {
		fmt.Printf("%-34s no samples\n", what)
		return
	}
	s := slices.Clone(d)
	slices.Sort(s)
	fmt.Printf("%-34s %9s %9s %9s %9s\n", what, ms(pct(s, 50)), ms(pct(s, 90)), ms(pct(s, 99)), ms(s[len(s)-1]))
}

// pct is the nearest-rank percentile of sorted samples.
func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

func writeSamples(path string, toLog, toCmd, toOpened []time.Duration) error {
	var b bytes.Buffer
	b.WriteString("log_us,cmd_us,opened_us\n")
	for i := range toLog {
		cmd := int64(-1) // dry run: no command ran
		if i < len(toCmd) {
			cmd = toCmd[i].Microseconds()
		}
		fmt.Fprintf(&b, "%d,%d,%d\n", toLog[i].Microseconds(), cmd, toOpened[i].Microseconds())
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// spawnOnly times what the daemon's share of the latency is compared
// with: starting the door's command the way portknockd's runner does (its
// own process group, output to a pipe) from a small Go program, until the
// command has written to the FIFO.
func spawnOnly(o *options) error {
	if err := unix.Mkfifo(o.fifo, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkfifo: %w", err)
	}
	fifo, err := os.OpenFile(o.fifo, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fifo.Close()
	arrivals := make(chan arrival, 64)
	go readFIFO(fifo, arrivals)
	var took []time.Duration
	src := o.srcNet.Addr()
	for i := range o.warmup + o.n {
		src = nextSource(src, o.srcNet)
		cmd := exec.Command("/bin/sh", "-c", "echo "+src.String()+" > "+o.fifo)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		got := waitFor(arrivals, src.String(), 1, o.timeout)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%v: %v: %s", cmd.Args, err, out.Bytes())
		}
		if len(got) == 0 {
			return fmt.Errorf("%v wrote nothing to the FIFO within %v", cmd.Args, o.timeout)
		}
		if i >= o.warmup {
			took = append(took, got["cmd"].Sub(t0))
		}
		time.Sleep(o.gap)
	}
	fmt.Printf("%d commands started (%d warm-up not counted)\n", len(took), o.warmup)
	fmt.Printf("%-34s %9s %9s %9s %9s\n", "from starting the command to", "p50", "p90", "p99", "max")
	report("its write arriving on the FIFO", took)
	return nil
}
