//go:build !nometrics

package daemon

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"portknock/internal/netnstest"
)

func scrape(t *testing.T, addr net.Addr) string {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v\n%s", resp.Status, err, body)
	}
	return string(body)
}

// TestMetrics scrapes a running daemon after a knock: the door's series
// count it, the Go and process collectors are there, and promtool finds
// nothing to complain about.
func TestMetrics(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	cfg := doorConfig(t, in, sig, "")
	cfg.Daemon.Metrics = "127.0.0.1:0"
	var logs syncBuffer
	d := start(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	addr := d.MetricsAddr()
	if addr == nil {
		t.Fatal("no metrics address")
	}
	writeLines(t, in, "7000 192.0.2.10", "9000/udp 192.0.2.10", "not a knock line", "7000 192.0.2.10", "8000/tcp 192.0.2.10", "9000/udp 192.0.2.10")
	expect(t, ch, "open ssh 192.0.2.10")
	// The command wrote its line before it exited, and the runner counts
	// it once it has: wait for that.
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		body = scrape(t, addr)
		if strings.Contains(body, `portknockd_doors_open{door="ssh"} 1`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	input := "text:" + in
	for _, want := range []string{
		`portknockd_matches_total{door="ssh"} 1`,
		`portknockd_wrong_knocks_total{door="ssh"} 1`,
		`portknockd_opens_total{door="ssh"} 1`,
		`portknockd_command_failures_total{door="ssh"} 0`,
		`portknockd_doors_open{door="ssh"} 1`,
		`portknockd_events_total{input="` + input + `",reason="knock"} 5`,
		`portknockd_events_total{input="` + input + `",reason="unrecognized"} 1`,
		`portknockd_command_duration_seconds_count 1`,
		`portknockd_sources_tracked 0`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}

	promtool := netnstest.Tool(t, "promtool", "prometheus")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		c.Close()
		t.Error("metrics still served after the daemon stopped")
	}
}

// TestMetricsBindError: an address in use stops the start.
func TestMetricsBindError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := doorConfig(t, mkfifo(t, "input"), mkfifo(t, "signal"), "")
	cfg.Daemon.Metrics = ln.Addr().String()
	d, err := New(cfg, Options{})
	if err == nil {
		d.abort()
		t.Fatal("New succeeded on a metrics address in use")
	}
	if !strings.Contains(err.Error(), "metrics") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("error %q does not say metrics and the address", err)
	}
}
