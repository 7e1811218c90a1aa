package daemon

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"portknock/config"
)

// TestBurstOfKnockers drives the whole daemon with knockers all knocking
// at once on stdin: every source sends its first knock, then every source
// its second, then its third, so that all of them complete within moments
// of each other. Every completed knock must open its door: the command
// queue takes the burst and drains it at the rate the workers run the
// (cheap, real) start commands, and refuses none.
//
// Not parallel: ten thousand fork/execs keep the CPUs busy for seconds.
func TestBurstOfKnockers(t *testing.T) {
	sources := burstSources()
	const src = `
[[input]]
type = "text"
path = "-"
format = "simple"

[[door]]
name = "burst"
sequence = ["7000/tcp", "8000/tcp", "9000/udp"]
seq_timeout = "10m"
start_command = ["true"]
`
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "burst.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d, pw, logs := startOnPipe(t, cfg)

	began := time.Now()
	writeErr := make(chan error, 1)
	go func() {
		var buf []byte
		for _, step := range []string{"7000/tcp", "8000/tcp", "9000/udp"} {
			for i := range sources {
				buf = append(buf, step...)
				buf = append(buf, " 10.9."...)
				buf = strconv.AppendInt(buf, int64(i>>8), 10)
				buf = append(buf, '.')
				buf = strconv.AppendInt(buf, int64(i&0xff), 10)
				buf = append(buf, '\n')
			}
		}
		_, err := pw.Write(buf)
		if cerr := pw.Close(); err == nil {
			err = cerr
		}
		writeErr <- err
	}()
	if err := <-writeErr; err != nil {
		t.Fatalf("writing the knocks: %v", err)
	}
	// The end of stdin stops the daemon once the starts asked for have
	// run. A busy 2-core machine forks a few hundred commands a second at
	// worst, so the limit is generous; a hang fails instead of waiting on.
	select {
	case <-d.done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("daemon did not finish the burst in 5 minutes; %+v", d.runner.Stats())
	}
	if d.err != nil {
		t.Fatalf("Run: %v", d.err)
	}
	elapsed := time.Since(began)
	st := d.runner.Stats()
	t.Logf("%d knockers opened in %v (%.0f opens/s): %+v", sources, elapsed.Round(time.Millisecond), float64(st.Started)/elapsed.Seconds(), st)
	log := logs.String()
	if n := strings.Count(log, `msg="knock sequence complete"`); n != sources {
		t.Errorf("%d sequences completed, want %d", n, sources)
	}
	if st.Started != uint64(sources) || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("runner started %d commands (%d failed, %d refused), want %d, none failed or refused", st.Started, st.Failed, st.Dropped, sources)
	}
	if n := strings.Count(log, `msg=opened`); n != sources {
		t.Errorf("%d opened lines, want %d", n, sources)
	}
	if strings.Contains(log, "command queue full") {
		t.Error("the command queue refused opens")
	}
	// The burst did wait in the queue: its depth was logged as it grew.
	if !strings.Contains(log, "command queue growing") || !strings.Contains(log, "command queue drained") {
		t.Error("the queue's growth and drain were not logged")
	}
}

// burstSources is how many knockers TestBurstOfKnockers sends: the ten
// thousand the command queue is promised to take, race detector or not
// (about 25 s of fork/exec on a busy machine); with -short two thousand,
// which still wait in the queue far past the depth its growth is logged
// from.
func burstSources() int {
	if testing.Short() {
		return 2_000
	}
	return 10_000
}
