package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool finds a command a test needs: missing, the test skips, unless
// PORTKNOCK_INTEGRATION=1 says the environment must have it.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PORTKNOCK_INTEGRATION") == "1" {
			t.Fatalf("%s (Debian package %s) is needed: %v", name, pkg, err)
		}
		t.Skipf("%s (Debian package %s) not installed", name, pkg)
	}
	return p
}

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
	body := scrape(t, addr)
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

	promtool := needTool(t, "promtool", "prometheus")
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

// TestStatus asks a running daemon over its socket: the open door with
// its time left, an attempt in progress, the input's counters; then, once
// it has stopped, that none runs.
func TestStatus(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	cfg := doorConfig(t, in, sig, "")
	dir := cfg.Daemon.StateDir
	ctx := t.Context()
	if _, err := QueryStatus(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("before the start: %v, want ErrNotRunning", err)
	}
	d := start(t, cfg, Options{Status: true})
	sock := filepath.Join(dir, StatusSocket)
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("status socket %s, want a socket 0600", fi.Mode())
	}
	if _, err := listenStatus(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second socket on the same state_dir: %v, want in use", err)
	}

	writeLines(t, in, "7000 192.0.2.10", "8000/tcp 192.0.2.10", "9000/udp 192.0.2.10", "7000 192.0.2.11", "junk")
	expect(t, ch, "open ssh 192.0.2.10")
	// The attempt from .11 shows once the loop has taken its knock and a
	// snapshot older than that has aged out.
	var st *Status
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err = QueryStatus(ctx, dir); err != nil {
			t.Fatal(err)
		}
		if st.AttemptsTotal == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(snapshotMaxAge / 5)
	}
	if st.OpenDoorsTotal != 1 || len(st.OpenDoors) != 1 {
		t.Fatalf("open doors %+v, want one", st.OpenDoors)
	}
	if o := st.OpenDoors[0]; o.Door != "ssh" || o.Src != "192.0.2.10" || o.Left < 3000 || o.Left > 3600 {
		t.Errorf("open door %+v, want ssh 192.0.2.10 with about an hour left", o)
	}
	if st.AttemptsTotal != 1 || len(st.Attempts) != 1 {
		t.Fatalf("attempts %+v, want one", st.Attempts)
	}
	if a := st.Attempts[0]; a.Door != "ssh" || a.Src != "192.0.2.11" || a.Step != 1 || a.Of != 3 || a.Left <= 0 || a.Left > 60 {
		t.Errorf("attempt %+v, want ssh 192.0.2.11 at step 1 of 3 with at most a minute left", a)
	}
	if len(st.Inputs) != 1 || st.Inputs[0].Events != 4 || st.Inputs[0].Skipped["unrecognized"] != 1 || st.Inputs[0].Counters["lines"] != 5 {
		t.Errorf("inputs %+v, want one with 4 events, 1 unrecognized, 5 lines", st.Inputs)
	}

	// What a client sends is never read: the answer is the same.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("reload\nstop\n"))
	reply, _ := io.ReadAll(c)
	c.Close()
	if !bytes.Contains(reply, []byte(`"open_doors_total":1`)) {
		t.Errorf("answer to a client that wrote: %s", reply)
	}

	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after stop: %v", err)
	}
	if _, err := QueryStatus(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("after stop: %v, want ErrNotRunning", err)
	}
}

// TestStatusStaleSocket: a socket a dead daemon left is replaced; a file
// that is not a socket is left alone.
func TestStatusStaleSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, StatusSocket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	l, err := listenStatus(dir)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l.serve(ctx, nil)
	l.close()

	if err := os.WriteFile(sock, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenStatus(dir); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v, want refused", err)
	}
	if data, _ := os.ReadFile(sock); string(data) != "mine" {
		t.Errorf("the file was touched: %q", data)
	}
}

// TestStatusSlowClients: clients that connect and never read hold only
// their own connections; knocks still open doors, and the socket still
// answers once they are gone.
func TestStatusSlowClients(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	cfg := doorConfig(t, in, sig, "")
	start(t, cfg, Options{Status: true})
	sock := filepath.Join(cfg.Daemon.StateDir, StatusSocket)
	var conns []net.Conn
	for range 2 * statusConns {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	writeLines(t, in, "7000 192.0.2.10", "8000/tcp 192.0.2.10", "9000/udp 192.0.2.10")
	expect(t, ch, "open ssh 192.0.2.10")
	for _, c := range conns {
		c.Close()
	}
	// A client closed for being one too many may ask again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := QueryStatus(t.Context(), cfg.Daemon.StateDir)
		if err == nil && st.OpenDoorsTotal == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer showing the open door: %+v, %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
