//go:build !nometrics

package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"portknock/actions"
	"portknock/input"
	"portknock/internal/buildinfo"
	"portknock/nflog"
	"portknock/sequence"
)

// scrapeTimeout bounds how long a scrape waits for the matcher's loop,
// which may be busy with a reload.
const scrapeTimeout = 5 * time.Second

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("portknockd_"+name, help, labels, nil)
}

// The series portknockd serves. A door's series exist from the start,
// at zero, so that an alert on their increase sees the first one.
var (
	descInfo       = desc("build_info", "The running portknockd's version; always 1.", "version")
	descEvents     = desc("events_total", "Records each input read, by what became of them: knock (handed to the matcher) or the reason it was skipped.", "input", "reason")
	descInputCount = desc("input_records_total", "An input's other counters: lines or packets read, messages, and connections denied, refused or closed, by what they count.", "input", "counter")
	descInputLevel = desc("input_level", "An input's levels, such as a syslog listener's connections open now.", "input", "level")
	descOutside    = desc("events_outside_total", "Events outside every door's knock space, dropped before any state was touched.")
	descMatches    = desc("matches_total", "Completed knock sequences and valid sealed blocks, by door.", "door")
	descWrong      = desc("wrong_knocks_total", "Attempts reset by a wrong knock, by door.", "door")
	descTimeouts   = desc("timeouts_total", "Attempts ended by seq_timeout, by door or sealed range.", "door", "range")
	descEvictions  = desc("evictions_total", "Attempts dropped because the source table was full, by door or sealed range.", "door", "range")
	descSealedRej  = desc("sealed_rejections_total", "Complete sealed blocks that opened nothing, by reason; by range where the block named no door.", "door", "range", "reason")
	descSources    = desc("sources_tracked", "Source addresses with a knock in progress.")
	descAttempts   = desc("attempts_in_progress", "Knock attempts in progress, over every door and sealed range.")
	descOpens      = desc("opens_total", "Doors opened, by door: start commands that succeeded, set elements added.", "door")
	descCloses     = desc("closes_total", "Stop commands that succeeded, by door.", "door")
	descFailures   = desc("command_failures_total", "Commands that failed or timed out, and set elements that could not be added, by door.", "door")
	descOpenNow    = desc("doors_open", "(door, address) pairs open now, with a pending close or a set element not expired yet.", "door")
	descDropped    = desc("opens_dropped_total", "Opens refused because the command queue was full.")
	descRefused    = desc("opens_refused_total", "Opens refused because their close could not be recorded in state_dir.")
	descGivenUp    = desc("stops_given_up_total", "Closes abandoned after every retry of their stop command failed: the door may still be open.")
	descDrops      = desc("nflog_kernel_drops_total", "Log messages the kernel could not deliver to an NFLOG input.", "input")
	descOverflow   = desc("nflog_queue_overflow_total", "NFLOG events dropped because the matcher's queue was full.", "input")
	descOverruns   = desc("nflog_overruns_total", "Times an NFLOG input's socket buffer overflowed.", "input")
	descDuration   = desc("command_duration_seconds", "How long door commands ran.")
)

// collector reads the daemon's counters at scrape time: the matcher's
// through a snapshot its loop hands over, the rest through their own
// Stats, which are safe to call from any goroutine. Nothing on the
// knock path counts for the metrics alone.
type collector struct{ d *Daemon }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descEvents, descInputCount, descInputLevel, descOutside, descMatches, descWrong,
		descTimeouts, descEvictions, descSealedRej, descSources, descAttempts, descOpens, descCloses, descFailures,
		descOpenNow, descDropped, descRefused, descGivenUp, descDrops, descOverflow, descOverruns, descDuration} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(descInfo, 1, buildinfo.Version("portknockd"))

	for _, st := range d.InputStats() {
		counter(descEvents, st.Events, st.Name, "knock")
		counter(descEvents, st.Dropped, st.Name, "dropped")
		for r, n := range st.Skipped {
			if input.Reason(r) != input.ReasonNone {
				counter(descEvents, n, st.Name, input.Reason(r).String())
			}
		}
		counter(descInputCount, st.Read, st.Name, cmpOr(st.Unit, "read"))
		nflogInput := inputType(st.Name) == "nflog"
		if nflogInput {
			counter(descOverflow, st.Dropped, st.Name)
		}
		for _, c := range st.Counters {
			switch {
			case nflogInput && c.Name == nflog.KernelDrops:
				counter(descDrops, c.Value, st.Name)
			case nflogInput && c.Name == nflog.Overruns:
				counter(descOverruns, c.Value, st.Name)
			case c.Gauge:
				gauge(descInputLevel, int(c.Value), st.Name, c.Name)
			default:
				counter(descInputCount, c.Value, st.Name, c.Name)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	snap, err := d.snapshot(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descMatches, err)
	} else {
		c.matcher(snap, counter, gauge)
	}

	rs := d.runner.Stats()
	counter(descDropped, rs.Dropped)
	counter(descRefused, rs.Refused)
	counter(descGivenUp, rs.StopsGivenUp)
	var names []string
	if snap != nil {
		names = snap.doorNames
	}
	perDoor := d.runner.DoorStats()
	open, _ := d.runner.OpenDoors(d.now(), maxOpenListed)
	openBy := map[string]int{}
	for _, o := range open {
		openBy[o.Door]++
	}
	for _, name := range union(names, perDoor) {
		s := perDoor[name]
		counter(descOpens, s.Opens, name)
		counter(descCloses, s.Closes, name)
		counter(descFailures, s.Failures, name)
		gauge(descOpenNow, openBy[name], name)
	}
	dur := d.runner.CommandDurations()
	buckets := make(map[float64]uint64, len(dur.Buckets))
	for i, le := range actions.DurationBuckets {
		buckets[le] = dur.Buckets[i]
	}
	ch <- prometheus.MustNewConstHistogram(descDuration, dur.Count, dur.Sum.Seconds(), buckets)
}

func (c collector) matcher(s *snapshot, counter func(*prometheus.Desc, uint64, ...string), gauge func(*prometheus.Desc, int, ...string)) {
	counter(descOutside, s.stats.Outside)
	gauge(descSources, s.stats.Sources)
	gauge(descAttempts, s.attemptsTotal)
	for _, name := range union(s.doorNames, s.doors) {
		ds := s.doors[name]
		counter(descMatches, ds.Matches, name)
		counter(descWrong, ds.WrongKnocks, name)
		counter(descTimeouts, ds.Timeouts, name, "")
		counter(descEvictions, ds.Evictions, name, "")
		rejections(counter, ds.SealedRejects, name, "")
	}
	for label, rs := range s.ranges {
		counter(descTimeouts, rs.Timeouts, "", label)
		counter(descEvictions, rs.Evictions, "", label)
		rejections(counter, rs.SealedRejects, "", label)
	}
}

// rejections adds the sealed rejections counted, by reason; a door or
// range that never rejected a block has no such series.
func rejections(counter func(*prometheus.Desc, uint64, ...string), r sequence.SealedRejects, door, rng string) {
	for _, x := range []struct {
		reason string
		n      uint64
	}{{"key", r.Key}, {"door", r.Door}, {"source", r.Source}, {"skew", r.Skew}, {"replay", r.Replay}} {
		if x.n > 0 {
			counter(descSealedRej, x.n, door, rng, x.reason)
		}
	}
}

// union returns the doors configured now and those counted before a
// reload removed them, each once.
func union[V any](names []string, counted map[string]V) []string {
	all := slices.Clone(names)
	for name := range counted {
		if !slices.Contains(all, name) {
			all = append(all, name)
		}
	}
	return all
}

// errNoMetrics is nil: this build serves metrics. See metrics_off.go.
var errNoMetrics error

// metricsConns bounds the metrics server's open connections: Prometheus
// needs one, an operator's curl another.
const metricsConns = 16

// serveMetrics serves the metrics on ln until ctx ends, on goroutines wg
// waits for.
func serveMetrics(ctx context.Context, d *Daemon, ln net.Listener, wg *sync.WaitGroup) {
	srv := newMetricsServer(d)
	// Every local user can connect to a loopback port: the limit bounds
	// the descriptors and goroutines they can make the daemon hold
	// (ReadHeaderTimeout and IdleTimeout bound how long).
	limited := netutil.LimitListener(ln, metricsConns)
	wg.Go(func() {
		if err := srv.Serve(limited); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		// Scrapes in flight are bounded by the handler's timeout; the
		// daemon does not wait for them to stop.
		srv.Close()
	})
}

// newMetricsServer serves /metrics from a registry of the daemon's own,
// never the process-wide default one: the Go runtime's and the process's
// collectors, and the daemon's counters.
func newMetricsServer(d *Daemon) *http.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collector{d},
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{d.log},
		MaxRequestsInFlight: 4,
		Timeout:             2 * scrapeTimeout,
	}))
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      3 * scrapeTimeout,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
	}
}

// slogPrinter gives promhttp's errors to the daemon's log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
